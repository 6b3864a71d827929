"""Restarts (``jaxmix.fit``) and initialization (``model.init``).

What is checked against what:

- ``fit`` with ``n_init`` restarts (on each of its paths) against separate ``fit_em`` runs from
  ``model.init`` with the keys ``jax.random.split(key, n_init)``: every restart's
  log-likelihood agrees, and the kept fit is never worse than any of them
  (``best.log_likelihood == max(restart_log_likelihoods)``, and ``best.params``
  score that value when rescored in numpy/scipy).
- hypothesis: on random data and keys, ``fit`` is never worse than any of its restarts run alone.
- The same key gives bit-identical results.
- Every init method gives valid parameters for every family (checked by the
  public validation at ``fit_em``'s boundary, a finite EM run from them, and what
  each method promises: centers drawn from the data, centers inside the data's
  bounding box, weights on the simplex).
- k-means++ picks distinct data points, even when the data hold many duplicates.
- A bad method name raises ``ValueError`` naming the argument.
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from references import blobs
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from jaxmix import ExponentialMixture, FuzzyCMeans, GaussianMixture, KMeans, fit, fit_em, initialize
from jaxmix.inference.initialization import initial_centers, kmeans_plusplus

# The same sizes as tests/test_em.py ((N, D, K) = (150, 2, 3), 15 iterations), so compiled loops are shared.
N, K, MAX_ITER, N_INIT = 150, 3, 15, 4
METHODS = ("kmeans++", "random_from_data", "random", "kmeans")


X = blobs()
# Six separated blobs for K = 3: k-means restarts end in different local optima.
_ANGLES = np.arange(6) * np.pi / 3
X_HEX = np.repeat(10.0 * np.stack([np.cos(_ANGLES), np.sin(_ANGLES)], axis=1), 25, axis=0) + \
    np.random.default_rng(0).normal(size=(N, 2))
X_EXP = np.random.default_rng(0).exponential(np.where(np.arange(N) % 2, 0.25, 2.0))


def family(name):
    """(model, data) for each family."""
    return {
        "gmm-full": (GaussianMixture(K, "full"), X),
        "exponential": (ExponentialMixture(2), X_EXP),
        "kmeans": (KMeans(K), X),
        "fuzzy": (FuzzyCMeans(K), X),
    }[name]


FAMILIES = ("gmm-full", "exponential", "kmeans", "fuzzy")
# Each restart case costs a compile of the restart program; every method and family is covered
# by the init tests below.
RESTART_CASES = [("gmm-full", "random_from_data", X), ("kmeans", "random", X_HEX)]


def numpy_score(name, params, x):
    """Mean log-likelihood (Gaussian mixture, via scipy) or negative mean inertia (k-means)."""
    if name == "gmm-full":
        weights, means, covariances = (np.asarray(leaf) for leaf in params)
        log_joint = np.stack([np.log(w) + multivariate_normal(m, c).logpdf(x)
                              for w, m, c in zip(weights, means, covariances)], axis=1)
        return float(np.mean(logsumexp(log_joint, axis=1)))
    assert name == "kmeans"
    centers = np.asarray(params.centers)
    return -float(np.mean(np.min(np.sum((x[:, None, :] - centers[None]) ** 2, axis=-1), axis=1)))


# Every way fit can run its restarts, whatever this machine would choose (jaxmix.inference.restarts.restart_plan):
# a single-start program on two threads (CPUs), one program running them one after another (inside
# a caller's jit), one program running them vmapped (accelerators).
RESTART_PLANS = {
    "threads": lambda n_init, work, restarts="auto": (1, min(n_init, 2)),
    "one-call": lambda n_init, work, restarts="auto": (1, 1),
    "vmapped": lambda n_init, work, restarts="auto": (n_init, 1),
}


@pytest.mark.parametrize("plan", RESTART_PLANS)
@pytest.mark.parametrize(("name", "method", "x"), RESTART_CASES, ids=["gmm-full", "kmeans"])
def test_best_restart_is_never_worse_than_any_single_run(x64, monkeypatch, name, method, x, plan):
    monkeypatch.setattr(sys.modules["jaxmix.inference.restarts"], "restart_plan", RESTART_PLANS[plan])
    model, _ = family(name)
    key = jax.random.key(3)
    result = fit(key, model, x, n_init=N_INIT, init=method, max_iter=MAX_ITER, tol=0.0)

    restarts = np.asarray(result.restart_log_likelihoods)
    assert restarts.shape == (N_INIT,)
    assert np.ptp(restarts) > 1e-3  # the restarts differ, so choosing the best one matters here
    best = float(result.best.log_likelihood)
    assert best == np.nanmax(restarts)

    singles = []
    for start_key in jax.random.split(key, N_INIT):
        params = initialize(start_key, model, x, method)
        singles.append(float(fit_em(model, params, x, max_iter=MAX_ITER, tol=0.0).log_likelihood))
    singles = np.array(singles)
    np.testing.assert_allclose(restarts, singles, rtol=1e-8)
    assert best >= np.max(singles) - 1e-9 * abs(best)
    # The kept parameters are the ones that score the kept log-likelihood (rescored in numpy).
    np.testing.assert_allclose(numpy_score(name, result.best.params, x), best, rtol=1e-10)


@given(data_seed=st.integers(0, 2**31 - 1), key_seed=st.integers(0, 2**31 - 1))
def test_fit_is_never_worse_than_any_of_its_restarts_run_alone(data_seed, key_seed):
    # hypothesis: on random data and keys, each restart of fit equals fit_em from model.init with that
    # restart's key, and the kept fit scores at least as high as every one of them.
    with jax.enable_x64(True):
        model, _ = family("gmm-full")
        x, key = blobs(data_seed), jax.random.key(key_seed)
        result = fit(key, model, x, n_init=N_INIT, init="random_from_data", max_iter=MAX_ITER, tol=0.0)
        singles = np.array([
            float(fit_em(model, initialize(start, model, x, "random_from_data"), x, max_iter=MAX_ITER, tol=0.0)
                  .log_likelihood)
            for start in jax.random.split(key, N_INIT)])
        np.testing.assert_allclose(result.restart_log_likelihoods, singles, rtol=1e-8)
        best = float(result.best.log_likelihood)
        assert best >= np.max(singles) - 1e-9 * abs(best)


def test_same_key_gives_identical_results(x64):
    model, x = family("gmm-full")
    kwargs = {"n_init": N_INIT, "init": "random_from_data", "max_iter": MAX_ITER, "tol": 0.0}
    first = fit(jax.random.key(11), model, x, **kwargs)
    second = fit(jax.random.key(11), model, x, **kwargs)
    for a, b in zip(jax.tree_util.tree_leaves(first), jax.tree_util.tree_leaves(second)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_fit_inside_a_callers_jit_equals_fit(x64):
    # Traced arguments take the one-call program (no threads, no compiler options).
    model, _ = family("kmeans")
    kwargs = {"n_init": N_INIT, "init": "random", "max_iter": MAX_ITER, "tol": 0.0}
    inside = jax.jit(lambda key, x: fit(key, model, x, **kwargs))(jax.random.key(4), X_HEX)
    outside = fit(jax.random.key(4), model, X_HEX, **kwargs)
    np.testing.assert_allclose(inside.restart_log_likelihoods, outside.restart_log_likelihoods, rtol=1e-12)
    np.testing.assert_allclose(inside.best.params.centers, outside.best.params.centers, rtol=1e-12)


def _is_data_row(centers, x):
    return np.all(np.any(np.all(centers[:, None, :] == x[None], axis=-1), axis=1))


@jax.jit
def every_init(key, x, x_exp):
    """``model.init`` for every family and method, in one compiled call (one compile, not 16)."""
    return {(name, method): initialize(key, family(name)[0], x_exp if name == "exponential" else x, method)
            for name in FAMILIES for method in METHODS}


@pytest.fixture(scope="module")
def initial_params():
    with jax.enable_x64(True):
        return every_init(jax.random.key(5), X, X_EXP)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", FAMILIES)
def test_every_init_method_works_for_every_family(x64, initial_params, name, method):
    model, x = family(name)
    params = initial_params[(name, method)]
    for leaf in jax.tree_util.tree_leaves(params):
        assert np.all(np.isfinite(np.asarray(leaf)))
    # fit_em validates the parameters at its boundary (simplex weights, positive rates,
    # SPD covariances) and EM runs from them.
    result = fit_em(model, params, x, max_iter=MAX_ITER, tol=0.0)
    assert np.all(np.isfinite(np.asarray(result.history)))

    if isinstance(model, (KMeans, FuzzyCMeans)):
        centers = np.asarray(params.centers)
        assert centers.shape == (K, 2)
        if method in ("kmeans++", "random_from_data"):
            # The means of the points nearest to each of K distinct data points (one Lloyd step).
            with jax.enable_x64(True):
                seeds = np.asarray(initial_centers(jax.random.key(5), jnp.asarray(x), K, method, jnp.ones(len(x))))
            assert _is_data_row(seeds, x) and len(np.unique(seeds, axis=0)) == K
            nearest = np.argmin(((x[:, None, :] - seeds[None]) ** 2).sum(-1), axis=1)
            expected = np.stack([x[nearest == k].mean(axis=0) for k in range(K)])
            np.testing.assert_allclose(centers, expected, rtol=1e-12, atol=1e-12)
        else:  # random responsibilities, or Lloyd from k-means++ (means of points)
            assert np.all(centers >= x.min(axis=0)) and np.all(centers <= x.max(axis=0))
    else:
        weights = np.asarray(params.weights)
        assert weights.shape == (model.n_components,)
        assert np.all(weights > 0)
        np.testing.assert_allclose(weights.sum(), 1.0, rtol=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_kmeans_plus_plus_picks_distinct_data_points(x64, seed):
    centers = np.asarray(kmeans_plusplus(jax.random.key(seed), jnp.asarray(X), K, jnp.ones(X.shape[0])))
    assert _is_data_row(centers, X)
    assert len(np.unique(centers, axis=0)) == K


@pytest.mark.parametrize("seed", range(5))
def test_kmeans_plus_plus_with_duplicates_picks_every_distinct_point(x64, seed):
    # Three distinct points, each 50 times: once one is picked its copies have D(x)^2 = 0.
    distinct = np.array([[0.0, 0.0], [5.0, 1.0], [-2.0, 7.0]])
    x = np.repeat(distinct, 50, axis=0)
    centers = np.asarray(kmeans_plusplus(jax.random.key(seed), jnp.asarray(x), K, jnp.ones(x.shape[0])))
    np.testing.assert_array_equal(np.unique(centers, axis=0), np.unique(distinct, axis=0))


def test_bad_method_name_raises_value_error():
    model, x = family("gmm-full")
    with pytest.raises(ValueError, match=r"\bmethod\b"):
        initialize(jax.random.key(0), model, x, "kmeans+++")
    with pytest.raises(ValueError, match=r"\binit\b"):
        fit(jax.random.key(0), model, x, init="furthest_point")


@pytest.mark.parametrize("restarts", ["auto", "vmap", "sequential", "threads"])
def test_every_restart_strategy_equals_separate_fit_em_runs(x64, restarts):
    model, x = family("gmm-full")
    result = fit(jax.random.key(7), model, x, n_init=3, max_iter=20, tol=1e-6, restarts=restarts)
    separate = [fit_em(model, initialize(start, model, x, "kmeans"), x, max_iter=20, tol=1e-6)
                for start in jax.random.split(jax.random.key(7), 3)]
    np.testing.assert_allclose(result.restart_log_likelihoods, [r.log_likelihood for r in separate], rtol=1e-10)
    best = separate[int(np.argmax([r.log_likelihood for r in separate]))]
    np.testing.assert_allclose(result.best.params.means, best.params.means, rtol=1e-9, atol=1e-12)


def test_unknown_restart_strategy_is_refused():
    model, x = family("gmm-full")
    with pytest.raises(ValueError, match="restarts"):
        fit(jax.random.key(0), model, x, restarts="parallel")


def test_fit_result_offers_params_and_history_as_vae_fit_does(x64):
    model, x = family("gmm-full")
    result = fit(jax.random.key(2), model, x, n_init=2, max_iter=5, tol=0.0)
    assert result.params is result.best.params and result.history is result.best.history
