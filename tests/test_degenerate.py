"""Weights, degenerate fits, stopping and errors (issue 13, classes 4, 5, 7, 8, 11, 16 and 17).

What is checked against what:

- Sample weights: a fit with weights c * w equals the fit with w for c from 1e-40 to 1e37 (a hypothesis
  property), and integer weights equal repeated rows; an exponential mixture of float32 data of scale 1e-8
  equals the fit of the rescaled data.
- ``reg_covar=0`` where a covariance is singular: a ValueError that says to increase reg_covar.
- Fuzzy c-means with fuzzifier 100 in float32 against a float64 NumPy run of the same updates.
- k-means' stopping rule on data scaled by 1e-3: the same iterations and the same relative inertia as on
  the unscaled data (scikit-learn's tolerance is relative to the variance too).
- ``ConvergenceWarning``: once per call, with the last change and the tolerance; none for tol=0.
- Errors that name what is wrong: 0 features, a far outlier whose squares overflow float32, sample sizes
  that cannot fit, loop lengths beyond int32, select_components' arguments.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from references import blobs
from sklearn.datasets import load_digits

from jaxmix import (
    ConvergenceWarning,
    ExponentialMixture,
    ExponentialMixtureParams,
    FuzzyCMeans,
    FuzzyCMeansParams,
    GaussianMixture,
    GaussianMixtureParams,
    KMeans,
    KMeansParams,
    fit,
    fit_em,
    select_components,
)

X = blobs().astype(np.float32)


@given(scale=st.sampled_from([1e-40, 1e-30, 1e-8, 1.0, 1e8, 1e37]), seed=st.integers(0, 2**16))
def test_fit_does_not_depend_on_the_scale_of_the_weights(scale, seed):
    """Equal weights of 1e-30 gave -892,737 instead of -3.32; 1e37 and 1e-40 gave NaN."""
    weights = np.random.default_rng(seed).uniform(0.5, 2.0, len(X)).astype(np.float32)
    model = GaussianMixture(3)
    start = fit(jax.random.key(0), model, X, max_iter=2, tol=0.0, sample_weight=weights).best.params
    expected = fit_em(model, start, X, sample_weight=weights)
    got = fit_em(
        model,
        start,
        X,
        sample_weight=np.float32(scale) * weights if scale > 1e-38 else np.float64(scale) * weights,
    )
    assert float(got.log_likelihood) == pytest.approx(float(expected.log_likelihood), abs=1e-5)
    np.testing.assert_allclose(np.asarray(got.params.means), np.asarray(expected.params.means), atol=1e-4)


def test_weights_whose_sum_is_infinite_are_rejected(x64):
    x = X.astype(np.float64)
    with pytest.raises(ValueError, match="sample_weight sums to infinity"):
        fit_em(KMeans(3), KMeansParams(x[:3]), x, sample_weight=np.full(len(x), 1e307))


def test_exponential_mixture_of_tiny_float32_data_fits_like_the_rescaled_data():
    """float32 data of scale 1e-8 collapsed to weights [1, 1.5e-8]; the rescaled data give [0.53, 0.47]."""
    model = ExponentialMixture(2)
    x, _ = model.sample(
        jax.random.key(0), ExponentialMixtureParams(np.array([0.5, 0.5]), np.array([1.0, 8.0])), 2000
    )
    start = ExponentialMixtureParams(np.array([0.5, 0.5]), np.array([0.5, 4.0]))
    unit = fit_em(model, start, x, max_iter=100, tol=0.0)
    tiny = fit_em(
        model, start._replace(rates=start.rates * 1e8), (x * 1e-8).astype(np.float32), max_iter=100, tol=0.0
    )
    np.testing.assert_allclose(np.asarray(tiny.params.weights), np.asarray(unit.params.weights), atol=1e-4)
    np.testing.assert_allclose(np.asarray(tiny.params.rates) * 1e-8, np.asarray(unit.params.rates), rtol=1e-4)


@pytest.mark.parametrize("case", ["constant feature", "one point per component"])
def test_reg_covar_zero_on_a_singular_covariance_raises(case):
    """reg_covar=0 returned NaN parameters; scikit-learn raises."""
    rng = np.random.default_rng(0)
    if case == "constant feature":
        x, k = np.column_stack([rng.normal(size=40), np.full(40, 3.0)]).astype(np.float32), 2
    else:
        x, k = rng.normal(size=(4, 2)).astype(np.float32), 4
    with pytest.raises(ValueError, match="increase reg_covar"):
        fit(jax.random.key(0), GaussianMixture(k, reg_covar=0.0), x)


def fuzzy_reference(x, centers, m, n_iter):
    """Fuzzy c-means updates in float64 NumPy: r_ij ~ d_ij^(-2/(m-1)), c_j = sum r^m x / sum r^m."""
    for _ in range(n_iter):
        d2 = ((x[:, None, :] - centers[None]) ** 2).sum(-1)
        logits = -np.log(d2) / (m - 1)
        log_r = (
            logits
            - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1, keepdims=True))
            - logits.max(1, keepdims=True)
        )
        u = np.exp(m * log_r)
        centers = (u.T @ x) / u.sum(0)[:, None]
    return centers


def test_fuzzy_cmeans_with_a_large_fuzzifier_moves_in_float32():
    """FuzzyCMeans(fuzzifier=100) in float32 never moved (r^m underflowed)."""
    start = X[[0, 60, 120]] + np.float32(0.1)
    result = fit_em(FuzzyCMeans(3, fuzzifier=100.0), FuzzyCMeansParams(start), X, max_iter=5, tol=0.0)
    expected = fuzzy_reference(X.astype(np.float64), start.astype(np.float64), 100.0, 5)
    assert np.abs(expected - start).max() > 1.0  # the reference does move
    np.testing.assert_allclose(np.asarray(result.params.centers), expected, rtol=1e-4, atol=1e-4)


def test_kmeans_stopping_does_not_depend_on_the_data_scale(x64):
    """On the digits times 1e-3, k-means stopped after 2 iterations, 9.7 % worse in inertia."""
    x = load_digits().data
    start = KMeansParams(x[:10])
    results = [
        fit_em(KMeans(10), start._replace(centers=start.centers * c), x * c, tol=1e-3) for c in (1, 1e-3)
    ]
    assert int(results[0].n_iter) == int(results[1].n_iter)
    assert float(results[1].log_likelihood) * 1e6 == pytest.approx(float(results[0].log_likelihood), rel=1e-9)


def test_a_fit_that_does_not_converge_warns_once():
    model = GaussianMixture(3)
    start = fit(jax.random.key(0), model, X, max_iter=1, tol=0.0).best.params
    with pytest.warns(ConvergenceWarning, match=r"max_iter=2 .* last change in the objective was") as caught:
        fit_em(model, start, X, max_iter=2, tol=1e-9)
    assert len(caught) == 1
    with pytest.warns(ConvergenceWarning) as caught:
        fit(jax.random.key(0), model, X, n_init=3, max_iter=2, tol=1e-9)
    assert len(caught) == 1
    with pytest.warns(ConvergenceWarning, match="2 of 2 candidates") as caught:
        select_components(jax.random.key(0), X, [3], ["diag", "spherical"], max_iter=2, tol=1e-9)
    assert len(caught) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit_em(model, start, X, max_iter=2, tol=0.0)  # tol=0 asks for exactly max_iter iterations
        warnings.simplefilter("ignore", ConvergenceWarning)
        fit_em(model, start, X, max_iter=2, tol=1e-9)


# -- errors that say what is wrong ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "model", [GaussianMixture(1), KMeans(1), FuzzyCMeans(1)], ids=lambda m: type(m).__name__
)
def test_no_features_is_a_clear_error(model):
    with pytest.raises(ValueError, match="at least one feature"):
        fit(jax.random.key(0), model, np.zeros((5, 0)))


def test_a_far_outlier_whose_squares_overflow_is_a_clear_error():
    """A point at 1e20 in float32 got a NaN posterior."""
    params = GaussianMixtureParams(np.array([0.5, 0.5]), np.array([[0.0], [1.0]]), np.ones((2, 1, 1)))
    x = np.array([[0.0], [1.0], [1e20]], np.float32)
    with pytest.raises(ValueError, match="squared distances overflow float32"):
        GaussianMixture(2).posterior(params, x)
    params = params._replace(means=np.array([[0.0], [1e14]]))
    posterior = np.asarray(GaussianMixture(2).posterior(params, np.array([[0.0], [1e15]], np.float32)))
    np.testing.assert_allclose(posterior[1], [0.0, 1.0])  # far, but its squares fit: finite and one-sided


def test_sample_sizes_that_cannot_fit_are_refused_before_allocating():
    """GaussianMixture(2).sample(key, p, 10**12) aborted the process."""
    params = GaussianMixtureParams(np.array([0.5, 0.5]), np.zeros((2, 2)), np.stack([np.eye(2)] * 2))
    with pytest.raises(ValueError, match="draw them in batches"):
        GaussianMixture(2).sample(jax.random.key(0), params, 10**12)
    with pytest.raises(ValueError, match="draw them in batches"):
        ExponentialMixture(1).sample(
            jax.random.key(0), ExponentialMixtureParams(np.ones(1), np.ones(1)), 10**13
        )


def test_loop_lengths_beyond_the_bound_are_value_errors():
    """max_iter=10**12 was an OverflowError."""
    with pytest.raises(ValueError, match="max_iter must be <="):
        fit(jax.random.key(0), KMeans(2), X, max_iter=10**12)
    with pytest.raises(ValueError, match="max_iter must be <="):
        fit_em(KMeans(2), KMeansParams(X[:2]), X, max_iter=10**12)


def test_select_components_arguments():
    """An int n_components said "'int' object is not iterable"; a string covariance type gave "got 'f'"."""
    with pytest.raises(TypeError, match="n_components must be a sequence of ints"):
        select_components(jax.random.key(0), X, 3)
    table = select_components(jax.random.key(0), X, [2, 3], "spherical")
    assert table.covariance_types == ("spherical", "spherical")
    with pytest.raises(TypeError, match=r"cannot run inside jax\.jit"):
        jax.jit(lambda x: select_components(jax.random.key(0), x, [2], ["diag"]).bic)(jnp.asarray(X))
