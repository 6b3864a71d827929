"""Squared (Mahalanobis) distances between K centers and N points as matrix products.

Points come as columns, xt of shape (D, N), and results are (K, N): the
layout every E-step uses (see ``_mixture``), where reductions over the K
centers run along the leading axis and vectorize over the points.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def common_center(centers):
    """The mean of the centers, a shift shared by all points and centers.

    Distances are invariant to it; subtracting it first keeps the products
    in the expansions below small when the data sit far from the origin
    (float32 cancellation). No gradient flows through it (none is needed).
    """
    return jax.lax.stop_gradient(jnp.mean(centers, axis=0))


def centered(xt, centers):
    """``(xt - s, centers - s)`` for s = ``common_center(centers)``; xt is (D, N)."""
    shift = common_center(centers)
    return xt - shift[:, None], centers - shift


def scaled_squared_distances(xt, centers, precisions=None):
    """sum_d p_kd (x_di - c_kd)^2, shape (K, N), for per-center diagonal precisions p (K, D) (default 1).

    Summed term by term from the differences x - c_k, so float32 cannot cancel
    (an expansion p x^2 - 2 c p x + p c^2 loses whole nats when the data sit far
    from the origin or the variances are small), and exactly 0 for a point on a
    center. One loop step per feature adds a (K, N) term in a single fused pass,
    with no K x D x N buffer: on a CPU faster than a fused K x D x N reduction
    and about as fast as the expansion's matrix products (benchmarks/README.md, "Measurements the code relies on").
    """
    dtype = jnp.result_type(xt, centers, *([] if precisions is None else [precisions]))

    def add_feature(d, total):
        term = jnp.square(xt[d][None, :] - centers[:, d, None])
        return total + (term if precisions is None else precisions[:, d, None] * term)

    zeros = jnp.zeros((centers.shape[0], xt.shape[1]), dtype)
    return jax.lax.fori_loop(0, xt.shape[0], add_feature, zeros, unroll=8)


def squared_distances(xt, centers):
    """||x_i - c_k||^2, shape (K, N), as one matrix product ||c||^2 - 2 c x + ||x||^2 (centered, clamped).

    For comparisons of distances (nearest centers, neighbours) on large problems: the
    expansion can cancel in float32, so values that are reported use ``exact_squared_distances``.
    """
    xs, cs = centered(xt, centers)
    sq = jnp.sum(jnp.square(cs), axis=1)[:, None] - 2.0 * cs @ xs + jnp.sum(jnp.square(xs), axis=0)
    return jnp.maximum(sq, 0.0)


def exact_squared_distances(xt, centers):
    """||x_i - c_k||^2 (K, N) summed term by term (``scaled_squared_distances`` with p = 1):
    cannot cancel in float32, exactly 0 for a point on a center."""
    return scaled_squared_distances(xt, centers)
