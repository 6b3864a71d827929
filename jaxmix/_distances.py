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


def scaled_squared_distances(xt, centers, precisions):
    """sum_d p_kd (x_di - c_kd)^2, shape (K, N), for per-center diagonal precisions p (K, D).

    Expanded as p (x^2) - 2 (c p) x + sum_d c^2 p: two small matrix products
    instead of a K x D x N tensor, after centering on ``common_center(c)``;
    rounding can leave tiny negatives, clamped to 0.
    """
    xs, cs = centered(xt, centers)
    offset = jnp.sum(jnp.square(cs) * precisions, axis=1)[:, None]
    sq = precisions @ jnp.square(xs) - 2.0 * (cs * precisions) @ xs + offset
    return jnp.maximum(sq, 0.0)


def squared_distances(xt, centers):
    """||x_i - c_k||^2, shape (K, N), as one matrix product ||c||^2 - 2 c x + ||x||^2 (centered, clamped)."""
    xs, cs = centered(xt, centers)
    sq = jnp.sum(jnp.square(cs), axis=1)[:, None] - 2.0 * cs @ xs + jnp.sum(jnp.square(xs), axis=0)
    return jnp.maximum(sq, 0.0)


def exact_squared_distances(xt, centers):
    """||x_i - c_k||^2 (K, N) summed term by term: exactly 0 for a point on a center.

    Costs a K x D x N elementwise pass (fused by XLA) instead of a matrix
    product; for fuzzy c-means, whose memberships need d = 0 detected exactly.
    """
    return jnp.sum(jnp.square(xt[None, :, :] - centers[:, :, None]), axis=1)
