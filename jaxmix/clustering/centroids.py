"""What k-means and fuzzy c-means share: centers, distances, the center M-step.

Both are families of the EM protocol with parameters ``centers`` (K, D).
Their E-step produces center weights u_ik (one-hot for Lloyd, r_ik^m for fuzzy
c-means; held as (K, N), the layout of ``jaxmix.mixtures.base``) and the M-step moves each
center to the u-weighted mean of the data
(docs/maths.md sections 1 and 2).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxmix import _validation as v
from jaxmix._distances import centered
from jaxmix.protocol import ColumnFamily


class CentroidStats(NamedTuple):
    """Additive statistics of center weights u_ik about ``reference`` (the current centers).

    ``counts`` sum_i u_ik (K,); ``sums`` sum_i u_ik (x_i - reference_k) (K, D).
    """

    shared_fields = ("reference",)  # every block of one E-step is centered on the same points

    counts: jax.Array
    sums: jax.Array
    reference: jax.Array


def pairwise_reduce(op, values):
    """``op`` (jnp.minimum, jnp.add) over the leading axis of (K, ...) values, as a tree of
    elementwise ops on adjacent rows (one fused pass: XLA's CPU backend splits a reduction
    over more than 32 rows into slower windowed reductions, and runs one over 16 features
    several times slower too)."""
    while values.shape[0] > 1:
        half = values.shape[0] // 2
        pairs = op(values[0:2 * half:2], values[1:2 * half:2])
        values = jnp.concatenate([pairs, values[2 * half:]])
    return values[0]


def first_argmin(values):
    """``(argmin, min)`` over the leading axis of (K, N) values, ties to the lowest index.

    Written as two plain minima: XLA's CPU backend runs the variadic
    reduction behind ``jnp.argmin`` several times slower.
    """
    smallest = pairwise_reduce(jnp.minimum, values)
    index = jax.lax.broadcasted_iota(jnp.int32, values.shape, 0)
    return pairwise_reduce(jnp.minimum, jnp.where(values == smallest, index, values.shape[0])), smallest


PACKED_INDEX_BITS = 8  # nearest_centers packs the center index into keys for K <= 2^8


def nearest_centers(xt, centers):
    """z_i = argmin_k ||x_i - c_k||^2 for points xt (D, N) and centers (K, D), shape (N,).

    The squared distances are one matrix product, ||c||^2 - 2 c x + ||x||^2 about the
    centers' mean (``centered``; ||x||^2 summed by ``pairwise_reduce``). For K <= 2^8 the
    argmin is one integer minimum (``pairwise_reduce``) over keys: each distance's float
    bits mapped to integers of the same order (a negative rounding's magnitude bits flipped)
    with their b = bit_length(K - 1) lowest bits replaced by k, so one pass over the K x N
    distances gives both. Distances that agree to a relative 2^-(23 - b) (float32;
    2^-(52 - b) in float64), within the float32 rounding of the product itself, count as
    ties; ties go to the lowest index. Larger K use ``first_argmin``.
    On the speed, benchmarks/README.md, "Measurements the code relies on".
    """
    xs, cs = centered(xt, centers)
    norms = pairwise_reduce(jnp.add, jnp.square(xs))
    distances = jnp.sum(jnp.square(cs), axis=1)[:, None] - 2.0 * cs @ xs + norms
    bits = max(centers.shape[0] - 1, 1).bit_length()
    if bits > PACKED_INDEX_BITS:
        return first_argmin(distances)[0]
    integer = jnp.int32 if distances.dtype == jnp.float32 else jnp.int64
    keys = jax.lax.bitcast_convert_type(distances, integer)
    keys = keys ^ ((keys >> (jnp.iinfo(integer).bits - 1)) & jnp.iinfo(integer).max)
    mask = (1 << bits) - 1
    keys = (keys & ~mask) | jax.lax.broadcasted_iota(integer, keys.shape, 0)
    return (pairwise_reduce(jnp.minimum, keys) & mask).astype(jnp.int32)


class CentroidModel(ColumnFamily):
    """Base of ``KMeans`` and ``FuzzyCMeans``: subclasses set ``n_clusters`` and ``params_type``."""

    @property
    def n_components(self) -> int:
        return self.n_clusters

    def _check_params(self, params):
        if not isinstance(params, self.params_type):
            raise TypeError(f"params must be a {self.params_type.__name__}, got {type(params).__name__}.")
        centers = v.as_float_array("centers", params.centers)
        if centers.ndim != 2 or centers.shape[0] != self.n_clusters:
            raise ValueError(
                f"centers must have shape (n_clusters={self.n_clusters}, n_features), got {centers.shape}."
            )
        v.check_finite("centers", centers)
        return self.params_type(centers)

    def _check_x(self, x, params):
        return v.check_data(x, None if params is None else params.centers.shape[1])

    def tolerance_scale(self, x, weights):
        """The weighted mean per-feature variance of x (floored at tiny): EM's tolerance is relative
        to it, as scikit-learn's k-means tolerance is, so rescaling the data changes no stopping point."""
        total = jnp.sum(weights)
        mean = weights @ x / total
        variance = jnp.mean(weights @ jnp.square(x - mean) / total)
        return jnp.maximum(variance, jnp.finfo(x.dtype).tiny)

    def _statistics(self, reference, xt, u):
        # Centering on the mean reference keeps sum_i u_ik x_i - n_k ref_k from cancelling badly.
        xct, mc = centered(xt, reference)
        counts = jnp.sum(u, axis=1)
        return CentroidStats(counts, u @ xct.T - counts[:, None] * mc, reference)

    def m_step(self, stats: CentroidStats):
        """c_k = sum_i u_ik x_i / sum_i u_ik; a center with no weight stays where it was."""
        counts = stats.counts[:, None]
        shift = jnp.where(counts > 0, stats.sums / jnp.where(counts > 0, counts, 1.0), 0.0)
        return self.params_type(stats.reference + shift)

    def blend(self, old, new, rho):
        """(1 - rho) old + rho new, ``old``'s sums moved to ``new``'s reference (online EM)."""
        sums = old.sums - old.counts[:, None] * (new.reference - old.reference)
        return new._replace(counts=(1 - rho) * old.counts + rho * new.counts, sums=(1 - rho) * sums + rho * new.sums)

    def predict(self, params, x):
        """The index of the nearest center, shape (N,) (``nearest_centers``, as the E-step assigns)."""
        params, x = self.check(params, x)
        return _nearest_rows(x, params.centers)

    def score(self, params, x):
        """The negative mean objective at ``params`` (higher is better)."""
        return _mean_objective(self, *self.check(params, x))

    def _from_statistics(self, stats: CentroidStats):
        return CentroidModel.m_step(self, stats)


@jax.jit
def _nearest_rows(x, centers):
    """``nearest_centers`` of rows x (N, D), compiled once per shapes."""
    return nearest_centers(x.T, centers)


@functools.partial(jax.jit, static_argnums=0)
def _mean_objective(model, params, x):
    """-(1/N) (the objective at ``params``), compiled once per model and shapes."""
    return model.summarize(params, x, jnp.ones(x.shape[0], x.dtype))[1] / x.shape[0]
