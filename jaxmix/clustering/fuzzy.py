"""Fuzzy c-means: soft k-means with inverse-distance memberships (docs/maths.md section 2)."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxmix import _validation as v
from jaxmix._distances import exact_squared_distances
from jaxmix.clustering.centroids import CentroidModel

CENTER_UPDATES = ("coordinate_descent", "homework")


class FuzzyCMeansParams(NamedTuple):
    """Cluster centers mu (K, D)."""

    centers: jax.Array


def fuzzy_memberships(sq, fuzzifier, axis=-1):
    """r_ij = d_ij^(-2/(m-1)) / sum_l d_il^(-2/(m-1)) from squared distances d^2, centers along ``axis``."""
    return jnp.exp(log_fuzzy_memberships(sq, fuzzifier, axis))


def log_fuzzy_memberships(sq, fuzzifier, axis=-1):
    """log r_ij, as a log-softmax of -log(d^2) / (m - 1).

    A point exactly on a center (d^2 = 0) gets membership 1 there and 0
    elsewhere (the limit; ties go to the first such center), never a NaN.
    """
    on_center = sq <= 0
    hit = jnp.any(on_center, axis=axis, keepdims=True)
    safe = jnp.where(on_center, 1.0, sq)
    soft = jax.nn.log_softmax(-jnp.log(safe) / (fuzzifier - 1.0), axis=axis)
    first = jnp.cumsum(on_center, axis=axis) == 1
    return jnp.where(hit, jnp.where(on_center & first, 0.0, -jnp.inf), soft)


class FuzzyStats(NamedTuple):
    """Statistics of the center weights u_ij = r_ij^m about ``reference``, in log scale.

    ``counts`` sum_i w_i u_ij e^{-log_scale_j} (K,), ``sums`` sum_i w_i u_ij e^{-log_scale_j}
    (x_i - reference_j) (K, D): scaled by a per-center factor so that r^m, which underflows in
    float32 for a large fuzzifier (0.1^100), never has to be formed. The M-step's ratio is
    unchanged by the scale.
    """

    counts: jax.Array
    sums: jax.Array
    reference: jax.Array
    log_scale: jax.Array

    def combine(self, other):
        """Both brought to the larger scale, then added (an empty side counts as scale -inf)."""
        a = jnp.where(self.counts > 0, self.log_scale, -jnp.inf)
        b = jnp.where(other.counts > 0, other.log_scale, -jnp.inf)
        scale = jnp.maximum(jnp.maximum(a, b), jnp.finfo(self.counts.dtype).min)
        fa, fb = jnp.exp(a - scale), jnp.exp(b - scale)
        return FuzzyStats(fa * self.counts + fb * other.counts,
                          fa[:, None] * self.sums + fb[:, None] * other.sums, self.reference, scale)


@dataclasses.dataclass(frozen=True)
class FuzzyCMeans(CentroidModel):
    """Fuzzy c-means with fuzzifier m > 1 (m = 2 is the homework's soft k-means).

    Objective J = sum_i sum_j r_ij^m ||x_i - mu_j||^2 with rows of r on the
    simplex. The E-step sets r to its minimizer for fixed centers; the
    default M-step (``center_update="coordinate_descent"``) sets
    mu_j = sum_i r_ij^m x_i / sum_i r_ij^m, its minimizer for fixed r, so J
    never increases. ``center_update="homework"`` uses the source's literal
    r_ij-weighted update (docs/maths.md section 2 explains why it is a typo): it is
    not a descent step on J and is offered only to reproduce the homework.

    On the EM protocol the "log-likelihood" is -J / N (mean over points), so
    ``fit_em`` treats it like every other family.
    """

    n_clusters: int
    fuzzifier: float = 2.0
    center_update: str = "coordinate_descent"
    params_type = FuzzyCMeansParams

    def __post_init__(self):
        v.check_positive_int("n_clusters", self.n_clusters)
        fuzzifier = v.check_nonnegative_float("fuzzifier", self.fuzzifier)
        if fuzzifier <= 1.0:
            raise ValueError(f"fuzzifier must be > 1, got {self.fuzzifier}.")
        v.check_choice("center_update", self.center_update, CENTER_UPDATES)

    def blend(self, old: FuzzyStats, new: FuzzyStats, rho) -> FuzzyStats:
        """(1 - rho) old + rho new through ``combine``, the factors folded into the log scales; ``old``'s
        sums moved to ``new``'s reference (online EM)."""
        sums = old.sums - old.counts[:, None] * (new.reference - old.reference)
        old = FuzzyStats(old.counts, sums, new.reference, old.log_scale + jnp.log1p(-rho))
        return old.combine(new._replace(log_scale=new.log_scale + jnp.log(rho)))

    def posterior(self, params, x):
        """Memberships r (N, K); rows sum to one."""
        params, x = self.check(params, x)
        return fuzzy_memberships(exact_squared_distances(x.T, params.centers), self.fuzzifier, axis=0).T

    def _summarize(self, params, xt, weights):
        sq = exact_squared_distances(xt, params.centers)
        log_r = log_fuzzy_memberships(sq, self.fuzzifier, axis=0)
        log_rm = self.fuzzifier * log_r
        log_u = log_rm if self.center_update == "coordinate_descent" else log_r
        log_scale = jax.lax.stop_gradient(jnp.max(jnp.where(weights > 0, log_u, -jnp.inf), axis=1))
        log_scale = jnp.maximum(log_scale, jnp.finfo(sq.dtype).min)
        centroid = self._statistics(params.centers, xt, jnp.exp(log_u - log_scale[:, None]) * weights)
        stats = FuzzyStats(centroid.counts, centroid.sums, centroid.reference, log_scale)
        return stats, -jnp.sum(weights * jnp.sum(jnp.exp(log_rm) * sq, axis=0))
