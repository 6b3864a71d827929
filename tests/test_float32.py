"""float32 and input dtypes: no silent wrong answer (issue 13, classes 1, 2, 3 and 6).

What is checked against what:

- Log-densities of every covariance type at float32 data far from the origin, with far-apart or very tight
  components, against scipy's float64 densities of the same (float32-rounded) values and parameters; a
  hypothesis property over offsets, scales and covariance types.
- Fits of float32 data (clusters 10^4 apart, a large common offset, scikit-learn's digits) against
  scikit-learn's float64 fit of the same data, and the reported log-likelihood against a float64
  evaluation of the returned parameters; the fitted full covariances exactly symmetric.
- k-means' reported objective against scikit-learn's float64 inertia.
- int64 data beyond 2^31, Python lists of large ints, bool, float16 and bfloat16 input: the working dtype's
  answer (the float64 answer of the example in the issue), never int32 wrap-around.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.cluster import KMeans as SkKMeans
from sklearn.datasets import load_digits
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from jaxmix import (
    ExponentialMixture,
    ExponentialMixtureParams,
    GaussianMixture,
    GaussianMixtureParams,
    KMeans,
    KMeansParams,
    fit,
    fit_em,
)

COVARIANCE_TYPES = ("full", "diag", "spherical", "tied")


def covariances(cov_type, k, d, variance):
    return {
        "full": np.stack([np.eye(d) * variance] * k),
        "diag": np.full((k, d), variance),
        "spherical": np.full(k, variance),
        "tied": np.eye(d) * variance,
    }[cov_type]


def float64_log_prob(params, cov_type, x):
    """scipy's float64 log-density of the float32 values (scikit-learn's own float64 ``score_samples``
    expands the quadratic form and is itself off by 0.03 nat at an offset of 1e4 and a variance of 1e-6)."""
    weights, means, cov = (np.asarray(a, np.float32).astype(np.float64) for a in params)
    k, d = means.shape
    full = {
        "full": lambda: cov,
        "diag": lambda: cov[:, None, :] * np.eye(d),
        "spherical": lambda: cov[:, None, None] * np.eye(d),
        "tied": lambda: np.broadcast_to(cov, (k, d, d)),
    }
    full = full[cov_type]()
    x = np.asarray(x, np.float32).astype(np.float64)
    return logsumexp(
        [np.log(weights[j]) + multivariate_normal(means[j], full[j]).logpdf(x) for j in range(k)], axis=0
    )


def far_apart(offset=1e4, n=200, seed=0):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(size=(n, 2)), rng.normal(size=(n, 2)) + offset]).astype(np.float32)


@pytest.mark.parametrize("cov_type", COVARIANCE_TYPES)
def test_tight_components_far_from_origin_are_exact(cov_type):
    """Variance 1e-6, means 2 apart, 1e3 from the origin: diag, spherical and tied lost 0.4-1 nat."""
    rng = np.random.default_rng(0)
    k, d, variance = 2, 3, 1e-6
    means = np.array([[0.0] * d, [2.0] * d]) + 1e3
    x = (means[rng.integers(0, k, 300)] + rng.normal(size=(300, d)) * np.sqrt(variance)).astype(np.float32)
    params = GaussianMixtureParams(
        np.array([0.4, 0.6], np.float32),
        means.astype(np.float32),
        covariances(cov_type, k, d, variance).astype(np.float32),
    )
    got = np.asarray(GaussianMixture(k, cov_type).log_prob(params, x))
    np.testing.assert_allclose(got, float64_log_prob(params, cov_type, x), atol=1e-3)


@given(
    offset=st.sampled_from([0.0, 1.0, 1e2, 1e4, -3e4]),
    scale=st.sampled_from([1e-3, 1.0, 1e3]),
    cov_type=st.sampled_from(COVARIANCE_TYPES),
    dtype=st.sampled_from(["float32", "float16", "bfloat16", "int64"]),
    seed=st.integers(0, 2**16),
)
def test_log_prob_matches_float64_whatever_the_offset_scale_and_dtype(offset, scale, cov_type, dtype, seed):
    """The log-density equals the float64 one of the same values (as the working float32 holds them)."""
    rng = np.random.default_rng(seed)
    k, d = 3, 2
    means = (rng.normal(size=(k, d)) * 4 * scale + offset).astype(np.float32)
    x = means[rng.integers(0, k, 64)] + rng.normal(size=(64, d)) * scale
    x = np.rint(x).astype(np.int64) if dtype == "int64" else jnp.asarray(x, dtype)
    params = GaussianMixtureParams(
        np.full(k, 1 / k, np.float32), means, covariances(cov_type, k, d, scale**2).astype(np.float32)
    )
    expected = float64_log_prob(params, cov_type, np.asarray(x, np.float32))
    got = GaussianMixture(k, cov_type).log_prob(params, x)
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(got), expected, atol=2e-4 * (1 + np.abs(expected).max()))


@pytest.mark.parametrize("cov_type", COVARIANCE_TYPES)
def test_clusters_far_apart_fit_like_float64_scikit_learn(cov_type):
    """Two clusters 1e4 apart in float32: full gave NaN, diag was 2e5 nats off; sklearn f64 -3.53."""
    x = far_apart()
    result = fit(jax.random.key(0), GaussianMixture(2, cov_type), x).best
    sk = SkGaussianMixture(2, covariance_type=cov_type, random_state=0).fit(x.astype(np.float64))
    assert float(result.log_likelihood) == pytest.approx(sk.score(x.astype(np.float64)), abs=1e-4)


@pytest.mark.parametrize("offset", [1e2, 1e4])
def test_fit_far_from_origin_is_symmetric_and_scored_as_in_float64(offset):
    """A mean of 100 or 1e4 in float32: predict raised "covariances must be symmetric"."""
    rng = np.random.default_rng(1)
    x = (
        np.concatenate([rng.normal(size=(150, 3)), rng.normal(size=(150, 3)) * 0.5 + 3]).astype(np.float32)
        + offset
    )
    model = GaussianMixture(2)
    best = fit(jax.random.key(0), model, x).best
    cov = np.asarray(best.params.covariances)
    np.testing.assert_array_equal(cov, np.swapaxes(cov, 1, 2))
    model.predict(best.params, x)  # passes the library's own checks
    expected = float64_log_prob(best.params, "full", x).mean()
    assert float(best.log_likelihood) == pytest.approx(expected, abs=1e-3)


def test_digits_full_fit_is_finite_and_scored_as_in_float64():
    """The digits in float32 gave a NaN log-likelihood, not converged (a covariance eigenvalue of -7.4e-7)."""
    x = load_digits().data.astype(np.float32)
    best = fit(jax.random.key(0), GaussianMixture(10), x).best
    assert bool(best.converged)
    assert np.isfinite(float(best.log_likelihood))
    for cov in np.asarray(best.params.covariances, np.float64):
        assert np.linalg.eigvalsh(cov).min() > 0
    expected = float64_log_prob(best.params, "full", x).mean()
    assert float(best.log_likelihood) == pytest.approx(expected, abs=2e-3 * abs(expected))


def test_digits_diagonal_log_density_matches_float64():
    """A diagonal fit's log-density at its own parameters was off by up to 14.7 nats per point."""
    x = load_digits().data.astype(np.float32)
    model = GaussianMixture(10, "diag")
    params = fit(jax.random.key(0), model, x).best.params
    got = np.asarray(model.log_prob(params, x))
    np.testing.assert_allclose(got, float64_log_prob(params, "diag", x), atol=1e-3)


def test_kmeans_objective_of_far_apart_clusters_is_scikit_learns():
    """k-means found the centres but reported 336 for a true inertia of 371."""
    x = far_apart()
    start = x[[0, -1]]
    result = fit_em(KMeans(2), KMeansParams(start), x, max_iter=20)
    sk = SkKMeans(2, init=start.astype(np.float64), n_init=1).fit(x.astype(np.float64))
    assert -float(result.log_likelihood) * len(x) == pytest.approx(sk.inertia_, rel=1e-5)


# -- input dtypes -------------------------------------------------------------------------------------


def test_int64_beyond_int32_is_not_wrapped():
    """The issue's example: -1.45e24 when int64 wrapped through int32; the float64 answer is -1.84."""
    x = np.array([[1_700_000_000_000, 3]], np.int64)
    params = GaussianMixtureParams(np.ones(1), np.array([[1.7e12, 3.0]]), np.eye(2)[None])
    expected = -np.log(2 * np.pi)  # x equals the mean
    for given_x in (x, x.tolist()):
        assert float(GaussianMixture(1).log_prob(params, given_x)[0]) == pytest.approx(expected, rel=1e-6)
    rates = ExponentialMixtureParams(np.ones(1), np.array([1e-12]))
    got = float(ExponentialMixture(1).log_prob(rates, np.array([3_000_000_000_000], np.int64))[0])
    assert got == pytest.approx(np.log(1e-12) - 3.0, rel=1e-6)


def test_python_ints_beyond_int64_and_bools_convert():
    params = GaussianMixtureParams(np.ones(1), np.array([[2.0**70, 1.0]]), np.eye(2)[None])
    assert float(GaussianMixture(1).log_prob(params, [[2**70, True]])[0]) == pytest.approx(-np.log(2 * np.pi))


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_low_precision_input_is_computed_in_float32(dtype):
    """float16/bfloat16 x passed validation and then failed inside XLA."""
    x = far_apart(offset=4.0, n=50)
    low = jnp.asarray(x, dtype)
    params = GaussianMixtureParams(
        np.array([0.5, 0.5]), np.array([[0.0, 0.0], [4.0, 4.0]]), np.stack([np.eye(2)] * 2)
    )
    got = GaussianMixture(2).log_prob(params, low)
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(
        np.asarray(got),
        np.asarray(GaussianMixture(2).log_prob(params, np.asarray(low, np.float32))),
        rtol=1e-6,
    )
    assert fit(jax.random.key(0), GaussianMixture(2), low).best.log_likelihood.dtype == jnp.float32


def test_float16_weights_must_sum_to_one_within_float16_rounding():
    """Weights summing to 0.6 were accepted (the tolerance scaled with float16's eps); rounding is not."""
    model = ExponentialMixture(3)
    with pytest.raises(ValueError, match="weights must sum to one"):
        model.log_prob(ExponentialMixtureParams(np.array([0.2, 0.2, 0.2], np.float16), np.ones(3)), [1.0])
    thirds = np.full(3, 1 / 3, np.float16)  # sums to 0.99951 in float16
    model.log_prob(ExponentialMixtureParams(thirds, np.ones(3)), [1.0])
