"""Restarts: initialize and run EM from several starts in one compiled call."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxmix import _init
from jaxmix import _validation as v
from jaxmix.em import DEFAULT_CHUNK_SIZE, EMProgram, EMResult, check_enough_points, check_loop_args, run_em


class FitResult(NamedTuple):
    """The best of ``n_init`` EM runs, and the final log-likelihood of every run (n_init,)."""

    best: EMResult
    restart_log_likelihoods: jax.Array


def fit(key, model, x, *, n_init: int = 1, init: str = "kmeans", max_iter: int = 100, tol: float = 1e-3,
        sample_weight=None, chunk_size: int = DEFAULT_CHUNK_SIZE) -> FitResult:
    """Fit ``model`` to x by EM from ``n_init`` initializations; keep the best.

    All restarts (initialization and EM) run in one compiled call, where
    scikit-learn runs its ``n_init`` one after another, each with its own
    overhead: vmapped on an accelerator, one start after another
    (``lax.map``) on the CPU, where each then stops at its own convergence
    (``restart_batch``). Each restart's key is split from ``key``, so the
    same key gives the same fit.

    Args:
      key: a ``jax.random`` key.
      model: any family on the EM protocol.
      x: data.
      n_init: number of restarts, >= 1.
      init: ``"kmeans"``, ``"kmeans++"``, ``"random_from_data"`` or ``"random"``.
      max_iter, tol, sample_weight, chunk_size: as in ``fit_em``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxmix import GaussianMixture, fit
      >>> x = jnp.concatenate([jax.random.normal(jax.random.key(1), (200, 2)),
      ...                      jax.random.normal(jax.random.key(2), (200, 2)) + 6.0])
      >>> result = fit(jax.random.key(0), GaussianMixture(2), x, n_init=4)
      >>> bool(result.best.converged), result.restart_log_likelihoods.shape
      (True, (4,))
    """
    static, dynamic = fit_arguments(key, model, x, n_init=n_init, init=init, max_iter=max_iter, tol=tol,
                                    sample_weight=sample_weight, chunk_size=chunk_size)
    return _fit.for_model(model)(*dynamic, **static)


def fit_arguments(key, model, x, *, n_init, init, max_iter, tol, sample_weight, chunk_size):
    """Check ``fit``'s arguments: ``(static, dynamic)`` such that ``fit`` is ``_fit(*dynamic, **static)``.

    Split so that a caller can lower the program (``_fit.for_model(model).lower(*dynamic, **static)``)
    and compile it ahead of time, as ``select_components`` does for many models at once.
    """
    n_init = v.check_positive_int("n_init", n_init)
    v.check_choice("init", init, _init.METHODS)
    max_iter, tol = check_loop_args(max_iter, tol)
    x = model._check_x(x, None)
    chunk_size = v.check_positive_int("chunk_size", chunk_size)
    weights = v.check_sample_weight(sample_weight, x.shape[0])
    check_enough_points(model, x, weights)
    weights = jnp.ones(x.shape[0], x.dtype) if weights is None else weights.astype(x.dtype)
    static = {"model": model, "n_init": n_init, "init": init, "max_iter": max_iter, "chunk_size": chunk_size,
              "batch": restart_batch(n_init)}
    return static, (key, x, weights, jnp.asarray(tol, x.dtype))


def restart_batch(n_init: int) -> int:
    """How many restarts ``fit`` vmaps together: all ``n_init`` on an accelerator, one on the CPU.

    On XLA's CPU backend vmapped restarts were measured slower than one after
    another (benchmarks/bench_em.py): a vmapped ``while_loop`` runs every
    restart until the slowest converges, and batched small matrix products
    run no faster than one restart's at a time on two cores (slower without
    XLA's library fusions, see ``jaxmix.em``).
    """
    return 1 if jax.default_backend() == "cpu" else n_init


def _fit_program(key, x, weights, tol, *, model, n_init, init, max_iter, chunk_size, batch):
    def one_start(start_key):
        params = _init.initial_params(model, start_key, x, weights, init)
        return run_em(model, params, x, weights, tol, max_iter, chunk_size)

    results = jax.lax.map(one_start, jax.random.split(key, n_init), batch_size=None if batch == 1 else batch)
    final = jnp.where(jnp.isnan(results.log_likelihood), -jnp.inf, results.log_likelihood)
    best = jax.tree_util.tree_map(lambda leaf: leaf[jnp.argmax(final)], results)
    return FitResult(best, results.log_likelihood)


_fit = EMProgram(_fit_program, ("model", "n_init", "init", "max_iter", "chunk_size", "batch"))
