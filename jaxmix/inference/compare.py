"""EM against gradient ascent, from the same starts (docs/maths.md section 4).

By Fisher's identity, EM and gradient ascent on the mean log-likelihood share
their fixed points; they differ in how fast, how reliably and at what cost per
iteration they get there. ``compare_fits`` measures exactly that: it draws
``n_starts`` initializations once (one per start key, vmapped), then runs EM
(``run_em``) and every optax optimizer (the full-batch loop of
``fit_gradient``) from those same parameters, each method vmapped over the
starts in its own compiled call, and records per method and start:

- the mean log-likelihood after t iterations, t = 0 .. T (t = 0 is the shared
  initialization, so column 0 agrees across methods up to rounding);
- the final log-likelihood, the iterations after which it stays within
  ``atol`` of the best value any method found from any start, and whether the
  final value is within ``atol`` of it ("at the best optimum");
- the compile time and the steady wall time per iteration.

Everything comes back as NumPy arrays with a leading method axis, ready to
plot; ``ComparisonResult.to_markdown`` renders the summary table. Methods that see
a minibatch at a time (online EM, minibatch optax steps) are compared per epoch by
``jaxmix.inference.stochastic.compare_stochastic``.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmix import _validation as v
from jaxmix._progress import check_progress, progress_bar
from jaxmix.inference import initialization as _init
from jaxmix.inference.em import (
    DEFAULT_CHUNK_SIZE,
    EMProgram,
    check_loop_args,
    em_program,
    fit_weights,
)
from jaxmix.inference.gradient import check_optimizer, check_steps, run_gradient
from jaxmix.inference.lower_bound import check_mixture
from jaxmix.protocol import Unconstrained, require

EM = "em"  # the method name of EM in a ComparisonResult


def default_optimizers() -> dict:
    """Fresh default optimizers: adam(0.05), sgd(0.1, momentum=0.9) and lbfgs().

    The step sizes suit data of unit scale. Heavy-ball SGD is stable while
    lr * curvature < 2 (1 + momentum) = 3.8. In the unconstrained
    parameters the curvature of the mean log-likelihood is at most about 1
    for weight logits, exponential log-rates and log-Cholesky diagonals, but
    about w_k / sigma_k^2 for a Gaussian component's mean: lr = 0.1 is stable
    for w_k / sigma_k^2 < 38, i.e. for clusters not much tighter than 0.2 on
    standardized data. For tighter clusters standardize x or pass a smaller rate.
    """
    return {"adam": optax.adam(0.05), "sgd": optax.sgd(0.1, momentum=0.9), "lbfgs": optax.lbfgs()}


class ComparisonResult(NamedTuple):
    """What ``compare_fits`` measured; M methods, S starts, T the longest run.

    Attributes:
      methods: (M,) method names: ``"em"`` first (if run), then the optimizers in order.
      initial_params: the shared initializations, every leaf with a leading (S,) axis.
      params: the final parameters, leaves with leading (M, S) axes.
      history: (M, S, T + 1) mean log-likelihood after t iterations; column 0 is
        the initialization, column ``n_iter`` the final value, NaN after it.
        EM's T is ``max_iter`` (EM may stop early at ``tol``), a gradient
        method's ``n_steps``.
      final_log_likelihood: (M, S) the mean log-likelihood of the final parameters.
      n_iter: (M, S) iterations run.
      best_log_likelihood: the best finite value in ``history`` over all
        methods and starts (NaN if there is none).
      iterations_to_best: (M, S) the first t with history[t'] >= best - atol for every
        t' = t .. n_iter (it stays there, final value included); -1 if the final value is not.
      at_best: (M, S) the final value is within ``atol`` of the best.
      compile_seconds: (M,) trace, lowering and XLA compilation of the method's
        vmapped loop (never taken from a cache).
      run_seconds: (M,) the fastest of ``repeats`` runs of the compiled loop over
        all S starts at once.
      seconds_per_iteration: (M,) run_seconds / the most iterations any start ran.
      atol: the tolerance that defines "at the best optimum".
    """

    methods: tuple
    initial_params: Any
    params: Any
    history: np.ndarray
    final_log_likelihood: np.ndarray
    n_iter: np.ndarray
    best_log_likelihood: float
    iterations_to_best: np.ndarray
    at_best: np.ndarray
    compile_seconds: np.ndarray
    run_seconds: np.ndarray
    seconds_per_iteration: np.ndarray
    atol: float

    @property
    def n_starts(self) -> int:
        return self.history.shape[1]

    @property
    def n_at_best(self) -> np.ndarray:
        """(M,) how many starts each method brought to the best optimum."""
        return np.sum(self.at_best, axis=1)

    @property
    def wall_time(self) -> np.ndarray:
        """(M, T + 1) estimated seconds after t iterations: t * seconds_per_iteration.

        The estimate charges every iteration alike. For L-BFGS it is an average:
        its line search costs more evaluations in some steps than in others.
        """
        t = np.arange(self.history.shape[2])
        return t[None, :] * self.seconds_per_iteration[:, None]

    def plot(self, axes, colors: Mapping | None = None) -> None:
        """Draw the runs on a 2 x 2 array of matplotlib axes (matplotlib needed).

        Top row: mean log-likelihood against iteration (left) and against
        ``wall_time`` (right); bottom row: the gap to the best value found, on a
        log axis, where the rates of convergence show. Each method is its median
        over starts with a 10-90 % band, a start that stopped early (EM at its
        tolerance) held at its final value. ``colors`` maps method names to
        matplotlib colours (default: the colour cycle).
        """
        colors = colors or {}
        lowest = []
        for m, name in enumerate(self.methods):
            curve = _held_at_final(self.history[m], self.n_iter[m])
            with warnings.catch_warnings():  # all-NaN columns past the method's last iteration
                warnings.simplefilter("ignore", RuntimeWarning)
                low, median, high = np.nanpercentile(curve, [10, 50, 90], axis=0)
            lowest.append(np.nanmin(median))
            gap = [np.maximum(self.best_log_likelihood - q, 1e-7) for q in (high, median, low)]
            color = colors.get(name, f"C{m}")
            for row, (lo, mid, hi) in enumerate([(low, median, high), gap]):
                for col, x_values in enumerate([np.arange(curve.shape[1]), self.wall_time[m]]):
                    axes[row, col].plot(x_values, mid, color=color, label=name if row == col == 0 else None)
                    axes[row, col].fill_between(x_values, lo, hi, color=color, alpha=0.2, linewidth=0)
        best = self.best_log_likelihood
        for col, xlabel in enumerate(["iteration", "wall time (s, all starts vmapped)"]):
            axes[0, col].set(xlabel=xlabel, ylabel="mean log-likelihood")
            axes[0, col].set_ylim(min(lowest) - 0.01, best + 0.1 * (best - min(lowest)) + 1e-3)
            axes[1, col].set(xlabel=xlabel, ylabel="best - mean log-likelihood", yscale="log")
            axes[1, col].axhline(self.atol, color="gray", linestyle=":", linewidth=1)
        axes[0, 0].legend(title="median, 10-90 % of starts")

    def to_markdown(self) -> str:
        """One row per method: final log-likelihoods, starts at the best optimum, speed."""
        s = self.n_starts
        header = (f"| method | median final LL | best final LL | starts at best optimum (atol {self.atol:g}) "
                  f"| median iterations to best | ms / iteration ({s} starts) | compile s |")
        lines = [header, "|---" * 7 + "|"]
        for m, name in enumerate(self.methods):
            final = self.final_log_likelihood[m]
            finite = final[np.isfinite(final)]
            median = f"{np.median(finite):.6f}" if finite.size else "nan"
            best = f"{np.max(finite):.6f}" if finite.size else "nan"
            lines.append(
                f"| {name} | {median} | {best} | {self.n_at_best[m]}/{s} "
                f"| {_median_iterations(self.iterations_to_best[m])} "
                f"| {1e3 * self.seconds_per_iteration[m]:.3g} | {self.compile_seconds[m]:.2f} |"
            )
        return "\n".join(lines)


def _held_at_final(history, n_iter):
    """history (S, T + 1) with each start's final value carried on to the longest run's end.

    Columns past the method's own last iteration stay NaN.
    """
    history = history.copy()
    for s, last in enumerate(n_iter):
        history[s, last + 1:n_iter.max() + 1] = history[s, last]
    return history


def _median_iterations(iterations) -> str:
    """The median over starts, a start that never gets there counting as infinitely many."""
    reached = iterations >= 0
    median = np.median(np.where(reached, iterations, np.inf))
    text = "never" if math.isinf(median) else f"{median:g}"
    return text if reached.all() else f"{text} ({int(reached.sum())}/{iterations.size} reach)"


def compare_fits(key, model, x, *, optimizers: Mapping | None = None, n_starts: int = 8, em: bool = True,
                 max_iter: int = 200, tol: float = 1e-7, n_steps: int = 200, init: str = "kmeans++",
                 atol: float = 1e-4, sample_weight=None, chunk_size: int = DEFAULT_CHUNK_SIZE,
                 repeats: int = 1, progress="auto") -> ComparisonResult:
    """Run EM and optax optimizers from the same ``n_starts`` initializations; compare them.

    Start s uses the parameters ``initialize(keys[s], model, x, init)`` with
    ``keys = jax.random.split(key, n_starts)``; every method starts from
    exactly those parameters (gradient methods through the model's
    unconstrained map). Each method runs all starts vmapped in one call: EM
    with ``tol`` and ``max_iter`` (the vmapped ``while_loop`` runs until the
    last start stops, so its time per iteration divides by the largest
    ``n_iter``), each optimizer for ``n_steps`` full-batch steps (as
    ``fit_gradient``). A method is compiled ahead of time (``compile_seconds``),
    then run ``repeats`` times; the fastest run gives its time per iteration
    (one vmapped iteration of all starts; it also carries the loop's fixed
    work, such as EM's final E-step). With ``repeats=1`` the timed run is the
    first execution of the compiled loop, which contains no compilation;
    raise ``repeats`` on a noisy machine.

    Args:
      key: a ``jax.random`` key.
      model: a mixture on the EM protocol; with optimizers, a differentiable
        one (``GaussianMixture``, ``ExponentialMixture``).
      x: data.
      optimizers: names to optax ``GradientTransformation``s (hashable: they
        are static arguments of the compiled loop); None for
        ``default_optimizers()``, ``{}`` for EM alone.
      n_starts: number of shared initializations, >= 1.
      em: whether to run EM (as method ``"em"``).
      max_iter, tol: EM's iteration limit (>= 1) and its stopping tolerance on
        |L_t - L_{t-1}| (>= 0). The default 1e-7 is about the float32 rounding of a
        mean log-likelihood of order one: EM stops when it can no longer measurably
        improve (``fit_em``'s 1e-3 would stop it far from the optimum it is heading to).
      n_steps: optimizer steps, >= 1.
      init: the initialization method of ``model.init``.
      atol: a final value within ``atol`` of the best is "at the best
        optimum"; the iterations to best count until history stays within it.
      sample_weight: optional non-negative (N,) weights.
      chunk_size: rows per chunk of EM's E-step.
      repeats: timed runs per method, >= 1.
      progress: a bar over the methods (``jaxmix._progress``: "auto", True or False).

    Returns:
      A ``ComparisonResult`` of NumPy arrays.

    Examples:
      >>> import jax, optax
      >>> from jaxmix import ExponentialMixture, ExponentialMixtureParams
      >>> from jaxmix.inference.compare import compare_fits
      >>> model = ExponentialMixture(2)
      >>> x, _ = model.sample(jax.random.key(0), ExponentialMixtureParams(
      ...     jax.numpy.array([0.5, 0.5]), jax.numpy.array([1.0, 20.0])), 2000)
      >>> result = compare_fits(jax.random.key(1), model, x, n_starts=4, max_iter=300, n_steps=300,
      ...                       optimizers={"adam": optax.adam(0.05)})
      >>> result.methods, result.history.shape
      (('em', 'adam'), (2, 4, 301))
      >>> result.n_at_best.tolist()
      [4, 4]
    """
    if not isinstance(em, bool):
        raise TypeError(f"em must be a bool, got {type(em).__name__} {em!r}.")
    optimizers = default_optimizers() if optimizers is None else _check_optimizers(optimizers, em)
    if not em and not optimizers:
        raise ValueError("Nothing to compare: em=False and optimizers is empty; run EM or give an optimizer.")
    if optimizers:
        needed_by = "compare_fits with optimizers (pass optimizers={} to run EM alone)"
        check_mixture(model, needed_by)
        require(model, Unconstrained, needed_by)
    _check_key(key)
    n_starts = v.check_positive_int("n_starts", n_starts)
    max_iter, tol = check_loop_args(max_iter, tol)
    n_steps = check_steps("n_steps", n_steps)
    v.check_choice("init", init, _init.METHODS)
    atol = v.check_nonnegative_float("atol", atol)
    chunk_size = v.check_positive_int("chunk_size", chunk_size)
    repeats = v.check_positive_int("repeats", repeats)
    check_progress(progress)
    _, x = model.check(None, x)
    weights = fit_weights(model, x, sample_weight)

    starts = jax.block_until_ready(_initializations(model, key, x, weights, n_starts, init))
    runs = []  # (name, params, history (S, T_m + 1), n_iter (S,), compile s, run s)
    first = jax.tree_util.tree_map(lambda leaf: leaf[0], starts)
    with progress_bar(int(em) + len(optimizers), "compare_fits", progress) as bar:
        if em:
            tol = jnp.asarray(tol, x.dtype)
            lowered = em_program.jitted(model).lower(model=model, params=first, x=x, weights=weights, tol=tol,
                                              max_iter=max_iter, chunk_size=chunk_size)
            out, compile_s, run_s = _compile_and_time(
                lowered, lambda program, p: program(params=p, x=x, weights=weights, tol=tol), starts, repeats)
            runs.append((EM, out.params, _with_final(out.history, out.log_likelihood, out.n_iter),
                         np.asarray(out.n_iter), compile_s, run_s))
            bar.update()
        unused_key = jax.random.key(0)  # full-batch steps draw no minibatches
        for name, optimizer in optimizers.items():
            lowered = run_gradient.lower(unused_key, model, first, x, weights, optimizer, n_steps, None, 1)
            out, compile_s, run_s = _compile_and_time(
                lowered, lambda program, p: program(unused_key, p, x, weights), starts, repeats)
            steps = np.full(n_starts, n_steps)
            runs.append((name, out.params, _with_final(out.history, out.log_likelihood, steps), steps,
                         compile_s, run_s))
            bar.update()
    return summarize_runs(runs, starts, atol)


def _vmapped_initializations(model, key, x, weights, n_starts, init):
    keys = jax.random.split(key, n_starts)
    return jax.vmap(lambda start_key: _init.initial_params(model, start_key, x, weights, init))(keys)


_initializations = EMProgram(_vmapped_initializations, ("model", "n_starts", "init"))


def _compile_and_time(lowered, call, starts, repeats):
    """Each start run by the program a user gets: ``(outputs stacked over starts, compile s, run s)``.

    ``lowered`` is what ``fit_em`` (``em_program``, with its compiler options) or
    ``fit_gradient`` (``run_gradient``) runs for one start, lowered for the first
    start; it is compiled here (the compile time is always the real one), then
    ``call(compiled, params)`` runs the starts one after another, ``repeats``
    times; the run time is the fastest total.
    """
    start = time.perf_counter()
    compiled = lowered.compile()
    compile_seconds = time.perf_counter() - start
    n_starts = jax.tree_util.tree_leaves(starts)[0].shape[0]
    each = [jax.tree_util.tree_map(lambda leaf, s=s: leaf[s], starts) for s in range(n_starts)]
    run_seconds = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        outs = jax.block_until_ready([call(compiled, params) for params in each])
        run_seconds = min(run_seconds, time.perf_counter() - start)
    return jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *outs), compile_seconds, run_seconds


def _with_final(history, final, n_iter):
    """(S, T + 1): the history before each iteration, with the final value at column n_iter."""
    history, final, n_iter = np.asarray(history), np.asarray(final), np.asarray(n_iter)
    curve = np.concatenate([history, np.full((history.shape[0], 1), np.nan, history.dtype)], axis=1)
    curve[np.arange(curve.shape[0]), n_iter] = final
    return curve


def summarize_runs(runs, starts, atol) -> ComparisonResult:
    names, params, curves, n_iter, compile_s, run_s = zip(*runs)
    length = max(curve.shape[1] for curve in curves)
    history = np.stack(
        [np.pad(c, ((0, 0), (0, length - c.shape[1])), constant_values=np.nan) for c in curves])
    final = history[np.arange(len(runs))[:, None], np.arange(history.shape[1])[None, :], np.stack(n_iter)]
    finite = history[np.isfinite(history)]
    best = float(np.max(finite)) if finite.size else math.nan
    with np.errstate(invalid="ignore"):
        reached = history >= best - atol  # NaN compares False
    run_s = np.asarray(run_s)
    return ComparisonResult(
        methods=tuple(names),
        initial_params=jax.device_get(starts),
        params=jax.tree_util.tree_map(lambda *leaves: np.stack(leaves), *jax.device_get(params)),
        history=history,
        final_log_likelihood=final,
        n_iter=np.stack(n_iter),
        best_log_likelihood=best,
        iterations_to_best=_iterations_to_stay(reached, np.stack(n_iter)),
        at_best=final >= best - atol,
        compile_seconds=np.asarray(compile_s),
        run_seconds=run_s,
        seconds_per_iteration=run_s / np.maximum(np.max(np.stack(n_iter), axis=1), 1),
        atol=atol,
    )


def _iterations_to_stay(reached, n_iter):
    """(M, S) the first t with reached[m, s, t'] for all t' = t .. n_iter[m, s]; -1 if none."""
    t = np.arange(reached.shape[2])
    ended = t > n_iter[..., None]  # the NaN padding after the final value
    stays = np.flip(np.logical_and.accumulate(np.flip(reached | ended, axis=2), axis=2), axis=2) & ~ended
    return np.where(stays.any(axis=2), stays.argmax(axis=2), -1)


def _check_optimizers(optimizers, em: bool) -> dict:
    if not isinstance(optimizers, Mapping):
        raise TypeError(f"optimizers must be a mapping of names to optax optimizers, got "
                        f"{type(optimizers).__name__}.")
    for name, optimizer in optimizers.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"optimizers keys must be non-empty strings, got {name!r}.")
        if em and name == EM:
            raise ValueError(f"optimizers must not be named {EM!r}, the name of EM, when em=True.")
        check_optimizer(f"optimizers[{name!r}]", optimizer)
    return dict(optimizers)


def _check_key(key) -> None:
    """A typed key, or a legacy uint32 key of shape (2,)."""
    dtype = getattr(key, "dtype", None)
    typed = dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)
    legacy = dtype == jnp.uint32 and getattr(key, "shape", None) == (2,)
    if not (typed and key.shape == ()) and not legacy:
        raise TypeError(f"key must be a single jax.random key (jax.random.key(seed)), got "
                        f"{type(key).__name__} with dtype {dtype} and shape {getattr(key, 'shape', None)}.")
