"""What every mixture family shares, written once against its column-layout ``_log_joint``.

A family subclasses ``Mixture`` and supplies, for its parameter NamedTuple:

- ``_check_params(params)``: validate and convert at the public boundary;
- ``_check_x(x, params)``: validate data, return it as an (N, D) array;
- ``_log_joint(params, xt)``: log w_k + log p_k(x_i), shape (K, N), unchecked;
- ``_reference(params)``: the (K, D) point each component's statistics are
  centered on (its current mean), shared by every block of an E-step;
- ``_statistics(reference, xt, wr)``: additive sufficient statistics for the
  weighted responsibilities wr_ik = w_i r_ik, summed from the differences to
  the reference so that float32 does not cancel;
- ``m_step(stats)``, ``sample``, ``n_parameters(d)``.

From those it offers the family protocol (``jaxmix.protocol``: ``check``,
``summarize``, ``from_responsibilities``, ``log_joint``) and ``log_prob``,
``posterior``, ``predict``, ``score``, ``bic``, ``aic``, in log space
(docs/maths.md sections 4 and 5). Public methods validate concrete inputs;
under ``jit``, ``vmap`` and ``grad`` they check shapes only.

Layout: public methods take points as rows, x (N, D), and return (N, K)
arrays, as scikit-learn does. The unchecked functions take points as
columns, xt = x.T of shape (D, N), and return (K, N), so that every
reduction over components runs along the leading axis, vectorized over the
points (faster than rows on XLA's CPU backend: benchmarks/README.md, "Measurements the code relies on").
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

from jaxmix.protocol import ColumnFamily


class Mixture(ColumnFamily):
    """Base class of the mixture families: the protocol and derived quantities from ``_log_joint``."""

    def log_joint(self, params, x):
        """log p(x_i, z_i = k) = log w_k + log p_k(x_i), shape (N, K)."""
        return _rows(_unchanged, self, *self.check(params, x))

    def log_prob(self, params, x):
        """log p(x_i) = logsumexp_k log p(x_i, z_i = k), shape (N,)."""
        return _rows(_log_prob, self, *self.check(params, x))

    def posterior(self, params, x):
        """Responsibilities r_ik = p(z_i = k | x_i), shape (N, K); rows sum to one."""
        return _rows(_posterior, self, *self.check(params, x))

    def predict(self, params, x):
        """The most probable component of each point, shape (N,)."""
        return _rows(_most_probable, self, *self.check(params, x))

    def score(self, params, x):
        """The mean log-likelihood (1/N) sum_i log p(x_i)."""
        return jnp.mean(self.log_prob(params, x))

    def bic(self, params, x):
        """Bayesian information criterion -2 N score + p log N (lower is better; docs/maths.md section 9)."""
        params, x = self.check(params, x)
        n, d = x.shape
        return -2.0 * n * self.score(params, x) + self.n_parameters(d) * math.log(n)

    def aic(self, params, x):
        """Akaike information criterion -2 N score + 2 p (lower is better; docs/maths.md section 9)."""
        params, x = self.check(params, x)
        n, d = x.shape
        return -2.0 * n * self.score(params, x) + 2 * self.n_parameters(d)

    def _summarize(self, params, xt, weights):
        """The E-step on columns: (stats, sum_i w_i log p(x_i)) for xt (D, n) and weights w (n,).

        One exp per entry: r_ik = e_ik / s_i with e_ik = exp(l_ik - max_k l_ik), s_i = sum_k e_ik,
        and log p(x_i) = max_k l_ik + log s_i.
        """
        log_joint = self._log_joint(params, xt)
        largest = jax.lax.stop_gradient(jnp.max(log_joint, axis=0))
        e = jnp.exp(log_joint - largest)
        total = jnp.sum(e, axis=0)
        wr = e * (weights / total)
        log_prob = largest + jnp.log(total)
        return self._statistics(self._reference(params), xt, wr), jnp.sum(weights * log_prob)

    def _from_statistics(self, stats):
        return self.m_step(stats)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _rows(reduce, model, params, x):
    """``reduce`` of ``model._log_joint`` of rows (N, K), compiled once per reduction, model and shapes
    (called eagerly, its loops, factorizations and reductions would otherwise dispatch op by op, each
    compiled for every new number of rows)."""
    return reduce(model._log_joint(params, x.T).T)


def _unchanged(log_joint):
    return log_joint


def _log_prob(log_joint):
    return logsumexp(log_joint, axis=1)


def _posterior(log_joint):
    return jax.nn.softmax(log_joint, axis=1)


def _most_probable(log_joint):
    return jnp.argmax(log_joint, axis=1)


def safe_logits(weights):
    """log w with weights floored at machine epsilon, so logits and their gradients stay finite.

    Through softmax and log, a weight far below eps would make 1/w overflow in the
    gradient; the floor changes only weights that are already negligible.
    """
    return jnp.log(jnp.maximum(weights, jnp.finfo(weights.dtype).eps))
