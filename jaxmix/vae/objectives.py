"""The VAE's densities and bounds (docs/maths.md section 7): log p_theta(x | z), log p(z), the closed-form
Gaussian KL, the Monte Carlo ELBO and the importance-weighted (IWAE) bound."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

from jaxmix import _validation as v
from jaxmix.mixtures.covariance import _LOG_2PI
from jaxmix.vae.model import check_params, check_z, checked, decoder_output, encoder_output

# -- unchecked building blocks ----------------------------------------------------------------


def _log_likelihood(model, params, x, z):
    """log p_theta(x | z), summed over features; z (..., N, L) broadcasts against x (N, D)."""
    out = decoder_output(model, params, z)
    if model.decoder == "bernoulli":
        return jnp.sum(x * out - jax.nn.softplus(out), axis=-1)
    log_std = params.decoder_log_std if model.decoder_std is None else jnp.log(model.decoder_std)
    residual = (x - out) * jnp.exp(-log_std)
    return -0.5 * jnp.sum(jnp.square(residual), axis=-1) - model.n_features * (log_std + 0.5 * _LOG_2PI)


def _log_prior(model, params, z):
    """log p(z) for z (..., L): N(0, I), or logsumexp_k of the mixture's log w_k + log N(z; m_k, S_k)."""
    mixture = model.prior_mixture
    if mixture is None:
        return -0.5 * jnp.sum(jnp.square(z) + _LOG_2PI, axis=-1)
    log_joint = mixture.log_joint(mixture.from_unconstrained(params.prior), z.reshape(-1, z.shape[-1]))
    return logsumexp(log_joint, axis=1).reshape(z.shape[:-1])


def gaussian_kl(mean, log_var):
    """KL(N(mu, diag e^lv) || N(0, I)) = 1/2 sum_l (e^lv_l + mu_l^2 - 1 - lv_l), over the last axis."""
    return 0.5 * jnp.sum(jnp.exp(log_var) + jnp.square(mean) - 1.0 - log_var, axis=-1)


def _samples(key, model, params, x, n_samples):
    """Reparameterized draws z = mu + sigma eps (S, N, L) with log p(x|z), log p(z), log q(z|x), each (S, N)."""
    mean, log_var = encoder_output(model, params, x)
    eps = jax.random.normal(key, (n_samples, *mean.shape), mean.dtype)
    z = mean + jnp.exp(0.5 * log_var) * eps
    log_q = -0.5 * jnp.sum(jnp.square(eps) + log_var + _LOG_2PI, axis=-1)
    return (mean, log_var), _log_likelihood(model, params, x, z), _log_prior(model, params, z), log_q


def elbo_terms(key, model, params, x, n_samples):
    """Per point (N,): the reconstruction term E_q[log p(x|z)] and KL(q(z|x) || p(z)), each estimated
    from ``n_samples`` draws, the KL in closed form for the N(0, I) prior."""
    (mean, log_var), log_px, log_pz, log_q = _samples(key, model, params, x, n_samples)
    if model.n_components is None:
        kl = gaussian_kl(mean, log_var)
    else:
        kl = jnp.mean(log_q - log_pz, axis=0)
    return jnp.mean(log_px, axis=0), kl


@functools.partial(jax.jit, static_argnames=("model", "n_samples"))
def elbo_unchecked(key, model, params, x, n_samples):
    """The mean over points of ``elbo_terms``' reconstruction - KL, jitted."""
    reconstruction, kl = elbo_terms(key, model, params, x, n_samples)
    return jnp.mean(reconstruction - kl)


@functools.partial(jax.jit, static_argnames=("model", "n_samples"))
def _iwae(key, model, params, x, n_samples):
    _, log_px, log_pz, log_q = _samples(key, model, params, x, n_samples)
    return jnp.mean(logsumexp(log_px + log_pz - log_q, axis=0) - math.log(n_samples))


# -- checked public functions --------------------------------------------------------------------


def log_likelihood(model, params, x, z):
    """log p_theta(x_i | z_i) (N,), the decoder's log-density summed over features."""
    params, x = checked(model, params, x)
    return _log_likelihood(model, params, x, check_z(model, z))


def log_prior(model, params, z):
    """log p(z_i) (N,): N(0, I), or the mixture's logsumexp_k [log w_k + log N(z_i; m_k, S_k)]."""
    params = check_params(model, params)
    return _log_prior(model, params, check_z(model, z))


def elbo(key, model, params, x, *, n_samples: int = 1):
    """The mean over points of ELBO(x_i) = E_q[log p(x_i | z)] - KL(q(z | x_i) || p(z)) (docs/maths.md section 7).

    The expectation is averaged over ``n_samples`` reparameterized draws z = mu + sigma eps. For the
    N(0, I) prior the KL is exact, 1/2 sum (sigma^2 + mu^2 - 1 - log sigma^2); for the mixture prior, whose
    KL has no closed form, the per-draw estimate log p(x|z) + log p(z) - log q(z|x) is averaged instead.
    Unbiased for the ELBO, which is at most log p_theta(x), with equality iff q = p_theta(z | x).

    Not ``jaxmix.elbo``: that is the exact ELBO of a mixture model for given responsibilities q over its
    K discrete components (docs/maths.md section 4), a sum with no sampling; this one is a Monte Carlo
    estimate for a continuous latent z, with q the amortized encoder q_phi(z | x), reparameterized.
    """
    params, x = checked(model, params, x)
    return elbo_unchecked(key, model, params, x, v.check_positive_int("n_samples", n_samples))


def iwae_bound(key, model, params, x, *, n_samples: int):
    """The importance-weighted bound, mean over points (Burda et al. 2016), with S = ``n_samples``:

        IWAE_S(x) = E[ log (1/S) sum_s p(x, z_s) / q(z_s | x) ],  z_s ~ q(z | x) independently.

    IWAE_1 is the ELBO; IWAE_S is non-decreasing in S and tends to log p_theta(x) as S grows.
    """
    params, x = checked(model, params, x)
    return _iwae(key, model, params, x, v.check_positive_int("n_samples", n_samples))
