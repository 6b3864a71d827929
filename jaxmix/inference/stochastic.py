"""Online EM against minibatch gradient ascent, from the same starts (docs/maths.md sections 4 and 12).

``compare_fits`` compares methods that see all the data at every iteration;
``compare_stochastic`` compares methods that see it a minibatch at a time,
per epoch (a pass over the data) rather than per iteration. It draws
``n_starts`` initializations once, then runs from each:

- online EM (``fit_online``, method ``"online_em"``);
- every optax optimizer on minibatches (the loop of ``fit_gradient`` with
  ``batch_size``), floor(N / batch_size) steps per epoch, as online EM takes,

and records per method and start the full-data mean log-likelihood after
e = 0 .. n_epochs epochs (e = 0 is the shared start) and the steady seconds
per epoch, compilation apart. Everything comes back as NumPy arrays with
leading (method, start) axes, as in ``ComparisonResult``.
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

from jaxmix import _validation as v
from jaxmix._progress import check_progress, progress_bar
from jaxmix.inference.compare import default_optimizers
from jaxmix.inference.em import DEFAULT_CHUNK_SIZE, e_step, fit_weights
from jaxmix.inference.gradient import check_optimizer, run_gradient
from jaxmix.inference.initialization import METHODS, initialize
from jaxmix.inference.lower_bound import check_mixture
from jaxmix.inference.online import DEFAULT_KAPPA, DEFAULT_T0, check_online_args, fit_online
from jaxmix.inference.sources import DEFAULT_BLOCK_ROWS
from jaxmix.protocol import Unconstrained, require

ONLINE_EM = "online_em"  # the method name of online EM in a StochasticComparison
DEFAULT_OPTIMIZERS = ("adam", "sgd")  # of default_optimizers(); L-BFGS's line search needs the full batch


class StochasticComparison(NamedTuple):
    """What ``compare_stochastic`` measured; M methods, S starts, E epochs.

    Attributes:
      methods: (M,) method names: ``"online_em"`` first, then the optimizers in order.
      initial_params: the shared initializations, every leaf with a leading (S,) axis.
      params: the parameters after E epochs, leaves with leading (M, S) axes.
      log_likelihood: (M, S, E + 1) the full-data mean log-likelihood after e
        epochs; column 0 is the start's.
      epoch_seconds: (M, S) seconds per epoch of the method's run of E epochs
        from that start, compilation and the log-likelihoods of this table apart.
      compile_seconds: (M,) the first run's extra seconds (online EM: its first
        E-epoch call minus the steady one; an optimizer: XLA compilation).
      batch_size: rows per minibatch, for every method.
    """

    methods: tuple
    initial_params: Any
    params: Any
    log_likelihood: np.ndarray
    epoch_seconds: np.ndarray
    compile_seconds: np.ndarray
    batch_size: int

    @property
    def n_starts(self) -> int:
        return self.log_likelihood.shape[1]

    @property
    def n_epochs(self) -> int:
        return self.log_likelihood.shape[2] - 1

    @property
    def seconds(self) -> np.ndarray:
        """(M, S, E + 1) seconds after e epochs, e * epoch_seconds (every epoch charged alike)."""
        return np.arange(self.n_epochs + 1) * self.epoch_seconds[..., None]

    @property
    def best_log_likelihood(self) -> float:
        """The best finite value in ``log_likelihood`` over all methods, starts and epochs."""
        finite = self.log_likelihood[np.isfinite(self.log_likelihood)]
        return float(np.max(finite)) if finite.size else math.nan

    def plot(self, axes, colors: Mapping | None = None) -> None:
        """Draw best - L on a log axis against epochs (axes[0]) and seconds (axes[1]); matplotlib needed.

        Each method is its median over starts with a band from the lowest to
        the highest start; ``colors`` maps method names to matplotlib colours.
        The axis starts a decade below the lowest median gap (the best run's
        own gap is 0).
        """
        colors = colors or {}
        gap = self.best_log_likelihood - self.log_likelihood
        epochs = np.arange(self.n_epochs + 1)
        lowest = []
        for m, name in enumerate(self.methods):
            with warnings.catch_warnings():  # a method whose starts all ended non-finite
                warnings.simplefilter("ignore", RuntimeWarning)
                low, median, high = np.nanpercentile(gap[m], [0, 50, 100], axis=0)
            lowest.append(np.min(median[median > 0], initial=np.inf))
            color = colors.get(name, f"C{m}")
            for ax, x_values in zip(axes, [epochs, epochs * np.median(self.epoch_seconds[m])]):
                ax.plot(x_values, median, color=color, marker="o", markersize=3, label=name)
                ax.fill_between(x_values, low, high, color=color, alpha=0.2, linewidth=0)
        for ax, xlabel in zip(axes, ["epoch", "seconds (median per epoch, compilation apart)"]):
            ax.set(xlabel=xlabel, ylabel="best - mean log-likelihood (nats)", yscale="log")
            if np.isfinite(min(lowest)):
                ax.set_ylim(bottom=min(lowest) / 10)
        axes[0].set_xticks(epochs)
        axes[0].legend(title=f"median, all {self.n_starts} starts; batch {self.batch_size}")

    def to_markdown(self) -> str:
        """One row per method: the median log-likelihood after each epoch, the gap to the best, the speed."""
        epochs = range(1, self.n_epochs + 1)
        header = ("| method | " + " | ".join(f"L after {e} ep." for e in epochs)
                  + " | best - final L | s / epoch | compile s |")
        lines = [header, "|---" * (self.n_epochs + 4) + "|"]
        best = self.best_log_likelihood
        for m, name in enumerate(self.methods):
            median = np.median(self.log_likelihood[m], axis=0)
            cells = " | ".join(f"{median[e]:.5f}" for e in epochs)
            lines.append(f"| {name} | {cells} | {best - median[-1]:.2e} | {np.median(self.epoch_seconds[m]):.3g} "
                         f"| {self.compile_seconds[m]:.2f} |")
        return "\n".join(lines)


def compare_stochastic(key, model, x, *, optimizers: Mapping | None = None, n_starts: int = 3,
                       n_epochs: int = 3, batch_size: int | None = None, kappa: float = DEFAULT_KAPPA,
                       t0: float = DEFAULT_T0, init: str = "kmeans++", sample_weight=None,
                       progress="auto") -> StochasticComparison:
    """Run online EM and minibatch optax optimizers from the same ``n_starts`` starts; compare them per epoch.

    With ``start_key, order_key = jax.random.split(key)``, start s is
    ``initialize(jax.random.split(start_key, n_starts)[s], model, x, init)``
    and every method from it draws its minibatches with
    ``jax.random.split(order_key, n_starts)[s]``. Online EM's log-likelihood
    after e epochs is that of ``fit_online(..., n_epochs=e)`` (the first e
    epochs of a longer run are the same), so it runs E (E + 1) / 2 epochs per
    start and is timed on the E-epoch run; an optimizer runs E epochs once,
    scoring the full data at each epoch's start and at the end, and those E + 1
    scorings (timed apart: the same compiled loop run for no steps) are
    subtracted from its time. The starts run one after another.

    Args:
      key: a ``jax.random`` key.
      model: a differentiable mixture (``GaussianMixture``, ``ExponentialMixture``).
      x: data, (N, D) or (N,), in memory.
      optimizers: names to optax ``GradientTransformation``s; None for the
        ``"adam"`` and ``"sgd"`` of ``default_optimizers()``, ``{}`` for online EM alone.
      n_starts: shared initializations, >= 1.
      n_epochs: passes over the data E, >= 1.
      batch_size: rows per minibatch (None: ``fit_online``'s default).
      kappa, t0: online EM's step sizes (``fit_online``).
      init: the initialization method (``initialize``).
      sample_weight: optional non-negative (N,) weights.
      progress: a bar over starts and methods (``jaxmix._progress``).

    Returns:
      A ``StochasticComparison`` of NumPy arrays.

    Examples:
      >>> import jax, jax.numpy as jnp, optax
      >>> from jaxmix import ExponentialMixture, ExponentialMixtureParams
      >>> from jaxmix.inference.stochastic import compare_stochastic
      >>> model = ExponentialMixture(2)
      >>> x, _ = model.sample(jax.random.key(0), ExponentialMixtureParams(
      ...     jnp.array([0.5, 0.5]), jnp.array([1.0, 20.0])), 4000)
      >>> result = compare_stochastic(jax.random.key(1), model, x, n_starts=2, n_epochs=1, batch_size=500,
      ...                             optimizers={"adam": optax.adam(0.05)})
      >>> result.methods, result.log_likelihood.shape
      (('online_em', 'adam'), (2, 2, 2))
    """
    if optimizers is None:
        optimizers = {name: default_optimizers()[name] for name in DEFAULT_OPTIMIZERS}
    optimizers = _check_optimizers(optimizers)
    check_mixture(model, "compare_stochastic")
    if optimizers:
        require(model, Unconstrained, "compare_stochastic with optimizers (pass optimizers={} for online EM alone)")
    n_starts = v.check_positive_int("n_starts", n_starts)
    v.check_choice("init", init, METHODS)
    check_progress(progress)
    _, x = model.check(None, x)
    batch_size, n_epochs, kappa, t0, _, _ = check_online_args(x, batch_size, n_epochs, kappa, t0,
                                                             DEFAULT_CHUNK_SIZE, DEFAULT_BLOCK_ROWS)
    weights = fit_weights(model, x, sample_weight)
    start_key, order_key = jax.random.split(key)
    starts = [jax.tree_util.tree_map(lambda a: jnp.asarray(a, x.dtype), initialize(k, model, x, init, sample_weight))
              for k in jax.random.split(start_key, n_starts)]
    order_keys = jax.random.split(order_key, n_starts)
    online = _OnlineEM(model, x, sample_weight, batch_size, n_epochs, kappa, t0)
    if optimizers:
        scoring = _scoring_seconds(model, x, weights, next(iter(optimizers.values())), order_keys[0], starts[0])
    gradient = {name: _MinibatchGradient(model, x, weights, optimizer, batch_size, n_epochs, order_keys[0], starts[0],
                                         scoring) for name, optimizer in optimizers.items()}
    runs = {ONLINE_EM: []} | {name: [] for name in optimizers}  # per method: (params, curve, epoch s) per start
    with progress_bar(n_starts * len(runs), "compare_stochastic", progress) as bar:
        for order, params in zip(order_keys, starts):
            runs[ONLINE_EM].append(online(order, params))
            bar.update()
            for name in optimizers:
                runs[name].append(gradient[name](order, params))
                bar.update()
    stack = lambda *leaves: np.stack(leaves)
    return StochasticComparison(
        methods=tuple(runs),
        initial_params=jax.tree_util.tree_map(stack, *jax.device_get(starts)),
        params=jax.tree_util.tree_map(stack, *[jax.tree_util.tree_map(stack, *jax.device_get([r[0] for r in rs]))
                                               for rs in runs.values()]),
        log_likelihood=np.array([[r[1] for r in rs] for rs in runs.values()]),
        epoch_seconds=np.array([[r[2] for r in rs] for rs in runs.values()]),
        compile_seconds=np.array([online.compile_seconds] + [g.compile_seconds for g in gradient.values()]),
        batch_size=batch_size,
    )


class _OnlineEM:
    """Online EM from one start: ``(params after E epochs, L after 0 .. E epochs, seconds per epoch)``."""

    def __init__(self, model, x, sample_weight, batch_size, n_epochs, kappa, t0):
        self.model, self.x, self.sample_weight, self.n_epochs = model, x, sample_weight, n_epochs
        self.settings = dict(batch_size=batch_size, kappa=kappa, t0=t0, sample_weight=sample_weight)
        self.compile_seconds = None  # measured on the first start

    def fit(self, key, params, n_epochs):
        seconds, result = _timed(lambda: fit_online(key, self.model, params, self.x, n_epochs=n_epochs,
                                                    **self.settings))
        return result.params, seconds

    def score(self, params) -> float:
        return float(e_step(self.model, params, self.x, self.sample_weight)[1])

    def __call__(self, key, params):
        if self.compile_seconds is None:  # compile the E-epoch run (its history's length is static)
            first = self.fit(key, params, self.n_epochs)[1]
        curve = [self.score(params)] + [self.score(self.fit(key, params, e)[0]) for e in range(1, self.n_epochs)]
        final, seconds = self.fit(key, params, self.n_epochs)
        if self.compile_seconds is None:
            self.compile_seconds = max(first - seconds, 0.0)
        return final, curve + [self.score(final)], seconds / self.n_epochs


class _MinibatchGradient:
    """One optimizer on minibatches from one start, by ``fit_gradient``'s compiled loop."""

    def __init__(self, model, x, weights, optimizer, batch_size, n_epochs, key, params, scoring_seconds):
        self.x, self.weights, self.n_epochs, self.scoring_seconds = x, weights, n_epochs, scoring_seconds
        self.n_batches = x.shape[0] // batch_size
        lowered = run_gradient.lower(key, model, params, x, weights, optimizer, n_epochs * self.n_batches,
                                     batch_size, self.n_batches)
        start = time.perf_counter()
        self.program = lowered.compile()
        self.compile_seconds = time.perf_counter() - start

    def __call__(self, key, params):
        seconds, result = _timed(lambda: self.program(key, params, self.x, self.weights))
        curve = list(np.asarray(result.history)[::self.n_batches]) + [float(result.log_likelihood)]
        seconds = max(seconds - (self.n_epochs + 1) * self.scoring_seconds, 0.0)
        return result.params, curve, seconds / self.n_epochs


def _scoring_seconds(model, x, weights, optimizer, key, params) -> float:
    """Seconds of one full-data scoring in ``fit_gradient``'s loop: its program of no steps (median of 3)."""
    program = run_gradient.lower(key, model, params, x, weights, optimizer, 0, None, 1).compile()
    return float(np.median([_timed(lambda: program(key, params, x, weights))[0] for _ in range(3)]))


def _timed(call):
    """``(wall seconds of call() with its result ready, the result)``."""
    start = time.perf_counter()
    result = jax.block_until_ready(call())
    return time.perf_counter() - start, result


def _check_optimizers(optimizers) -> dict:
    if not isinstance(optimizers, Mapping):
        raise TypeError(f"optimizers must be a mapping of names to optax optimizers, got "
                        f"{type(optimizers).__name__}.")
    for name, optimizer in optimizers.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"optimizers keys must be non-empty strings, got {name!r}.")
        if name == ONLINE_EM:
            raise ValueError(f"optimizers must not be named {ONLINE_EM!r}, the name of online EM.")
        check_optimizer(f"optimizers[{name!r}]", optimizer)
    return dict(optimizers)
