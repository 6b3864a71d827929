"""``fit_em``: EM from given parameters, on an array, a streamed source, or with checkpoints.

In memory, the whole fit is one compiled program (``em_program``). On a
source (``jaxmix.inference.sources``) or with a checkpoint, the same
iteration (``em_update``) runs one call per iteration (``run_em_steps``), each
E-step a pass over the blocks of rows; docs/maths.md section 11.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxmix import _validation as v
from jaxmix.inference.checkpoint import checkpoint_for
from jaxmix.inference.em import (
    DEFAULT_CHUNK_SIZE,
    EMResult,
    accumulate_rows,
    add_summaries,
    check_enough_points,
    check_loop_args,
    checked_result,
    chunked,
    em_program,
    fit_weights,
    run_em_steps,
    summarize_rows,
)
from jaxmix.inference.sharding import fit_data, row_shards
from jaxmix.inference.sources import DEFAULT_BLOCK_ROWS, RowSource, check_rows, is_source, padded, source_weights
from jaxmix.protocol import Family, require, stopping_tolerance


def fit_em(model, params, x, *, max_iter: int = 100, tol: float = 1e-3, sample_weight=None,
           chunk_size: int = DEFAULT_CHUNK_SIZE, block_rows: int = DEFAULT_BLOCK_ROWS, checkpoint=None,
           checkpoint_every: int = 10) -> EMResult:
    """Run EM from ``params`` until the mean log-likelihood changes by less than ``tol``.

    Args:
      model: a family on the EM protocol (hashable; the jit's static argument).
      params: the initial parameters.
      x: data, (N, D) (or (N,) for the exponential mixture): an array, or a
        source that stays where it is (a memmap ``np.load(path, mmap_mode="r")``,
        an h5py or zarr dataset, a dask array: ``jaxmix.inference.sources``),
        streamed in blocks of ``block_rows`` rows per pass and checked as the
        blocks go by; the fit holds no copy of it.
      max_iter: the largest number of iterations, >= 1 (also the history length).
      tol: stopping tolerance on |L_t - L_{t-1}|, >= 0, in nats for mixtures and
        relative to the data's mean per-feature variance for k-means and fuzzy
        c-means; ``tol=0`` runs exactly ``max_iter`` iterations. A fit that
        stops at ``max_iter`` short of it warns (``ConvergenceWarning``); one
        that ends non-finite raises ``ValueError``.
      sample_weight: optional non-negative (N,) weights; a weight of 2 counts
        a point twice. Only their ratios matter: they are scaled to mean one.
      chunk_size: the E-step visits x in chunks of this many rows and adds
        their statistics (``combine_stats``), which keeps the N x K work in
        cache and memory at O(chunk_size K D). The result does not depend on
        it beyond rounding.
      block_rows: rows per block read from a source.
      checkpoint: optional path; the loop state is written there (atomically)
        every ``checkpoint_every`` iterations and at the end, and a call with
        the same path and fit resumes from it, ending with exactly the
        parameters of an uninterrupted run (``jaxmix.inference.checkpoint``).
      checkpoint_every: iterations between checkpoints.

    Returns:
      An ``EMResult``. A second call with the same model and shapes reuses
      the compiled loop.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxmix import ExponentialMixture, ExponentialMixtureParams, fit_em
      >>> model = ExponentialMixture(2)
      >>> x, _ = model.sample(jax.random.key(0), ExponentialMixtureParams(
      ...     jnp.array([0.5, 0.5]), jnp.array([1.0, 20.0])), 5000)
      >>> start = ExponentialMixtureParams(jnp.array([0.5, 0.5]), jnp.array([0.5, 5.0]))
      >>> result = fit_em(model, start, x, max_iter=500, tol=1e-8)
      >>> bool(result.converged), jnp.round(result.params.rates).tolist()
      (True, [1.0, 20.0])
    """
    require(model, Family, "fit_em")
    max_iter, tol = check_loop_args(max_iter, tol)
    chunk_size = v.check_positive_int("chunk_size", chunk_size)
    block_rows = v.check_positive_int("block_rows", block_rows)
    if is_source(x):
        return fit_em_source(model, params, RowSource(x), max_iter=max_iter, tol=tol, sample_weight=sample_weight,
                             chunk_size=chunk_size, block_rows=block_rows, checkpoint=checkpoint,
                             checkpoint_every=checkpoint_every)
    rows = row_shards(x)  # x's rows spread over devices (jaxmix.inference.sharding), or None
    params, x = model.check(params, x)
    x, weights = fit_data(model, x, sample_weight, rows)
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, x.dtype), params)
    saver = checkpoint_for(checkpoint, checkpoint_every, model,
                           fit_description(model, x.shape, x.dtype, max_iter=max_iter, tol=tol))
    if saver is None:
        result = em_program(model, params, x, weights, jnp.asarray(tol, x.dtype), max_iter, chunk_size, rows)
    else:
        xb, wb, _ = chunked(x, weights, chunk_size, rows)
        tol_scaled = stopping_tolerance(model, tol, x, weights)
        result = run_em_steps(model, params, lambda p, _: accumulate_rows(model, p, xb, wb, rows),
                              jnp.sum(weights), tol_scaled, max_iter, saver)
    return checked_result(model, result, x, weights, tol)


def fit_em_source(model, params, source: RowSource, *, max_iter, tol, sample_weight, chunk_size, block_rows,
                  checkpoint, checkpoint_every, what: str = "EM") -> EMResult:
    """``fit_em`` on a source: a pass over its blocks per iteration, the first pass checking them."""
    weights = source_weights(sample_weight, source)
    check_enough_points(model, source, weights)
    sample, sample_weights = source_sample(model, source, weights)
    params, _ = model.check(params, sample)  # the parameters, against the data's width
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, sample.dtype), params)
    tol_scaled = stopping_tolerance(model, tol, sample, sample_weights)  # a source's scale is its sample's
    total_weight = source.n_rows if weights is None else float(np.sum(weights))
    block_rows = min(block_rows, source.n_rows)
    saver = checkpoint_for(checkpoint, checkpoint_every, model,
                           fit_description(model, source.shape, source.dtype, max_iter=max_iter, tol=tol,
                                           block_rows=block_rows))

    data_pass = source_pass(model, source, weights, block_rows, chunk_size)
    result = run_em_steps(model, params, data_pass, total_weight, tol_scaled, max_iter, saver)
    return checked_result(model, result, sample, sample_weights, tol, what=what)


def fit_description(model, shape, dtype, **settings) -> dict:
    """What identifies a fit for its checkpoint: the family, the data's shape and dtype, the settings."""
    return {"model": repr(model), "shape": list(shape), "dtype": str(np.dtype(dtype)), **settings}


def source_pass(model, source: RowSource, weights, block_rows: int, chunk_size: int):
    """``data_pass(params, first) -> (stats, total)``: the E-step as a pass over a source's blocks of
    ``block_rows`` rows (the last padded with zero weights), checking them when ``first``."""

    def data_pass(params, first):
        check = check_rows(model, None) if first else None
        combined = None
        for start, rows in source.blocks(block_rows, check):
            block = None if weights is None else weights[start:start + rows.shape[0]]
            xb, wb = padded(rows.reshape(rows.shape[0], -1), block, block_rows)
            summary = summarize_rows(model, params, xb, wb, chunk_size)
            if combined is not None:  # wait for the previous block: at most two in flight, memory O(block)
                combined = add_summaries(jax.block_until_ready(combined), summary)
            else:
                combined = summary
        return combined

    return data_pass


def source_sample(model, source: RowSource, weights, key=None):
    """A checked sample of a source's rows and their weights scaled to mean one (``RowSource.sample``:
    all rows when they fit in one), for initialization and EM's tolerance scale."""
    rows, indices = source.sample(key)
    check_rows(model, None)(0, rows, indices)
    _, rows = model.check(None, rows)
    return rows, fit_weights(model, rows, None if weights is None else weights[indices], whole_data=False)
