"""Lloyd's k-means as a family of the EM protocol (docs/maths.md section 1)."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxmix import _validation as v
from jaxmix.clustering.centroids import CentroidModel, nearest_centers


class KMeansParams(NamedTuple):
    """Cluster centers mu (K, D)."""

    centers: jax.Array


class KMeansStats(NamedTuple):
    """Lloyd's statistics about ``reference`` (the current centers), and where to relocate empty clusters.

    ``counts`` sum_i w_i [z_i = k] (K,); ``sums`` sum_i w_i [z_i = k] (x_i - reference_k) (K, D);
    ``far_points`` (K, D) the K points farthest from their nearest center, farthest first, and
    ``far_distances`` (K,) their squared distances (0 in unused slots).
    """

    counts: jax.Array
    sums: jax.Array
    reference: jax.Array
    far_points: jax.Array
    far_distances: jax.Array

    def combine(self, other):
        """Sums added; the K farthest points of both kept."""
        return KMeansStats(self.counts + other.counts, self.sums + other.sums, self.reference,
                           **_farthest(jnp.concatenate([self.far_points, other.far_points]),
                                       jnp.concatenate([self.far_distances, other.far_distances]),
                                       self.counts.shape[0]))


def _farthest(points, distances, k):
    """The k largest of ``distances`` (padded with zeros) and their ``points`` (rows), largest first."""
    top, index = jax.lax.top_k(distances, min(k, distances.shape[0]))
    pad = k - top.shape[0]
    return {"far_points": jnp.pad(points[index], ((0, pad), (0, 0))), "far_distances": jnp.pad(top, (0, pad))}


@dataclasses.dataclass(frozen=True)
class KMeans(CentroidModel):
    """Lloyd's algorithm: assign each point to its nearest center, move centers to their cluster means.

    On the EM protocol, the E-step's "log-likelihood" is the negative mean
    squared distance to the nearest center, -(1/N) sum_i min_k ||x_i - mu_k||^2,
    so that ``fit_em`` treats every family alike (higher is better). A center
    that loses all its points is relocated, as scikit-learn does, to the
    point farthest from its nearest center (the j-th empty center, by index,
    to the j-th farthest point); that point's distance drops to zero, so the
    objective still never increases.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxmix import KMeans, KMeansParams, fit_em
      >>> x = jnp.array([[0.0], [0.2], [5.0], [5.4]])
      >>> result = fit_em(KMeans(2), KMeansParams(jnp.array([[1.0], [4.0]])), x)
      >>> result.params.centers.ravel().tolist()
      [0.10000000149011612, 5.199999809265137]
    """

    n_clusters: int
    params_type = KMeansParams

    def __post_init__(self):
        v.check_positive_int("n_clusters", self.n_clusters)

    def posterior(self, params, x):
        """Hard responsibilities: one-hot of the nearest center, (N, K)."""
        return jax.nn.one_hot(self.predict(params, x), self.n_clusters, dtype=params.centers.dtype)

    def _summarize(self, params, xt, weights):
        # z_i from one matrix product (nearest_centers); the reported distance to the nearest center is
        # then summed from x_i - mu_{z_i} itself, which cannot cancel in float32.
        labels = nearest_centers(xt, params.centers)
        offsets = xt - params.centers[labels].T
        nearest = jnp.sum(jnp.square(offsets), axis=0)
        k = self.n_clusters
        stats = KMeansStats(
            counts=jax.ops.segment_sum(weights, labels, k),
            sums=jax.ops.segment_sum((weights * offsets).T, labels, k),
            reference=params.centers,
            **_farthest(xt.T, jnp.where(weights > 0, nearest, 0.0), k),
        )
        return stats, -jnp.sum(weights * nearest)

    def m_step(self, stats: KMeansStats) -> KMeansParams:
        """c_k = sum_{z_i = k} w_i x_i / sum_{z_i = k} w_i; an empty center moves to a far point (see the
        class docstring)."""
        centers = super().m_step(stats).centers
        empty = stats.counts <= 0
        rank = jnp.cumsum(empty) - 1  # the j-th empty center takes the j-th farthest point
        relocate = empty & (stats.far_distances[rank] > 0)
        return KMeansParams(jnp.where(relocate[:, None], stats.far_points[rank], centers))
