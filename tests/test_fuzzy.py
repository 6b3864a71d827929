"""Fuzzy c-means (``jaxmix.FuzzyCMeans``, the homework's soft k-means, docs/maths.md section 2).

What is checked against what:

- The fixed point reached by ``fit_em`` against scikit-fuzzy's ``cmeans``
  started from the memberships of the same centers (m = 2 and m = 3), to 1e-6.
- The homework's part (d): with memberships replaced by their argmax every step
  (``fuzzy_memberships`` -> one-hot -> the model's ``m_step``), the iterates are
  those of ``KMeans``, step by step.
- Memberships against the docs/maths.md formula r_ij = (1/d_ij^2) / sum_l (1/d_il^2)
  (and d^(-2/(m-1)) for general m) computed in numpy; a point exactly on a
  center gets membership exactly 1 there and 0 elsewhere.
- (hypothesis) The objective J = sum_i sum_j r_ij^m ||x_i - mu_j||^2, computed in
  numpy at each iterate, never increases with the default center update.
- Both center updates against numpy: the default r^m-weighted mean and the
  homework's literal r-weighted mean (``center_update="homework"``), which
  runs and gives a different fit.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import skfuzzy
from hypothesis import given
from hypothesis import strategies as st
from references import blobs

from jaxmix import CentroidStats, FuzzyCMeans, FuzzyCMeansParams, KMeans, KMeansParams, e_step, fit_em
from jaxmix.clustering.fuzzy import fuzzy_memberships

# The same sizes as tests/test_em.py ((N, D, K) = (150, 2, 3), 15 iterations), so compiled loops are shared.
N, K, MAX_ITER = 150, 3, 15


X = blobs()
START = X[[0, 1, 2]] + 0.1  # a poor start (one cluster), off the data points


def numpy_sq(x, centers):
    x, centers = np.asarray(x, np.float64), np.asarray(centers, np.float64)
    return np.sum((x[:, None, :] - centers[None]) ** 2, axis=-1)


def numpy_memberships(x, centers, m=2.0):
    """docs/maths.md section 2: r_ij proportional to d_ij^(-2/(m-1)); for m = 2, (1/d^2) / sum_l (1/d_il^2)."""
    inv = numpy_sq(x, centers) ** (-1.0 / (m - 1.0))
    return inv / inv.sum(axis=1, keepdims=True)


def numpy_objective(x, centers, m=2.0):
    return np.sum(numpy_memberships(x, centers, m) ** m * numpy_sq(x, centers))


@pytest.mark.parametrize("m", [2.0, 3.0])
def test_fixed_point_matches_scikit_fuzzy(x64, m):
    u0 = numpy_memberships(X, START, m).T  # scikit-fuzzy starts from memberships (c, N)
    centers_ref, _, _, _, _, n_iter_ref, _ = skfuzzy.cmeans(X.T, K, m, error=1e-13, maxiter=2000, init=u0)
    assert n_iter_ref < 2000  # scikit-fuzzy reached its fixed point

    result = fit_em(FuzzyCMeans(K, fuzzifier=m), FuzzyCMeansParams(START), X, max_iter=300, tol=0.0)
    got = np.asarray(result.params.centers)
    # Same start, so the same labelling is expected; match by nearest center to be safe.
    match = np.argmin(numpy_sq(got, centers_ref), axis=1)
    assert sorted(match) == list(range(K))
    np.testing.assert_allclose(got, centers_ref[match], rtol=1e-6, atol=1e-6)


def test_argmax_memberships_give_exactly_lloyd_iterates(x64):
    """Homework part (d): one-hot memberships make r^2 = r, so the center update is the cluster mean."""
    fuzzy, kmeans = FuzzyCMeans(K), KMeans(K)
    fuzzy_centers = kmeans_centers = START
    for _ in range(8):
        r = np.asarray(fuzzy_memberships(jnp.asarray(numpy_sq(X, fuzzy_centers)), 2.0))
        labels = np.argmax(r, axis=1)
        hard = np.eye(K)[labels]
        counts = hard.sum(axis=0)
        stats = CentroidStats(counts, hard.T @ X - counts[:, None] * fuzzy_centers, fuzzy_centers)
        fuzzy_centers = np.asarray(fuzzy.m_step(stats).centers)

        kmeans_labels = np.asarray(kmeans.predict(KMeansParams(kmeans_centers), X))
        kmeans_stats, _ = e_step(kmeans, KMeansParams(kmeans_centers), X)
        kmeans_centers = np.asarray(kmeans.m_step(kmeans_stats).centers)

        np.testing.assert_array_equal(labels, kmeans_labels)
        np.testing.assert_allclose(fuzzy_centers, kmeans_centers, rtol=1e-12, atol=1e-12)
    # The iterates moved (the start is poor), so the comparison was not vacuous.
    assert np.max(np.abs(fuzzy_centers - START)) > 1.0


@pytest.mark.parametrize("m", [2.0, 3.0])
def test_memberships_match_the_formula(x64, m):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(N, 2)) * 3.0
    centers = rng.normal(size=(K, 2)) * 3.0
    r = np.asarray(FuzzyCMeans(K, fuzzifier=m).posterior(FuzzyCMeansParams(centers), x))
    np.testing.assert_allclose(r, numpy_memberships(x, centers, m), rtol=1e-10)
    np.testing.assert_allclose(r.sum(axis=1), 1.0, rtol=1e-12)


CENTER_SETS = {
    "integer centers": [[1.0, 2.0], [3.0, 4.0], [5.0, 7.0]],
    "generic centers": [[0.1, 0.2], [1.3, -0.7], [2.9, 0.4]],
    "spread-out centers": [[193.8, 1111.6], [-205.5, -925.9], [584.1, 582.5]],
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("centers", list(CENTER_SETS))
def test_point_exactly_on_a_center_gets_membership_one(dtype, centers):
    with jax.enable_x64(dtype == np.float64):
        centers = np.array(CENTER_SETS[centers], dtype)
        x = np.concatenate([centers[[1]], centers[[1]] + 0.5, centers[[2]]]).astype(dtype)
        model = FuzzyCMeans(K)
        params = FuzzyCMeansParams(centers)

        r = np.asarray(model.posterior(params, x))
        stats, log_likelihood = e_step(model, params, x)
        for leaf in jax.tree_util.tree_leaves((r, stats, log_likelihood, model.m_step(stats))):
            assert np.all(np.isfinite(np.asarray(leaf)))
        # docs/maths.md section 2: exactly 1 for that center and 0 elsewhere (the limit).
        np.testing.assert_array_equal(r[0], [0.0, 1.0, 0.0])
        np.testing.assert_array_equal(r[2], [0.0, 0.0, 1.0])


def test_fuzzy_memberships_of_a_zero_distance():
    sq = jnp.array([[4.0, 0.0, 1.0], [0.0, 0.0, 2.0], [1.0, 1.0, 2.0]])
    r = np.asarray(fuzzy_memberships(sq, 2.0))
    np.testing.assert_array_equal(r[0], [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(r[1], [1.0, 0.0, 0.0])  # ties go to the first center
    np.testing.assert_allclose(r[2], [0.4, 0.4, 0.2], rtol=1e-6)


@functools.partial(jax.jit, static_argnums=0)
def em_step(model, centers, x):
    stats, _ = e_step(model, FuzzyCMeansParams(centers), x)
    return model.m_step(stats).centers


@given(seed=st.integers(0, 2**31 - 1))
def test_objective_never_increases(seed):
    with jax.enable_x64(True):
        rng = np.random.default_rng(seed)
        x = blobs(seed)
        centers = x[rng.choice(N, K, replace=False)] + rng.normal(size=(K, 2))
        model = FuzzyCMeans(K)
        objective = [numpy_objective(x, centers)]
        for _ in range(10):
            centers = np.asarray(em_step(model, centers, x))
            objective.append(numpy_objective(x, centers))
        objective = np.array(objective)
        assert np.all(np.diff(objective) <= 1e-9 * objective[1:]), np.diff(objective)


@pytest.mark.parametrize(("center_update", "power"), [("coordinate_descent", 2.0), ("homework", 1.0)])
def test_one_center_update_matches_numpy(x64, center_update, power):
    model = FuzzyCMeans(K, center_update=center_update)
    stats, _ = e_step(model, FuzzyCMeansParams(START), X)
    weights = numpy_memberships(X, START) ** power  # r^2 (coordinate descent) or r (the homework's line)
    expected = (weights.T @ X) / weights.sum(axis=0)[:, None]
    np.testing.assert_allclose(model.m_step(stats).centers, expected, rtol=1e-12)


def test_homework_center_update_runs_and_differs_from_default(x64):
    start = FuzzyCMeansParams(START)
    default = fit_em(FuzzyCMeans(K), start, X, max_iter=MAX_ITER, tol=0.0)
    homework = fit_em(FuzzyCMeans(K, center_update="homework"), start, X, max_iter=MAX_ITER, tol=0.0)
    for leaf in jax.tree_util.tree_leaves(homework):
        assert not np.any(np.isnan(np.asarray(leaf)))
    assert np.max(np.abs(np.asarray(homework.params.centers) - np.asarray(default.params.centers))) > 1e-2
    # The default is a descent method on J, so it ends lower than the homework variant from the same start.
    assert numpy_objective(X, default.params.centers) < numpy_objective(X, homework.params.centers)
