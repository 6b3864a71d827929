"""``KMeans``: scikit-learn's estimator on ``jaxmix.KMeans``, Lloyd's algorithm (docs/maths.md section 1)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, ClusterMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from jaxmix._distances import exact_squared_distances
from jaxmix.clustering import KMeans as KMeansFamily
from jaxmix.clustering import KMeansParams
from jaxmix.inference import e_step
from jaxmix.sklearn._base import check_data, check_weights, preserved_dtypes, to_numpy
from jaxmix.sklearn._fitting import centroid_starts, fit_restarts
from jaxmix.sklearn._persistence import Persistent
from jaxmix.sklearn._rows import rowwise

INIT = {"k-means++": "kmeans++", "random": "random_from_data"}
"""scikit-learn's ``init`` names and the jaxmix initialization each names (``jaxmix.initialize``)."""


class KMeans(Persistent, ClassNamePrefixFeaturesOutMixin, TransformerMixin, ClusterMixin, BaseEstimator):
    """k-means clustering by Lloyd's algorithm, with scikit-learn's ``KMeans`` interface.

    Minimizes the inertia sum_i w_i min_k ||x_i - c_k||^2. ``init`` is ``"k-means++"`` (greedy
    k-means++, as scikit-learn's), ``"random"`` (n_clusters distinct data points) or an array of
    initial centers (n_clusters, n_features), which runs once. ``n_init="auto"`` runs 1 start for
    k-means++ and 10 for random, as scikit-learn. ``jaxmix.fit`` runs the starts and keeps the lowest
    inertia. Lloyd stops when the inertia per unit weight changes by less than ``tol`` times the
    data's mean per-feature variance (``jaxmix.fit_em``; scikit-learn bounds the centers' move by that
    amount instead), or after ``max_iter`` iterations. Computes in float32, or in float64 for float64
    input when JAX's 64-bit mode is on; fitted attributes are NumPy arrays of that dtype.

    Attributes: ``cluster_centers_`` (K, D), ``labels_`` (N,), ``inertia_``, ``n_iter_``,
    ``n_features_in_``.

    Examples:
      >>> import numpy as np
      >>> from jaxmix.sklearn import KMeans
      >>> x = np.array([[0.0, 0.0], [0.0, 1.0], [9.0, 9.0], [9.0, 10.0]])
      >>> km = KMeans(2, random_state=0).fit(x)
      >>> sorted(km.cluster_centers_[:, 1].tolist()), float(km.inertia_)
      ([0.5, 9.5], 1.0)
    """

    def __init__(self, n_clusters=8, *, init="k-means++", n_init="auto", max_iter=300, tol=1e-4, random_state=None):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def fit(self, X, y=None, sample_weight=None):
        """Lloyd's algorithm from ``n_init`` starts on X (n_samples, n_features), weighted by
        ``sample_weight`` (n_samples,) when given; keeps the start of lowest inertia."""
        X = check_data(self, X, reset=True)
        weights = check_weights(sample_weight, X)
        model = KMeansFamily(self.n_clusters)
        random = isinstance(self.init, str) and self.init == "random"
        n_init = (10 if random else 1) if isinstance(self.n_init, str) and self.n_init == "auto" else self.n_init
        init, n_init, start = centroid_starts(self.init, n_init, X, INIT, KMeansParams)
        best, _ = fit_restarts(model, X, weights, random_state=self.random_state, n_init=n_init, init=init,
                               max_iter=self.max_iter, tol=self.tol, start=start)
        self._restore(to_numpy(best.params))
        self.labels_ = rowwise(KMeansFamily.predict, model, best.params, X)
        total_weight = X.shape[0] if weights is None else float(np.sum(weights))
        self.inertia_ = -float(best.log_likelihood) * total_weight  # L = -(inertia per unit weight)
        self.n_iter_ = int(best.n_iter)
        return self

    def predict(self, X):
        """The index of the nearest center of each point, (n_samples,)."""
        return rowwise(KMeansFamily.predict, *self._fitted(X))

    def transform(self, X):
        """Euclidean distances ||x_i - c_k|| to every center, (n_samples, n_clusters)."""
        return rowwise(_distances, *self._fitted(X))

    def score(self, X, y=None, sample_weight=None):
        """The opposite of the inertia of X: -sum_i w_i min_k ||x_i - c_k||^2 (higher is better)."""
        model, params, X = self._fitted(X)
        weights = check_weights(sample_weight, X)
        _, mean = e_step(model, params, X, weights)
        return float(mean) * (X.shape[0] if weights is None else float(np.sum(weights)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = preserved_dtypes()
        return tags

    @property
    def _n_features_out(self):
        return self.cluster_centers_.shape[0]

    _family = KMeansFamily

    def _saved(self):
        return KMeansFamily(self.cluster_centers_.shape[0]), KMeansParams(self.cluster_centers_)

    def _restore(self, params):
        self.cluster_centers_ = params.centers

    def _fitted(self, X):
        check_is_fitted(self)
        model = KMeansFamily(self.cluster_centers_.shape[0])
        return model, KMeansParams(self.cluster_centers_), check_data(self, X, reset=False)


def _distances(model, params, x):
    """||x_i - c_k||, (N, K)."""
    return jnp.sqrt(exact_squared_distances(x.T, params.centers)).T
