"""A multivariate Bernoulli mixture on ``jaxmix.protocol`` alone (docs/maths.md sections 4, 11).

log p(x_i, z_i = k) = log w_k + sum_d [x_id log p_kd + (1 - x_id) log(1 - p_kd)]; with n_k = sum_i w_i r_ik
and s_k = sum_i w_i r_ik x_i, EM's M-step is w_k = n_k / sum(n), p_k = (s_k + alpha) / (n_k + 2 alpha).
"""

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.scipy.special import expit, logit, logsumexp
from sklearn.datasets import load_digits

import jaxmix


class BernoulliParams(NamedTuple):
    weights: jax.Array  # (K,) mixing weights w_k
    probs: jax.Array  # (K, D) p_kd = P(x_d = 1 | z = k)


class BernoulliStats(NamedTuple):
    counts: jax.Array  # (K,) n_k = sum_i w_i r_ik
    ones: jax.Array  # (K, D) s_k = sum_i w_i r_ik x_i

    @classmethod
    def of(cls, x, wr):  # rows x (N, D), weighted responsibilities wr_ik = w_i r_ik (N, K)
        return cls(jnp.sum(wr, axis=0), wr.T @ x)


@dataclasses.dataclass(frozen=True)
class BernoulliMixture:
    """K multivariate Bernoulli components (frozen, hashable: the drivers' static argument). ``alpha`` is
    Laplace smoothing, a Beta(1 + alpha, 1 + alpha) prior on each p_kd: probs stay in (0, 1), so no log is
    -inf; EM ascends L + (alpha / N) sum_kd log(p_kd (1 - p_kd)), L the mean log-likelihood."""
    n_components: int
    alpha: float = 1e-3

    def check(self, params, x):
        if (x := np.asarray(x)).ndim != 2 or not np.all((x == 0) | (x == 1)):  # NaN and inf fail too
            raise ValueError(f"x must be a 2-D array of zeros and ones (binarize it), got shape {x.shape}.")
        x = jnp.asarray(x, dtype=float)
        if params is not None:
            params = BernoulliParams(*(jnp.asarray(a, x.dtype) for a in params))
            shapes, k = (params.weights.shape, params.probs.shape), self.n_components
            if shapes != ((k,), (k, x.shape[1])):
                raise ValueError(f"params must be weights ({k},), probs ({k}, {x.shape[1]}); got {shapes}.")
        return params, x

    def log_joint(self, params, x):  # (N, K): log w_k + sum_d log(1 - p_kd) + x_i . logit(p_k)
        log_q = jnp.log1p(-params.probs)
        return jnp.log(params.weights) + jnp.sum(log_q, axis=1) + x @ (jnp.log(params.probs) - log_q).T

    def summarize(self, params, x, weights):
        log_joint = self.log_joint(params, x)
        log_px = logsumexp(log_joint, axis=1)
        return BernoulliStats.of(x, weights[:, None] * jnp.exp(log_joint - log_px[:, None])), weights @ log_px

    def m_step(self, stats):
        probs = (stats.ones + self.alpha) / (stats.counts[:, None] + 2 * self.alpha)
        return BernoulliParams(stats.counts / jnp.sum(stats.counts), probs)

    def from_responsibilities(self, x, responsibilities, weights):
        return self.m_step(BernoulliStats.of(x, weights[:, None] * responsibilities))

    def to_unconstrained(self, params):  # free parameters (log w, logit p); w = softmax(log w)
        return jnp.log(params.weights), logit(params.probs)

    def from_unconstrained(self, u):
        return BernoulliParams(jax.nn.softmax(u[0]), expit(u[1]))

    def n_parameters(self, d):  # for BIC and AIC in select_components
        return self.n_components * (d + 1) - 1


def main():
    digits, model = load_digits(), BernoulliMixture(10)
    _, x = model.check(None, digits.data / 16 > 0.5)

    def report(name, result):  # purity: the share of points in their cluster's majority digit
        clusters = np.asarray(jnp.argmax(model.log_joint(result.params, x), axis=1))
        purity = sum(np.bincount(digits.target[clusters == c]).max() for c in np.unique(clusters)) / len(x)
        print(f"{name:<32} mean log-likelihood {float(result.log_likelihood):8.3f}, purity {purity:.3f}")
    start = jaxmix.initialize(jax.random.key(0), model, x, "kmeans++")
    em = jaxmix.fit_em(model, start, x, max_iter=500, tol=1e-5)
    report(f"fit_em ({int(em.n_iter)} iterations)", em)
    report("fit (best of 8 restarts)", jaxmix.fit(jax.random.key(1), model, x, n_init=8).best)
    gradient = jaxmix.fit_gradient(jax.random.key(2), model, start, x, optax.adam(0.05), n_steps=500)
    report("fit_gradient (adam, 500 steps)", gradient)
    print(jaxmix.select_components(jax.random.key(3), x, [5, 10, 15], family=BernoulliMixture, n_init=2,
                                   init="random").to_markdown())  # BIC and AIC from n_parameters
    print(jaxmix.compare_fits(jax.random.key(4), model, x, n_starts=4, max_iter=200, n_steps=200,
                              optimizers={"adam": optax.adam(0.05)}).to_markdown())


if __name__ == "__main__":
    main()
