"""``SpectralClustering``: scikit-learn's estimator on ``jaxmix.spectral_clustering`` (docs/maths.md section 6),
with ``predict`` on new points through the library's Nystrom extension (``jaxmix.spectral.predict``)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils.validation import check_is_fitted

from jaxmix import _validation as v
from jaxmix.sklearn._base import check_data, fit_key, to_numpy
from jaxmix.sklearn._persistence import Persistent
from jaxmix.spectral import predict, spectral_clustering

AFFINITIES = {"rbf": "rbf", "nearest_neighbors": "knn"}
"""scikit-learn's ``affinity`` names and jaxmix's graph for each (``jaxmix.spectral_clustering``)."""


class SpectralClustering(Persistent, ClusterMixin, BaseEstimator):
    """Spectral clustering with scikit-learn's ``SpectralClustering`` interface, and ``predict``.

    Embeds the points by the eigenvectors of the smallest eigenvalues of the symmetric normalized
    Laplacian of an affinity graph and clusters the embedding with k-means (``n_init`` k-means++
    starts). ``affinity="rbf"``: w_il = exp(-gamma ||x_i - x_l||^2) (``gamma=None``: jaxmix's
    neighbour-distance median heuristic); ``"nearest_neighbors"``: the ``n_neighbors`` nearest
    neighbours' connectivity graph, symmetrized, as in scikit-learn (``gamma`` is then ignored).
    ``predict(X_new)`` assigns new points by the Nystrom extension of the embedding to them and the
    nearest k-means center, which scikit-learn's estimator lacks (its issue 15808). Computes in
    float32, or in float64 for float64 input when JAX's 64-bit mode is on.

    Attributes: ``labels_`` (N,), ``embedding_`` (N, n_clusters) the rows k-means clustered,
    ``eigenvalues_`` (n_clusters,), ``spectral_result_`` (the ``jaxmix.SpectralResult`` that
    ``predict`` extends, NumPy leaves), ``n_features_in_``.

    Examples:
      >>> import numpy as np
      >>> from jaxmix.sklearn import SpectralClustering
      >>> x = np.concatenate([np.zeros((10, 2)), np.full((10, 2), 3.0)]) + np.linspace(0, 0.5, 20)[:, None]
      >>> sc = SpectralClustering(2, random_state=0).fit(x)
      >>> bool(np.all(sc.predict(x[:3] + 0.1) == sc.labels_[0])), len(set(sc.labels_.tolist()))
      (True, 2)
    """

    def __init__(self, n_clusters=8, *, affinity="rbf", gamma=1.0, n_neighbors=10, n_init=10, random_state=None):
        self.n_clusters = n_clusters
        self.affinity = affinity
        self.gamma = gamma
        self.n_neighbors = n_neighbors
        self.n_init = n_init
        self.random_state = random_state

    def fit(self, X, y=None):
        """Spectral clustering of X (n_samples, n_features) into ``n_clusters``."""
        X = check_data(self, X, reset=True, ensure_min_samples=2)
        affinity = AFFINITIES[v.check_choice("affinity", self.affinity, AFFINITIES)]
        result = spectral_clustering(fit_key(self.random_state), X, self.n_clusters, affinity=affinity,
                                     n_neighbors=self.n_neighbors, gamma=self.gamma if affinity == "rbf" else None,
                                     n_init=self.n_init)
        self._restore(to_numpy(result))
        return self

    def predict(self, X):
        """Cluster labels of new points X (n_samples, n_features) by the Nystrom extension, (n_samples,)."""
        check_is_fitted(self)
        X = check_data(self, X, reset=False)
        return np.asarray(predict(jax.tree_util.tree_map(jnp.asarray, self.spectral_result_), X))

    def _saved(self):
        return None, self.spectral_result_  # a SpectralResult carries its configuration

    def _restore(self, result):
        self.spectral_result_ = result
        self.labels_, self.embedding_, self.eigenvalues_ = result.labels, result.embedding, result.eigenvalues
