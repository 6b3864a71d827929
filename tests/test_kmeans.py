"""Lloyd's k-means (``jaxmix.KMeans``, docs/maths.md section 1) on the EM protocol.

What is checked against what:

- ``fit_em(KMeans)`` from given centers against scikit-learn's
  ``KMeans(init=centers, n_init=1, algorithm="lloyd", tol=0, max_iter=n)``:
  centers to 1e-8, labels identical, inertia equal to -log_likelihood * N (float64).
- ``predict`` against a brute-force numpy argmin over all squared distances;
  ``posterior`` against the one-hot of those labels.
- Degenerate data (points exactly on centers, every point duplicated): no NaN,
  and still scikit-learn's result; empty centers relocated as scikit-learn does.
- float32 data 1e5 away from the origin (where the expanded
  ||x||^2 - 2 x.c + ||c||^2 in float32 mislabels most points) against the
  float64 scikit-learn labels on the same values; 64 well-separated float32
  clusters over several E-step chunks against float64 scikit-learn.
- Ties (points equidistant from two centers, duplicated centers) go to the lowest
  index, as numpy's argmin, with packed keys (K <= 256) and without (K = 300).
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from references import blobs
from sklearn.cluster import KMeans as SkKMeans

from jaxmix import KMeans, KMeansParams, e_step, fit_em

# The same sizes as tests/test_em.py ((N, D, K) = (150, 2, 3), 15 iterations), so compiled loops are shared.
N, K, MAX_ITER = 150, 3, 15


X = blobs()
# Three points of the first cluster: a poor start, so Lloyd needs several iterations (5 here).
START = X[[0, 1, 2]]


def brute_force_labels(x, centers):
    sq = np.sum((np.asarray(x, np.float64)[:, None, :] - np.asarray(centers, np.float64)[None]) ** 2, axis=-1)
    return np.argmin(sq, axis=1)


def sklearn_lloyd(x, centers, n_iter):
    return SkKMeans(K, init=centers, n_init=1, algorithm="lloyd", tol=0.0, max_iter=n_iter).fit(x)


@pytest.mark.parametrize("n_iter", [1, MAX_ITER])
def test_matches_sklearn_lloyd_from_the_same_centers(x64, n_iter):
    sk = sklearn_lloyd(X, START, n_iter)
    model = KMeans(K)
    result = fit_em(model, KMeansParams(START), X, max_iter=n_iter, tol=0.0)

    np.testing.assert_allclose(result.params.centers, sk.cluster_centers_, rtol=1e-8, atol=1e-8)
    np.testing.assert_array_equal(np.asarray(model.predict(result.params, X)), sk.labels_)
    np.testing.assert_allclose(-float(result.log_likelihood) * N, sk.inertia_, rtol=1e-10)


def test_converged_history_is_the_negative_mean_inertia_of_each_iterate(x64):
    model = KMeans(K)
    result = fit_em(model, KMeansParams(START), X, max_iter=MAX_ITER, tol=1e-12)
    n = int(result.n_iter)
    assert bool(result.converged) and n < MAX_ITER
    centers = START
    for t in range(n):  # numpy Lloyd alongside the recorded history
        labels = brute_force_labels(X, centers)
        inertia = np.sum((X - centers[labels]) ** 2)
        np.testing.assert_allclose(float(result.history[t]), -inertia / N, rtol=1e-12)
        centers = np.stack([X[labels == k].mean(axis=0) for k in range(K)])
    np.testing.assert_allclose(result.params.centers, centers, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_predict_is_the_nearest_center_and_posterior_is_one_hot(x64, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, 2)) * 4.0
    centers = rng.normal(size=(K, 2)) * 3.0
    model = KMeans(K)
    params = KMeansParams(centers)
    labels = brute_force_labels(x, centers)

    np.testing.assert_array_equal(np.asarray(model.predict(params, x)), labels)
    posterior = np.asarray(model.posterior(params, x))
    np.testing.assert_array_equal(posterior, np.eye(K)[labels])


def test_points_on_centers_and_duplicates_give_no_nan(x64):
    x = np.repeat(X[::3], 3, axis=0)  # 50 distinct points, each three times
    centers = x[[0, 60, 120]]  # exactly on data points
    model = KMeans(K)
    params = KMeansParams(centers)

    _, log_likelihood = e_step(model, params, x)
    assert np.isfinite(float(log_likelihood))
    np.testing.assert_array_equal(np.asarray(model.predict(params, centers)), np.arange(K))

    result = fit_em(model, params, x, max_iter=MAX_ITER, tol=0.0)
    for leaf in jax.tree_util.tree_leaves(result):
        assert not np.any(np.isnan(np.asarray(leaf)))
    labels = np.asarray(model.predict(result.params, x))
    assert np.all(labels.reshape(-1, 3) == labels[::3, None])  # duplicates share a label
    sk = sklearn_lloyd(x, centers, MAX_ITER)
    np.testing.assert_allclose(result.params.centers, sk.cluster_centers_, rtol=1e-8, atol=1e-8)
    np.testing.assert_array_equal(labels, sk.labels_)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_constant_data_converge_at_once(dtype):
    """The objective stands exactly still on constant data, whose tolerance scale (the variance) is floored
    at the smallest normal number: EM stops instead of running to max_iter (tol s would round to 0)."""
    x = np.full((12, 3), 2.5, dtype)
    with jax.enable_x64(dtype == np.float64), warnings.catch_warnings():
        warnings.simplefilter("error")  # no ConvergenceWarning
        result = fit_em(KMeans(1), KMeansParams(np.zeros((1, 3), dtype)), x, max_iter=50)
    assert bool(result.converged) and int(result.n_iter) == 3  # from 0, at x, at x again
    np.testing.assert_array_equal(result.params.centers, x[:1])


def test_empty_center_is_relocated_as_scikit_learn_does(x64):
    """scikit-learn's test_kmeans_relocated_clusters: the far center is empty at first and is moved to the
    point farthest from its center; both reach inertia 0.25 (the old rule kept it in place: 1.5)."""
    x = np.array([[0, 0], [0.5, 0], [0.5, 1], [1, 1]], float)
    init = np.array([[0.5, 0.5], [3, 3]])
    sk = SkKMeans(n_clusters=2, n_init=1, init=init, algorithm="lloyd").fit(x)
    result = fit_em(KMeans(2), KMeansParams(init), x, max_iter=20, tol=1e-10)
    assert -float(result.log_likelihood) * len(x) == pytest.approx(sk.inertia_, abs=1e-12)
    assert -float(result.log_likelihood) * len(x) == pytest.approx(0.25, abs=1e-12)
    got = sorted(map(tuple, np.asarray(result.params.centers)))
    np.testing.assert_allclose(got, sorted(map(tuple, sk.cluster_centers_)), atol=1e-12)


def test_empty_centers_go_to_the_farthest_points_and_never_raise_the_objective(x64):
    centers = np.array([X[0], [1e3, -1e3], [-1e3, 1e3]])
    model = KMeans(K)
    result = fit_em(model, KMeansParams(centers), X, max_iter=MAX_ITER, tol=0.0)
    history = np.asarray(result.history)
    assert np.all(np.diff(history) >= -1e-12)
    first = fit_em(model, KMeansParams(centers), X, max_iter=1, tol=0.0).params.centers
    distances = np.sum((X - centers[0]) ** 2, axis=1)  # every point is nearest to center 0 at first
    farthest = X[np.argsort(-distances)[:2]]
    np.testing.assert_array_equal(np.asarray(first)[1:], farthest)
    assert len(np.unique(np.asarray(model.predict(result.params, X)))) == K


def test_float32_data_far_from_origin_labels_match_float64():
    offset = 1e5
    x32 = (X + offset).astype(np.float32)
    start32 = x32[[0, 1, 2]]
    # Reference: scikit-learn in float64 on exactly the same (float32-representable) values.
    sk = sklearn_lloyd(x32.astype(np.float64), start32.astype(np.float64), MAX_ITER)

    model = KMeans(K)
    result = fit_em(model, KMeansParams(start32), x32, max_iter=MAX_ITER, tol=0.0)
    assert result.params.centers.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(model.predict(result.params, x32)), sk.labels_)
    ulp = float(np.spacing(np.float32(offset)))
    centers = np.asarray(result.params.centers, np.float64)
    np.testing.assert_allclose(centers, sk.cluster_centers_, atol=2 * ulp)
    np.testing.assert_allclose(-float(result.log_likelihood) * N, sk.inertia_, rtol=1e-3)


@pytest.mark.parametrize("k", [8, 300])
def test_ties_go_to_the_lowest_index(x64, k):
    centers = (np.arange(k) // 2).astype(float)[:, None]  # every center twice
    x = np.arange(0.0, k // 2, 0.5)[:, None]  # on a center pair or halfway between two pairs
    expected = brute_force_labels(x, centers)
    assert np.all(expected == 2 * np.floor(x[:, 0]))  # the lower copy of the lower pair
    model = KMeans(k)
    np.testing.assert_array_equal(np.asarray(model.predict(KMeansParams(centers), x)), expected)
    stats, _ = e_step(model, KMeansParams(centers), x)
    np.testing.assert_array_equal(np.asarray(stats.counts), np.bincount(expected, minlength=k))


def test_float32_labels_of_separated_clusters_over_chunks_match_float64():
    """64 clusters (sd 1, means 40 apart) in float32, 20,000 points (three E-step chunks): labels and
    centers as scikit-learn's float64 Lloyd from the same start."""
    rng = np.random.default_rng(5)
    means = rng.normal(size=(64, 4)) * 40.0
    x32 = (means[rng.integers(0, 64, 20_000)] + rng.normal(size=(20_000, 4))).astype(np.float32)
    start = x32[rng.choice(len(x32), 64, replace=False)]
    sk = SkKMeans(64, init=start.astype(np.float64), n_init=1, algorithm="lloyd", tol=0.0, max_iter=5)
    sk.fit(x32.astype(np.float64))
    model = KMeans(64)
    result = fit_em(model, KMeansParams(start), x32, max_iter=5, tol=0.0, chunk_size=8192)
    np.testing.assert_array_equal(np.asarray(model.predict(result.params, x32)), sk.labels_)
    np.testing.assert_allclose(np.asarray(result.params.centers), sk.cluster_centers_, rtol=1e-5, atol=1e-4)
