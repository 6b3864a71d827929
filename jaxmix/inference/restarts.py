"""Restarts: initialize and run EM from several starts; keep the best."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmix import _validation as v
from jaxmix.inference import initialization as _init
from jaxmix.inference.driver import fit_em_source
from jaxmix.inference.em import (
    DEFAULT_CHUNK_SIZE,
    EMProgram,
    EMResult,
    check_loop_args,
    checked_result,
    run_em,
)
from jaxmix.inference.sharding import fit_data, row_shards
from jaxmix.inference.sources import DEFAULT_BLOCK_ROWS, RowSource, is_source
from jaxmix.inference.threads import run_side_by_side, usable_cores
from jaxmix.protocol import Family, require


class FitResult(NamedTuple):
    """The best of ``n_init`` EM runs, and the final log-likelihood of every run (n_init,)."""

    best: EMResult
    restart_log_likelihoods: jax.Array

    @property
    def params(self):
        """The best restart's fitted parameters (``best.params``), as ``jaxmix.vae.fit``'s result has them."""
        return self.best.params

    @property
    def history(self):
        """The best restart's log-likelihood history (``best.history``)."""
        return self.best.history


def fit(key, model, x, *, n_init: int = 1, init: str = "kmeans", max_iter: int = 100, tol: float = 1e-3,
        sample_weight=None, chunk_size: int = DEFAULT_CHUNK_SIZE, restarts: str = "auto",
        block_rows: int = DEFAULT_BLOCK_ROWS) -> FitResult:
    """Fit ``model`` to x by EM from ``n_init`` initializations; keep the best.

    Each restart (initialization and EM) is one start of one compiled
    program. On an accelerator all ``n_init`` run vmapped in one call. On a
    CPU they run side by side, one per core, each stopping at its own
    convergence: XLA keeps about one core busy with one restart of a
    moderate problem, and a vmapped ``while_loop`` would run every restart
    until the slowest converges. Small problems, where starting threads
    costs more than a restart, run one after another in one call
    (``restart_plan``). Restart i starts from
    ``jax.random.split(key, n_init)[i]``, so the same key gives the same fit
    on every path.

    Args:
      key: a ``jax.random`` key.
      model: any family on the EM protocol.
      x: data: an array, or a source (``fit_em``), streamed: each restart
        initializes from a sample of at most ``SAMPLE_ROWS`` rows (all rows
        when they fit: then the fit equals the fit of the same data in
        memory) and runs EM over all of it, one restart after another.
      n_init: number of restarts, >= 1.
      init: ``"kmeans"``, ``"kmeans++"``, ``"random_from_data"`` or ``"random"``.
      max_iter, tol, sample_weight, chunk_size, block_rows: as in ``fit_em``.
      restarts: how the restarts run: ``"vmap"`` (all in one call, vmapped),
        ``"sequential"`` (one call, one after another), ``"threads"`` (a
        single-start program on a thread per CPU core; a program holding a
        LAPACK call runs its starts one after another, ``threads``), or
        ``"auto"`` (``restart_plan``). Every strategy gives the same result.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxmix import GaussianMixture, fit
      >>> x = jnp.concatenate([jax.random.normal(jax.random.key(1), (200, 2)),
      ...                      jax.random.normal(jax.random.key(2), (200, 2)) + 6.0])
      >>> result = fit(jax.random.key(0), GaussianMixture(2), x, n_init=4)
      >>> bool(result.best.converged), result.restart_log_likelihoods.shape
      (True, (4,))
    """
    if is_source(x):
        return fit_source(key, model, RowSource(x), n_init=n_init, init=init, max_iter=max_iter, tol=tol,
                          sample_weight=sample_weight, chunk_size=chunk_size, block_rows=block_rows)
    static, dynamic = fit_arguments(key, model, x, n_init=n_init, init=init, max_iter=max_iter, tol=tol,
                                    sample_weight=sample_weight, chunk_size=chunk_size, restarts=restarts)
    result = run_restarts(static, dynamic, restarts)
    _, x, weights, _ = dynamic
    checked_result(model, result.best, x, weights, tol, what="EM (the best restart)")
    return result


def fit_source(key, model, source, *, n_init, init, max_iter, tol, sample_weight, chunk_size, block_rows):
    """``fit`` on a source: each restart starts from its sample (``initialize``) and streams EM
    (``fit_em``); the same keys as in memory."""
    n_init = v.check_positive_int("n_init", n_init)
    v.check_choice("init", init, _init.METHODS)
    runs = [fit_em_source(model, _init.initialize(start, model, source.data, init, sample_weight), source,
                          max_iter=max_iter, tol=tol, sample_weight=sample_weight, chunk_size=chunk_size,
                          block_rows=block_rows, checkpoint=None, checkpoint_every=1, what="EM (a restart)")
            for start in jax.random.split(key, n_init)]
    final = np.stack([np.asarray(run.log_likelihood) for run in runs])
    return FitResult(runs[int(best_index(final))], jax.device_put(final))


def fit_arguments(key, model, x, *, n_init, init, max_iter, tol, sample_weight, chunk_size, restarts="auto"):
    """Check ``fit``'s arguments: ``(static, dynamic)``, the arguments of ``fit_program(*dynamic, **static)``.

    ``dynamic`` starts with the restarts' keys (n_init,). Split so that a
    caller can lower the program (``fit_program.jitted(static["model"]).lower(*dynamic, **static)``)
    and compile it ahead of time, as ``select_components`` does for many
    models at once.
    """
    n_init = v.check_positive_int("n_init", n_init)
    v.check_choice("init", init, _init.METHODS)
    max_iter, tol = check_loop_args(max_iter, tol)
    require(model, Family, "fit")
    rows = row_shards(x)
    _, x = model.check(None, x)
    chunk_size = v.check_positive_int("chunk_size", chunk_size)
    x, weights = fit_data(model, x, sample_weight, rows)
    v.check_choice("restarts", restarts, RESTARTS)
    batch, _ = restart_plan(n_init, x.size * model.n_components, restarts)
    static = {"model": model, "init": init, "max_iter": max_iter, "chunk_size": chunk_size, "batch": batch,
              "rows": rows}
    return static, (jax.random.split(key, n_init), x, weights, jax.device_put(np.asarray(tol, x.dtype)))


# Below this much work per E-step (N * D * K), restarts on a CPU run one after another in one
# call, where a thread per core was measured slower (benchmarks/README.md, "Measurements the code relies on").
THREADED_RESTARTS_MIN_WORK = 2**18


RESTARTS = ("auto", "vmap", "sequential", "threads")


def restart_plan(n_init: int, work: int, restarts: str = "auto") -> tuple[int, int]:
    """``(batch, workers)``: restarts vmapped together in one call, and calls run side by side.

    ``work`` is N * D * K, the size of one E-step. On an accelerator
    ``(n_init, 1)``: one call, every restart vmapped. On the CPU
    ``(1, min(n_init, cores))``: a single-start program run on a thread per
    core, or ``(1, 1)``, one call running the restarts one after another,
    for work below ``THREADED_RESTARTS_MIN_WORK``, where a thread's start
    and a call's dispatch cost more than a restart. XLA's CPU backend keeps
    about one core busy with one restart of a moderate problem, batched small
    matrix products run no faster than one restart's at a time, and a
    vmapped ``while_loop`` runs every restart until the slowest converges
    (benchmarks/README.md, "Measurements the code relies on").
    """
    if restarts == "vmap" or (restarts == "auto" and jax.default_backend() != "cpu"):
        return n_init, 1
    if restarts == "threads":
        return 1, min(n_init, usable_cores())
    if restarts == "sequential":
        return 1, 1
    if work < THREADED_RESTARTS_MIN_WORK:
        return 1, 1
    return 1, min(n_init, usable_cores())


def run_restarts(static, dynamic, restarts: str = "auto") -> FitResult:
    """``fit`` from checked arguments: the program once, or one call per restart on a thread per core.

    Inside a caller's jit (traced arguments) the program runs its restarts
    one after another, as it does on rows spread over devices (``jaxmix.inference.sharding``), whose
    programs' collectives must not interleave. The single-start program is lowered and compiled here,
    under the caller's JAX configuration (x64 included), before any thread runs it;
    a program that may not run beside another (``jaxmix.inference.threads``: a full or tied
    covariance's LAPACK kernels) runs its starts one call after another.
    """
    keys, *data = dynamic
    _, workers = restart_plan(keys.shape[0], data[0].size * static["model"].n_components, restarts)
    if workers == 1 or not v.is_concrete(dynamic) or static["rows"] is not None:
        return fit_program(*dynamic, **static)
    # Each restart's key, cut on the host (slicing the key array would compile a program).
    key_data, impl = np.asarray(jax.random.key_data(keys)), jax.random.key_impl(keys)
    starts = [jax.random.wrap_key_data(key_data[i:i + 1], impl=impl) for i in range(keys.shape[0])]
    program = fit_program.jitted(static["model"]).lower(starts[0], *data, **static).compile()
    fits = run_side_by_side([(program, (start, *data)) for start in starts], workers)
    final = np.concatenate([np.asarray(single.restart_log_likelihoods) for single in fits])
    return FitResult(fits[int(best_index(final))].best, jax.device_put(final))


def best_index(log_likelihoods):
    """The index of the highest final log-likelihood; NaN (a failed run) counts as the worst. On the
    host for a NumPy array (no program to compile), traced for a JAX one."""
    xp = np if isinstance(log_likelihoods, np.ndarray) else jnp
    return xp.argmax(xp.where(xp.isnan(log_likelihoods), -xp.inf, log_likelihoods))


def _fit_program(keys, x, weights, tol, *, model, init, max_iter, chunk_size, batch, rows=None):
    """Initialization and EM from each of the keys (S,); the best run and every run's log-likelihood."""

    def one_start(start_key):
        params = _init.initial_params(model, start_key, x, weights, init, rows)
        return run_em(model, params, x, weights, tol, max_iter, chunk_size, rows)

    runs = jax.lax.map(one_start, keys, batch_size=None if batch == 1 else batch)
    best = jax.tree_util.tree_map(lambda leaf: leaf[best_index(runs.log_likelihood)], runs)
    result = FitResult(best, runs.log_likelihood)
    return result if rows is None else rows.replicated(result)


fit_program = EMProgram(_fit_program, ("model", "init", "max_iter", "chunk_size", "batch", "rows"))
