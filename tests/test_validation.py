"""Bad input raises, with a message that names the offending argument.

Checked against the issue's list: construction (n_components, covariance_type,
reg_covar), data (NaN/inf, wrong rank, wrong feature count, no rows,
non-numeric, negative values for the exponential), parameters (wrong
NamedTuple, weights negative / not summing to one / wrong shape, means of the
wrong shape, covariances non-symmetric / not positive definite / non-positive
/ of another covariance type's shape, identity with a covariance, non-positive
rates), ``sample``'s n, ``e_step``'s sample_weight and ``elbo``'s q.

Under ``jax.jit`` (tracing) value checks are skipped but shape checks still
raise: a wrong feature count raises ValueError, valid input runs and equals
eager. Valid float32 inputs of shape N = 40, K = 3, D = 2 throughout (the
shapes the other test files compile).
"""

import dataclasses

import jax
import numpy as np
import pytest

from jaxmix import (
    ExponentialMixture,
    ExponentialMixtureParams,
    GaussianMixture,
    GaussianMixtureParams,
    e_step,
    elbo,
)

K, D, N = 3, 2, 40
COV_TYPES = ("full", "diag", "spherical", "tied", "identity")
METHODS = ("log_joint", "log_prob", "posterior", "predict", "score", "bic", "aic", "e_step")


def evaluate(model, method):
    """``model.<method>``, or the E-step driver ``e_step(model, ...)`` for "e_step"."""
    return (lambda params, x: e_step(model, params, x)) if method == "e_step" else getattr(model, method)

RNG = np.random.default_rng(0)
X = RNG.normal(size=(N, D)).astype(np.float32)
X_POS = RNG.exponential(size=N).astype(np.float32)
WEIGHTS = np.array([0.2, 0.3, 0.5], np.float32)
MEANS = np.array([[-2.0, 0.0], [0.0, 1.0], [2.0, 0.0]], np.float32)
SPD = np.array([[1.0, 0.3], [0.3, 0.5]], np.float32)
COVARIANCES = {
    "full": np.stack([SPD, 2 * SPD, np.eye(D, dtype=np.float32)]),
    "diag": np.array([[1.0, 0.5], [2.0, 1.0], [0.7, 0.7]], np.float32),
    "spherical": np.array([1.0, 0.5, 2.0], np.float32),
    "tied": SPD,
    "identity": None,
}
RATES = np.array([0.5, 2.0, 10.0], np.float32)


def gaussian(cov_type="full", **changes):
    params = GaussianMixtureParams(WEIGHTS, MEANS, COVARIANCES[cov_type])._replace(**changes)
    return GaussianMixture(K, cov_type), params


def exponential(**changes):
    return ExponentialMixture(K), ExponentialMixtureParams(WEIGHTS, RATES)._replace(**changes)


def with_value(x, index, value):
    x = np.array(x)
    x[index] = value
    return x


# -- construction ------------------------------------------------------------------


@pytest.mark.parametrize("cls", [GaussianMixture, ExponentialMixture])
@pytest.mark.parametrize(
    "bad, error",
    [(0, ValueError), (-2, ValueError), (2.0, TypeError), (True, TypeError), ("2", TypeError),
     (None, TypeError)],
)
def test_n_components(cls, bad, error):
    with pytest.raises(error, match="n_components"):
        cls(bad)


@pytest.mark.parametrize("bad, error", [("fulll", ValueError), ("FULL", ValueError), ("", ValueError),
                                        (None, TypeError), (["full"], TypeError)])
def test_unknown_covariance_type(bad, error):
    with pytest.raises(error, match="covariance_type"):
        GaussianMixture(2, bad)


@pytest.mark.parametrize("bad, error", [(-1e-6, ValueError), (float("nan"), ValueError), ("1e-6", TypeError)])
def test_reg_covar(bad, error):
    with pytest.raises(error, match="reg_covar"):
        GaussianMixture(2, "full", reg_covar=bad)


def test_models_are_frozen_and_hashable():
    assert hash(GaussianMixture(2, "diag")) == hash(GaussianMixture(2, "diag"))
    assert GaussianMixture(2, "diag") != GaussianMixture(2, "full")
    assert hash(ExponentialMixture(3)) == hash(ExponentialMixture(3))
    with pytest.raises(dataclasses.FrozenInstanceError):
        GaussianMixture(2).n_components = 3


# -- data ----------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_x(method, value):
    model, params = gaussian()
    with pytest.raises(ValueError, match=r"\bx\b.*(NaN|inf)"):
        evaluate(model, method)(params, with_value(X, (3, 1), value))


@pytest.mark.parametrize("method", METHODS)
def test_non_finite_x_exponential(method):
    model, params = exponential()
    with pytest.raises(ValueError, match=r"\bx\b.*(NaN|inf)"):
        evaluate(model, method)(params, with_value(X_POS, 3, np.nan))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    "x",
    [X[:, 0], X[None], np.ones((N, D + 1), np.float32), np.ones((N, 1), np.float32),
     np.ones((0, D), np.float32)],
    ids=["1-D", "3-D", "D+1 features", "1 feature", "no rows"],
)
def test_x_shape(method, x):
    model, params = gaussian()
    with pytest.raises(ValueError, match=r"\bx\b"):
        evaluate(model, method)(params, x)


@pytest.mark.parametrize(
    "x", [np.ones((N, 2), np.float32), np.ones((N, 1, 1), np.float32), np.ones(0, np.float32)],
    ids=["2 columns", "3-D", "empty"],
)
def test_x_shape_exponential(x):
    model, params = exponential()
    with pytest.raises(ValueError, match=r"\bx\b"):
        model.log_prob(params, x)


@pytest.mark.parametrize("method", METHODS)
def test_negative_x_exponential(method):
    model, params = exponential()
    with pytest.raises(ValueError, match=r"\bx\b.*non-negative"):
        evaluate(model, method)(params, with_value(X_POS, 5, -1e-3))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # NumPy 2 warns while JAX inspects str dtypes
@pytest.mark.parametrize(
    "x", [[["a", "b"]] * N, np.array([["1.0", "2.0"]] * N), "x", (X + 1j).astype(np.complex64)],
    ids=["list of str", "str array", "str", "complex"],
)
@pytest.mark.parametrize("family", ["gaussian", "exponential"])
def test_non_numeric_x(x, family):
    model, params = gaussian() if family == "gaussian" else exponential()
    with pytest.raises(TypeError, match=r"\bx\b"):
        model.log_prob(params, x)


def test_integer_and_list_x_are_accepted():
    model, params = gaussian()
    expected = model.log_prob(params, X.round())
    np.testing.assert_allclose(model.log_prob(params, X.round().astype(int)), expected)
    np.testing.assert_allclose(model.log_prob(params, X.tolist()), model.log_prob(params, X))


# -- parameters ------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["gaussian", "exponential"])
@pytest.mark.parametrize(
    "weights",
    [
        np.array([-0.2, 0.6, 0.6], np.float32),  # sums to one, one negative
        np.array([0.3, 0.3, 0.3], np.float32),  # sums to 0.9
        np.array([0.5, 0.5, 0.5], np.float32),  # sums to 1.5
        np.array([0.5, 0.5], np.float32),  # K - 1 entries
        np.array([[0.2, 0.3, 0.5]], np.float32),  # 2-D
        np.array([np.nan, 0.5, 0.5], np.float32),
    ],
    ids=["negative", "sum 0.9", "sum 1.5", "too short", "2-D", "NaN"],
)
def test_bad_weights(family, weights):
    model, params = gaussian(weights=weights) if family == "gaussian" else exponential(weights=weights)
    with pytest.raises(ValueError, match="weights"):
        model.log_prob(params, X if family == "gaussian" else X_POS)


@pytest.mark.parametrize(
    "means", [MEANS[:2], MEANS[:, 0], with_value(MEANS, (1, 1), np.nan)], ids=["K-1 rows", "1-D", "NaN"]
)
def test_bad_means(means):
    model, params = gaussian(means=means)
    with pytest.raises(ValueError, match="means"):
        model.log_prob(params, X)


def non_symmetric(cov):
    return with_value(cov, (..., 0, 1), cov[..., 0, 1] + 0.1)


def not_positive_definite(cov):
    bad = np.array([[1.0, 2.0], [2.0, 1.0]], np.float32)  # eigenvalues 3 and -1
    return bad if cov.ndim == 2 else with_value(cov, 1, bad)


@pytest.mark.parametrize("cov_type", ["full", "tied"])
@pytest.mark.parametrize(
    "make_bad, message",
    [(non_symmetric, "symmetric"), (not_positive_definite, "positive definite"),
     (lambda c: with_value(c, (..., 0, 0), np.nan), "NaN|inf")],
    ids=["non-symmetric", "not PD", "NaN"],
)
def test_bad_matrix_covariances(cov_type, make_bad, message):
    model, params = gaussian(cov_type)
    with pytest.raises(ValueError, match=f"covariances.*({message})"):
        model.log_prob(params._replace(covariances=make_bad(params.covariances)), X)


@pytest.mark.parametrize("cov_type", ["diag", "spherical"])
@pytest.mark.parametrize("value", [0.0, -0.5, np.nan])
def test_bad_variances(cov_type, value):
    model, params = gaussian(cov_type)
    bad = np.array(params.covariances)
    bad.flat[1] = value
    with pytest.raises(ValueError, match="covariances"):
        model.log_prob(params._replace(covariances=bad), X)


def wrong_covariances():
    """(covariance_type, covariances of another type's shape / transposed / None)."""
    for cov_type in ("full", "diag", "spherical", "tied"):
        right = COVARIANCES[cov_type]
        for other in ("full", "diag", "spherical", "tied"):
            if other != cov_type:
                yield pytest.param(cov_type, COVARIANCES[other], id=f"{cov_type}<-{other}")
        if right.T.shape != right.shape:
            yield pytest.param(cov_type, right.T, id=f"{cov_type}<-transposed")
        yield pytest.param(cov_type, None, id=f"{cov_type}<-None")


@pytest.mark.parametrize("cov_type, cov", list(wrong_covariances()))
def test_covariances_of_the_wrong_shape(cov_type, cov):
    """E.g. diag-shaped covariances with covariance_type='full'; None where an array is needed."""
    model, params = gaussian(cov_type, covariances=cov)
    with pytest.raises((ValueError, TypeError), match="covariances"):
        model.log_prob(params, X)


@pytest.mark.parametrize("shape_of", ["full", "diag", "spherical", "tied"])
def test_identity_rejects_a_covariance(shape_of):
    model, params = gaussian("identity", covariances=COVARIANCES[shape_of])
    with pytest.raises(ValueError, match="covariances"):
        model.log_prob(params, X)


@pytest.mark.parametrize(
    "rates", [with_value(RATES, 1, 0.0), with_value(RATES, 1, -1.0), with_value(RATES, 1, np.nan), RATES[:2]],
    ids=["zero", "negative", "NaN", "K-1 entries"],
)
def test_bad_rates(rates):
    model, params = exponential(rates=rates)
    with pytest.raises(ValueError, match="rates"):
        model.log_prob(params, X_POS)


@pytest.mark.parametrize(
    "family, wrong",
    [
        ("gaussian", ExponentialMixtureParams(WEIGHTS, RATES)),
        ("gaussian", (WEIGHTS, MEANS, COVARIANCES["full"])),
        ("gaussian", {"weights": WEIGHTS, "means": MEANS, "covariances": COVARIANCES["full"]}),
        ("exponential", GaussianMixtureParams(WEIGHTS, RATES[:, None], None)),
        ("exponential", (WEIGHTS, RATES)),
    ],
    ids=["gaussian<-exponential params", "gaussian<-tuple", "gaussian<-dict", "exponential<-gaussian params",
         "exponential<-tuple"],
)
def test_params_of_the_wrong_type(family, wrong):
    model = GaussianMixture(K) if family == "gaussian" else ExponentialMixture(K)
    with pytest.raises(TypeError, match="params"):
        model.log_prob(wrong, X if family == "gaussian" else X_POS)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_non_numeric_parameters():
    model, params = gaussian(weights=np.array(["0.2", "0.3", "0.5"]))
    with pytest.raises(TypeError, match="weights"):
        model.log_prob(params, X)


# -- sample, sample_weight, q --------------------------------------------------------


@pytest.mark.parametrize("family", ["gaussian", "exponential"])
@pytest.mark.parametrize("n, error", [(0, ValueError), (-5, ValueError), (2.5, TypeError), (True, TypeError)])
def test_sample_size(family, n, error):
    model, params = gaussian() if family == "gaussian" else exponential()
    with pytest.raises(error, match=r"\bn\b"):
        model.sample(jax.random.key(0), params, n)


def test_sample_checks_params():
    model, params = gaussian(weights=np.array([0.3, 0.3, 0.3], np.float32))
    with pytest.raises(ValueError, match="weights"):
        model.sample(jax.random.key(0), params, 10)


@pytest.mark.parametrize(
    "sample_weight",
    [np.ones(N - 1), -np.ones(N), np.zeros(N), with_value(np.ones(N), 2, np.nan)],
    ids=["wrong length", "negative", "all zero", "NaN"],
)
def test_bad_sample_weight(sample_weight):
    model, params = gaussian()
    with pytest.raises(ValueError, match="sample_weight"):
        e_step(model, params, X, sample_weight=sample_weight)


Q = np.full((N, K), 1.0 / K, np.float32)


@pytest.mark.parametrize(
    "q",
    [Q[:-1], Q[:, :2] * 1.5, with_value(Q, (0, 0), -0.1), Q * 0.9, with_value(Q, (1, 1), np.nan)],
    ids=["N-1 rows", "K-1 columns", "negative", "rows sum to 0.9", "NaN"],
)
def test_bad_q(q):
    model, params = gaussian()
    with pytest.raises(ValueError, match=r"\bq\b"):
        elbo(model, params, X, q)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_non_numeric_q():
    model, params = gaussian()
    with pytest.raises(TypeError, match=r"\bq\b"):
        elbo(model, params, X, np.full((N, K), "a"))


def test_elbo_checks_x_and_params():
    model, params = gaussian()
    with pytest.raises(ValueError, match=r"\bx\b"):
        elbo(model, params, with_value(X, (0, 0), np.nan), Q)
    with pytest.raises(ValueError, match="weights"):
        elbo(model, params._replace(weights=WEIGHTS * 2), X, Q)


# -- under jax.jit: shape checks only ----------------------------------------------------


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_jit_still_checks_shapes(cov_type):
    model, params = gaussian(cov_type)
    log_prob = jax.jit(model.log_prob)
    with pytest.raises(ValueError, match=r"\bx\b"):
        log_prob(params, np.ones((N, D + 1), np.float32))
    with pytest.raises(ValueError, match="weights"):
        log_prob(params._replace(weights=np.full(K + 1, 1.0 / (K + 1), np.float32)), X)
    np.testing.assert_allclose(log_prob(params, X), model.log_prob(params, X), rtol=1e-5, atol=1e-5)


def test_jit_still_checks_shapes_exponential():
    model, params = exponential()
    log_prob = jax.jit(model.log_prob)
    with pytest.raises(ValueError, match=r"\bx\b"):
        log_prob(params, np.ones((N, 2), np.float32))
    np.testing.assert_allclose(log_prob(params, X_POS), model.log_prob(params, X_POS), rtol=1e-5, atol=1e-5)


def test_jit_skips_value_checks():
    """Tracers have no values: NaN data pass through (to NaN) instead of raising."""
    model, params = gaussian()
    out = jax.jit(model.log_prob)(params, with_value(X, (0, 0), np.nan))
    assert np.isnan(out[0]) and np.all(np.isfinite(out[1:]))
