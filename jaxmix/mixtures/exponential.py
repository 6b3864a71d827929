"""Mixtures of exponentials over D features, independent within a component:
p(x) = sum_j u_j prod_d lambda_jd exp(-lambda_jd x_d), x >= 0 (docs/maths.md section 3)."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmix import _validation as v
from jaxmix.mixtures.base import Mixture, safe_logits


class ExponentialMixtureParams(NamedTuple):
    """weights u (K,) on the simplex; rates lambda > 0, (K,) for one feature, (K, D) for D >= 2."""

    weights: jax.Array
    rates: jax.Array


class ExponentialMixtureUnconstrained(NamedTuple):
    """Free real parameters: weight logits (K,) and log rates (the rates' shape)."""

    logits: jax.Array
    log_rates: jax.Array


class ExponentialStats(NamedTuple):
    """Additive statistics: counts n_j = sum_i wr_ij (K,) and sums s_jd = sum_i wr_ij x_id (K, D).

    ``reference`` (K, D) holds the current means 1 / lambda_jd, kept (not summed) when chunks combine.
    """

    shared_fields = ("reference",)  # every block of one E-step is centered on the same points

    counts: jax.Array
    sums: jax.Array
    reference: jax.Array


@dataclasses.dataclass(frozen=True)
class ExponentialMixture(Mixture):
    """A mixture of K products of D independent exponential distributions on x >= 0.

    The parameters fix D: rates (K,) model one feature, with data of shape (N,) or (N, 1); rates (K, D)
    model D >= 2 features, with data (N, D).

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
        if rates.ndim == 1 or (rates.ndim == 2 and rates.shape[1] > 1):
            v.check_shape("rates", rates, (k,) + rates.shape[1:])
        else:
            raise ValueError(f"rates must have shape ({k},) for one feature or ({k}, D) for D >= 2 features, "
                             f"got {tuple(rates.shape)}.")
        v.check_finite("rates", rates)
        v.check_positive("rates", rates)
        return ExponentialMixtureParams(weights, rates)

    def _check_x(self, x, params):
        """x as (N, D), D that of the params' rates (any D without params); (N,) is one feature."""
        d = None if params is None else _n_features(params.rates)
        x = v.as_float_array("x", x)
        if x.ndim == 1 and d in (None, 1):
            x = x[:, None]
        if d is not None and (x.ndim != 2 or x.shape[1] != d):
            want = "(n_samples,) or (n_samples, 1)" if d == 1 else f"(n_samples, {d})"
            raise ValueError(f"x must have shape {want} for rates of shape {tuple(params.rates.shape)}, "
                             f"got {x.shape}.")
        x = v.check_data(x)
        low = v.smallest(x)
        if low is not None and low < 0:
            raise ValueError(
                f"x must be non-negative for an exponential mixture (its density is zero below 0), got min {low}.")
        return x

    def check_fit(self, x, weights):
        """ValueError for a feature that is 0 at every point of positive weight: its rate's
        maximum-likelihood value, n_j / sum_i q_ji x_id (docs/maths.md section 3), is infinite."""
        summary = v.largest_per_column(x, weights)
        zero = [] if summary is None else np.flatnonzero(summary[0] <= 0).tolist()
        if zero:
            n = summary[1]
            raise ValueError(
                f"feature(s) {zero} of x are 0 at all n_samples={n} points with positive weight: an exponential "
                "mixture's rate for such a feature, one over its mean, would be infinite; drop the feature(s).")

    def _log_joint(self, params, xt):
        """log u_j + sum_d (log lambda_jd - lambda_jd x_id), shape (K, N), for xt (D, N)."""
        rates = _columns(params.rates)
        log_norm = jnp.log(params.weights) + jnp.sum(jnp.log(rates), axis=1)
        return log_norm[:, None] - jnp.sum(rates[:, :, None] * xt, axis=1)

    def _reference(self, params):
        return 1.0 / _columns(params.rates)

    def _statistics(self, reference, xt, wr):
        return ExponentialStats(counts=jnp.sum(wr, axis=1), sums=wr @ xt.T, reference=reference)

    def m_step(self, stats: ExponentialStats) -> ExponentialMixtureParams:
        """u_j = n_j / sum_l n_l; lambda_jd = n_j / sum_i q_ji x_id (docs/maths.md section 3).

        Rates (K,) when the reference has one feature, else (K, D). n_j gets
        10 eps added (as for the Gaussian mixture; counts are in points, fits
        scale sample weights to mean one) so an empty component gets a tiny
        weight. A rate with s_jd = 0 (no points, or only points at 0 in that
        feature) stays 1 / reference_jd, so no guard is added to s_jd, whose
        scale is the data's.
        """
        nk = stats.counts + 10 * jnp.finfo(stats.counts.dtype).eps
        positive = stats.sums > 0
        rates = jnp.where(positive, nk[:, None] / jnp.where(positive, stats.sums, 1.0), 1.0 / stats.reference)
        return ExponentialMixtureParams(nk / jnp.sum(nk), rates[:, 0] if rates.shape[1] == 1 else rates)

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
        """Draw n points: z ~ Categorical(u), x_d = Exp(1) / lambda_zd. Returns (x, z), x of shape (n,) for
        rates (K,), (n, D) for rates (K, D)."""
        params = self._check_params(params)
        n = v.check_sample_size(n, (2 + _n_features(params.rates)) * params.rates.dtype.itemsize + 4)
        key_z, key_x = jax.random.split(key)
        z = jax.random.categorical(key_z, jnp.log(params.weights), shape=(n,))
        x = jax.random.exponential(key_x, (n,) + params.rates.shape[1:], dtype=params.rates.dtype)
        return x / params.rates[z], z

    def n_parameters(self, d: int = 1) -> int:
        """K D rates + K - 1 weights."""
        return self.n_components * d + self.n_components - 1


def _n_features(rates) -> int:
    """D of rates (K,) (one feature) or (K, D)."""
    return 1 if rates.ndim == 1 else rates.shape[1]


def _columns(rates):
    """Rates as (K, D): (K,) becomes (K, 1)."""
    return rates.reshape(rates.shape[0], -1)
