"""The evidence lower bound of a mixture (docs/maths.md section 4)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax.scipy.special import xlogy

from jaxmix import _validation as v
from jaxmix.protocol import Family, LogJoint, require


def elbo(model, params, x, q):
    """ELBO(q, theta) = (1/N) sum_i sum_k q_ik (log p(x_i, z_i = k) - log q_ik), with 0 log 0 = 0.

    It equals ``log p(x) - KL(q || p(z | x))`` averaged over points: at most
    ``model.score(params, x)``, with equality iff q is the posterior
    (docs/maths.md section 4). It is exact, for responsibilities q given as an
    array; ``jaxmix.vae.elbo`` is a Monte Carlo estimate of a VAE's ELBO, with
    q the encoder's reparameterized Gaussian (section 7).

    Args:
      model: any family with a likelihood: ``jaxmix.protocol.Family`` and ``LogJoint``
        (``GaussianMixture``, ``ExponentialMixture``, a family of your own).
      params: its parameters.
      x: data accepted by ``model``.
      q: responsibilities (N, K), non-negative, rows summing to one.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxmix import ExponentialMixture, ExponentialMixtureParams, elbo
      >>> model = ExponentialMixture(2)
      >>> params = ExponentialMixtureParams(jnp.array([0.3, 0.7]), jnp.array([1.0, 5.0]))
      >>> x = jnp.array([0.1, 0.5, 2.0])
      >>> q = model.posterior(params, x)
      >>> bool(jnp.allclose(elbo(model, params, x, q), model.score(params, x)))
      True
    """
    check_mixture(model, "elbo")
    params, x = model.check(params, x)
    q = check_responsibilities(q, x.shape[0], model.n_components)
    return elbo_of_log_joint(model.log_joint(params, x), q)


def elbo_of_log_joint(log_joint, q):
    """The ELBO of log-joints log p(x_i, z_i = k) and responsibilities q, both (N, K); unchecked."""
    # Where q_ik = 0 the term is 0 whatever log p(x_i, k) is (even -inf); the
    # double where keeps the gradient finite there too.
    positive = q > 0
    safe_log_joint = jnp.where(positive, log_joint, 0.0)
    terms = jnp.where(positive, q * safe_log_joint, 0.0) - xlogy(q, q)
    return jnp.mean(jnp.sum(terms, axis=1))


def check_mixture(model, needed_by: str) -> None:
    """TypeError unless ``model`` is a family with a likelihood: ``Family`` and ``LogJoint``
    (k-means and fuzzy c-means have no likelihood, hence no ELBO or gradient of one)."""
    require(model, Family, needed_by)
    require(model, LogJoint, needed_by)


def check_responsibilities(q, n: int, k: int):
    """Responsibilities (N, K): finite, non-negative, rows summing to one (``_validation.check_simplex``)."""
    v.check_shape("q", np.empty(np.shape(q)), (n, k))
    return v.check_simplex("q", q)
