"""Lloyd's k-means as a family of the EM protocol (MATH.md section 1)."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxmix import _validation as v
from jaxmix._centroids import CentroidModel, CentroidStats, first_argmin
from jaxmix._distances import centered


class KMeansParams(NamedTuple):
    """Cluster centers mu (K, D)."""

    centers: jax.Array


@dataclasses.dataclass(frozen=True)
class KMeans(CentroidModel):
    """Lloyd's algorithm: assign each point to its nearest center, move centers to their cluster means.

    On the EM protocol, the E-step's "log-likelihood" is the negative mean
    squared distance to the nearest center, -(1/N) sum_i min_k ||x_i - mu_k||^2,
    so that ``fit_em`` treats every family alike (higher is better). A center
    that loses all its points stays where it was.

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

    def _accumulate(self, params, xt, weights):
        # argmin_k ||x_i - mu_k||^2 = argmin_k (||mu_k||^2 - 2 mu_k . x_i): ||x_i||^2 is added to the
        # minimum only, an N-vector instead of another K x N pass (both centered on common_center).
        xs, cs = centered(xt, params.centers)
        labels, smallest = first_argmin(jnp.sum(jnp.square(cs), axis=1)[:, None] - 2.0 * cs @ xs)
        nearest = jnp.maximum(smallest + jnp.sum(jnp.square(xs), axis=0), 0.0)
        k = self.n_clusters
        # sum_i w_i (x_i - mu_{z_i}) per cluster: exact about the current centers, no K x N product.
        offsets = (weights * (xt - params.centers[labels].T)).T
        stats = CentroidStats(
            counts=jax.ops.segment_sum(weights, labels, k),
            sums=jax.ops.segment_sum(offsets, labels, k),
            reference=params.centers,
        )
        return stats, -jnp.sum(weights * nearest)
