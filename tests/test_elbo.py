"""``elbo(model, params, x, q)`` against its definition and docs/maths.md section 4.

- Value, float64, rtol 1e-10: equals (1/N) sum_i sum_k q_ik (log p(x_i, k) - log q_ik)
  computed with scipy (log joint from ``scipy.stats``, 0 log 0 = 0 through
  ``scipy.special.xlogy``), and equals score - (1/N) sum_i KL(q_i || p(z | x_i))
  (``scipy.special.rel_entr``), for q with exact zeros, for every Gaussian
  covariance type and the exponential mixture.
- A component of weight zero (log p(x, k) = -inf) with q = 0 there: finite
  value, and finite gradients w.r.t. the component parameters (means,
  covariances, rates; the weight itself sits on the boundary of the simplex).
- Properties (hypothesis, float64): elbo(q) <= score for random Dirichlet q;
  equality (1e-10) at q = posterior.
- Fisher's identity: at q = posterior held fixed, the gradient of the ELBO
  w.r.t. the parameters equals the gradient of the score.
- ``jit`` equals eager.
- A model without a likelihood (``KMeans``, ``FuzzyCMeans``) raises a TypeError naming ``model``.
"""

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp, rel_entr, xlogy
from scipy.stats import expon, multivariate_normal

from jaxmix import (
    ExponentialMixture,
    ExponentialMixtureParams,
    FuzzyCMeans,
    GaussianMixture,
    GaussianMixtureParams,
    KMeans,
    elbo,
    initialize,
)

FAMILIES = ("full", "diag", "spherical", "tied", "identity", "exponential")
K, D, N = 3, 2, 40  # the shapes test_gaussian.py and test_exponential.py use (shared compilations)

x64_settings = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


# -- independent helpers (NumPy / SciPy) -------------------------------------------


def random_spd(rng, d, size=()):
    a = rng.normal(size=(*size, d, d))
    s = a @ np.swapaxes(a, -1, -2) / d + 0.5 * np.eye(d)
    return 0.5 * (s + np.swapaxes(s, -1, -2))


def make_problem(family, rng, weights=None):
    """(model, params, x, log_joint computed with scipy) for one family."""
    weights = rng.dirichlet(np.full(K, 3.0)) if weights is None else np.asarray(weights)
    if family == "exponential":
        rates = np.exp(rng.uniform(np.log(0.2), np.log(5.0), K))
        z = rng.choice(K, N, p=weights)
        x = rng.exponential(1.0 / rates[z])
        with np.errstate(divide="ignore"):
            log_joint = np.log(weights) + expon.logpdf(x[:, None], scale=1.0 / rates)
        return ExponentialMixture(K), ExponentialMixtureParams(weights, rates), x, log_joint

    means = rng.normal(0.0, 2.0, (K, D))
    cov = {
        "full": lambda: random_spd(rng, D, (K,)),
        "diag": lambda: rng.uniform(0.5, 2.0, (K, D)),
        "spherical": lambda: rng.uniform(0.5, 2.0, K),
        "tied": lambda: random_spd(rng, D),
        "identity": lambda: None,
    }[family]()
    dense = {
        "full": lambda: cov,
        "diag": lambda: np.stack([np.diag(c) for c in cov]),
        "spherical": lambda: cov[:, None, None] * np.eye(D),
        "tied": lambda: np.broadcast_to(cov, (K, D, D)),
        "identity": lambda: np.broadcast_to(np.eye(D), (K, D, D)),
    }[family]()
    x = means[rng.integers(0, K, N)] + rng.normal(size=(N, D))
    with np.errstate(divide="ignore"):
        log_joint = np.log(weights) + np.stack(
            [multivariate_normal(m, c).logpdf(x) for m, c in zip(means, dense)], axis=1
        )
    return GaussianMixture(K, family), GaussianMixtureParams(weights, means, cov), x, log_joint


def random_q(rng, alpha=1.0, zeros=True):
    """Rows on the simplex; with ``zeros``, about a third of the entries exactly 0."""
    q = rng.dirichlet(np.full(K, alpha), size=N)
    if zeros:
        q = np.where(rng.uniform(size=q.shape) < 0.33, 0.0, q)
        q[q.sum(axis=1) == 0, 0] = 1.0
        q = q / q.sum(axis=1, keepdims=True)
    return q


def reference_elbo(log_joint, q):
    terms = np.where(q > 0, q * np.where(q > 0, log_joint, 0.0), 0.0) - xlogy(q, q)
    return np.mean(terms.sum(axis=1))


# -- value ---------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_elbo_matches_definition(x64, family):
    rng = np.random.default_rng([FAMILIES.index(family), 1])
    model, params, x, log_joint = make_problem(family, rng)
    q = random_q(rng)
    assert np.any(q == 0)

    value = elbo(model, params, x, q)
    assert np.asarray(value).dtype == np.float64
    np.testing.assert_allclose(value, reference_elbo(log_joint, q), rtol=1e-10)

    log_px = logsumexp(log_joint, axis=1)
    posterior = np.exp(log_joint - log_px[:, None])
    kl = rel_entr(q, posterior).sum(axis=1)
    np.testing.assert_allclose(value, np.mean(log_px) - np.mean(kl), rtol=1e-10)


@pytest.mark.parametrize("family", FAMILIES)
def test_zero_weight_component(x64, family):
    """w_0 = 0 gives log p(x, 0) = -inf; with q_i0 = 0 the term is 0 (0 log 0 = 0)."""
    rng = np.random.default_rng([FAMILIES.index(family), 2])
    model, params, x, log_joint = make_problem(family, rng, weights=[0.0, 0.4, 0.6])
    q = random_q(rng, zeros=False)
    q[:, 0] = 0.0
    q = q / q.sum(axis=1, keepdims=True)

    value = elbo(model, params, x, q)
    assert np.isfinite(value)
    np.testing.assert_allclose(value, reference_elbo(log_joint, q), rtol=1e-10)

    posterior = model.posterior(params, x)
    np.testing.assert_array_equal(np.asarray(posterior)[:, 0], 0.0)
    np.testing.assert_allclose(elbo(model, params, x, posterior), model.score(params, x), rtol=1e-10)



def test_jit_matches_eager():
    rng = np.random.default_rng(3)
    model, params, x, _ = make_problem("full", rng)
    q = random_q(rng).astype(np.float32)
    x = x.astype(np.float32)
    jitted = jax.jit(elbo, static_argnums=0)
    np.testing.assert_allclose(jitted(model, params, x, q), elbo(model, params, x, q), rtol=1e-5)


@pytest.mark.parametrize("model", [KMeans(K), FuzzyCMeans(K)])
def test_model_without_likelihood_raises_type_error(model):
    """k-means has no log p(x, z); it was an AttributeError (no '_log_joint')."""
    x = make_problem("full", np.random.default_rng(0))[2]
    params = initialize(jax.random.key(0), model, x)
    with pytest.raises(TypeError, match=rf"elbo needs a model with LogJoint \(log_joint missing\); "
                       rf"got {type(model).__name__}"):
        elbo(model, params, x, np.full((N, K), 1.0 / K))


# -- docs/maths.md section 4: the bound and Fisher's identity -------------------------------


@x64_settings
@given(
    seed=st.integers(0, 2**32 - 1), family=st.sampled_from(FAMILIES), alpha=st.sampled_from([0.1, 1.0, 10.0])
)
def test_elbo_is_a_lower_bound_tight_at_the_posterior(x64, seed, family, alpha):
    rng = np.random.default_rng(seed)
    model, params, x, _ = make_problem(family, rng)
    score = float(model.score(params, x))
    q = random_q(rng, alpha, zeros=bool(rng.integers(2)))

    assert float(elbo(model, params, x, q)) <= score + 1e-12 * abs(score)
    at_posterior = float(elbo(model, params, x, model.posterior(params, x)))
    np.testing.assert_allclose(at_posterior, score, rtol=1e-10, atol=1e-10)


def component_grads(fns, params):
    """Gradients of each fn w.r.t. everything but the weights (means and covariances, or rates)."""
    names = params._fields[1:]

    def values(rest):
        p = params._replace(**dict(zip(names, rest)))
        return [fn(p) for fn in fns]

    return jax.jit(jax.jacrev(values))(tuple(params[1:]))


# Fisher's identity is about the ELBO, not the covariance structure: one Gaussian
# type and the exponential family suffice (each case costs a compilation).
@pytest.mark.parametrize("family", ["full", "exponential"])
def test_fishers_identity(x64, family):
    """grad_theta ELBO(q, theta) at q = p_theta(z | x) (held fixed) = grad_theta score.

    Component 0 has weight zero, so q_i0 = 0 exactly: its gradients must stay
    finite (they are 0); components 1 and 2 carry the identity.
    """
    rng = np.random.default_rng([FAMILIES.index(family), 4])
    model, params, x, _ = make_problem(family, rng, weights=[0.0, 0.4, 0.6])
    q = model.posterior(params, x)

    g_elbo, g_score = component_grads([lambda p: elbo(model, p, x, q), lambda p: model.score(p, x)], params)
    for a, b in zip(jax.tree.leaves(g_elbo), jax.tree.leaves(g_score)):
        assert np.all(np.isfinite(a))
        assert np.any(a != 0)
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-12)
