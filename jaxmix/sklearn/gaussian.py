"""``GaussianMixture``: scikit-learn's estimator on ``jaxmix.GaussianMixture`` (docs/maths.md section 5)."""

from __future__ import annotations

import numpy as np

from jaxmix.mixtures import GaussianMixture as GaussianFamily
from jaxmix.mixtures import GaussianMixtureParams
from jaxmix.sklearn._mixture import MixtureEstimator


class GaussianMixture(MixtureEstimator):
    """A mixture of Gaussians fitted by EM, with scikit-learn's ``GaussianMixture`` interface.

    p(x) = sum_k w_k N(x; mu_k, Sigma_k). The arguments mean what they mean in scikit-learn;
    ``covariance_type`` adds ``"identity"`` (Sigma_k = I: only weights and means are learned), whose
    ``covariances_``, ``precisions_`` and ``precisions_cholesky_`` are ones of shape (n_components,),
    the spherical layout of I. ``init_params`` is ``"kmeans"``, ``"k-means++"``, ``"random"`` or
    ``"random_from_data"``; ``fit`` also takes ``sample_weight``. ``n_init`` starts run as
    ``jaxmix.fit`` runs them (vmapped on an accelerator). EM stops when the mean log-likelihood
    changes by less than ``tol``, as in scikit-learn. Computes in float32, or in float64 for float64
    input when JAX's 64-bit mode is on; fitted attributes are NumPy arrays of that dtype.

    Attributes (shapes as scikit-learn's): ``weights_`` (K,), ``means_`` (K, D), ``covariances_`` (full
    (K, D, D), tied (D, D), diag (K, D), spherical (K,)), ``precisions_`` (their inverses),
    ``precisions_cholesky_`` (full and tied: upper-triangular U with precision U U^T; diag and
    spherical: 1 / sqrt(covariance)), ``converged_``, ``n_iter_``, ``lower_bound_``, ``lower_bounds_``,
    ``n_features_in_``.

    Examples:
      >>> import numpy as np
      >>> from jaxmix.sklearn import GaussianMixture
      >>> x = np.concatenate([np.zeros((20, 2)), np.full((20, 2), 5.0)]) + np.linspace(0, 1, 40)[:, None]
      >>> gm = GaussianMixture(2, covariance_type="diag", random_state=0).fit(x)
      >>> sorted(np.round(gm.means_[:, 0]).tolist()), gm.predict_proba(x).shape
      ([0.0, 6.0], (40, 2))
    """

    def __init__(self, n_components=1, *, covariance_type="full", tol=1e-3, reg_covar=1e-6, max_iter=100,
                 n_init=1, init_params="kmeans", weights_init=None, means_init=None, precisions_init=None,
                 random_state=None, warm_start=False, verbose=0):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose

    _family = GaussianFamily

    def _model(self):
        return GaussianFamily(self.n_components, self.covariance_type, self.reg_covar)

    def _given(self):
        return self.weights_init, self.means_init, self.precisions_init

    def _user_params(self, initial):
        """The ``*_init`` arguments over ``initial``; ``precisions_init`` becomes covariances (inverses)."""
        if self.precisions_init is not None and self.covariance_type == "identity":
            raise ValueError("precisions_init must be None for covariance_type='identity' (Sigma_k = I).")
        return GaussianMixtureParams(
            initial.weights if self.weights_init is None else np.asarray(self.weights_init),
            initial.means if self.means_init is None else np.asarray(self.means_init),
            initial.covariances if self.precisions_init is None else inverse(self.precisions_init,
                                                                             self.covariance_type))

    def _restore(self, params):
        self.weights_, self.means_ = params.weights, params.means
        covariances = params.covariances
        if covariances is None:  # identity
            covariances = np.ones(self.n_components, params.means.dtype)
        self.covariances_ = covariances
        self.precisions_cholesky_ = precision_cholesky(covariances, self.covariance_type)
        self.precisions_ = inverse(covariances, self.covariance_type)

    def _params(self):
        covariances = None if self.covariance_type == "identity" else self.covariances_
        return GaussianMixtureParams(self.weights_, self.means_, covariances)


def inverse(matrices, covariance_type):
    """The inverse of each covariance (or precision) in scikit-learn's layout for ``covariance_type``:
    matrices for full and tied (symmetrized), elementwise for diag, spherical and identity's ones."""
    matrices = np.asarray(matrices)
    if covariance_type not in ("full", "tied"):
        return 1.0 / matrices
    inverses = np.linalg.inv(matrices)
    return 0.5 * (inverses + np.swapaxes(inverses, -1, -2))  # exactly symmetric


def precision_cholesky(covariances, covariance_type):
    """scikit-learn's ``precisions_cholesky_``: U = (L^-1)^T for Sigma = L L^T (full, tied), so that
    Sigma^-1 = U U^T; 1 / sqrt(Sigma) for diag, spherical and identity."""
    if covariance_type in ("full", "tied"):
        return np.swapaxes(np.linalg.inv(np.linalg.cholesky(covariances)), -1, -2)
    return 1.0 / np.sqrt(covariances)
