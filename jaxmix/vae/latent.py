"""What the latent space gives: clusters by the mixture prior's posterior, and draws from the prior
decoded to data space."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxmix import _validation as v
from jaxmix.vae.model import check_params, checked, decoder_mean, encoder_output


def cluster(model, params, x):
    """Cluster by the mixture prior: ``(labels (N,), responsibilities (N, K))`` of z = mu_phi(x), with
    r_ik = w_k N(z_i; m_k, S_k) / sum_j w_j N(z_i; m_j, S_j) (the E-step of docs/maths.md section 5)."""
    params, x = checked(model, params, x)
    if model.n_components is None:
        raise ValueError("cluster needs a mixture prior; model.n_components is None (prior N(0, I)).")
    return _cluster(model, params, x)


@functools.partial(jax.jit, static_argnames="model")
def _cluster(model, params, x):
    mixture = model.prior_mixture
    z = encoder_output(model, params, x)[0]
    responsibilities = mixture.posterior(mixture.from_unconstrained(params.prior), z)
    return jnp.argmax(responsibilities, axis=1), responsibilities


def sample(key, model, params, n: int):
    """``(x_mean, z)``: n latent draws z ~ p(z) (n, L) and their decoded means E[x | z] (n, D)."""
    params = check_params(model, params)
    itemsize = params.decoder[0].weights.dtype.itemsize
    widest = max((model.latent_dim, model.n_features, *model.hidden_sizes))
    return _sample(key, model, params, v.check_sample_size(n, 3 * widest * itemsize))


@functools.partial(jax.jit, static_argnames=("model", "n"))
def _sample(key, model, params, n):
    mixture = model.prior_mixture
    if mixture is None:
        z = jax.random.normal(key, (n, model.latent_dim), params.decoder[0].weights.dtype)
    else:
        z = mixture.sample(key, mixture.from_unconstrained(params.prior), n)[0]
    return decoder_mean(model, params, z), z
