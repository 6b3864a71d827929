"""Squared (Mahalanobis) distances between N points and K centers as matrix products."""

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


def scaled_squared_distances(x, centers, precisions):
    """sum_d p_kd (x_id - c_kd)^2, shape (N, K), for per-center diagonal precisions p (K, D).

    Expanded as (x^2) p^T - 2 x (c p)^T + sum_d c^2 p: three small matrix
    products instead of an N x K x D tensor, after centering x and c on
    ``common_center(c)``; rounding can leave tiny negatives, clamped to 0.
    """
    shift = common_center(centers)
    xs, cs = x - shift, centers - shift
    sq = jnp.square(xs) @ precisions.T - 2.0 * xs @ (cs * precisions).T + jnp.sum(jnp.square(cs) * precisions, axis=1)
    return jnp.maximum(sq, 0.0)


def squared_distances(x, centers):
    """||x_i - c_k||^2, shape (N, K), as one matrix product ||x||^2 - 2 x c^T + ||c||^2 (centered, clamped)."""
    shift = common_center(centers)
    xs, cs = x - shift, centers - shift
    sq = jnp.sum(jnp.square(xs), axis=1, keepdims=True) - 2.0 * xs @ cs.T + jnp.sum(jnp.square(cs), axis=1)
    return jnp.maximum(sq, 0.0)


def exact_squared_distances(x, centers):
    """||x_i - c_k||^2 (N, K) summed term by term: exactly 0 for a point on a center.

    Costs an N x K x D elementwise pass (fused by XLA) instead of a matrix
    product; for fuzzy c-means, whose memberships need d = 0 detected exactly.
    """
    return jnp.sum(jnp.square(x[:, None, :] - centers[None, :, :]), axis=-1)
