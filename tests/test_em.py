"""The closed-form EM layer: ``fit_em``, ``EMResult``, ``combine_stats`` and each family's E/M steps.

What is checked against what:

- Gaussian mixtures (full, diag, spherical, tied) against scikit-learn's
  ``GaussianMixture`` started from the same weights, means and precisions, after
  1 and 15 iterations: parameters, the final mean log-likelihood (``sk.score``)
  and the last history entry (``sk.lower_bound_``, the log-likelihood before the
  last M-step), in float64 to 1e-6 relative.
- The identity covariance and the exponential mixture against numpy
  transcriptions of docs/maths.md sections 5 and 3 (whole history, parameters, final
  log-likelihood); the exponential mixture also recovers known rates from 20000
  generated points (statistical tolerance).
- ``combine_stats`` of disjoint chunks against the statistics of all the data,
  through ``m_step`` (exact identity, every family).
- float32 data offset by 1e4 against a float64 run on the un-offset data.
- An empty component (a mean far from all data): documented values, no NaN.
- ``sample_weight`` of 2 against duplicating the point (every family).
- No retrace on a second call (an m_step that counts its traces, and the jit cache size).
- The loop contract (``tol=0``, ``converged``, NaN-padded history, stopping rule),
  input validation, and (hypothesis) the EM law of docs/maths.md section 4: the
  log-likelihood history never decreases, for every family from random starts.
"""

import dataclasses
import math
import warnings

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from references import blobs
from scipy.special import logsumexp
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

import jaxmix
import jaxmix.inference.em
from jaxmix import (
    ExponentialMixture,
    ExponentialMixtureParams,
    FuzzyCMeans,
    FuzzyCMeansParams,
    GaussianMixture,
    GaussianMixtureParams,
    KMeans,
    KMeansParams,
    e_step,
    fit,
    fit_em,
    initialize,
)
from jaxmix.protocol import FAST_COMPILE_OPTIONS, stopping_tolerance

# Shared sizes: every float64 run below uses (N, D, K) = (150, 2, 3) and
# MAX_ITER iterations where it can, so the compiled loops are reused.
N, K, MAX_ITER = 150, 3, 15
SCALE = 3.0
COV_TYPES = ("full", "diag", "spherical", "tied", "identity")


def exponential_data(seed=0, n=N, weights=(0.4, 0.6), rates=(0.5, 4.0)):
    """Draws from sum_j u_j Exp(lambda_j), by numpy (independent of the library's sampler)."""
    rng = np.random.default_rng(seed)
    z = rng.choice(len(weights), size=n, p=weights)
    return rng.exponential(1.0 / np.asarray(rates)[z])


X = blobs()
X_EXP = exponential_data()
W0 = np.array([0.3, 0.3, 0.4])
MU0 = X[[3, 60, 120]] + 0.3
COV0 = {
    "full": SCALE**2 * np.stack([1.5 * np.eye(2), [[1.0, 0.3], [0.3, 1.0]], np.eye(2)]),
    "diag": SCALE**2 * np.array([[1.0, 2.0], [1.5, 1.0], [1.0, 1.0]]),
    "spherical": SCALE**2 * np.array([1.0, 2.0, 1.5]),
    "tied": SCALE**2 * np.array([[2.0, 0.5], [0.5, 1.0]]),
    "identity": None,
}
EXP_START = ExponentialMixtureParams(np.array([0.5, 0.5]), np.array([0.3, 2.0]))


def gmm_start(cov_type):
    return GaussianMixtureParams(W0, MU0, COV0[cov_type])


def family(name):
    """(model, start params, data) for each family of the EM protocol."""
    if name.startswith("gmm-"):
        cov_type = name[4:]
        return GaussianMixture(K, cov_type), gmm_start(cov_type), X
    if name == "exponential":
        return ExponentialMixture(2), EXP_START, X_EXP
    if name == "kmeans":
        return KMeans(K), KMeansParams(MU0), X
    if name == "fuzzy":
        return FuzzyCMeans(K), FuzzyCMeansParams(MU0), X
    raise AssertionError(name)


FAMILIES = [f"gmm-{c}" for c in COV_TYPES] + ["exponential", "kmeans", "fuzzy"]


def np_tree(tree):
    return jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), tree)


def assert_tree_close(actual, expected, rtol, atol=0.0):
    actual, expected = np_tree(actual), np_tree(expected)
    assert jax.tree_util.tree_structure(actual) == jax.tree_util.tree_structure(expected)
    for a, e in zip(jax.tree_util.tree_leaves(actual), jax.tree_util.tree_leaves(expected)):
        np.testing.assert_allclose(a, e, rtol=rtol, atol=atol)


# ---------------------------------------------------------------------------
# Against scikit-learn and numpy transcriptions of docs/maths.md


@pytest.mark.parametrize("n_iter", [1, MAX_ITER])
@pytest.mark.parametrize("cov_type", ["full", "diag", "spherical", "tied"])
def test_gaussian_em_matches_sklearn(x64, cov_type, n_iter):
    cov = COV0[cov_type]
    precisions = np.linalg.inv(cov) if cov_type in ("full", "tied") else 1.0 / cov
    sk = SkGaussianMixture(
        K, covariance_type=cov_type, weights_init=W0, means_init=MU0, precisions_init=precisions,
        max_iter=n_iter, tol=0.0, random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk.fit(X)
    assert sk.n_iter_ == n_iter

    result = fit_em(GaussianMixture(K, cov_type), gmm_start(cov_type), X, max_iter=n_iter, tol=0.0)

    assert int(result.n_iter) == n_iter
    np.testing.assert_allclose(result.params.weights, sk.weights_, rtol=1e-6)
    np.testing.assert_allclose(result.params.means, sk.means_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(result.params.covariances, sk.covariances_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(float(result.log_likelihood), sk.score(X), rtol=1e-6)
    # history[t] is the log-likelihood before the t-th M-step: the last one is sklearn's lower bound.
    np.testing.assert_allclose(float(result.history[n_iter - 1]), sk.lower_bound_, rtol=1e-6)


def numpy_identity_em(x, weights, means, n_iter):
    """docs/maths.md section 5 with Sigma_j = I: only pi and mu are updated."""
    n, d = x.shape
    history = []

    def log_joint(weights, means):
        sq = np.sum((x[:, None, :] - means[None]) ** 2, axis=-1)
        return np.log(weights) - 0.5 * (d * math.log(2 * math.pi) + sq)

    for _ in range(n_iter):
        lj = log_joint(weights, means)
        log_px = logsumexp(lj, axis=1, keepdims=True)
        history.append(np.mean(log_px))
        q = np.exp(lj - log_px)
        n_j = q.sum(axis=0)
        weights = n_j / n
        means = (q.T @ x) / n_j[:, None]
    return weights, means, np.array(history), np.mean(logsumexp(log_joint(weights, means), axis=1))


def test_identity_covariance_matches_numpy_transcription(x64):
    weights, means, history, final = numpy_identity_em(X, W0, MU0, MAX_ITER)
    result = fit_em(GaussianMixture(K, "identity"), gmm_start("identity"), X, max_iter=MAX_ITER, tol=0.0)
    assert result.params.covariances is None
    np.testing.assert_allclose(result.params.weights, weights, rtol=1e-10)
    np.testing.assert_allclose(result.params.means, means, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(result.history, history, rtol=1e-10)
    np.testing.assert_allclose(float(result.log_likelihood), final, rtol=1e-10)


def numpy_exponential_em(x, u, lam, n_iter):
    """The homework's E/M formulas (docs/maths.md section 3), in log space."""
    history = []

    def log_joint(u, lam):
        return np.log(u) + np.log(lam) - lam * x[:, None]

    for _ in range(n_iter):
        lj = log_joint(u, lam)
        log_px = logsumexp(lj, axis=1, keepdims=True)
        history.append(np.mean(log_px))
        q = np.exp(lj - log_px)  # q_ji, stored as (i, j)
        u = q.sum(axis=0) / len(x)
        lam = q.sum(axis=0) / (q * x[:, None]).sum(axis=0)
    return u, lam, np.array(history), np.mean(logsumexp(log_joint(u, lam), axis=1))


def test_exponential_em_matches_numpy_transcription(x64):
    u, lam, history, final = numpy_exponential_em(X_EXP, EXP_START.weights, EXP_START.rates, MAX_ITER)
    result = fit_em(ExponentialMixture(2), EXP_START, X_EXP, max_iter=MAX_ITER, tol=0.0)
    np.testing.assert_allclose(result.params.weights, u, rtol=1e-10)
    np.testing.assert_allclose(result.params.rates, lam, rtol=1e-10)
    np.testing.assert_allclose(result.history, history, rtol=1e-10)
    np.testing.assert_allclose(float(result.log_likelihood), final, rtol=1e-10)


def test_exponential_em_recovers_generating_rates(x64):
    true_weights, true_rates = np.array([0.3, 0.7]), np.array([1.0, 10.0])
    x = exponential_data(seed=7, n=20000, weights=true_weights, rates=true_rates)
    start = ExponentialMixtureParams(np.array([0.5, 0.5]), np.array([0.5, 3.0]))
    result = fit_em(ExponentialMixture(2), start, x, max_iter=500, tol=1e-10)
    assert bool(result.converged)
    order = np.argsort(np.asarray(result.params.rates))
    # Statistical tolerance: with 20000 points the MLE's standard errors are ~1-2%.
    np.testing.assert_allclose(np.asarray(result.params.rates)[order], true_rates, rtol=0.05)
    np.testing.assert_allclose(np.asarray(result.params.weights)[order], true_weights, atol=0.03)


# ---------------------------------------------------------------------------
# The additivity contract behind chunked and multi-device EM


N_CHUNKS = 3  # disjoint chunks of 50 points


@jax.jit
def whole_and_chunked(x, x_exp):
    """For every family: the statistics of all the data, those of the chunks, and both m_steps.

    One jit for all families, and the chunks' E-steps vmapped (the public methods
    are pure and trace fine), so the test compiles one small program.
    """
    out = {}
    for name in FAMILIES:
        model, params, _ = family(name)
        data = x_exp if name == "exponential" else x
        whole, _ = e_step(model, params, data)
        batched, _ = jax.vmap(lambda chunk: e_step(model, params, chunk))(
            data.reshape((N_CHUNKS, -1) + data.shape[1:]))
        parts = [jax.tree_util.tree_map(lambda leaf: leaf[i], batched) for i in range(N_CHUNKS)]
        combined = jaxmix.combine_stats(*parts)
        out[name] = (model.m_step(whole), model.m_step(combined), whole, combined, parts[0])
    return out


@pytest.fixture(scope="module")
def chunked_results():
    with jax.enable_x64(True):
        return np_tree(whole_and_chunked(X, X_EXP))


@pytest.mark.parametrize("name", FAMILIES)
def test_combined_chunk_statistics_give_the_whole_data_m_step(chunked_results, name):
    from_whole, from_chunks, whole, combined, first_part = chunked_results[name]
    assert_tree_close(from_chunks, from_whole, rtol=1e-12, atol=1e-12)
    # The additive fields add up; the reference is shared, not summed.
    for field in combined._fields:
        got, want = getattr(combined, field), getattr(whole, field)
        if field == "reference":
            np.testing.assert_array_equal(got, first_part.reference)
        elif want is not None:
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------
# float32 far from the origin, and empty components

OFFSET = 1e4


def assert_positive_variances(cov_type, cov):
    cov = np.asarray(cov, np.float64)
    if cov_type in ("full", "tied"):
        assert np.all(np.linalg.eigvalsh(cov) > 0)
    elif cov_type in ("diag", "spherical"):
        assert np.all(cov > 0)


@pytest.mark.parametrize("cov_type", ["full", "diag", "tied"])
def test_float32_offset_data_gives_the_shifted_float64_result(cov_type):
    model = GaussianMixture(K, cov_type)
    x32 = (X + OFFSET).astype(np.float32)
    mu32 = (MU0 + OFFSET).astype(np.float32)
    cov = COV0[cov_type]
    # Reference: the same (float32-representable) data and start, un-offset, in float64.
    with jax.enable_x64(True):
        ref = np_tree(fit_em(model, GaussianMixtureParams(W0, mu32.astype(np.float64) - OFFSET, cov),
                             x32.astype(np.float64) - OFFSET, max_iter=MAX_ITER, tol=0.0))
    cov32 = None if cov is None else cov.astype(np.float32)
    start32 = GaussianMixtureParams(W0.astype(np.float32), mu32, cov32)
    result = fit_em(model, start32, x32, max_iter=MAX_ITER, tol=0.0)

    assert result.params.means.dtype == jnp.float32
    got = np_tree(result)
    scale = np.std(X)
    np.testing.assert_allclose(got.params.means - OFFSET, ref.params.means, atol=1e-3 * scale)
    np.testing.assert_allclose(got.params.weights, ref.params.weights, atol=1e-4)
    np.testing.assert_allclose(got.log_likelihood, ref.log_likelihood, rtol=1e-4)
    if cov is not None:
        assert_positive_variances(cov_type, got.params.covariances)
        np.testing.assert_allclose(got.params.covariances, ref.params.covariances,
                                   rtol=1e-3, atol=1e-3 * np.max(np.abs(ref.params.covariances)))


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_empty_component_keeps_its_mean_and_gets_no_nan(x64, cov_type):
    """A component far from all data gets responsibility exactly 0 (exp underflows).

    Documented outcome of the M-step (as in scikit-learn): its mean stays where
    it was, its weight is about 0 (currently 10 eps / N, positive, so its log is
    finite), and its covariance is reg_covar * I; for tied, the shared covariance
    is estimated from the other components. Nothing is NaN, then or later.
    """
    model = GaussianMixture(K, cov_type)
    means = MU0.copy()
    means[2] = [1e3, -1e3]
    params = GaussianMixtureParams(W0, means, COV0[cov_type])

    step = np_tree(fit_em(model, params, X, max_iter=1, tol=0.0))
    for leaf in jax.tree_util.tree_leaves(step):
        assert not np.any(np.isnan(leaf))
    np.testing.assert_array_equal(step.params.means[2], means[2])
    assert 0.0 <= step.params.weights[2] < 1e-12
    reg = model.reg_covar
    if cov_type == "full":
        np.testing.assert_allclose(step.params.covariances[2], reg * np.eye(2), rtol=1e-9)
    elif cov_type in ("diag", "spherical"):
        np.testing.assert_allclose(step.params.covariances[2], reg, rtol=1e-9)
    elif cov_type == "tied":
        assert np.min(np.linalg.eigvalsh(step.params.covariances)) > 0.1

    result = np_tree(fit_em(model, params, X, max_iter=MAX_ITER, tol=0.0))
    for leaf in jax.tree_util.tree_leaves(result):
        assert not np.any(np.isnan(leaf))
    np.testing.assert_array_equal(result.params.means[2], means[2])
    assert 0.0 <= result.params.weights[2] < 1e-12


# ---------------------------------------------------------------------------
# sample_weight

WEIGHTED_FAMILIES = ["gmm-full", "exponential", "kmeans", "fuzzy"]


@pytest.mark.parametrize("name", WEIGHTED_FAMILIES)
def test_weight_two_equals_a_duplicated_point(x64, name):
    model, params, x = family(name)
    x = x[: N - 4]
    twice = np.array([0, 7, 42, N - 5])
    weights = np.ones(len(x))
    weights[twice] = 2.0
    duplicated = np.concatenate([x, x[twice]])

    weighted = fit_em(model, params, x, sample_weight=weights, max_iter=MAX_ITER, tol=0.0)
    plain = fit_em(model, params, duplicated, max_iter=MAX_ITER, tol=0.0)

    assert_tree_close(weighted.params, plain.params, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(weighted.history, plain.history, rtol=1e-10)
    np.testing.assert_allclose(float(weighted.log_likelihood), float(plain.log_likelihood), rtol=1e-10)
    # And the weights matter: weights of one give a different fit.
    ones = fit_em(model, params, x, sample_weight=np.ones(len(x)), max_iter=MAX_ITER, tol=0.0)
    assert not np.isclose(float(ones.log_likelihood), float(plain.log_likelihood), rtol=1e-8)


# ---------------------------------------------------------------------------
# Compilation


M_STEP_TRACES = []


@dataclasses.dataclass(frozen=True)
class CountingGaussianMixture(GaussianMixture):
    """A Gaussian mixture whose m_step records each call (inside the jitted loop: once per trace)."""

    def m_step(self, stats):
        M_STEP_TRACES.append(1)
        return super().m_step(stats)


def test_second_call_with_same_shapes_does_not_retrace(x64):
    # A model no other test uses (its own class and reg_covar), so the first call must trace and compile.
    model = CountingGaussianMixture(K, "full", reg_covar=1.2345e-6)
    M_STEP_TRACES.clear()
    cache_before = jaxmix.inference.em.em_program.jitted(model)._cache_size()

    first = fit_em(model, gmm_start("full"), X, max_iter=MAX_ITER, tol=1e-3)
    traced = len(M_STEP_TRACES)
    assert traced >= 1
    assert jaxmix.inference.em.em_program.jitted(model)._cache_size() == cache_before + 1

    # Different data values, start values and tol; same model, shapes and max_iter.
    other_start = GaussianMixtureParams(np.array([0.2, 0.5, 0.3]), MU0 - 1.0, 2.0 * COV0["full"])
    second = fit_em(model, other_start, X[::-1] * 1.5 + 2.0, max_iter=MAX_ITER, tol=1e-6)
    assert len(M_STEP_TRACES) == traced
    assert jaxmix.inference.em.em_program.jitted(model)._cache_size() == cache_before + 1
    assert np.isfinite(float(second.log_likelihood))
    assert float(second.log_likelihood) != float(first.log_likelihood)  # it really ran on the new inputs


def test_em_runs_inside_a_callers_jit(x64):
    # The top-level programs carry compiler options (jaxmix.inference.em.EM_COMPILER_OPTIONS), which JAX
    # refuses on a nested jit; inside a caller's jit they must run as plain nested programs.
    model = GaussianMixture(K, "full")
    outside = fit_em(model, gmm_start("full"), X, max_iter=MAX_ITER, tol=0.0)
    run = jax.jit(lambda params, x: fit_em(model, params, x, max_iter=MAX_ITER, tol=0.0))
    inside = run(gmm_start("full"), X)
    chex.assert_trees_all_close(inside, outside, rtol=1e-12)
    key = jax.random.key(3)
    started = jax.jit(lambda key, x: initialize(key, model, x, "kmeans"))(key, X)
    chex.assert_trees_all_close(started, initialize(key, model, X, "kmeans"), rtol=1e-12)


# ---------------------------------------------------------------------------
# The loop contract


@pytest.mark.parametrize("name", FAMILIES)
def test_tol_zero_runs_exactly_max_iter(x64, name):
    model, params, x = family(name)
    result = fit_em(model, params, x, max_iter=MAX_ITER, tol=0.0)
    assert int(result.n_iter) == MAX_ITER
    assert not bool(result.converged)
    assert result.history.shape == (MAX_ITER,)
    assert np.all(np.isfinite(np.asarray(result.history)))


@pytest.mark.parametrize("name", FAMILIES)
def test_convergence_stops_at_first_small_change_and_pads_history_with_nan(x64, name):
    model, params, x = family(name)
    tol = 1e-2
    result = fit_em(model, params, x, max_iter=MAX_ITER, tol=tol)
    n = int(result.n_iter)
    history = np.asarray(result.history)
    assert bool(result.converged)
    assert 2 <= n < MAX_ITER  # otherwise this data does not exercise early stopping
    assert np.all(np.isfinite(history[:n]))
    assert np.all(np.isnan(history[n:]))
    changes = np.abs(np.diff(history[:n]))
    _, checked = model.check(None, x)  # k-means and fuzzy c-means: tol relative to the mean variance
    tol = float(stopping_tolerance(model, tol, checked, jnp.ones(checked.shape[0], checked.dtype)))
    assert changes[-1] < tol
    assert np.all(changes[:-1] >= tol)


# ---------------------------------------------------------------------------
# Input validation


def _gmm():
    return GaussianMixture(K, "full")


NEGATIVE_WEIGHTS = np.r_[-1.0, np.ones(N - 1)]
BAD_INPUTS = {
    "fewer points than components": (lambda: fit_em(_gmm(), gmm_start("full"), X[:2]), "n_components"),
    "fewer weighted points than components": (
        lambda: fit_em(_gmm(), gmm_start("full"), X[:5], sample_weight=np.array([1.0, 1.0, 0.0, 0.0, 0.0])),
        "n_components"),
    "fit on fewer points than components": (lambda: fit(jax.random.key(0), _gmm(), X[:2]), "n_components"),
    # KMeans and FuzzyCMeans take n_clusters, so that is the argument the message must name.
    "k-means on fewer points than clusters": (lambda: fit_em(KMeans(K), KMeansParams(MU0), X[:2]), "n_components"),
    "x 1-D": (lambda: fit_em(_gmm(), gmm_start("full"), X[:, 0]), "x"),
    "x 3-D": (lambda: fit_em(_gmm(), gmm_start("full"), X[None]), "x"),
    "x wrong n_features": (lambda: fit_em(_gmm(), gmm_start("full"), np.ones((20, 3))), "x"),
    "fit x 1-D": (lambda: fit(jax.random.key(0), _gmm(), X[:, 0]), "x"),
    "exponential x negative": (lambda: fit_em(ExponentialMixture(2), EXP_START, -X_EXP), "x"),
    "exponential x 2 columns": (lambda: fit_em(ExponentialMixture(2), EXP_START, X), "x"),
    "negative sample_weight": (
        lambda: fit_em(_gmm(), gmm_start("full"), X, sample_weight=NEGATIVE_WEIGHTS), "sample_weight"),
    "all-zero sample_weight": (
        lambda: fit_em(_gmm(), gmm_start("full"), X, sample_weight=np.zeros(N)), "sample_weight"),
    "sample_weight wrong length": (
        lambda: fit_em(_gmm(), gmm_start("full"), X, sample_weight=np.ones(N - 1)), "sample_weight"),
    "fit negative sample_weight": (
        lambda: fit(jax.random.key(0), _gmm(), X, sample_weight=NEGATIVE_WEIGHTS), "sample_weight"),
    "max_iter 0": (lambda: fit_em(_gmm(), gmm_start("full"), X, max_iter=0), "max_iter"),
    "max_iter negative": (lambda: fit_em(KMeans(K), KMeansParams(MU0), X, max_iter=-3), "max_iter"),
    "fit max_iter 0": (lambda: fit(jax.random.key(0), _gmm(), X, max_iter=0), "max_iter"),
    "tol negative": (lambda: fit_em(_gmm(), gmm_start("full"), X, tol=-1e-3), "tol"),
    "tol nan": (lambda: fit_em(_gmm(), gmm_start("full"), X, tol=float("nan")), "tol"),
    "fit tol negative": (lambda: fit(jax.random.key(0), _gmm(), X, tol=-1.0), "tol"),
    "fit n_init 0": (lambda: fit(jax.random.key(0), _gmm(), X, n_init=0), "n_init"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_raises_value_error_naming_the_argument(case):
    call, argument = BAD_INPUTS[case]
    with pytest.raises(ValueError, match=rf"\b{argument}\b"):
        call()


# ---------------------------------------------------------------------------
# The EM law (docs/maths.md section 4): the log-likelihood never decreases


@jax.jit
def random_starts(key, x, x_exp):
    """``initialize(key, model, x, "random")`` for every family, in one compiled call."""
    return {name: initialize(key, family(name)[0], x_exp if name == "exponential" else x, "random")
            for name in FAMILIES}


@pytest.mark.parametrize("name", FAMILIES)
@given(data_seed=st.integers(0, 2**31 - 1), key_seed=st.integers(0, 2**31 - 1))
def test_log_likelihood_history_never_decreases(name, data_seed, key_seed):
    with jax.enable_x64(True):
        model, _, _ = family(name)
        x, x_exp = blobs(data_seed), exponential_data(data_seed)
        params = random_starts(jax.random.key(key_seed), x, x_exp)[name]
        result = fit_em(model, params, x_exp if name == "exponential" else x, max_iter=MAX_ITER, tol=0.0)
        history = np.asarray(result.history)
        assert np.all(np.isfinite(history))
        trail = np.append(history, float(result.log_likelihood))
        slack = 1e-9 * np.abs(trail[1:])
        assert np.all(np.diff(trail) >= -slack), np.diff(trail)


def test_em_compiler_options_can_be_turned_off(monkeypatch):
    """The XLA options EM programs use are visible, a family's own go over them, and
    JAXMIX_EM_COMPILER_OPTIONS=0 turns them all off."""
    em_module = jaxmix.inference.em
    monkeypatch.setenv("JAXMIX_EM_COMPILER_OPTIONS", "0")
    assert em_module.em_compiler_options(GaussianMixture(2)) is None
    monkeypatch.delenv("JAXMIX_EM_COMPILER_OPTIONS")
    assert em_module.em_compiler_options() == em_module.EM_COMPILER_OPTIONS
    assert em_module.em_compiler_options(GaussianMixture(2)) == {**em_module.EM_COMPILER_OPTIONS,
                                                                 **FAST_COMPILE_OPTIONS}
    assert em_module.em_compiler_options(GaussianMixture(2, "diag")) == em_module.EM_COMPILER_OPTIONS
    unknown = type("Unknown", (), {"compiler_options": {"xla_no_such_option": True}})()
    assert em_module.em_compiler_options(unknown) == em_module.EM_COMPILER_OPTIONS
