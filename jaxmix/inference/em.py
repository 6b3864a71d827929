"""The EM driver, written once against the family protocol (``jaxmix.protocol``; docs/maths.md section 11).

One iteration is

    stats_t, L_t = summarize(theta_t) over every block of rows;   theta_{t+1} = m_step(stats_t)

where L_t is the weighted mean log-likelihood of theta_t (for k-means and
fuzzy c-means, the negative mean objective, so "higher is better" holds for
every family). EM stops when |L_t - L_{t-1}| < tol s, scikit-learn's rule for
mixtures (s = 1: log-likelihoods are in nats whatever the data's scale); a
family whose objective scales with the data's squared units (k-means, fuzzy
c-means) declares s = the mean per-feature variance of x
(``stopping_tolerance``), so the rule does not change when the data are rescaled.
"""

from __future__ import annotations

import functools
import os
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmix import _validation as v
from jaxmix.protocol import Family, FitCheck, combine_stats, require, stopping_tolerance, summed

DEFAULT_CHUNK_SIZE = 32768  # rows per E-step chunk; see fit_em (benchmarks/README.md, "Issue 17")


class EMResult(NamedTuple):
    """The outcome of ``fit_em``.

    Attributes:
      params: the parameters after the last M-step.
      log_likelihood: the mean log-likelihood of ``params`` (one more E-step).
      history: (max_iter,) L_t at each iteration, NaN past the last.
      n_iter: the number of E/M iterations run.
      converged: True only if |L_t - L_{t-1}| < tol was met.
    """

    params: Any
    log_likelihood: jax.Array
    history: jax.Array
    n_iter: jax.Array
    converged: jax.Array


class ConvergenceWarning(UserWarning):
    """EM stopped at ``max_iter`` before the change in its objective fell below the tolerance.

    Silence it with ``warnings.simplefilter("ignore", jaxmix.ConvergenceWarning)``.
    """


def fit_weights(model, x, sample_weight, device=None, *, whole_data: bool = True):
    """Checked per-point weights (N,) of a fit, scaled to mean one (ones for None, made on ``device``,
    a device or sharding), with at least n_components positive; the family's ``check_fit`` (``FitCheck``)
    is asked too when x is the whole data (not a source's sample).

    Scaling once makes the fit independent of the weights' scale (the
    M-step's 10 eps guards are then in units of points).
    """
    weights = v.check_sample_weight(sample_weight, x.shape[0], normalize=True)
    check_enough_points(model, x, weights)
    if whole_data and isinstance(model, FitCheck):
        model.check_fit(x, weights)
    if weights is None:
        return jax.device_put(np.ones(x.shape[0], x.dtype), device)  # made on the host: no program to compile
    return weights.astype(x.dtype)


def checked_result(model, result: EMResult, x, weights, tol: float, what: str = "EM"):
    """A concrete fit's result, checked: ValueError if it is not finite; ConvergenceWarning if it
    stopped at ``max_iter`` short of the tolerance (not for ``tol=0``, which asks for max_iter)."""
    if not v.is_concrete(result):
        return result
    finite = all(np.all(np.isfinite(np.asarray(leaf))) for leaf in jax.tree_util.tree_leaves(
        (result.params, result.log_likelihood)))
    if not finite:
        raise ValueError(
            f"{what} ended with non-finite parameters or log-likelihood: use fewer components or rescale the "
            "data; for a Gaussian mixture, a covariance became singular (a constant feature, or a component "
            "holding one point or duplicated points): increase reg_covar.")
    if tol > 0 and not bool(result.converged):
        n_iter, history = int(result.n_iter), np.asarray(result.history)
        change = abs(history[n_iter - 1] - history[n_iter - 2]) if n_iter >= 2 else float("nan")
        scaled = float(stopping_tolerance(model, tol, x, weights))
        warnings.warn(ConvergenceWarning(
            f"{what} did not converge in max_iter={n_iter} iterations: the last change in the objective "
            f"was {change:.3g}, above the tolerance {scaled:.3g}; increase max_iter or tol."), stacklevel=3)
    return result


def check_loop_args(max_iter, tol):
    return (v.check_positive_int("max_iter", max_iter, maximum=v.MAX_ITERATIONS),
            v.check_nonnegative_float("tol", tol))


def check_enough_points(model, x, sample_weight=None) -> None:
    """EM needs at least as many points (with positive weight) as components."""
    k = model.n_components
    if sample_weight is not None and v.is_spread(sample_weight):
        n = int(jnp.sum(sample_weight > 0))  # on the devices holding the weights
    else:
        weights = None if sample_weight is None else v.host_values(sample_weight)
        n = x.shape[0] if weights is None else int(np.sum(weights > 0))
    if n < k:
        raise ValueError(
            f"n_components={k} needs at least {k} data points with positive weight, got {n}; "
            "use fewer components or more data."
        )


def e_step(model, params, x, sample_weight=None, chunk_size: int = DEFAULT_CHUNK_SIZE):
    """One E-step on all of x: ``(stats, weighted mean log-likelihood)``.

    ``stats`` are the family's additive sufficient statistics, summed over
    blocks of ``chunk_size`` rows (``combine_stats``); ``model.m_step(stats)``
    is the next EM iterate.
    """
    require(model, Family, "e_step")
    params, x = model.check(params, x)
    weights = v.check_sample_weight(sample_weight, x.shape[0])  # a block may hold fewer points than K
    weights = jnp.ones(x.shape[0], x.dtype) if weights is None else weights.astype(x.dtype)
    chunk_size = v.check_positive_int("chunk_size", chunk_size)
    stats, total = summarize_rows(model, params, x, weights, chunk_size)
    return stats, total / jnp.sum(weights)


def to_chunks(x, weights, chunk_size):
    """Split x (N, D) and weights (N,) into B blocks of rows, (B, n, D) and (B, n).

    B = ceil(N / chunk_size) blocks of n = ceil(N / B) <= chunk_size rows: fewer than B padded
    rows, copies of the first with weight zero.
    """
    n_chunks = -(-x.shape[0] // chunk_size)
    n = -(-x.shape[0] // n_chunks)
    pad = n_chunks * n - x.shape[0]
    x = jnp.concatenate([x, jnp.broadcast_to(x[:1], (pad, x.shape[1]))])
    weights = jnp.concatenate([weights, jnp.zeros(pad, weights.dtype)])
    return x.reshape(-1, n, x.shape[1]), weights.reshape(-1, n)


def chunked(x, weights, chunk_size, rows=None):
    """``(xb, wb, accumulate)``: the blocks of ``to_chunks`` and the E-step over them, or with ``rows``
    (a ``RowShards``) each device's blocks of its own rows and ``RowShards.accumulate``."""
    if rows is None:
        return *to_chunks(x, weights, chunk_size), accumulate
    return *rows.chunks(x, weights, chunk_size), rows.accumulate


def accumulate(model, params, xb, wb):
    """Sum ``model.summarize`` over blocks: ``(combined stats, sum_i w_i log p(x_i))`` (``summed``)."""
    return summed(lambda b: model.summarize(params, xb[b], wb[b]), xb.shape[0])


# XLA's CPU backend (jaxlib 0.10) hands matrix products, and fusions of elementwise ops and
# reductions around them, to YNNPACK "library fusions". For EM the fused reductions were
# measured slow (benchmarks/README.md, "Measurements the code relies on"), so EM programs hand
# XLA's library only individual matrix products. A family may add options of its own
# (``compiler_options``, ``jaxmix.protocol``).
EM_COMPILER_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"}


def em_compiler_options(model=None) -> dict | None:
    """The XLA options of ``model``'s EM programs: ``EM_COMPILER_OPTIONS`` with the family's own
    ``compiler_options`` over them (optional; ``jaxmix.protocol``), as far as this jaxlib knows them
    (each set checked once): the whole set, else ``EM_COMPILER_OPTIONS`` alone, else None.

    Opt out (XLA's own defaults for every EM program) by setting the environment
    variable ``JAXMIX_EM_COMPILER_OPTIONS=0``.
    """
    if os.environ.get("JAXMIX_EM_COMPILER_OPTIONS", "1") == "0":
        return None
    merged = {**EM_COMPILER_OPTIONS, **getattr(model, "compiler_options", {})}
    for options in (merged, EM_COMPILER_OPTIONS):
        if _known(tuple(sorted(options.items()))):
            return options
    return None


@functools.cache
def _known(options: tuple) -> bool:
    """Whether this jaxlib compiles a program with ``options`` ((name, value) pairs)."""
    try:
        jax.jit(lambda a: a, compiler_options=dict(options)).lower(0.0).compile()
    except jax.errors.JaxRuntimeError:
        return False
    return True


class EMProgram:
    """``jax.jit(fn, static_argnames=..., compiler_options=em_compiler_options(model))``, per option set.

    Built at first call, because the option check compiles a tiny program, which
    should wait until EM first runs (not happen at import). Called under a
    caller's own jit, where JAX accepts no compiler options, it is a plain
    nested jit and the caller's options apply.
    """

    def __init__(self, fn, static_argnames):
        self.fn, self.static_argnames = fn, static_argnames
        self.nested = jax.jit(fn, static_argnames=static_argnames)
        self._programs = {}

    def jitted(self, model):
        """The jitted function with ``model``'s EM compiler options."""
        options = em_compiler_options(model)
        key = None if options is None else tuple(sorted(options.items()))
        if key not in self._programs:
            self._programs[key] = jax.jit(self.fn, static_argnames=self.static_argnames, compiler_options=options)
        return self._programs[key]

    def __call__(self, *args, **kwargs):
        if not v.is_concrete(args, kwargs):
            return self.nested(*args, **kwargs)
        return self.jitted(kwargs["model"] if "model" in kwargs else args[0])(*args, **kwargs)


def _fit_em_program(model, params, x, weights, tol, max_iter, chunk_size, rows=None):
    result = run_em(model, params, x, weights, tol, max_iter, chunk_size, rows)
    return result if rows is None else rows.replicated(result)


em_program = EMProgram(_fit_em_program, ("model", "max_iter", "chunk_size", "rows"))


def _summarize_rows(model, params, x, weights, chunk_size):
    return accumulate(model, params, *to_chunks(x, weights, chunk_size))


summarize_rows = EMProgram(_summarize_rows, ("model", "chunk_size"))  # the E-step of rows x, compiled as EM is


class EMState(NamedTuple):
    """EM's loop state: iteration i, parameters theta_i, the previous L, the history, converged, final."""

    iteration: jax.Array
    params: Any
    previous: jax.Array
    history: jax.Array
    converged: jax.Array
    final: jax.Array


def initial_state(params, max_iter: int, dtype) -> EMState:
    return EMState(jnp.array(0), params, jnp.array(-jnp.inf, dtype), jnp.full((max_iter,), jnp.nan, dtype),
                   jnp.array(False), jnp.array(False))


def em_update(model, state: EMState, stats, log_likelihood, tol, max_iter: int) -> EMState:
    """One EM iteration from the E-step of ``state.params``: its statistics and mean log-likelihood L_i.

    Once EM has stopped (converged, or max_iter iterations run), a further call
    only marks the state final: that E-step scored the returned parameters, and
    they and the history are kept.
    """
    i, params, previous, history, converged, _ = state
    final = converged | (i == max_iter)
    params = jax.tree_util.tree_map(lambda kept, new: jnp.where(final, kept, new), params, model.m_step(stats))
    history = jnp.where(final, history, history.at[jnp.minimum(i, max_iter - 1)].set(log_likelihood))
    converged = converged | (~final & (jnp.abs(log_likelihood - previous) < tol))
    return EMState(jnp.where(final, i, i + 1), params, log_likelihood, history, converged, final)


def state_result(state: EMState) -> EMResult:
    return EMResult(state.params, state.previous, state.history, state.iteration, state.converged)


def run_em(model, params, x, weights, tol, max_iter, chunk_size=DEFAULT_CHUNK_SIZE, rows=None) -> EMResult:
    """The unchecked EM loop (one ``lax.while_loop`` of ``em_update``); jit it, vmap it over starts.

    Its last pass is the final E-step, which scores the returned parameters,
    so the compiled program holds one copy of the E-step, not a second one
    after the loop (10-15 % less compile time for a full-covariance mixture).
    With ``rows`` (``jaxmix.inference.sharding.RowShards``: x's rows spread over
    devices) each device chunks and summarizes its own rows (``chunked``).
    """
    tol = stopping_tolerance(model, tol, x, weights)
    xb, wb, summarize = chunked(x, weights, chunk_size, rows)
    total_weight = jnp.sum(weights)

    def body(state):
        stats, total = summarize(model, state.params, xb, wb)
        return em_update(model, state, stats, total / total_weight, tol, max_iter)

    state = jax.lax.while_loop(lambda state: ~state.final, body, initial_state(params, max_iter, x.dtype))
    return state_result(state)


@jax.jit
def add_summaries(a, b):
    """``(combine_stats(stats_a, stats_b), total_a + total_b)``."""
    return combine_stats(a[0], b[0]), a[1] + b[1]


@functools.partial(jax.jit, static_argnames=("model", "rows"))
def accumulate_rows(model, params, xb, wb, rows=None):
    """The E-step over the blocks of ``chunked`` (each device's own with ``rows``), compiled."""
    return (accumulate if rows is None else rows.accumulate)(model, params, xb, wb)


_em_update = jax.jit(em_update, static_argnames=("model", "max_iter"))


def run_em_steps(model, params, data_pass, total_weight, tol, max_iter: int, checkpoint=None) -> EMResult:
    """EM one iteration per call, ``data_pass(params, first) -> (stats, total)`` giving each E-step:
    the loop of ``run_em`` (same ``em_update``) driven from Python, for streamed data and checkpoints."""
    dtype = jax.tree_util.tree_leaves(params)[0].dtype
    state = initial_state(params, max_iter, dtype)
    if checkpoint is not None:
        state = checkpoint.resume(state)
    tol, total_weight = jnp.asarray(tol, dtype), jnp.asarray(total_weight, dtype)
    first = True
    while not bool(state.final):
        stats, total = data_pass(state.params, first)
        first = False
        state = _em_update(model, state, stats, total / total_weight, tol, max_iter)
        if checkpoint is not None:
            checkpoint.save(state, None if bool(state.final) else int(state.iteration))
    return state_result(state)
