"""What every mixture family shares, written once against its ``log_joint``.

A family subclasses ``Mixture`` and supplies, for its parameter NamedTuple:

- ``_check_params(params)``: validate and convert at the public boundary;
- ``_check_x(x, params)``: validate data, return it as an (N, D) array;
- ``_log_joint(params, x)``: log w_k + log p_k(x_i), shape (N, K), unchecked;
- ``_reference(params)``: the (K, D) point each component's statistics are
  centered on (its current mean), shared by every chunk of an E-step;
- ``_statistics(reference, x, wr)``: additive sufficient statistics for the
  weighted responsibilities wr_ik = w_i r_ik (the EM protocol);
- ``m_step(stats)``, ``sample``, ``n_parameters(d)``.

Everything else here (``log_prob``, ``posterior``, ``predict``, ``score``,
``bic``, ``aic``, ``e_step``) follows from those, in log space (MATH.md
sections 4 and 5). Public methods validate concrete inputs and then call the
unchecked ``_`` functions, which are pure and safe under ``jit``, ``vmap``
and ``grad``.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jax.scipy.special import logsumexp

from jaxmix import _validation as v


class Mixture:
    """Base class of the mixture families: derived quantities from ``log_joint``."""

    # -- checked public API -------------------------------------------------

    def _checked(self, params, x):
        params = self._check_params(params)
        return params, self._check_x(x, params)

    def log_joint(self, params, x):
        """log p(x_i, z_i = k) = log w_k + log p_k(x_i), shape (N, K)."""
        return self._log_joint(*self._checked(params, x))

    def log_prob(self, params, x):
        """log p(x_i) = logsumexp_k log p(x_i, z_i = k), shape (N,)."""
        return logsumexp(self.log_joint(params, x), axis=1)

    def posterior(self, params, x):
        """Responsibilities r_ik = p(z_i = k | x_i), shape (N, K); rows sum to one."""
        return self._posterior(*self._checked(params, x))

    def predict(self, params, x):
        """The most probable component of each point, shape (N,)."""
        return jnp.argmax(self.log_joint(params, x), axis=1)

    def score(self, params, x):
        """The mean log-likelihood (1/N) sum_i log p(x_i)."""
        return jnp.mean(self.log_prob(params, x))

    def bic(self, params, x):
        """Bayesian information criterion -2 N score + p log N (lower is better)."""
        params, x = self._checked(params, x)
        n, d = x.shape
        return -2.0 * n * self._score(params, x) + self.n_parameters(d) * math.log(n)

    def aic(self, params, x):
        """Akaike information criterion -2 N score + 2 p (lower is better)."""
        params, x = self._checked(params, x)
        n, d = x.shape
        return -2.0 * n * self._score(params, x) + 2 * self.n_parameters(d)

    def e_step(self, params, x, sample_weight=None):
        """E-step: ``(stats, log_likelihood)``.

        ``stats`` are the additive sufficient statistics of the posterior
        responsibilities weighted by ``sample_weight`` (a NamedTuple; chunks
        combine with ``jaxmix.combine_stats``); ``log_likelihood`` is the
        weighted mean log-likelihood of ``params`` on x.
        """
        from jaxmix.em import e_step  # the driver's chunked E-step, shared by every family

        params, x = self._checked(params, x)
        return e_step(self, params, x, v.check_sample_weight(sample_weight, x.shape[0]))

    def init(self, key, x, method: str = "kmeans", sample_weight=None):
        """Initial parameters: the M-step of responsibilities from ``method``.

        ``"kmeans"`` (k-means++ then a few Lloyd steps, scikit-learn's default),
        ``"kmeans++"`` and ``"random_from_data"`` assign each point to its
        nearest initial center; ``"random"`` draws random responsibilities.
        """
        from jaxmix import _init  # _init imports the EM driver and KMeans

        return _init.init(self, key, x, method, sample_weight)

    # -- unchecked building blocks -----------------------------------------

    def _posterior(self, params, x):
        log_joint = self._log_joint(params, x)
        return jnp.exp(log_joint - logsumexp(log_joint, axis=1, keepdims=True))

    def _score(self, params, x):
        return jnp.mean(logsumexp(self._log_joint(params, x), axis=1))

    def _accumulate(self, params, x, weights):
        """(stats, sum_i w_i log p(x_i)) for per-point weights w (N,): the unchecked E-step."""
        log_joint = self._log_joint(params, x)
        log_prob = logsumexp(log_joint, axis=1, keepdims=True)
        wr = jnp.exp(log_joint - log_prob) * weights[:, None]
        return self._statistics(self._reference(params), x, wr), jnp.sum(weights * log_prob[:, 0])


def safe_logits(weights):
    """log w with weights floored at machine epsilon, so logits and their gradients stay finite.

    Through softmax and log, a weight far below eps would make 1/w overflow in the
    gradient; the floor changes only weights that are already negligible.
    """
    return jnp.log(jnp.maximum(weights, jnp.finfo(weights.dtype).eps))
