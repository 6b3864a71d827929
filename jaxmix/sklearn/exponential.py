"""``ExponentialMixture``: a scikit-learn estimator on ``jaxmix.ExponentialMixture`` (docs/maths.md section 3)."""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_non_negative

from jaxmix.mixtures import ExponentialMixture as ExponentialFamily
from jaxmix.mixtures import ExponentialMixtureParams
from jaxmix.sklearn._base import check_data
from jaxmix.sklearn._mixture import MixtureEstimator


class ExponentialMixture(MixtureEstimator):
    """A mixture of exponential distributions on x >= 0 fitted by EM, in scikit-learn's mixture interface.

    p(x) = sum_k w_k prod_d lambda_kd exp(-lambda_kd x_d): the D features of X (n_samples, D), all
    non-negative, are independent exponentials within a component. The arguments are those of
    ``jaxmix.sklearn.GaussianMixture``, with ``rates_init`` in place of ``means_init`` and
    ``precisions_init``: (K,) for one feature, (K, D) for D >= 2. Computes in float32, or in float64
    for float64 input when JAX's 64-bit mode is on; fitted attributes are NumPy arrays of that dtype.

    Attributes: ``weights_`` (K,), ``rates_`` the lambda_kd (means 1 / lambda_kd), (K,) for one
    feature and (K, D) for D >= 2, ``converged_``, ``n_iter_``, ``lower_bound_``, ``lower_bounds_``,
    ``n_features_in_``.

    Examples:
      >>> import numpy as np
      >>> from jaxmix.sklearn import ExponentialMixture
      >>> x = np.random.RandomState(0).exponential(2.0, size=(500, 1))
      >>> em = ExponentialMixture(1).fit(x)
      >>> round(1.0 / float(em.rates_[0]), 1)
      2.0
    """

    def __init__(self, n_components=1, *, tol=1e-3, max_iter=100, n_init=1, init_params="kmeans",
                 weights_init=None, rates_init=None, random_state=None, warm_start=False, verbose=0):
        self.n_components = n_components
        self.tol = tol
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.rates_init = rates_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        return tags

    def _validate(self, X, *, reset):
        """scikit-learn's checks, then non-negative values ("Negative values in data passed to ..."). A feature
        that is 0 at every sample is refused by the fit (``jaxmix.ExponentialMixture.check_fit``)."""
        X = check_data(self, X, reset=reset)
        check_non_negative(X, type(self).__name__)
        return X

    _family = ExponentialFamily

    def _model(self):
        return ExponentialFamily(self.n_components)

    def _given(self):
        return self.weights_init, self.rates_init

    def _user_params(self, initial):
        return ExponentialMixtureParams(
            initial.weights if self.weights_init is None else np.asarray(self.weights_init),
            initial.rates if self.rates_init is None else np.asarray(self.rates_init))

    def _restore(self, params):
        self.weights_, self.rates_ = params.weights, params.rates

    def _params(self):
        return ExponentialMixtureParams(self.weights_, self.rates_)
