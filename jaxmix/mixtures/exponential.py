"""Mixtures of exponentials: p(x) = sum_j u_j lambda_j exp(-lambda_j x), x >= 0 (docs/maths.md section 3)."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxmix import _validation as v
from jaxmix.mixtures.base import Mixture, safe_logits


class ExponentialMixtureParams(NamedTuple):
    """weights u (K,) on the simplex; rates lambda (K,) > 0."""

    weights: jax.Array
    rates: jax.Array


class ExponentialMixtureUnconstrained(NamedTuple):
    """Free real parameters: weight logits (K,) and log rates (K,)."""

    logits: jax.Array
    log_rates: jax.Array


class ExponentialStats(NamedTuple):
    """Additive statistics: counts n_j = sum_i wr_ij and sums s_j = sum_i wr_ij x_i.

    ``reference`` (K, 1) holds the current means 1 / lambda_j, kept (not summed) when chunks combine.
    """

    shared_fields = ("reference",)  # every block of one E-step is centered on the same points

    counts: jax.Array
    sums: jax.Array
    reference: jax.Array


@dataclasses.dataclass(frozen=True)
class ExponentialMixture(Mixture):
    """A mixture of K exponential distributions on x >= 0.

    Data are of shape (N,) or (N, 1).

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxmix import ExponentialMixture, ExponentialMixtureParams
      >>> model = ExponentialMixture(2)
      >>> params = ExponentialMixtureParams(jnp.array([0.5, 0.5]), jnp.array([1.0, 10.0]))
      >>> model.predict(params, jnp.array([0.01, 3.0])).tolist()
      [1, 0]
    """

    n_components: int

    def __post_init__(self):
        v.check_positive_int("n_components", self.n_components)

    def _check_params(self, params) -> ExponentialMixtureParams:
        if not isinstance(params, ExponentialMixtureParams):
            raise TypeError(f"params must be an ExponentialMixtureParams, got {type(params).__name__}.")
        k = self.n_components
        weights = v.check_weights(params.weights)
        v.check_shape("weights", weights, (k,))
        rates = v.as_float_array("rates", params.rates)
        v.check_shape("rates", rates, (k,))
        v.check_finite("rates", rates)
        v.check_positive("rates", rates)
        return ExponentialMixtureParams(weights, rates)

    def _check_x(self, x, params):
        x = v.as_float_array("x", x)
        if x.ndim == 1:
            x = x[:, None]
        if x.ndim != 2 or x.shape[1] != 1:
            raise ValueError(f"x must have shape (n_samples,) or (n_samples, 1), got {x.shape}.")
        x = v.check_data(x, 1)
        low = v.smallest(x)
        if low is not None and low < 0:
            raise ValueError(
                f"x must be non-negative for an exponential mixture (its density is zero below 0), got min {low}.")
        return x

    def _log_joint(self, params, xt):
        """log u_j + log lambda_j - lambda_j x_i, shape (K, N), for xt (1, N)."""
        rates = params.rates[:, None]
        return jnp.log(params.weights)[:, None] + jnp.log(rates) - rates * xt

    def _reference(self, params):
        return 1.0 / params.rates[:, None]

    def _statistics(self, reference, xt, wr):
        return ExponentialStats(counts=jnp.sum(wr, axis=1), sums=wr @ xt[0], reference=reference)

    def m_step(self, stats: ExponentialStats) -> ExponentialMixtureParams:
        """u_j = n_j / sum_l n_l; lambda_j = n_j / sum_i q_ji x_i (docs/maths.md section 3).

        n_j gets 10 eps added (as for the Gaussian mixture; counts are in
        points, fits scale sample weights to mean one) so an empty component
        gets a tiny weight. A component with s_j = 0 (no points, or only
        points at 0) keeps its rate 1 / reference_j, so no guard is added to
        s_j, whose scale is the data's.
        """
        nk = stats.counts + 10 * jnp.finfo(stats.counts.dtype).eps
        positive = stats.sums > 0
        rates = jnp.where(positive, nk / jnp.where(positive, stats.sums, 1.0), 1.0 / stats.reference[:, 0])
        return ExponentialMixtureParams(nk / jnp.sum(nk), rates)

    def blend(self, old: ExponentialStats, new: ExponentialStats, rho) -> ExponentialStats:
        """(1 - rho) old + rho new for counts and sums (not centered); ``new``'s reference (online EM)."""
        mix = lambda a, b: (1 - rho) * a + rho * b
        return ExponentialStats(mix(old.counts, new.counts), mix(old.sums, new.sums), new.reference)

    def to_unconstrained(self, params: ExponentialMixtureParams) -> ExponentialMixtureUnconstrained:
        """logits = log u (floored at log tiny, as for the Gaussian mixture), log_rates = log lambda."""
        return ExponentialMixtureUnconstrained(safe_logits(params.weights), jnp.log(params.rates))

    def from_unconstrained(self, u: ExponentialMixtureUnconstrained) -> ExponentialMixtureParams:
        """The exact inverse of ``to_unconstrained``: u = softmax(logits), lambda = exp(log_rates)."""
        return ExponentialMixtureParams(jax.nn.softmax(u.logits), jnp.exp(u.log_rates))

    def sample(self, key, params, n: int):
        """Draw n points: z ~ Categorical(u), x = Exp(1) / lambda_z. Returns (x of shape (n,), z)."""
        params = self._check_params(params)
        n = v.check_sample_size(n, 3 * params.rates.dtype.itemsize + 4)
        key_z, key_x = jax.random.split(key)
        z = jax.random.categorical(key_z, jnp.log(params.weights), shape=(n,))
        return jax.random.exponential(key_x, (n,), dtype=params.rates.dtype) / params.rates[z], z

    def n_parameters(self, d: int = 1) -> int:
        """K rates + K - 1 weights."""
        return 2 * self.n_components - 1
