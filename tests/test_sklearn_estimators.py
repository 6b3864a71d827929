"""jaxmix.sklearn's estimators in scikit-learn's machinery, and against scikit-learn's own estimators.

What is checked against what:

- ``Pipeline([StandardScaler(), GaussianMixture(3)])``, ``GridSearchCV`` over n_components and
  covariance_type (its score the mean log-likelihood), ``clone``, and for every estimator
  ``joblib.dump``/``load`` and ``save``/``load`` (jaxmix's file format): the same fit, bitwise.
- ``GaussianMixture`` against scikit-learn's from the same start (``weights_init``, ``means_init``,
  ``precisions_init``) on iris and wine, float64, tol 1e-10: means_, covariances_, weights_,
  precisions_cholesky_, lower_bound_, lower_bounds_, score_samples, bic and aic to 1e-6 relative,
  and the same n_iter_.
- ``KMeans`` against scikit-learn's from the same centers, with and without sample_weight: centers,
  labels, inertia, transform and score.
- sample_weight against repeated rows (integer weights, zeros included) for ``GaussianMixture``,
  ``FuzzyCMeans`` and ``ExponentialMixture`` from the same start; the one-component exponential against
  its closed form, rate sum(w) / sum(w x), for one feature and per feature for two; its refusals
  (negative values, a feature 0 in every sample).
- ``SpectralClustering``: labels against scikit-learn's, and ``predict`` on new points against the
  clusters they were drawn from.
- The dtype of the fitted attributes: float32 by default, float64 for float64 input with x64.
"""

import copy
import re

import jax
import joblib
import numpy as np
import pytest
from sklearn import cluster, mixture
from sklearn.base import clone
from sklearn.datasets import load_iris, load_wine, make_blobs
from sklearn.metrics import adjusted_rand_score
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import jaxmix
from jaxmix.sklearn import ExponentialMixture, FuzzyCMeans, GaussianMixture, KMeans, SpectralClustering

IRIS = load_iris().data
WINE = load_wine().data
STARTS = {"iris": (IRIS, [0, 50, 100]), "wine": (WINE, [0, 59, 130])}  # a first row of each class


def close(actual, expected, rtol=1e-6):
    """Relative agreement, with an absolute floor of rtol times the largest entry for entries near zero."""
    expected = np.asarray(expected, np.float64)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * np.max(np.abs(expected)))


def gaussian_start(x, rows, covariance_type):
    """weights_init, means_init and precisions_init: equal weights, the given rows, the data's covariance."""
    k = len(rows)
    precision = np.linalg.inv(np.cov(x.T, bias=True))
    precisions = {"full": np.tile(precision, (k, 1, 1)), "tied": precision,
                  "diag": np.tile(np.diag(precision), (k, 1)), "spherical": np.full(k, np.mean(np.diag(precision)))}
    return {"weights_init": np.full(k, 1.0 / k), "means_init": x[rows],
            "precisions_init": precisions[covariance_type], "n_components": k, "covariance_type": covariance_type}


@pytest.mark.parametrize("data, covariance_type", [("iris", "full"), ("iris", "tied"), ("iris", "diag"),
                                                   ("iris", "spherical"), ("wine", "full"), ("wine", "diag")])
def test_gaussian_mixture_matches_sklearn_from_the_same_start(x64, data, covariance_type):
    x, rows = STARTS[data]
    settings = gaussian_start(x, rows, covariance_type) | {"tol": 1e-10, "max_iter": 1000}
    ours = GaussianMixture(**settings).fit(x)
    theirs = mixture.GaussianMixture(**settings).fit(x)
    assert ours.converged_ and theirs.converged_
    for name in ("means_", "covariances_", "weights_", "precisions_cholesky_", "precisions_"):
        close(getattr(ours, name), getattr(theirs, name))
    close(ours.lower_bound_, theirs.lower_bound_)
    assert ours.n_iter_ == theirs.n_iter_  # the same iterates, the same stopping rule
    close(ours.lower_bounds_, theirs.lower_bounds_)
    close(ours.score_samples(x), theirs.score_samples(x))
    close(ours.bic(x), theirs.bic(x))
    close(ours.aic(x), theirs.aic(x))
    assert ours.means_.dtype == np.float64


@pytest.mark.parametrize("data", ["iris", "wine"])
@pytest.mark.parametrize("weighted", [False, True])
def test_kmeans_matches_sklearn_from_the_same_centers(x64, data, weighted):
    x, rows = STARTS[data]
    weights = np.random.RandomState(0).randint(1, 4, len(x)).astype(float) if weighted else None
    ours = KMeans(3, init=x[rows], n_init=1, tol=1e-12).fit(x, sample_weight=weights)
    theirs = cluster.KMeans(3, init=x[rows], n_init=1, tol=0.0, algorithm="lloyd").fit(x, sample_weight=weights)
    close(ours.cluster_centers_, theirs.cluster_centers_)
    np.testing.assert_array_equal(ours.labels_, theirs.labels_)
    close(ours.inertia_, theirs.inertia_)
    close(ours.transform(x), theirs.transform(x))
    close(ours.score(x, sample_weight=weights), theirs.score(x, sample_weight=weights))


def repeated(x, seed=0):
    """Integer weights 0 to 3 and the rows repeated that many times."""
    weights = np.random.RandomState(seed).randint(0, 4, len(x))
    return weights.astype(float), np.repeat(x, weights, axis=0)


def test_gaussian_mixture_sample_weight_counts_repeated_rows(x64):
    weights, x_repeated = repeated(IRIS)
    settings = gaussian_start(IRIS, [0, 50, 100], "full") | {"tol": 1e-10, "max_iter": 1000}
    weighted = GaussianMixture(**settings).fit(IRIS, sample_weight=weights)
    plain = GaussianMixture(**settings).fit(x_repeated)
    for name in ("means_", "covariances_", "weights_", "lower_bound_"):
        close(getattr(weighted, name), getattr(plain, name))


def test_fuzzy_c_means_sample_weight_counts_repeated_rows(x64):
    weights, x_repeated = repeated(IRIS)
    weighted = FuzzyCMeans(3, init=IRIS[[0, 50, 100]], tol=1e-12).fit(IRIS, sample_weight=weights)
    plain = FuzzyCMeans(3, init=IRIS[[0, 50, 100]], tol=1e-12).fit(x_repeated)
    close(weighted.cluster_centers_, plain.cluster_centers_)
    close(weighted.objective_, plain.objective_)
    close(weighted.predict_proba(IRIS), plain.predict_proba(IRIS))
    close(weighted.membership_.sum(axis=1), np.ones(len(IRIS)))
    np.testing.assert_array_equal(weighted.predict(IRIS), np.argmax(weighted.membership_, axis=1))


def test_exponential_mixture_sample_weight_and_closed_form(x64):
    x = np.random.RandomState(1).exponential(2.0, size=(300, 1))
    weights, x_repeated = repeated(x)
    single = ExponentialMixture(1).fit(x, sample_weight=weights)
    close(single.rates_, [np.sum(weights) / np.sum(weights * x[:, 0])])  # the MLE of one exponential
    settings = {"n_components": 2, "weights_init": [0.5, 0.5], "rates_init": [1.0, 0.1], "tol": 1e-10,
                "max_iter": 1000}
    weighted = ExponentialMixture(**settings).fit(x, sample_weight=weights)
    plain = ExponentialMixture(**settings).fit(x_repeated)
    for name in ("weights_", "rates_", "lower_bound_"):
        close(getattr(weighted, name), getattr(plain, name))


def test_exponential_mixture_of_several_features_and_refusals(x64):
    x = np.random.RandomState(2).exponential([1.0, 5.0], size=(300, 2))
    weights = np.random.RandomState(3).uniform(0.5, 2.0, 300)
    single = ExponentialMixture(1).fit(x, sample_weight=weights)
    close(single.rates_, [np.sum(weights) / (weights @ x)])  # the MLE of one exponential per feature
    assert single.sample(5)[0].shape == (5, 2)
    with pytest.raises(ValueError, match="Negative values in data passed to ExponentialMixture"):
        ExponentialMixture().fit(-np.ones((10, 1)))
    with pytest.raises(ValueError, match=r"feature\(s\) \[1\] of x are 0 at all n_samples=10 points with positive"):
        ExponentialMixture().fit(np.c_[np.ones(10), np.zeros(10)])
    with pytest.raises(ValueError, match=r"feature\(s\) \[0\] of x are 0 at all n_samples=9 points with positive"):
        ExponentialMixture().fit(np.c_[np.r_[1.0, np.zeros(9)], np.ones(10)], sample_weight=np.r_[0.0, np.ones(9)])


def two_blobs(n, seed):
    return make_blobs(n, centers=[[0.0, 0.0], [6.0, 6.0]], cluster_std=0.8, random_state=seed)


@pytest.mark.parametrize("affinity", ["rbf", "nearest_neighbors"])
def test_spectral_clustering_labels_and_predict_on_new_points(affinity):
    x, y = two_blobs(120, 0)
    x_new, y_new = two_blobs(40, 1)
    settings = {"n_clusters": 2, "affinity": affinity, "gamma": 0.5, "n_neighbors": 8, "random_state": 0}
    ours = SpectralClustering(**settings).fit(x)
    assert adjusted_rand_score(ours.labels_, cluster.SpectralClustering(**settings).fit(x).labels_) == 1.0
    assert adjusted_rand_score(ours.predict(x_new), y_new) == 1.0
    assert adjusted_rand_score(ours.labels_, y) == 1.0


SCALED = StandardScaler().fit_transform(IRIS)
SMALL = SCALED[::3]  # 50 rows: the folds and the refit of GridSearchCV share a compiled program


def test_pipeline_with_standard_scaler():
    pipe = Pipeline([("scale", StandardScaler()), ("gmm", GaussianMixture(3, random_state=0))]).fit(IRIS)
    np.testing.assert_array_equal(pipe.predict(IRIS), pipe[-1].predict(SCALED))
    assert pipe.score(IRIS) == pytest.approx(np.mean(pipe[-1].score_samples(SCALED)), rel=1e-6)
    assert adjusted_rand_score(pipe.predict(IRIS), load_iris().target) > 0.5
    assert pipe[-1].means_.dtype == np.float32  # float64 input, computed in float32 without x64


def test_grid_search_over_components_and_covariance_type():
    grid = {"n_components": [2, 3], "covariance_type": ["diag", "spherical"]}
    search = GridSearchCV(GaussianMixture(random_state=0), grid, cv=3).fit(SMALL)
    assert set(search.best_params_) == set(grid) and len(search.cv_results_["params"]) == 4
    # The default score is the mean log-likelihood of the held-out rows.
    train, test = next(KFold(3).split(SMALL))  # cv=3 without labels is KFold(3)
    refit = GaussianMixture(random_state=0, **search.cv_results_["params"][0]).fit(SMALL[train])
    assert search.cv_results_["split0_test_score"][0] == pytest.approx(refit.score(SMALL[test]), rel=1e-5)
    best = search.best_estimator_
    assert best.score(SMALL) == pytest.approx(np.mean(best.score_samples(SMALL)), rel=1e-6)


@pytest.fixture(scope="module")
def fitted():
    """One fitted estimator of each kind, on small data (the GaussianMixture shares the grid search's program)."""
    return [GaussianMixture(2, covariance_type="diag", random_state=0).fit(SMALL), KMeans(3, random_state=0).fit(SMALL),
            FuzzyCMeans(3, random_state=0).fit(SMALL), ExponentialMixture(2, random_state=0).fit(IRIS[:, :1]),
            SpectralClustering(3, random_state=0).fit(SMALL)]


def data_for(estimator):
    return IRIS[:, :1] if isinstance(estimator, ExponentialMixture) else SMALL


def assert_same_fit(loaded, estimator):
    """The same constructor arguments, predictions and fitted attributes, bitwise (a SpectralResult leaf by leaf)."""
    assert loaded.get_params() == estimator.get_params()
    np.testing.assert_array_equal(loaded.predict(data_for(loaded)), estimator.predict(data_for(estimator)))
    names = sorted(name for name in vars(estimator) if name.endswith("_"))
    assert sorted(name for name in vars(loaded) if name.endswith("_")) == names
    for name in names:
        expected = jax.tree_util.tree_leaves(getattr(estimator, name))
        for actual, value in zip(jax.tree_util.tree_leaves(getattr(loaded, name)), expected, strict=True):
            np.testing.assert_array_equal(actual, value, err_msg=name)


def test_clone_and_joblib_round_trip(fitted, tmp_path):
    # Pickling of every estimator is also scikit-learn's check_estimators_pickle (test_sklearn_checks.py).
    for estimator in fitted:
        copy = clone(estimator)
        assert copy.get_params() == estimator.get_params() and not hasattr(copy, "n_features_in_")
        path = tmp_path / f"{type(estimator).__name__}.joblib"
        joblib.dump(estimator, path)
        assert_same_fit(joblib.load(path), estimator)


def test_save_and_load_round_trip(fitted, tmp_path):
    for estimator in fitted:
        path = tmp_path / f"{type(estimator).__name__}.npz"
        estimator.save(path)
        assert_same_fit(type(estimator).load(path), estimator)


def test_load_refuses_another_estimator_and_save_a_random_state_object(fitted, tmp_path):
    path = tmp_path / "kmeans.npz"
    fitted[1].save(path)
    with pytest.raises(ValueError, match=re.escape(f"{path}: it holds a KMeans, not a FuzzyCMeans")):
        FuzzyCMeans.load(path)
    jaxmix.save(path, jaxmix.KMeans(3), jaxmix.KMeansParams(fitted[1].cluster_centers_))  # no estimator in it
    with pytest.raises(ValueError, match=re.escape(f"{path}: it holds no estimator, not a jaxmix.sklearn.KMeans")):
        KMeans.load(path)
    with pytest.raises(ValueError, match="random_state to be an int or None"):
        copy.deepcopy(fitted[0]).set_params(random_state=np.random.RandomState(0)).save(path)


def test_float32_input_stays_float32_with_x64(x64):
    x = IRIS.astype(np.float32)
    assert KMeans(3, init=x[[0, 50, 100]], tol=1e-12).fit(x).cluster_centers_.dtype == np.float32


def test_warm_start_continues_and_verbose_reports(capsys):
    gm = GaussianMixture(3, warm_start=True, random_state=0, verbose=1).fit(SCALED)
    first = gm.lower_bound_
    gm.fit(SCALED)  # from the converged fit: converges at once
    assert gm.converged_ and gm.n_iter_ <= 2 and gm.lower_bound_ >= first - 1e-3
    assert "Initialization 0" in capsys.readouterr().out


def test_means_init_alone_runs_each_start(capsys):
    # weights and covariances come from each start's own initialization; the best of the n_init runs is kept.
    gm = GaussianMixture(3, means_init=SCALED[[0, 50, 100]], n_init=2, random_state=0, verbose=1).fit(SCALED)
    out = capsys.readouterr().out
    assert "Initialization 0" in out and "Initialization 1" in out and gm.converged_
    finals = [float(line.split()[-1]) for line in out.splitlines() if line.startswith("Initialization")]
    assert max(finals) == pytest.approx(gm.score(SCALED), rel=1e-5)
