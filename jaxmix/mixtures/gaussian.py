"""Gaussian mixtures: p(x) = sum_k w_k N(x; mu_k, Sigma_k) (docs/maths.md section 5)."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxmix import _validation as v
from jaxmix.mixtures.base import Mixture, safe_logits
from jaxmix.mixtures.covariance import COVARIANCE_TYPES

FULL_BLOCK = 2048  # points per block of a full or tied E-step (``GaussianMixture.block_points``)
BLOCKED = ("full", "tied")  # covariance types whose E-step runs over blocks of FULL_BLOCK points


class GaussianMixtureParams(NamedTuple):
    """Parameters in scikit-learn's shapes.

    weights (K,); means (K, D); covariances full (K, D, D), diag (K, D),
    spherical (K,), tied (D, D) or ``None`` for identity.
    """

    weights: jax.Array
    means: jax.Array
    covariances: jax.Array | None


class GaussianMixtureUnconstrained(NamedTuple):
    """Free real parameters: weight logits (K,), means (K, D), and the covariance type's
    unconstrained form (log-Cholesky factors, log variances, or None for identity)."""

    logits: jax.Array
    means: jax.Array
    covariances: jax.Array | None


class GaussianStats(NamedTuple):
    """Additive sufficient statistics of weighted responsibilities wr_ik.

    With y_ik = x_i - reference_k (the means the E-step ran with, shared by
    every chunk): ``counts`` n_k = sum_i wr_ik; ``sums`` sum_i wr_ik y_ik;
    ``scatter`` the covariance type's second moment of y (full (K, D, D),
    tied (D, D), diag and spherical (K, D), identity None). Both are summed
    from the differences y_ik themselves, about the current means, which
    keeps float32 second moments free of the cancellation in
    E[x x^T] - mu mu^T (scikit-learn issue 30382) and exactly zero for a
    feature that is constant within a component. ``reference`` is shared,
    not summed, when chunks are combined.
    """

    shared_fields = ("reference",)  # every block of one E-step is centered on the same points

    counts: jax.Array
    sums: jax.Array
    scatter: jax.Array | None
    reference: jax.Array


@dataclasses.dataclass(frozen=True)
class GaussianMixture(Mixture):
    """A mixture of K Gaussians; a frozen, hashable configuration.

    Args:
      n_components: K >= 1.
      covariance_type: ``"full"``, ``"diag"``, ``"spherical"``, ``"tied"`` or
        ``"identity"`` (Sigma_k = I; only weights and means are learned).
      reg_covar: ridge added to covariance diagonals in the M-step, as in
        scikit-learn.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxmix import GaussianMixture, GaussianMixtureParams
      >>> model = GaussianMixture(2, covariance_type="spherical")
      >>> params = GaussianMixtureParams(
      ...     weights=jnp.array([0.5, 0.5]), means=jnp.array([[0.0], [4.0]]),
      ...     covariances=jnp.array([1.0, 1.0]))
      >>> model.predict(params, jnp.array([[0.2], [3.5]])).tolist()
      [0, 1]
    """

    n_components: int
    covariance_type: str = "full"
    reg_covar: float = 1e-6

    def __post_init__(self):
        v.check_positive_int("n_components", self.n_components)
        v.check_choice("covariance_type", self.covariance_type, COVARIANCE_TYPES)
        v.check_nonnegative_float("reg_covar", self.reg_covar)

    @property
    def _cov(self):
        return COVARIANCE_TYPES[self.covariance_type]

    @property
    def block_points(self) -> int | None:
        """``FULL_BLOCK`` for full and tied covariances: their E-step's per-component products and
        differences then stay in the CPU's caches (benchmarks/README.md, "Measurements the code relies on")."""
        return FULL_BLOCK if self.covariance_type in BLOCKED else None

    @property
    def compiler_options(self) -> dict:
        """XLA options for this mixture's EM programs (``jaxmix.protocol.FAST_COMPILE_OPTIONS``
        for full and tied covariances)."""
        return getattr(self._cov, "compiler_options", {})

    def _check_params(self, params) -> GaussianMixtureParams:
        if not isinstance(params, GaussianMixtureParams):
            raise TypeError(f"params must be a GaussianMixtureParams, got {type(params).__name__}.")
        k = self.n_components
        weights = v.check_weights(params.weights)
        v.check_shape("weights", weights, (k,))
        means = v.as_float_array("means", params.means)
        if means.ndim != 2 or means.shape[0] != k:
            raise ValueError(f"means must have shape (n_components={k}, n_features), got {means.shape}.")
        v.check_finite("means", means)
        cov = params.covariances
        expected = self._cov.shape(k, means.shape[1])
        if (cov is None) != (expected is None):
            raise ValueError(
                f"covariances must be {'None' if expected is None else f'an array of shape {expected}'} for "
                f"covariance_type={self.covariance_type!r}, got "
                f"{'None' if cov is None else f'shape {jnp.shape(cov)}'}."
            )
        if cov is not None:
            cov = v.as_float_array("covariances", cov)
        self._cov.validate(cov, k, means.shape[1])
        return GaussianMixtureParams(weights, means, cov)

    def _check_x(self, x, params):
        return v.check_data(x, None if params is None else params.means.shape[1])

    def _log_joint(self, params, xt):
        return jnp.log(params.weights)[:, None] + self._cov.log_prob(xt, params.means, params.covariances)

    def _reference(self, params):
        return params.means

    def _statistics(self, reference, xt, wr):
        sums, scatter = self._cov.moments(xt, reference, wr)
        return GaussianStats(jnp.sum(wr, axis=1), sums, scatter, reference)

    def m_step(self, stats: GaussianStats) -> GaussianMixtureParams:
        """Closed-form M-step (docs/maths.md section 5), as scikit-learn computes it.

        w_k = n_k / sum_l n_l, mu_k = reference_k + sums_k / n_k,
        Sigma_k = scatter_k / n_k - (mu_k - ref_k)(mu_k - ref_k)^T + reg_covar I.
        Like scikit-learn, n_k gets 10 eps added: an empty component keeps
        its mean (the reference), gets a weight of about 10 eps / N and the
        covariance reg_covar * I (identity: I). Nothing becomes NaN.
        """
        nk = stats.counts + 10 * jnp.finfo(stats.counts.dtype).eps
        shift = stats.sums / nk[:, None]
        covariances = self._cov.estimate(stats.scatter, nk, shift, self.reg_covar)
        return GaussianMixtureParams(nk / jnp.sum(nk), stats.reference + shift, covariances)

    def blend(self, old: GaussianStats, new: GaussianStats, rho) -> GaussianStats:
        """(1 - rho) old + rho new, ``old`` first moved to ``new``'s reference (``recenter``; online EM)."""
        delta = new.reference - old.reference
        sums = old.sums - old.counts[:, None] * delta
        scatter = self._cov.recenter(old.scatter, old.counts, old.sums, delta)
        return jax.tree_util.tree_map(lambda a, b: (1 - rho) * a + rho * b,
                                      GaussianStats(old.counts, sums, scatter, new.reference), new)

    def to_unconstrained(self, params: GaussianMixtureParams) -> GaussianMixtureUnconstrained:
        """Map to free parameters: logits = log w, log-Cholesky or log-variance covariances.

        A weight below machine epsilon (0 included) maps to the logit log(eps), so gradients stay finite;
        ``from_unconstrained`` inverts this map exactly (up to that floor and a constant in the logits).
        """
        return GaussianMixtureUnconstrained(
            safe_logits(params.weights), params.means, self._cov.to_unconstrained(params.covariances))

    def from_unconstrained(self, u: GaussianMixtureUnconstrained) -> GaussianMixtureParams:
        """The exact inverse of ``to_unconstrained``: w = softmax(logits), Sigma = L L^T, var = exp(.)."""
        return GaussianMixtureParams(
            jax.nn.softmax(u.logits), u.means, self._cov.from_unconstrained(u.covariances))

    def sample(self, key, params, n: int):
        """Draw n points: z ~ Categorical(w), x = mu_z + Sigma_z^{1/2} eps. Returns (x, z)."""
        params = self._check_params(params)
        d, itemsize = params.means.shape[1], params.means.dtype.itemsize
        n = v.check_sample_size(n, (3 * d + 1) * itemsize + 4)  # x, the noise and its scaled copy; z
        key_z, key_x = jax.random.split(key)
        z = jax.random.categorical(key_z, jnp.log(params.weights), shape=(n,))
        eps = jax.random.normal(key_x, (n, params.means.shape[1]), dtype=params.means.dtype)
        return params.means[z] + self._cov.scale_noise(params.covariances, z, eps), z

    def n_parameters(self, d: int) -> int:
        """Free parameters for D features: covariances + K D means + K - 1 weights."""
        k = self.n_components
        return self._cov.n_parameters(k, d) + k * d + k - 1
