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
ONE_FEATURE = "an exponential mixture models one feature; the check fits X of several features."

EXPECTED_FAILED = {
    "KMeans": {"check_sample_weight_equivalence_on_dense_data": RANDOM_START},
    "FuzzyCMeans": {"check_sample_weight_equivalence_on_dense_data": RANDOM_START},
    "ExponentialMixture": dict.fromkeys([
        "check_fit_score_takes_y", "check_estimators_overwrite_params", "check_dont_overwrite_parameters",
        "check_estimators_fit_returns_self", "check_readonly_memmap_input", "check_n_features_in_after_fitting",
        "check_positive_only_tag_during_fit", "check_estimators_dtypes", "check_sample_weights_not_an_array",
        "check_sample_weights_list", "check_all_zero_sample_weights_error", "check_sample_weights_shape",
        "check_sample_weights_not_overwritten", "check_sample_weight_equivalence_on_dense_data",
        "check_dtype_object", "check_pipeline_consistency", "check_estimators_nan_inf", "check_estimators_pickle",
        "check_f_contiguous_array_estimator", "check_methods_sample_order_invariance",
        "check_methods_subset_invariance", "check_fit2d_1sample", "check_dict_unchanged", "check_fit_idempotent",
        "check_fit_check_is_fitted", "check_n_features_in", "check_fit2d_predict1d"], ONE_FEATURE),
}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=lambda e: EXPECTED_FAILED.get(type(e).__name__, {}))
def test_sklearn_check(estimator, check):
    check(estimator)
