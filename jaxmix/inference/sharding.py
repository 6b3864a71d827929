"""EM across devices: x's rows spread over a mesh axis, each device summarizing its own rows.

When x is a ``jax.Array`` sharded along its rows (``NamedSharding(mesh, PartitionSpec(axis))``,
columns whole), the drivers run data-parallel (``row_shards`` decides it at the public boundary).
Each device chunks its own rows once (``RowShards.chunks``) and, each E-step, summarizes them
(``RowShards.accumulate``): the per-device statistics, small (at most K x D x D), are gathered
(``all_gather``) and folded with ``combine_stats`` in device order, and the totals summed
(``psum``), so every device holds the statistics of all rows and the M-step's parameters are
replicated. No device ever holds all of x: initialization reads the few rows it needs from the
devices that hold them (``RowShards.take``), draws k-means++ indices from per-device cumulative
sums (``RowShards.sample_proportional``) and runs its M-step on each device's rows
(``RowShards.from_responsibilities``); the rest (the sum of the weights, the tolerance scale)
are reductions over rows that XLA partitions.

Over several processes (``jax.distributed``), ``global_rows`` builds such an x from each
process's own rows; the fits are then the same calls in every process.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxmix import _validation as v
from jaxmix.inference.em import accumulate, fit_weights, to_chunks
from jaxmix.protocol import ColumnFamily, combine_stats


@dataclasses.dataclass(frozen=True)
class RowShards:
    """Rows spread over ``axis`` (a mesh axis name or a tuple of them) of ``mesh``; hashable, so it is
    the compiled programs' static argument. ``row_shards`` builds it with the mesh's axes in JAX's
    automatic mode, so that reductions over rows partition in every program."""

    mesh: Mesh
    axis: str | tuple[str, ...]

    @property
    def n_shards(self) -> int:
        axes = self.axis if isinstance(self.axis, tuple) else (self.axis,)
        return math.prod(self.mesh.shape[name] for name in axes)

    def sharding(self, replicated: bool = False) -> NamedSharding:
        """Rows spread over the axis (the leading dimension), or ``replicated`` on every device."""
        return NamedSharding(self.mesh, P() if replicated else P(self.axis))

    def spread(self, a) -> jax.Array:
        """An array of rows (N, ...) laid out as x: unchanged if it already is; host values are cut
        into each process's shards (every process passes the same values)."""
        if isinstance(a, jax.Array) and a.sharding == self.sharding():
            return a
        if isinstance(a, jax.Array) and (a.sharding.is_equivalent_to(self.sharding(), a.ndim)
                                         or not a.is_fully_addressable):
            return jax.device_put(a, self.sharding())
        values = np.asarray(a)
        return jax.make_array_from_callback(values.shape, self.sharding(), lambda index: values[index])

    def replicated(self, tree):
        """Inside a program: the outputs pinned replicated, so every process can read them."""
        return jax.lax.with_sharding_constraint(tree, self.sharding(replicated=True))

    def _map(self, fn, in_specs, out_specs):
        return jax.shard_map(fn, mesh=self.mesh, in_specs=in_specs, out_specs=out_specs, check_vma=False)

    def chunks(self, x, weights, chunk_size: int):
        """``to_chunks`` of each device's rows: (S B, n, D) and (S B, n), block b of shard s at s B + b,
        each device holding its own B blocks."""
        rows = P(self.axis)
        return self._map(functools.partial(to_chunks, chunk_size=chunk_size), (rows, rows), (rows, rows))(
            x, weights)

    def accumulate(self, model, params, xb, wb):
        """``accumulate`` of every device's blocks (``chunks``), combined across devices:
        ``(stats, sum_i w_i log p(x_i))`` over all rows, the same on every device."""

        def local(params, xb, wb):
            stats, total = accumulate(model, params, xb, wb)
            return self._combined(stats), jax.lax.psum(total, self.axis)

        rows = P(self.axis)
        return self._map(local, (P(), rows, rows), P())(params, xb, wb)

    def _combined(self, stats):
        """Inside ``shard_map``: every device's statistics, gathered and folded with ``combine_stats``
        in device order (the first device's shared fields kept)."""
        gathered = jax.lax.all_gather(stats, self.axis)

        def shard(s):
            return jax.tree_util.tree_map(lambda leaf: leaf[s], gathered)

        return jax.lax.fori_loop(1, self.n_shards, lambda s, acc: combine_stats(acc, shard(s)), shard(0))

    def from_responsibilities(self, model, x, responsibilities, weights):
        """``model.from_responsibilities(x, r, w)`` of rows spread over the devices.

        For a ``ColumnFamily`` (the library's families), the steps of its
        ``from_responsibilities`` with each device on its own rows: the
        reference (each component's weighted mean) from summed per-device sums,
        each device's ``_statistics`` about it, combined across devices
        (``_combined``), then ``_from_statistics``. XLA would otherwise
        partition the statistics as written for one block of rows, which for
        some (a tied covariance's flattened product, a diagonal one's loop over
        blocks of points) gathers N-sized arrays. Any other family's runs as
        XLA partitions it.
        """
        if not isinstance(model, ColumnFamily):
            return model.from_responsibilities(x, responsibilities, weights)

        def local(x, responsibilities, weights):
            wr = responsibilities.T * weights
            counts = jax.lax.psum(jnp.sum(wr, axis=1), self.axis)
            reference = jax.lax.psum(wr @ x, self.axis) / jnp.maximum(counts, jnp.finfo(x.dtype).tiny)[:, None]
            return self._combined(model._statistics(reference, x.T, wr))

        rows = P(self.axis)
        return model._from_statistics(self._map(local, (rows, rows, rows), P())(x, responsibilities, weights))

    def take(self, x, indices):
        """x[indices], rows of x (N, D) at global ``indices`` (any shape), replicated: each device
        contributes the rows it holds (zeros for the others) and the contributions are summed."""

        def local(x, indices):
            n = x.shape[0]
            index = indices - jax.lax.axis_index(self.axis) * n
            held = (index >= 0) & (index < n)
            rows = jnp.where(held[..., None], x[jnp.clip(index, 0, n - 1)], 0)
            return jax.lax.psum(rows, self.axis)

        return self._map(local, (P(self.axis), P()), P())(x, indices)

    def sample_proportional(self, u, p):
        """``jaxmix.inference.initialization.sample_proportional`` of weights p (N,) spread over the
        devices: index i = #{j : C_j <= u C_N} for the uniforms u and the cumulative sums C, counted on
        each device from its own sums (offset by the totals of the devices before it) and summed."""

        def local(u, p):
            cumulative = jnp.cumsum(p)
            totals = jax.lax.all_gather(cumulative[-1], self.axis)
            before = jnp.arange(self.n_shards) < jax.lax.axis_index(self.axis)
            cumulative = cumulative + jnp.sum(jnp.where(before, totals, 0))
            count = jax.lax.psum(jnp.searchsorted(cumulative, u * jnp.sum(totals), side="right"), self.axis)
            return jnp.minimum(count, self.n_shards * p.shape[0] - 1)

        return self._map(local, (P(), P(self.axis)), P())(u, p)

    def choice(self, key, p, k: int):
        """``jax.random.choice(key, N, (k,), replace=False, p=p)`` of probabilities p (N,) spread over
        the devices: the Gumbel top-k of g + log p (the same g), each device's k best, then the best
        of those."""
        scores = jax.random.gumbel(key, p.shape, p.dtype) + jnp.log(p)

        def local(scores):
            values, index = jax.lax.top_k(scores, min(k, scores.shape[0]))
            index = index + jax.lax.axis_index(self.axis) * scores.shape[0]
            values, index = (jax.lax.all_gather(a, self.axis, tiled=True) for a in (values, index))
            return index[jax.lax.top_k(values, k)[1]]

        return self._map(local, P(self.axis), P())(scores)


def row_shards(x) -> RowShards | None:
    """The ``RowShards`` of a concrete ``jax.Array`` x whose leading dimension is sharded over more
    than one device by a ``NamedSharding``, every other dimension whole; None for any other x."""
    if not isinstance(x, jax.Array) or not v.is_concrete(x) or not isinstance(x.sharding, NamedSharding):
        return None
    spec = tuple(x.sharding.spec) + (None,) * (x.ndim - len(x.sharding.spec))
    if x.ndim == 0 or spec[0] is None or any(entry is not None for entry in spec[1:]):
        return None
    mesh = x.sharding.mesh
    auto = Mesh(mesh.devices, mesh.axis_names, axis_types=(AxisType.Auto,) * len(mesh.axis_names))
    rows = RowShards(auto, spec[0])
    return rows if rows.n_shards > 1 else None


def fit_data(model, x, sample_weight, rows: RowShards | None):
    """``(x, fit_weights(model, x, sample_weight))`` laid out on ``rows`` (as they are for None): a
    family's ``check`` may have moved x, and weights given on the host are cut into x's shards."""
    if rows is None:
        return x, fit_weights(model, x, sample_weight)
    x = rows.spread(x)
    return x, rows.spread(fit_weights(model, x, sample_weight, device=rows.sharding()))


def global_rows(local_rows, local_weights=None, *, mesh: Mesh | None = None, axis: str = "data"):
    """``(x, sample_weight)``: the global array of every process's rows, spread over ``axis`` of ``mesh``.

    Every process (``jax.distributed``; or the only one) calls it with its own rows (n_p, D) or
    (n_p,), a NumPy array or a slice of a memmap (read with ``np.asarray``), and optional
    weights (n_p,). x holds process 0's rows, then process 1's, and so on (in the mesh's order
    of devices); no process holds another's rows. JAX shards only row counts that the devices
    divide, so each process's rows are padded to the same count per device, with copies of its
    first row of weight zero: x then has N' >= N rows and ``sample_weight`` (N',) is
    ``local_weights`` (ones by default) on the rows and zero on the padding. ``sample_weight``
    is None when nothing was padded and no weights were given. Fit with both::

        x, w = jaxmix.global_rows(rows)
        result = jaxmix.fit(key, model, x, sample_weight=w)

    The fits scale weights to mean one over x's N' rows, which the library's families do not
    depend on; a family whose M-step adds a prior in units of points sees it scaled by N / N'.

    Args:
      local_rows: this process's rows, at least one.
      local_weights: optional non-negative weights (n_p,) of those rows.
      mesh: default: every device, ordered by process, on one axis named ``axis``.
      axis: the mesh axis the rows are spread over (with a ``mesh``, a tuple of its axes too).
    """
    rows = np.asarray(local_rows)
    if rows.ndim not in (1, 2) or rows.shape[0] < 1:
        raise ValueError(f"local_rows must have shape (n_rows, n_features) or (n_rows,) with n_rows >= 1, got "
                         f"shape {rows.shape}.")
    weights = np.ones(rows.shape[0]) if local_weights is None else np.asarray(local_weights, dtype=np.float64)
    v.check_shape("local_weights", weights, (rows.shape[0],))
    if mesh is None:
        devices = sorted(jax.devices(), key=lambda device: (device.process_index, device.id))
        mesh = Mesh(np.array(devices), (axis,), axis_types=(AxisType.Auto,))
    shards = RowShards(mesh, axis)
    local_shards = len({index[0].start for index in
                        shards.sharding().addressable_devices_indices_map((shards.n_shards,)).values()})
    counts = np.asarray(multihost_utils.process_allgather(np.array([rows.shape[0], local_weights is not None])))
    per_process = -(-int(counts[..., 0].max()) // local_shards) * local_shards
    pad = per_process - rows.shape[0]
    rows = np.concatenate([rows, np.repeat(rows[:1], pad, axis=0)])
    global_shape = (per_process * shards.n_shards // local_shards, *rows.shape[1:])
    x = jax.make_array_from_process_local_data(shards.sharding(), rows, global_shape)
    if np.all(counts[..., 0] == per_process) and not np.any(counts[..., 1]):
        return x, None
    weights = np.concatenate([weights, np.zeros(pad)]).astype(rows.dtype if rows.dtype.kind == "f" else float)
    return x, jax.make_array_from_process_local_data(shards.sharding(), weights, global_shape[:1])
