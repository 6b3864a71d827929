"""Online (stepwise) EM over shuffled minibatches (Cappe and Moulines 2009; Liang and Klein 2009).

At step t, for minibatch b of |b| rows drawn without replacement from N,

    s_t = (1 - rho_t) s_{t-1} + rho_t (N / |b|) summarize(theta_{t-1}, b),   theta_t = m_step(s_t),

with rho_0 = 1 (the first minibatch's statistics start the running ones) and
rho_t = (t + t0)^(-kappa) after, kappa in (0.5, 1]. The statistics are
blended by the family (``jaxmix.protocol.blend_stats``); for k-means this is
mini-batch k-means. By default the returned parameters are the M-step of the
last epoch's minibatch statistics averaged uniformly (every row once), which
removes most of the running statistics' noise. docs/maths.md section 12.
"""

from __future__ import annotations

import concurrent.futures
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmix import _validation as v
from jaxmix.inference.checkpoint import checkpoint_for
from jaxmix.inference.driver import fit_description, source_pass
from jaxmix.inference.em import DEFAULT_CHUNK_SIZE, accumulate, accumulate_rows, chunked, to_chunks
from jaxmix.inference.sharding import fit_data, row_shards
from jaxmix.inference.sources import DEFAULT_BLOCK_ROWS, RowSource, check_rows, is_source, source_weights
from jaxmix.protocol import Family, Stepwise, blend_stats, plain_sums, require


class OnlineResult(NamedTuple):
    """The outcome of ``fit_online``.

    Attributes:
      params: the parameters after the last step.
      history: (n_steps,) the weighted mean log-likelihood of each minibatch under the parameters
        before its update.
      log_likelihood: the full-data mean log-likelihood of ``params`` when asked
        (``log_likelihood=True``), else None.
      n_steps: the number of steps run, n_epochs * floor(N / batch_size).
    """

    params: Any
    history: jax.Array
    log_likelihood: jax.Array | None
    n_steps: int


class OnlineState(NamedTuple):
    """A checkpoint of ``fit_online``: steps done, parameters, running and last-epoch average statistics,
    history, key data."""

    step: jax.Array
    params: Any
    stats: Any
    average: Any
    history: jax.Array
    key: jax.Array


# benchmarks/README.md, "Online EM": the sweep that chose them
DEFAULT_BATCH_SIZE = 4096
DEFAULT_KAPPA = 0.6
DEFAULT_T0 = 2.0


def fit_online(key, model, params, x, *, batch_size: int | None = None, n_epochs: int = 3,
               kappa: float = DEFAULT_KAPPA, t0: float = DEFAULT_T0, sample_weight=None,
               average_last_epoch: bool = True, log_likelihood: bool = False,
               chunk_size: int = DEFAULT_CHUNK_SIZE, block_rows: int = DEFAULT_BLOCK_ROWS, checkpoint=None,
               checkpoint_every: int = 100) -> OnlineResult:
    """Fit ``model`` by online (stepwise) EM from ``params`` (see the module docstring).

    Args:
      key: a ``jax.random`` key; epoch e visits the rows in the order
        ``jax.random.permutation(jax.random.fold_in(key, e), N)``, in
        floor(N / batch_size) minibatches (the last rows of that order wait
        for the next epoch).
      model: a family on the EM protocol whose statistics are plain sums or
        that declares ``blend`` (``jaxmix.protocol.Stepwise``; every family of
        the library does).
      params: the initial parameters.
      x: data: an array or a source (``fit_em``), whose minibatches are read
        from it as they are needed (the rows of a minibatch in increasing
        order, so that a source and the same data in memory give the same fit).
      batch_size: rows per minibatch, in [1, N]; None: min(N, ``DEFAULT_BATCH_SIZE``).
      n_epochs: passes over the data, >= 1.
      kappa: the step-size exponent, in (0.5, 1].
      t0: the step-size offset, >= 0.
      sample_weight: optional non-negative (N,) weights, as in ``fit_em``.
      average_last_epoch: return the M-step of the last epoch's scaled minibatch
        statistics averaged uniformly, a_j = (1 - 1/j) a_{j-1} + (1/j) (N/|b|) s_j
        (every row once; Polyak-Ruppert averaging of the statistics), instead
        of the last iterate m_step(s_T), which keeps the step sizes' noise.
      log_likelihood: also compute the full-data mean log-likelihood of the
        result (one more pass).
      chunk_size, block_rows: as in ``fit_em``.
      checkpoint, checkpoint_every: as in ``fit_em``, every ``checkpoint_every``
        steps; the state holds the parameters, the running statistics, the
        step, the history and the key.

    Returns:
      An ``OnlineResult``.
    """
    require(model, Family, "fit_online")
    batch_size, n_epochs, kappa, t0, chunk_size, block_rows = check_online_args(
        x, batch_size, n_epochs, kappa, t0, chunk_size, block_rows)
    data = OnlineData(model, x, sample_weight, params)
    params = data.params
    stats, _ = jax.eval_shape(model.summarize, params, data.rows(np.arange(min(batch_size, 2)))[0],
                              jnp.ones(min(batch_size, 2), data.dtype))
    if not (isinstance(model, Stepwise) or plain_sums(stats)):
        raise TypeError(f"fit_online needs a family whose statistics are plain sums, or that declares "
                        f"blend(old, new, rho) (jaxmix.protocol.Stepwise); {type(stats).__name__} has a shared "
                        f"reference or its own combine and {type(model).__name__} has no blend.")
    n_batches = data.n_rows // batch_size
    n_steps = n_epochs * n_batches
    zeros = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), stats)
    state = OnlineState(np.asarray(0), params, zeros, zeros, np.full(n_steps, np.nan, data.dtype),
                        jax.random.key_data(key))
    saver = checkpoint_for(checkpoint, checkpoint_every, model, fit_description(
        model, data.shape, data.dtype, driver="fit_online", n_epochs=n_epochs, batch_size=batch_size,
        kappa=kappa, t0=t0, average_last_epoch=average_last_epoch))
    if saver is not None:
        state = saver.resume(state)
    key = jax.random.wrap_key_data(state.key)
    scale = data.n_rows / batch_size
    first = int(state.step)
    # The history is kept on the host, so that the compiled step does not depend on n_steps.
    history, pending = np.array(state.history, dtype=data.dtype), None

    def write_pending():
        """The pending step's value into the history, waited for."""
        if pending is not None:
            history[pending[0]] = pending[1]

    def recorded(state):
        """``state`` with the history so far."""
        write_pending()
        return state._replace(history=jax.device_put(history.copy()))

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        batches = data.minibatches(pool, key, first, n_steps, n_batches, batch_size)
        for step in range(first, n_steps):
            xb, wb = next(batches)
            rho = 1.0 if step == 0 else (step + t0) ** -kappa
            j = step - (n_epochs - 1) * n_batches  # the step's index in the last epoch
            weight = 1.0 / (j + 1) if average_last_epoch and j >= 0 else 0.0
            params, stats, average, mean = _online_step(
                model, state.params, state.stats, state.average, xb, wb,
                *(np.asarray(a, data.dtype) for a in (rho, weight, scale)), chunk_size)
            write_pending()  # the previous step's: at most two in flight, memory O(batch)
            pending = (step, mean)
            state = OnlineState(np.asarray(step + 1), params, stats, average, state.history, state.key)
            if saver is not None and saver.due(step + 1):  # the history copied only for a write
                saver.save(recorded(state))
    state = recorded(state)
    if saver is not None:
        saver.save(state)
    params = _m_step(model, state.average) if average_last_epoch else state.params
    check_finite_params(params)
    final = data.mean_log_likelihood(params, chunk_size, block_rows) if log_likelihood else None
    return OnlineResult(params, state.history, final, n_steps)


def check_online_args(x, batch_size, n_epochs, kappa, t0, chunk_size, block_rows):
    n = int(x.shape[0]) if hasattr(x, "shape") and len(x.shape) else 0
    if batch_size is None:
        batch_size = max(1, min(n, DEFAULT_BATCH_SIZE))
    batch_size = v.check_positive_int("batch_size", batch_size)
    if n and batch_size > n:
        raise ValueError(f"batch_size must be <= the number of rows N = {n}, got {batch_size}.")
    n_epochs = v.check_positive_int("n_epochs", n_epochs, maximum=v.MAX_ITERATIONS)
    kappa = v.check_nonnegative_float("kappa", kappa)
    if not 0.5 < kappa <= 1.0:
        raise ValueError(f"kappa must lie in (0.5, 1] (the step sizes must sum to infinity and their "
                         f"squares converge), got {kappa}.")
    t0 = v.check_nonnegative_float("t0", t0)
    return (batch_size, n_epochs, kappa, t0, v.check_positive_int("chunk_size", chunk_size),
            v.check_positive_int("block_rows", block_rows))


def check_finite_params(params) -> None:
    if not all(np.all(np.isfinite(np.asarray(leaf))) for leaf in jax.tree_util.tree_leaves(params)):
        raise ValueError("online EM ended with non-finite parameters: use a larger batch_size, fewer "
                         "components, or rescale the data; for a Gaussian mixture, increase reg_covar.")


@functools.partial(jax.jit, static_argnames=("model", "chunk_size"))
def _online_step(model, params, running, average, xb, wb, rho, weight, scale, chunk_size):
    """One step of stepwise EM on minibatch rows xb (n, D) with weights wb (n,); the last epoch's average
    takes the minibatch's statistics with ``weight`` (1/j, or 0). Also the minibatch's weighted mean
    log-likelihood under ``params``."""
    stats, total = accumulate(model, params, *to_chunks(xb, scale * wb, chunk_size))
    average = blend_stats(model, average, stats, weight)
    stats = blend_stats(model, running, stats, rho)
    return model.m_step(stats), stats, average, total / (scale * jnp.sum(wb))


_m_step = jax.jit(lambda model, stats: model.m_step(stats), static_argnums=0)


class OnlineData:
    """The data of an online fit: minibatches of rows (in memory: gathered on the device; from a source:
    read by a thread a step ahead), and a full pass for the final log-likelihood."""

    def __init__(self, model, x, sample_weight, params):
        self.model = model
        if is_source(x):
            self.source, self.shards = RowSource(x), None
            self.x = None
            self.weights = source_weights(sample_weight, self.source)
            rows = self.source.read(0, 1)
            self.check = check_rows(model, None)
        else:
            self.source = None
            self.shards = row_shards(x)  # rows spread over devices (jaxmix.inference.sharding), or None
            _, self.x = model.check(None, x)
            self.x, self.weights = fit_data(model, self.x, sample_weight, self.shards)
            rows = self.x[:1] if self.shards is None else _take(self.shards, self.x, self.weights, np.zeros(1, int))[0]
        self.params, rows = model.check(params, rows)
        self.params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, rows.dtype), self.params)
        self.dtype = rows.dtype
        self.shape = (self.source or self.x).shape
        self.n_rows = self.shape[0]

    def rows(self, indices):
        """Rows at sorted ``indices`` and their weights: gathered on the device from memory; read from a
        source and checked, on the host (made arrays by the caller's thread, whose x64 setting applies)."""
        if self.source is None and self.shards is None:
            return self.x[indices], self.weights[indices]
        if self.source is None:  # every device adds the rows it holds: the minibatch, on every device
            return _take(self.shards, self.x, self.weights, indices)
        rows = self.source.take(indices)
        self.check(0, rows, indices)
        weights = np.ones(len(indices), rows.dtype) if self.weights is None else self.weights[indices]
        return rows.reshape(len(indices), -1), weights.astype(rows.dtype)

    def minibatches(self, pool, key, first, n_steps, n_batches, batch_size):
        """The minibatches of steps first..n_steps-1, each read while the previous one is used."""

        def batch(step):
            epoch, b = divmod(step, n_batches)
            order = epoch_order(key, epoch, self.n_rows)
            return self.rows(np.sort(order[b * batch_size:(b + 1) * batch_size]))

        pending = pool.submit(batch, first) if first < n_steps else None
        for step in range(first, n_steps):
            ready = pending.result()
            if step + 1 < n_steps:
                pending = pool.submit(batch, step + 1)
            yield jnp.asarray(ready[0]), jnp.asarray(ready[1])

    def mean_log_likelihood(self, params, chunk_size, block_rows):
        if self.source is None:
            _, total = accumulate_rows(self.model, params, *chunked(self.x, self.weights, chunk_size, self.shards)[:2],
                                       self.shards)
            return total / jnp.sum(self.weights)
        _, total = source_pass(self.model, self.source, self.weights, min(block_rows, self.n_rows),
                               chunk_size)(params, False)
        return total / (self.n_rows if self.weights is None else float(np.sum(self.weights)))


@functools.partial(jax.jit, static_argnames=("shards",))
def _take(shards, x, weights, indices):
    """Rows and weights at ``indices`` of x spread over ``shards``, on every device (``RowShards.take``)."""
    return shards.take(x, indices), shards.take(weights[:, None], indices)[:, 0]


@functools.lru_cache(maxsize=2)
def _epoch_order(key_data: bytes, epoch: int, n: int) -> np.ndarray:
    key = jax.random.wrap_key_data(jnp.asarray(np.frombuffer(key_data, np.uint32)))
    return np.asarray(jax.random.permutation(jax.random.fold_in(key, epoch), n))


def epoch_order(key, epoch: int, n: int) -> np.ndarray:
    """The visiting order of epoch ``epoch``: ``jax.random.permutation(jax.random.fold_in(key, epoch), n)``."""
    return _epoch_order(np.asarray(jax.random.key_data(key)).tobytes(), epoch, n)
