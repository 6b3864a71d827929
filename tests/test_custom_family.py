"""The family of examples/custom_family.py, a Bernoulli mixture on the public protocol (``jaxmix.protocol``).

Its EM through ``fit_em`` against a NumPy transcription of Bernoulli-mixture EM with the same Laplace
smoothing, its ascent, the drivers it unlocks, and the TypeError of a driver that needs a missing
capability (docs/maths.md sections 4 and 11).
"""

import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_digits

import jaxmix

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "examples"))
import custom_family

N_ITER = 10


@pytest.fixture(scope="module")
def digits():
    """The first 300 digits, binarized at half the maximum intensity: x (300, 64) of 0/1 and labels."""
    data = load_digits()
    return (data.data[:300] / 16 > 0.5).astype(np.float64), data.target[:300]


def numpy_em(x, weights, probs, n_iter, alpha, sample_weight=None):
    """Bernoulli-mixture EM in NumPy: L_0 .. L_{n_iter} (n_iter + 1,) and the final weights and probs.

    log p(x_i, k) = log w_k + sum_d [x_id log p_kd + (1 - x_id) log(1 - p_kd)]; L_t is the
    w-weighted mean of log p(x_i) at the t-th parameters (sample weights w scaled to mean one,
    as ``fit_em`` does); M-step w_k = n_k / sum_j n_j, p_k = (s_k + alpha) / (n_k + 2 alpha).
    """
    w = np.ones(len(x)) if sample_weight is None else sample_weight / np.mean(sample_weight)
    history = []
    for t in range(n_iter + 1):
        log_joint = np.log(weights) + x @ np.log(probs).T + (1 - x) @ np.log(1 - probs).T
        top = np.max(log_joint, axis=1, keepdims=True)
        log_px = top[:, 0] + np.log(np.sum(np.exp(log_joint - top), axis=1))
        history.append(np.sum(w * log_px) / np.sum(w))
        if t < n_iter:
            wr = w[:, None] * np.exp(log_joint - log_px[:, None])
            counts, ones = wr.sum(axis=0), wr.T @ x
            weights, probs = counts / counts.sum(), (ones + alpha) / (counts[:, None] + 2 * alpha)
    return np.array(history), weights, probs


def log_prior(model, params):
    """alpha sum_kd log(p_kd (1 - p_kd)): the log of the smoothing's Beta prior, up to a constant."""
    return model.alpha * float(jnp.sum(jnp.log(params.probs) + jnp.log1p(-params.probs)))


@pytest.mark.parametrize("weighted, chunk_size", [(False, 8192), (True, 64)])
def test_em_matches_numpy_transcription(x64, digits, weighted, chunk_size):
    x, _ = digits
    rng = np.random.default_rng(0)
    k = 4
    weights, probs = rng.dirichlet(np.ones(k)), rng.uniform(0.2, 0.8, (k, x.shape[1]))
    sample_weight = rng.uniform(0.5, 2.0, len(x)) if weighted else None
    model = custom_family.BernoulliMixture(k)
    result = jaxmix.fit_em(model, custom_family.BernoulliParams(weights, probs), x, max_iter=N_ITER, tol=0.0,
                           sample_weight=sample_weight, chunk_size=chunk_size)
    history, numpy_weights, numpy_probs = numpy_em(x, weights, probs, N_ITER, model.alpha, sample_weight)
    assert result.params.probs.dtype == jnp.float64 and int(result.n_iter) == N_ITER
    np.testing.assert_allclose(result.history, history[:N_ITER], rtol=1e-10)
    np.testing.assert_allclose(result.log_likelihood, history[N_ITER], rtol=1e-10)
    np.testing.assert_allclose(result.params.weights, numpy_weights, rtol=1e-10)
    np.testing.assert_allclose(result.params.probs, numpy_probs, rtol=1e-10)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**16), k=st.integers(1, 4))
def test_em_never_decreases_the_log_likelihood(x64, seed, k):
    """EM with Laplace smoothing is MAP EM: it never decreases N L + log prior (L the mean
    log-likelihood), so L itself falls by at most the prior's rise, (alpha / N) times a change in
    sum_kd log(p_kd (1 - p_kd)). Both hold at every step, and a single ``fit_em`` run's history
    is the chain of one-iteration runs."""
    rng = np.random.default_rng(seed)
    truth, z = rng.uniform(0.05, 0.95, (3, 12)), rng.integers(0, 3, 200)
    x = (rng.random((200, 12)) < truth[z]).astype(np.float64)
    model = custom_family.BernoulliMixture(k)
    params = jaxmix.initialize(jax.random.key(seed), model, x, "random")
    whole = jaxmix.fit_em(model, params, x, max_iter=30, tol=0.0)
    chain, priors = [], [log_prior(model, params)]
    for _ in range(30):
        step = jaxmix.fit_em(model, params, x, max_iter=1, tol=0.0)
        params = step.params
        chain.append(float(step.history[0]))
        priors.append(log_prior(model, params))
    chain.append(float(step.log_likelihood))
    chain, priors = np.array(chain), np.array(priors)
    np.testing.assert_allclose(whole.history, chain[:30], rtol=1e-12)
    slack = 1e-12 * np.abs(chain[1:])
    assert np.all(np.diff(len(x) * chain + priors) >= -len(x) * slack)
    assert np.all(np.diff(chain) >= -np.maximum(np.diff(priors), 0.0) / len(x) - slack)


def test_fit_and_fit_gradient_give_finite_results(x64, digits):
    x, _ = digits
    model = custom_family.BernoulliMixture(3)
    result = jaxmix.fit(jax.random.key(0), model, x, n_init=3, init="random_from_data")
    assert result.restart_log_likelihoods.shape == (3,)
    assert np.all(np.isfinite(result.restart_log_likelihoods))
    assert float(result.best.log_likelihood) == pytest.approx(float(jnp.max(result.restart_log_likelihoods)))
    np.testing.assert_allclose(jnp.sum(result.best.params.weights), 1.0, rtol=1e-12)
    assert bool(jnp.all((result.best.params.probs > 0) & (result.best.params.probs < 1)))

    start = jaxmix.initialize(jax.random.key(1), model, x, "random_from_data")
    round_trip = model.from_unconstrained(model.to_unconstrained(start))
    for leaf, expected in zip(round_trip, start):
        np.testing.assert_allclose(leaf, expected, rtol=1e-12)
    _, start_log_likelihood = jaxmix.e_step(model, start, x)
    gradient = jaxmix.fit_gradient(jax.random.key(2), model, start, x, optax.adam(0.05), n_steps=100)
    leaves = (*gradient.params, gradient.log_likelihood, gradient.history)
    assert all(np.all(np.isfinite(leaf)) for leaf in leaves)
    np.testing.assert_allclose(gradient.history[0], start_log_likelihood, rtol=1e-12)
    assert float(gradient.log_likelihood) > float(start_log_likelihood)
    q = jax.nn.softmax(model.log_joint(gradient.params, x), axis=1)  # the posterior: the ELBO is tight
    np.testing.assert_allclose(jaxmix.elbo(model, gradient.params, x, q), gradient.log_likelihood, rtol=1e-12)


def test_check_names_the_argument(x64, digits):
    x, _ = digits
    model = custom_family.BernoulliMixture(2)
    params = custom_family.BernoulliParams(np.full(2, 0.5), np.full((2, x.shape[1]), 0.5))
    for bad in (x[0], x * 0.5, np.where(x > 0, np.nan, 0.0)):
        with pytest.raises(ValueError, match=r"^x must"):
            jaxmix.fit_em(model, params, bad)
    with pytest.raises(ValueError, match=r"^params must"):
        jaxmix.fit_em(model, params._replace(probs=params.probs[:, :3]), x)


class WithoutLogJoint:
    """The example's family without ``log_joint``: a plain object holding only the required members."""

    def __init__(self, n_components):
        family = custom_family.BernoulliMixture(n_components)
        self.n_components = n_components
        self.check, self.summarize, self.m_step = family.check, family.summarize, family.m_step
        self.from_responsibilities = family.from_responsibilities


def test_a_family_without_log_joint_fits_by_em_but_has_no_elbo(x64, digits):
    x, _ = digits
    model = WithoutLogJoint(2)
    params = custom_family.BernoulliParams(np.array([0.4, 0.6]), np.repeat([[0.3], [0.7]], x.shape[1], 1))
    result = jaxmix.fit_em(model, params, x, max_iter=5, tol=0.0)  # EM needs the required members only
    assert np.isfinite(float(result.log_likelihood))
    q = np.full((len(x), 2), 0.5)
    with pytest.raises(TypeError, match=r"elbo needs .*log_joint missing"):
        jaxmix.elbo(model, result.params, x, q)
    with pytest.raises(TypeError, match=r"fit_gradient needs .*log_joint missing"):
        jaxmix.fit_gradient(jax.random.key(0), model, params, x, optax.adam(0.1), n_steps=1)


class Refusing(WithoutLogJoint):
    """``WithoutLogJoint`` with a ``check_fit`` (``FitCheck``) that records its arguments and refuses."""

    def __init__(self, n_components):
        super().__init__(n_components)
        self.calls = []

    def check_fit(self, x, weights):
        self.calls.append((np.shape(x), None if weights is None else np.asarray(weights)))
        raise ValueError("refused by check_fit")


def test_every_fit_of_in_memory_data_asks_check_fit_first(x64, digits):
    x, _ = digits
    model = Refusing(2)
    assert isinstance(model, jaxmix.protocol.FitCheck)
    params = custom_family.BernoulliParams(np.array([0.4, 0.6]), np.repeat([[0.3], [0.7]], x.shape[1], 1))
    sample_weight = np.r_[np.zeros(100), np.full(200, 3.0)]
    for run in (lambda: jaxmix.fit_em(model, params, x, sample_weight=sample_weight),
                lambda: jaxmix.fit(jax.random.key(0), model, x, sample_weight=sample_weight),
                lambda: jaxmix.fit_online(jax.random.key(0), model, params, x, sample_weight=sample_weight)):
        with pytest.raises(ValueError, match="refused by check_fit"):
            run()
    assert len(model.calls) == 3
    for shape, weights in model.calls:  # the checked rows and the weights scaled to mean one
        assert shape == x.shape
        np.testing.assert_allclose(weights, sample_weight / np.mean(sample_weight))
