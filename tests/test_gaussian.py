"""Gaussian mixtures checked against independent references.

- Densities: ``log_joint``, ``log_prob``, ``posterior``, ``predict`` and ``score``
  against scikit-learn's ``GaussianMixture`` holding the same parameters
  (``_estimate_weighted_log_prob``, ``score_samples``, ``predict_proba``,
  ``predict``, ``score``) for full, diag, spherical and tied covariances,
  K in {1, 3, 5} and D in {1, 2, 6}, float64, rtol 1e-10; the identity
  covariance against ``scipy.stats.multivariate_normal`` mixed by hand with
  ``scipy.special.logsumexp``. ``bic``, ``aic`` and ``n_parameters`` against
  scikit-learn's.
- EM: one ``e_step`` + ``m_step`` against scikit-learn's
  ``fit(max_iter=1, tol=0)`` from the same initial parameters (rtol 1e-8);
  statistics of disjoint chunks add up to those of the whole data; a full-covariance
  E-step over several blocks of points equals NumPy's statistics; integer
  ``sample_weight`` equals repeating rows.
- ``sample``: component frequencies and per-component means and covariances
  of x given z within 5 standard errors of the parameters; keys reproduce.
- Properties (hypothesis): posterior rows sum to one; ``log_prob`` does not
  depend on the order of the components.
- Hard but valid input (float32): duplicated points, a point 1e4 away, data
  and means offset by 1e6, K = D = 1, a zero-variance feature.
- Transformations: ``jit`` equals eager, ``vmap`` over stacked parameter sets
  equals a Python loop, ``grad`` of ``score`` equals central finite
  differences (float64) and the analytic single-Gaussian gradient.
"""

import warnings

import chex
import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from references import sklearn_model
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from jaxmix import GaussianMixture, GaussianMixtureParams, e_step
from jaxmix.mixtures.gaussian import BLOCKED, FULL_BLOCK

COV_TYPES = ("full", "diag", "spherical", "tied", "identity")
SKLEARN_TYPES = ("full", "diag", "spherical", "tied")
# Every K in {1, 3, 5} and every D in {1, 2, 6}, in three (K, D) pairs rather than
# all nine: each new array shape costs JAX dozens of compilations (about a second),
# so the whole file sticks to few shapes: N = 40 (and 2N) points, mostly K = 3, D = 2.
KD = ((1, 6), (3, 2), (5, 1))
N = 40

# Hypothesis tests that also use the (function-scoped) x64 fixture: the fixture
# wraps all examples of one test, which is what we want.
x64_settings = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


# -- independent helpers (NumPy / SciPy / scikit-learn only) -------------------


def random_spd(rng, d, size=()):
    a = rng.normal(size=(*size, d, d))
    s = a @ np.swapaxes(a, -1, -2) / d + 0.5 * np.eye(d)
    return 0.5 * (s + np.swapaxes(s, -1, -2))  # exactly symmetric


def random_covariances(rng, cov_type, k, d):
    if cov_type == "full":
        return random_spd(rng, d, (k,))
    if cov_type == "diag":
        return rng.uniform(0.5, 2.0, (k, d))
    if cov_type == "spherical":
        return rng.uniform(0.5, 2.0, k)
    if cov_type == "tied":
        return random_spd(rng, d)
    return None


def random_params(rng, cov_type, k, d, spread=3.0):
    weights = rng.dirichlet(np.full(k, 3.0))
    means = rng.normal(0.0, spread, (k, d))
    return GaussianMixtureParams(weights, means, random_covariances(rng, cov_type, k, d))


def dense_covariances(params, cov_type):
    """The (K, D, D) covariance matrices that a parameter set stands for."""
    k, d = np.shape(params.means)
    cov = None if params.covariances is None else np.asarray(params.covariances, np.float64)
    if cov_type == "full":
        return cov
    if cov_type == "diag":
        return np.stack([np.diag(c) for c in cov])
    if cov_type == "spherical":
        return cov[:, None, None] * np.eye(d)
    if cov_type == "tied":
        return np.broadcast_to(cov, (k, d, d))
    return np.broadcast_to(np.eye(d), (k, d, d))


def random_data(rng, params, cov_type, n):
    """n draws from the mixture, with NumPy."""
    weights = np.asarray(params.weights, np.float64)
    z = rng.choice(len(weights), size=n, p=weights / weights.sum())
    chol = np.linalg.cholesky(dense_covariances(params, cov_type))
    eps = rng.normal(size=(n, np.shape(params.means)[1]))
    return np.asarray(params.means, np.float64)[z] + np.einsum("nde,ne->nd", chol[z], eps)


def scipy_log_joint(params, cov_type, x):
    """log w_k + log N(x_i; mu_k, Sigma_k) with scipy.stats, shape (N, K)."""
    x = np.asarray(x, np.float64)
    means = np.asarray(params.means, np.float64)
    covs = dense_covariances(params, cov_type)
    weights = np.asarray(params.weights, np.float64)
    return np.stack(
        [np.log(w) + multivariate_normal(m, c).logpdf(x).reshape(len(x))
         for w, m, c in zip(weights, means, covs)],
        axis=1,
    )


def sklearn_precisions(params, cov_type):
    cov = np.asarray(params.covariances, np.float64)
    return np.linalg.inv(cov) if cov_type in ("full", "tied") else 1.0 / cov


def permute(params, cov_type, perm):
    cov = params.covariances
    if cov_type not in ("tied", "identity"):
        cov = cov[perm]
    return GaussianMixtureParams(params.weights[perm], params.means[perm], cov)


def rng_for(cov_type, *ints):
    return np.random.default_rng([COV_TYPES.index(cov_type), *ints])


def assert_f64_close(actual, expected, rtol=1e-10, atol=1e-12):
    actual = np.asarray(actual)
    assert actual.dtype == np.float64, actual.dtype
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


# -- 1. densities against scikit-learn and scipy --------------------------------


@pytest.mark.parametrize("k, d", KD)
@pytest.mark.parametrize("cov_type", SKLEARN_TYPES)
def test_densities_match_sklearn(x64, cov_type, k, d):
    rng = rng_for(cov_type, k, d)
    params = random_params(rng, cov_type, k, d)
    x = random_data(rng, params, cov_type, N)
    sk = sklearn_model(params, cov_type)
    model = GaussianMixture(k, cov_type)

    assert_f64_close(model.log_joint(params, x), sk._estimate_weighted_log_prob(x))
    assert_f64_close(model.log_prob(params, x), sk.score_samples(x))
    assert_f64_close(model.posterior(params, x), sk.predict_proba(x))
    assert_f64_close(model.score(params, x), sk.score(x))
    np.testing.assert_array_equal(model.predict(params, x), sk.predict(x))


@pytest.mark.parametrize("k, d", KD)
def test_identity_matches_scipy(x64, k, d):
    rng = rng_for("identity", k, d)
    params = random_params(rng, "identity", k, d)
    x = random_data(rng, params, "identity", N)
    model = GaussianMixture(k, "identity")
    expected = np.stack(
        [np.log(w) + multivariate_normal(m, np.eye(d)).logpdf(x).reshape(N)
         for w, m in zip(params.weights, params.means)],
        axis=1,
    )
    log_px = logsumexp(expected, axis=1)

    assert_f64_close(model.log_joint(params, x), expected)
    assert_f64_close(model.log_prob(params, x), log_px)
    assert_f64_close(model.posterior(params, x), np.exp(expected - log_px[:, None]))
    assert_f64_close(model.score(params, x), np.mean(log_px))


@pytest.mark.parametrize("cov_type", SKLEARN_TYPES)
def test_information_criteria_match_sklearn(x64, cov_type):
    k, d = 3, 2
    rng = rng_for(cov_type, k, d)
    params = random_params(rng, cov_type, k, d)
    x = random_data(rng, params, cov_type, N)
    sk = sklearn_model(params, cov_type)
    model = GaussianMixture(k, cov_type)
    assert_f64_close(model.bic(params, x), sk.bic(x), atol=0)
    assert_f64_close(model.aic(params, x), sk.aic(x), atol=0)


def test_information_criteria_identity_by_hand(x64):
    k, d = 3, 2
    rng = rng_for("identity", k, d)
    params = random_params(rng, "identity", k, d)
    x = random_data(rng, params, "identity", N)
    model = GaussianMixture(k, "identity")
    total = np.sum(logsumexp(scipy_log_joint(params, "identity", x), axis=1))
    p = k * d + k - 1  # means and free weights, no covariance parameters
    assert_f64_close(model.bic(params, x), -2 * total + p * np.log(N), atol=0)
    assert_f64_close(model.aic(params, x), -2 * total + 2 * p, atol=0)


@pytest.mark.parametrize("d", (1, 2, 6))
@pytest.mark.parametrize("k", (1, 3, 5))
@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_n_parameters(cov_type, k, d):
    got = GaussianMixture(k, cov_type).n_parameters(d)
    if cov_type == "identity":
        assert got == k * d + k - 1
    else:
        rng = rng_for(cov_type, k, d)
        assert got == sklearn_model(random_params(rng, cov_type, k, d), cov_type)._n_parameters()


# -- 7. EM against scikit-learn; additive statistics ---------------------------


@pytest.mark.parametrize("cov_type", SKLEARN_TYPES)
def test_one_em_step_matches_sklearn(x64, cov_type):
    k, d = 3, 2
    rng = rng_for(cov_type, 7)
    truth = random_params(rng, cov_type, k, d)
    x = random_data(rng, truth, cov_type, 2 * N)
    # Start near, not at, the truth so the step moves and no component is empty:
    # for an (almost) empty component the library keeps the old mean by design
    # (see GaussianMixture.m_step), where scikit-learn's mean drifts to 0.
    init = random_params(rng, cov_type, k, d)._replace(means=truth.means + rng.normal(0.0, 0.5, (k, d)))
    model = GaussianMixture(k, cov_type, reg_covar=1e-6)

    stats, loglik = e_step(model, init, x)
    new = model.m_step(stats)

    sk = SkGaussianMixture(
        k, covariance_type=cov_type, reg_covar=1e-6, max_iter=1, tol=0.0,
        weights_init=init.weights, means_init=init.means,
        precisions_init=sklearn_precisions(init, cov_type),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk.fit(x)
    chex.assert_trees_all_close(tuple(new), (sk.weights_, sk.means_, sk.covariances_), rtol=1e-8, atol=0)
    assert_f64_close(loglik, sklearn_model(init, cov_type).score(x))


def add_stats(a, b):
    """Sum two chunks' statistics; ``reference`` is shared, not summed."""
    chex.assert_trees_all_equal(a.reference, b.reference)
    scatter = None if a.scatter is None else a.scatter + b.scatter
    return a._replace(counts=a.counts + b.counts, sums=a.sums + b.sums, scatter=scatter)


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_chunked_statistics_add_up(x64, cov_type):
    k, d = 3, 2
    rng = rng_for(cov_type, 8)
    params = random_params(rng, cov_type, k, d)
    x = random_data(rng, params, cov_type, 2 * N)
    model = GaussianMixture(k, cov_type)

    whole, _ = e_step(model, params, x)
    combined = add_stats(e_step(model, params, x[:N])[0], e_step(model, params, x[N:])[0])
    chex.assert_trees_all_close(combined, whole, rtol=1e-12, atol=1e-12)
    chex.assert_trees_all_close(model.m_step(combined), model.m_step(whole), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cov_type", BLOCKED)
def test_blocked_e_step_matches_numpy(x64, cov_type):
    """More points than one block of the full or tied E-step (FULL_BLOCK; the last block padded):
    weighted statistics and log-likelihood equal NumPy's over all points at once."""
    k, d = 3, 2
    rng = rng_for(cov_type, 9)
    params = random_params(rng, cov_type, k, d)
    x = random_data(rng, params, cov_type, 2 * FULL_BLOCK + 3)
    w = rng.uniform(0.0, 2.0, len(x)) * (rng.uniform(size=len(x)) > 0.1)
    stats, mean_log_likelihood = e_step(GaussianMixture(k, cov_type), params, x, sample_weight=w)

    log_joint = scipy_log_joint(params, cov_type, x)
    log_prob = logsumexp(log_joint, axis=1)
    wr = w[:, None] * np.exp(log_joint - log_prob[:, None])
    y = x[:, None, :] - np.asarray(params.means)[None]  # (N, K, D)
    assert_f64_close(stats.counts, wr.sum(axis=0))
    assert_f64_close(stats.sums, np.einsum("nk,nkd->kd", wr, y))
    scatter = np.einsum("nk,nkd,nke->kde", wr, y, y)
    assert_f64_close(stats.scatter, scatter if cov_type == "full" else scatter.sum(axis=0))
    assert_f64_close(mean_log_likelihood, np.sum(w * log_prob) / np.sum(w))


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_integer_sample_weight_equals_repeated_rows(x64, cov_type):
    k, d = 3, 2
    rng = rng_for(cov_type, 9)
    params = random_params(rng, cov_type, k, d)
    x = random_data(rng, params, cov_type, N)
    counts = rng.permutation(np.repeat([0, 1, 3, 4], N // 4))  # sums to 2N: shapes shared with the chunk test
    model = GaussianMixture(k, cov_type)

    weighted, ll_w = e_step(model, params, x, sample_weight=counts)
    repeated, ll_r = e_step(model, params, np.repeat(x, counts, axis=0))
    chex.assert_trees_all_close(weighted, repeated, rtol=1e-12, atol=1e-12)
    chex.assert_trees_all_close(model.m_step(weighted), model.m_step(repeated), rtol=1e-12, atol=1e-12)
    assert_f64_close(ll_w, ll_r)


# -- 3. sampling ----------------------------------------------------------------


N_SAMPLE = 40_000


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_sample_moments(cov_type):
    k, d, n = 3, 2, N_SAMPLE
    rng = rng_for(cov_type, 10)
    params = random_params(rng, cov_type, k, d)._replace(weights=np.array([0.2, 0.3, 0.5]))
    model = GaussianMixture(k, cov_type)
    x, z = model.sample(jax.random.key(0), params, n)
    assert x.shape == (n, d) and z.shape == (n,)
    x, z = np.asarray(x, np.float64), np.asarray(z)
    z_sigma = 5  # tolerance in standard errors

    freq = np.bincount(z, minlength=k) / n
    w = params.weights
    np.testing.assert_array_less(np.abs(freq - w), z_sigma * np.sqrt(w * (1 - w) / n))

    for j, sigma in enumerate(dense_covariances(params, cov_type)):
        xj = x[z == j]
        nj = len(xj)
        se_mean = np.sqrt(np.diag(sigma) / nj)
        np.testing.assert_array_less(np.abs(xj.mean(axis=0) - params.means[j]), z_sigma * se_mean)
        # Var of a sample covariance entry: (S_aa S_bb + S_ab^2) / n for Gaussian data.
        var = np.diag(sigma)
        se_cov = np.sqrt((np.outer(var, var) + sigma**2) / nj)
        np.testing.assert_array_less(np.abs(np.cov(xj, rowvar=False).reshape(d, d) - sigma), z_sigma * se_cov)


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_sample_keys(cov_type):
    k, d = 3, 2
    params = random_params(rng_for(cov_type, 11), cov_type, k, d)
    model = GaussianMixture(k, cov_type)
    x1, z1 = model.sample(jax.random.key(1), params, N_SAMPLE)
    x2, z2 = model.sample(jax.random.key(1), params, N_SAMPLE)
    x3, z3 = model.sample(jax.random.key(2), params, N_SAMPLE)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(z1, z2)
    assert not np.allclose(x1, x3)
    assert not np.array_equal(z1, z3)


# -- 2. properties (hypothesis) -------------------------------------------------

# Sizes come from the grids above (and N points) so compiled shapes are reused.
seeds = st.integers(0, 2**32 - 1)
cov_types = st.sampled_from(COV_TYPES)
kds = st.sampled_from(KD)
scales = st.sampled_from([0.1, 1.0, 30.0])  # how far apart the means are


@x64_settings
@given(seed=seeds, cov_type=cov_types, kd=kds, spread=scales)
def test_posterior_rows_sum_to_one(x64, seed, cov_type, kd, spread):
    k, d = kd
    rng = np.random.default_rng(seed)
    params = random_params(rng, cov_type, k, d, spread=spread)
    x = random_data(rng, params, cov_type, N) * rng.uniform(0.5, 3.0)
    post = np.asarray(GaussianMixture(k, cov_type).posterior(params, x))
    assert np.all(post >= 0)
    np.testing.assert_allclose(post.sum(axis=1), 1.0, rtol=0, atol=1e-12)


@x64_settings
@given(seed=seeds, cov_type=cov_types, kd=kds, spread=scales)
def test_log_prob_invariant_to_component_order(x64, seed, cov_type, kd, spread):
    k, d = kd
    rng = np.random.default_rng(seed)
    params = random_params(rng, cov_type, k, d, spread=spread)
    x = random_data(rng, params, cov_type, N)
    perm = rng.permutation(k)
    model = GaussianMixture(k, cov_type)
    permuted = permute(params, cov_type, perm)
    np.testing.assert_allclose(model.log_prob(permuted, x), model.log_prob(params, x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        model.posterior(permuted, x), model.posterior(params, x)[:, perm], rtol=1e-12, atol=1e-12
    )


# -- 5. hard but valid input (float32) -------------------------------------------

F32 = dict(rtol=1e-5, atol=1e-5)  # float32 result vs float64 reference on O(1..100) values


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_duplicate_points(cov_type):
    k, d = 3, 2
    rng = rng_for(cov_type, 12)
    params = random_params(rng, cov_type, k, d)
    half = random_data(rng, params, cov_type, N // 2)
    x = np.concatenate([half, half]).astype(np.float32)  # every point twice
    model = GaussianMixture(k, cov_type)

    log_px = np.asarray(model.log_prob(params, x))
    np.testing.assert_array_equal(log_px[: N // 2], log_px[N // 2:])
    np.testing.assert_allclose(log_px, logsumexp(scipy_log_joint(params, cov_type, x), axis=1), **F32)
    post = np.asarray(model.posterior(params, x))
    np.testing.assert_array_equal(post[: N // 2], post[N // 2:])
    new = model.m_step(e_step(model, params, x)[0])
    assert_usable(model, new, x)


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_point_far_from_every_component(cov_type):
    k, d = 3, 2
    rng = rng_for(cov_type, 13)
    params = random_params(rng, cov_type, k, d)
    x = random_data(rng, params, cov_type, N)
    x[:3] = [[1e4, 0.0], [-1e4, 1e4], [3e3, -1e4]]
    x = x.astype(np.float32)
    model = GaussianMixture(k, cov_type)

    ref = scipy_log_joint(params, cov_type, x)
    log_px = np.asarray(model.log_prob(params, x))
    post = np.asarray(model.posterior(params, x))
    assert np.all(np.isfinite(log_px)) and np.all(np.isfinite(post))
    np.testing.assert_allclose(log_px, logsumexp(ref, axis=1), **F32)  # relative: the far values are ~ -1e8
    np.testing.assert_allclose(post.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(model.predict(params, x))[:3], ref[:3].argmax(axis=1))


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_offset_by_a_million(cov_type):
    """Data and means shifted by 1e6 in float32 give the unshifted float64 answer.

    Points and means lie on a 1/16 grid: float32 spacing in [2^19, 2^20) is
    2^-4, so the shifted inputs are exact and any error is the library's own.
    Subtracting a nearby reference first (as the library does) is exact, and
    what follows is float32 arithmetic on O(1..30) numbers: errors ~1e-6. Any
    product formed before centering carries a rounding of ~1e6 * 2^-24 = 0.06
    per coordinate, so a 1e-3 absolute tolerance separates the two.
    """
    k, d, offset = 3, 2, 1e6
    rng = rng_for(cov_type, 14)
    params = random_params(rng, cov_type, k, d, spread=2.0)
    params = params._replace(means=np.round(params.means * 16) / 16)
    x = np.round(random_data(rng, params, cov_type, N) * 16) / 16
    shifted = params._replace(means=(params.means + offset).astype(np.float32))
    x_shifted = (x + offset).astype(np.float32)
    assert np.array_equal(x_shifted.astype(np.float64) - offset, x)  # the inputs are exact
    model = GaussianMixture(k, cov_type)

    ref = scipy_log_joint(params, cov_type, x)
    log_px = logsumexp(ref, axis=1)
    np.testing.assert_allclose(model.log_prob(shifted, x_shifted), log_px, rtol=0, atol=1e-3)
    np.testing.assert_allclose(
        model.posterior(shifted, x_shifted), np.exp(ref - log_px[:, None]), rtol=0, atol=1e-3
    )


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_single_component_single_feature(cov_type):
    """K = 1 and D = 1 at once, the most degenerate shapes (K = 1 or D = 1 alone: the float64 grid)."""
    rng = rng_for(cov_type, 15)
    params = random_params(rng, cov_type, 1, 1)
    x = random_data(rng, params, cov_type, N).astype(np.float32)
    model = GaussianMixture(1, cov_type)
    np.testing.assert_allclose(model.posterior(params, x), np.ones((N, 1)), rtol=0, atol=1e-6)
    np.testing.assert_allclose(model.log_prob(params, x), scipy_log_joint(params, cov_type, x)[:, 0], **F32)
    assert np.all(np.asarray(model.predict(params, x)) == 0)


def zero_variance_data(rng, n=N):
    """Feature 0 ~ N(+-2, 1) in two clusters; feature 1 constant at 3."""
    x0 = np.concatenate([rng.normal(-2.0, 1.0, n // 2), rng.normal(2.0, 1.0, n - n // 2)])
    return np.stack([x0, np.full(n, 3.0)], axis=1).astype(np.float32)


def init_for(cov_type, means):
    k, d = means.shape
    cov = {"full": np.stack([np.eye(d)] * k), "diag": np.ones((k, d)), "spherical": np.ones(k),
           "tied": np.eye(d), "identity": None}[cov_type]
    return GaussianMixtureParams(np.full(k, 1.0 / k), means, cov)


def assert_usable(model, params, x):
    """Finite parameters that the public API accepts again (covariances PD)."""
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(params))
    assert np.isfinite(model.score(params, x))


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_zero_variance_feature_means_from_data(cov_type):
    """Means initialised at data points (as k-means or random-point init do)."""
    rng = rng_for(cov_type, 17)
    x = zero_variance_data(rng)
    model = GaussianMixture(3, cov_type, reg_covar=1e-6)
    params = init_for(cov_type, x[[0, N // 2, -1]])
    for _ in range(3):
        params = model.m_step(e_step(model, params, x)[0])
        assert_usable(model, params, x)
    if cov_type in ("full", "tied", "diag"):
        var = dense_covariances(params, cov_type)[:, 1, 1]
        np.testing.assert_allclose(var, 1e-6, rtol=0.05)  # the zero variance becomes reg_covar


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_zero_variance_feature_means_off_the_constant(cov_type):
    """Means whose constant-feature coordinate is O(1) away from the constant.

    The new variance of that feature is 0 + reg_covar = 1e-6; it must stay
    positive so the next E-step can run.
    """
    rng = rng_for(cov_type, 18)
    x = zero_variance_data(rng)
    model = GaussianMixture(3, cov_type, reg_covar=1e-6)
    params = init_for(cov_type, np.array([[-1.0, 0.0], [1.0, 0.5], [0.0, 1.0]], np.float32))
    params = model.m_step(e_step(model, params, x)[0])
    assert_usable(model, params, x)


# -- 6. jit, vmap, grad ---------------------------------------------------------


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_jit_matches_eager(cov_type):
    k, d = 3, 2
    rng = rng_for(cov_type, 19)
    params = random_params(rng, cov_type, k, d)
    x = random_data(rng, params, cov_type, N).astype(np.float32)
    model = GaussianMixture(k, cov_type)

    def log_prob_and_em(p, x):
        return model.log_prob(p, x), model.m_step(e_step(model, p, x)[0])

    # One jitted program for both (each compilation costs about a second).
    chex.assert_trees_all_close(jax.jit(log_prob_and_em)(params, x), log_prob_and_em(params, x), **F32)


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_vmap_over_parameter_sets(cov_type):
    k, d, batch = 3, 2, 4
    rng = rng_for(cov_type, 20)
    sets = [random_params(rng, cov_type, k, d) for _ in range(batch)]
    stacked = jax.tree.map(lambda *leaves: np.stack(leaves), *sets)
    x = random_data(rng, sets[0], cov_type, N).astype(np.float32)
    model = GaussianMixture(k, cov_type)
    # jit(vmap): one compilation instead of one per batched primitive
    batched = jax.jit(jax.vmap(model.log_prob, in_axes=(0, None)))(stacked, x)
    np.testing.assert_allclose(batched, np.stack([model.log_prob(p, x) for p in sets]), **F32)


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_grad_of_score_matches_finite_differences(x64, cov_type):
    k, d, h = 3, 2, 1e-5
    rng = rng_for(cov_type, 21)
    params = random_params(rng, cov_type, k, d)
    x = random_data(rng, params, cov_type, N)
    model = GaussianMixture(k, cov_type)

    def score(means, cov):
        return model.score(params._replace(means=means, covariances=cov), x)

    g_means, g_cov = jax.jit(jax.grad(score, argnums=(0, 1)))(params.means, params.covariances)
    directions = [(rng.normal(size=params.means.shape), None)]
    if params.covariances is not None:
        w = rng.normal(size=params.covariances.shape)
        if cov_type in ("full", "tied"):
            w = w + np.swapaxes(w, -1, -2)  # stay symmetric
        directions.append((None, w))
    for v_means, v_cov in directions:
        def at(t):
            means = params.means if v_means is None else params.means + t * v_means
            cov = params.covariances if v_cov is None else params.covariances + t * v_cov
            return float(score(means, cov))

        fd = (at(h) - at(-h)) / (2 * h)
        analytic = (0.0 if v_means is None else np.sum(g_means * v_means)) + (
            0.0 if v_cov is None else np.sum(g_cov * v_cov))
        np.testing.assert_allclose(analytic, fd, rtol=1e-6, atol=1e-9)


def test_grad_of_single_gaussian_is_analytic(x64):
    """K = 1: d/dmu mean log N = Sigma^-1 (xbar - mu); d/dSigma = (P S P - P) / 2 with P = Sigma^-1."""
    d = 6
    rng = np.random.default_rng(22)
    sigma, mu = random_spd(rng, d), rng.normal(size=d)
    x = rng.normal(size=(N, d)) + 1.0
    model = GaussianMixture(1, "full")

    def score(means, cov):
        return model.score(GaussianMixtureParams(np.ones(1), means, cov), x)

    g_mu, g_sigma = jax.jit(jax.grad(score, argnums=(0, 1)))(mu[None], sigma[None])
    prec = np.linalg.inv(sigma)
    scatter = (x - mu).T @ (x - mu) / N
    assert_f64_close(g_mu[0], prec @ (x.mean(axis=0) - mu))
    assert_f64_close(g_sigma[0], 0.5 * (prec @ scatter @ prec - prec))
