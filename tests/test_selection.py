"""Model selection (``select_components``) checked against scikit-learn.

What is checked against what:

- BIC, AIC and the mean log-likelihood of every candidate against scikit-learn's
  ``GaussianMixture.bic``, ``aic`` and ``score`` holding the fitted parameters the
  table returns (``ModelSelection.params``), float64, rtol 1e-10, for full, diag,
  spherical and tied covariances; the fitted means against those of the true labels.
- ``best`` is the argmin of BIC, and on three clearly separated clusters it is K = 3.
- ``to_markdown`` has a header and one row per candidate, in order, the best marked.
- Bad input (an empty candidate list, a bad candidate, NaN or non-2-D data) raises
  ``ValueError`` before anything is fitted.

Every (K, covariance type) pair fitted by EM compiles its own program (a few
seconds of CPU each), so the grids are small.
"""

import jax
import numpy as np
import pytest
from references import sklearn_model

import jaxmix.inference.selection
from jaxmix import (
    GaussianMixture,
    GaussianMixtureParams,
    ModelSelection,
    select_components,
)

SKLEARN_TYPES = ("full", "diag", "spherical", "tied")
KEY = jax.random.key(0)


def separated_clusters(sizes=(120, 100, 80), seed=0):
    """Three round clusters of unit variance whose means are 10 apart: x (N, 2) float64 and labels (N,)."""
    rng = np.random.default_rng(seed)
    means = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    x = np.concatenate([rng.normal(size=(n, 2)) + mean for n, mean in zip(sizes, means)])
    return x, np.repeat(np.arange(len(sizes)), sizes)


X, LABELS = separated_clusters()


def labelled_params(model, x, labels=LABELS):
    """Maximum-likelihood parameters of ``model`` given hard labels 0..K-1."""
    k, cov_type = model.n_components, model.covariance_type
    weights = np.bincount(labels, minlength=k) / len(x)
    means = np.stack([x[labels == j].mean(axis=0) for j in range(k)])
    covs = np.stack([np.cov(x[labels == j].T, bias=True) for j in range(k)])
    covariances = {
        "full": covs,
        "diag": np.diagonal(covs, axis1=1, axis2=2),
        "spherical": np.diagonal(covs, axis1=1, axis2=2).mean(axis=1),
        "tied": np.einsum("k,kde->de", weights, covs),
    }[cov_type]
    return GaussianMixtureParams(weights, means, covariances)


def assert_matches_sklearn(table, x):
    assert len(table.params) == len(table.bic)
    for i, (params, cov_type) in enumerate(zip(table.params, table.covariance_types)):
        assert np.asarray(params.means).shape == (table.n_components[i], x.shape[1])
        assert np.asarray(params.means).dtype == np.float64
        sk = sklearn_model(params, cov_type)
        np.testing.assert_allclose(table.bic[i], sk.bic(x), rtol=1e-10, err_msg=f"BIC of candidate {i}")
        np.testing.assert_allclose(table.aic[i], sk.aic(x), rtol=1e-10, err_msg=f"AIC of candidate {i}")
        np.testing.assert_allclose(table.log_likelihood[i], sk.score(x), rtol=1e-10, err_msg=f"score of {i}")


def test_criteria_match_sklearn_for_every_covariance_type(x64):
    table = select_components(KEY, X, [3], SKLEARN_TYPES, init="kmeans++")

    np.testing.assert_array_equal(table.n_components, [3, 3, 3, 3])
    assert table.covariance_types == SKLEARN_TYPES
    assert_matches_sklearn(table, X)
    # The penalties differ by the parameter counts alone: BIC - AIC = p (log N - 2).
    n_parameters = [GaussianMixture(3, cov).n_parameters(2) for cov in SKLEARN_TYPES]
    penalty_gap = np.multiply(n_parameters, np.log(len(X)) - 2.0)
    np.testing.assert_allclose(table.bic - table.aic, penalty_gap, rtol=1e-10)
    # EM recovers the labelled clusters, so every covariance type's fit is the maximum-likelihood
    # fit of the true labels to within EM's tolerance.
    for params, cov_type in zip(table.params, SKLEARN_TYPES):
        expected = labelled_params(GaussianMixture(3, cov_type), X)
        order = np.argsort(np.round(np.asarray(params.means) / 10.0) @ [1.0, 10.0])  # (0,0), (10,0), (0,10)
        np.testing.assert_allclose(np.asarray(params.means)[order], expected.means, atol=1e-3)


def test_bic_picks_three_separated_clusters(x64):
    # k-means++ seeding puts one start in each cluster, and compiles faster than init="kmeans".
    table = select_components(KEY, X, [2, 3, 4], ["full"], init="kmeans++")

    np.testing.assert_array_equal(table.n_components, [2, 3, 4])
    assert table.covariance_types == ("full", "full", "full")
    assert_matches_sklearn(table, X)
    assert table.best == int(np.argmin(table.bic))
    assert table.n_components[table.best] == 3
    # Each candidate has its own key, and the same key gives the same table.
    again = select_components(KEY, X, [2, 3, 4], ["full"], init="kmeans++")
    np.testing.assert_array_equal(again.bic, table.bic)

    rows = table.to_markdown().splitlines()[2:]
    assert len(rows) == 3
    assert [row.startswith(f"| {k} | full |") for row, k in zip(rows, [2, 3, 4])] == [True] * 3
    assert [row.endswith("| best BIC |") for row in rows] == [False, True, False]


def test_to_markdown_has_one_row_per_candidate():
    table = ModelSelection(
        n_components=np.array([1, 1, 2, 2, 3, 3]),
        covariance_types=("full", "tied") * 3,
        bic=np.array([60.0, 50.0, 40.0, 30.0, 35.0, 45.0]),
        aic=np.array([59.0, 49.0, 38.0, 28.0, 32.0, 42.0]),
        log_likelihood=np.array([-3.0, -2.5, -2.0, -1.5, -1.25, -1.75]),
        best=3,
    )
    header, separator, *rows = table.to_markdown().splitlines()

    assert header.startswith("| K | covariance |") and "BIC" in header and "AIC" in header
    assert set(separator) == {"|", "-"} and separator.count("|") == header.count("|")
    assert len(rows) == 6
    for i, row in enumerate(rows):
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert row.count("|") == header.count("|")
        assert cells[:2] == [str(table.n_components[i]), table.covariance_types[i]]
        assert float(cells[2]) == table.log_likelihood[i]
        assert float(cells[3]) == table.bic[i] and float(cells[4]) == table.aic[i]
        assert cells[5] == ("best BIC" if i == 3 else "")


@pytest.mark.parametrize(
    "n_components, covariance_types, x, match",
    [
        ([], ("full",), X, "at least one candidate"),
        ((1, 2), [], X, "at least one candidate"),
        ((), (), X, "at least one candidate"),
        ((1, 2), ("full",), np.where(np.arange(len(X))[:, None] == 7, np.nan, X), "NaN"),
        ((1, 2), ("full",), X[:, 0], "2-D"),
        ((0,), ("full",), X, "n_components"),
        ((2,), ("ful",), X, "covariance_type"),
    ],
    ids=["no-k", "no-covariance-type", "both-empty", "nan-x", "1-d-x", "zero-k", "unknown-type"],
)
def test_bad_input_raises_before_fitting(monkeypatch, n_components, covariance_types, x, match):
    def no_lowering(*args, **kwargs):
        raise AssertionError("a candidate was compiled before the bad input was caught")

    monkeypatch.setattr(jaxmix.inference.selection, "fit_program", type("Unlowerable", (), {"lower": no_lowering})())
    with pytest.raises(ValueError, match=match):
        select_components(KEY, x, n_components, covariance_types)
