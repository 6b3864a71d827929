"""``FuzzyCMeans``: a scikit-learn estimator on ``jaxmix.FuzzyCMeans`` (docs/maths.md section 2)."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils.validation import check_is_fitted

from jaxmix.clustering import FuzzyCMeans as FuzzyFamily
from jaxmix.clustering import FuzzyCMeansParams
from jaxmix.sklearn._base import check_data, check_weights, to_numpy
from jaxmix.sklearn._fitting import INIT_PARAMS, centroid_starts, fit_restarts, warn_unconverged
from jaxmix.sklearn._persistence import Persistent
from jaxmix.sklearn._rows import rowwise


class FuzzyCMeans(Persistent, ClusterMixin, BaseEstimator):
    """Fuzzy c-means, soft k-means with memberships (no scikit-learn counterpart; its interface).

    Minimizes J = sum_i w_i sum_k u_ik^m ||x_i - c_k||^2 over centers c and memberships u (rows on the
    simplex), m the ``fuzzifier`` > 1: u_ik = d_ik^(-2/(m-1)) / sum_l d_il^(-2/(m-1)). ``init`` is
    ``"k-means++"``, ``"kmeans"``, ``"random"`` (random memberships), ``"random_from_data"``, each run
    ``n_init`` times by ``jaxmix.fit``, which keeps the lowest J, or initial centers (n_clusters, n_features),
    run once. The iteration stops when J per unit weight changes by less than ``tol`` times the data's
    mean per-feature variance (``jaxmix.fit_em``). Computes in float32, or in float64 for float64 input
    when JAX's 64-bit mode is on; fitted attributes are NumPy arrays of that dtype.

    Attributes: ``cluster_centers_`` (K, D), ``membership_`` (N, K) the memberships u of the training
    points, ``labels_`` (N,) their largest membership, ``objective_`` (J), ``n_iter_``, ``converged_``,
    ``n_features_in_``.

    Examples:
      >>> import numpy as np
      >>> from jaxmix.sklearn import FuzzyCMeans
      >>> x = np.array([[0.0, 0.0], [0.0, 1.0], [9.0, 9.0], [9.0, 10.0]])
      >>> fcm = FuzzyCMeans(2, random_state=0).fit(x)
      >>> fcm.membership_.shape, bool(np.allclose(fcm.membership_.sum(axis=1), 1.0))
      ((4, 2), True)
    """

    def __init__(self, n_clusters=8, *, fuzzifier=2.0, init="k-means++", n_init=1, max_iter=300, tol=1e-4,
                 random_state=None):
        self.n_clusters = n_clusters
        self.fuzzifier = fuzzifier
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def fit(self, X, y=None, sample_weight=None):
        """Fuzzy c-means from ``n_init`` starts on X (n_samples, n_features), weighted by ``sample_weight``
        (n_samples,) when given; keeps the start of lowest J."""
        X = check_data(self, X, reset=True)
        weights = check_weights(sample_weight, X)
        model = FuzzyFamily(self.n_clusters, self.fuzzifier)
        init, n_init, start = centroid_starts(self.init, self.n_init, X, INIT_PARAMS, FuzzyCMeansParams)
        best, _ = fit_restarts(model, X, weights, random_state=self.random_state, n_init=n_init, init=init,
                               max_iter=self.max_iter, tol=self.tol, start=start)
        self._restore(to_numpy(best.params))
        self.membership_ = rowwise(FuzzyFamily.posterior, model, best.params, X)
        self.labels_ = rowwise(FuzzyFamily.predict, model, best.params, X)
        total_weight = X.shape[0] if weights is None else float(np.sum(weights))
        self.objective_ = -float(best.log_likelihood) * total_weight  # L = -(J per unit weight)
        self.n_iter_ = int(best.n_iter)
        self.converged_ = bool(best.converged)
        warn_unconverged(self)
        return self

    def predict(self, X):
        """The cluster of largest membership, that is the nearest center, of each point, (n_samples,)."""
        return rowwise(FuzzyFamily.predict, *self._fitted(X))

    def predict_proba(self, X):
        """The memberships u_ik of each point, (n_samples, n_clusters); rows sum to one."""
        return rowwise(FuzzyFamily.posterior, *self._fitted(X))

    _family = FuzzyFamily

    def _saved(self):
        return FuzzyFamily(self.cluster_centers_.shape[0], self.fuzzifier), FuzzyCMeansParams(self.cluster_centers_)

    def _restore(self, params):
        self.cluster_centers_ = params.centers

    def _fitted(self, X):
        check_is_fitted(self)
        model = FuzzyFamily(self.cluster_centers_.shape[0], self.fuzzifier)
        return model, FuzzyCMeansParams(self.cluster_centers_), check_data(self, X, reset=False)
