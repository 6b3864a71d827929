"""Variational autoencoders: the amortized ELBO, the IWAE bound and a Gaussian-mixture prior (docs/maths.md section 7).

The generative model is p_theta(x, z) = p(z) p_theta(x | z) with z in R^L and a decoder network f_theta:

- Gaussian decoder p_theta(x | z) = N(x; f_theta(z), sigma^2 I), sigma learned or fixed;
- Bernoulli decoder log p_theta(x | z) = sum_d x_d l_d - softplus(l_d), logits l = f_theta(z), for x in [0, 1];
- prior p(z) = N(0, I), or a mixture sum_k w_k N(z; m_k, S_k) with learnable w, m, S, whose log-density,
  samples, parameterization and component posterior are ``GaussianMixture(K, prior_covariance)``'s:
  w = softmax(logits), and S_k = diag(exp u_k) (``"diag"``), exp(u_k) I (``"spherical"``) or C_k C_k^T
  with C_k lower triangular, u_k its strict lower part and log diagonal (``"full"``, log-Cholesky).

The encoder q_phi(z | x) = N(mu_phi(x), diag sigma_phi(x)^2) outputs mu and log sigma^2 from one MLP.
It replaces EM's exact E-step (docs/maths.md section 4) by an amortized one, so

    ELBO(x) = E_q[log p_theta(x | z)] - KL(q_phi(z | x) || p(z))  <=  log p_theta(x),

with the expectation estimated by reparameterization z = mu + sigma * eps, eps ~ N(0, I), and the KL in
closed form for the N(0, I) prior. Configuration is a frozen, hashable ``VAE``; parameters are the
``VAEParams`` pytree; the functions here are pure and compose with ``jit``, ``vmap`` and ``grad``
(``fit`` is the one driver with its own jit).

Modules: ``mlp`` (the networks), ``model`` (``VAE``, ``VAEParams``, ``init``, ``encode``, ``decode``),
``objectives`` (densities, KL, ELBO, IWAE bound), ``latent`` (``cluster``, ``sample``), ``training``
(``fit``); every public name is re-exported here. ``jaxmix.save`` and ``jaxmix.load`` save and load a
``VAE`` with its ``VAEParams`` or ``VAEFitResult``.
"""

from jaxmix.vae.latent import cluster, sample
from jaxmix.vae.mlp import ACTIVATIONS, Dense, mlp_apply, mlp_init
from jaxmix.vae.model import DECODERS, PRIOR_COVARIANCES, VAE, VAEParams, decode, encode, init
from jaxmix.vae.objectives import elbo, gaussian_kl, iwae_bound, log_likelihood, log_prior
from jaxmix.vae.training import FitHistory, VAEFitResult, fit

__all__ = [
    "ACTIVATIONS",
    "DECODERS",
    "Dense",
    "FitHistory",
    "PRIOR_COVARIANCES",
    "VAE",
    "VAEFitResult",
    "VAEParams",
    "cluster",
    "decode",
    "elbo",
    "encode",
    "fit",
    "gaussian_kl",
    "init",
    "iwae_bound",
    "log_likelihood",
    "log_prior",
    "mlp_apply",
    "mlp_init",
    "sample",
]
