"""jaxmix's GaussianMixture in scikit-learn's machinery: a Pipeline tuned by GridSearchCV on the wine data.

The pipeline standardizes the 13 features and fits ``jaxmix.sklearn.GaussianMixture``; ``GridSearchCV``
picks the number of components and the covariance type by the held-out mean log-likelihood (the
estimator's ``score``, as for scikit-learn's own ``GaussianMixture``). The best model's clusters are
then compared with the three cultivars and its BIC printed.

    python examples/sklearn_pipeline.py

Needs scikit-learn (``pip install "jaxmix[sklearn]"``).
"""

from sklearn.datasets import load_wine
from sklearn.metrics import adjusted_rand_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from jaxmix.sklearn import GaussianMixture


def main():
    x, cultivar = load_wine(return_X_y=True)
    pipe = Pipeline([("scale", StandardScaler()), ("gmm", GaussianMixture(random_state=0))])
    grid = {"gmm__n_components": [2, 3, 4], "gmm__covariance_type": ["full", "diag", "spherical"]}
    search = GridSearchCV(pipe, grid, cv=5).fit(x)
    print(f"best: {search.best_params_}, held-out mean log-likelihood {search.best_score_:.3f}")
    for params, score in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"]):
        print(f"  {params['gmm__n_components']} components, {params['gmm__covariance_type']:9s}: {score:8.3f}")
    best = search.best_estimator_
    print(f"adjusted Rand index against the cultivars: {adjusted_rand_score(cultivar, best.predict(x)):.3f}")
    print(f"BIC of the best model on all rows: {best[-1].bic(best[0].transform(x)):.1f}")


if __name__ == "__main__":
    main()
