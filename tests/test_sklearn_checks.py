"""scikit-learn's own estimator checks (``parametrize_with_checks``) on every jaxmix.sklearn estimator.

The instances are configured about as scikit-learn configures its own for these checks (``max_iter=5``;
sklearn/utils/_test_common/instance_generator.py), with one start. A check that cannot apply is
declared in ``EXPECTED_FAILED`` with its reason; the declarations follow scikit-learn's for its own
KMeans, and the rest name what they wait for.
"""

import pytest

pytest.importorskip("sklearn")

from sklearn.utils.estimator_checks import parametrize_with_checks

from jaxmix.sklearn import ExponentialMixture, FuzzyCMeans, GaussianMixture, KMeans, SpectralClustering

# One start each (JAX compiles a program per data shape, and a second start makes each compile longer).
ESTIMATORS = [
    GaussianMixture(max_iter=5),
    KMeans(n_clusters=2, n_init=1, max_iter=5),
    FuzzyCMeans(n_clusters=2, max_iter=5),
    ExponentialMixture(max_iter=5),
    SpectralClustering(n_clusters=2, n_init=1),
]

# scikit-learn declares this for its own KMeans: k-means++ draws its starts from the weighted rows, and
# the check shuffles the weighted rows, so the two fits start from different centers.
RANDOM_START = "sample_weight is not equivalent to removing/repeating samples (random starts differ)."

EXPECTED_FAILED = {
    "KMeans": {"check_sample_weight_equivalence_on_dense_data": RANDOM_START},
    "FuzzyCMeans": {"check_sample_weight_equivalence_on_dense_data": RANDOM_START},
}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=lambda e: EXPECTED_FAILED.get(type(e).__name__, {}))
def test_sklearn_check(estimator, check):
    check(estimator)
