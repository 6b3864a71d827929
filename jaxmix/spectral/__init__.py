"""Spectral clustering: affinity graphs, graph Laplacians, the Laplacian eigen-embedding.

Build a graph W on the points, embed point i as row i of the eigenvectors of the k smallest
eigenvalues of a graph Laplacian, cluster the rows with the library's own ``KMeans``
(docs/maths.md section 6). Affinities
are dense (``rbf_affinity``, m x m) or sparse (``knn_affinity``, a ``jax.experimental.sparse.BCOO``
with O(m * n_neighbors) entries); every function below accepts both.

Modules: ``neighbors`` (nearest-neighbour search: cKDTree or blockwise JAX), ``affinity`` (rbf and
kNN graphs, the bandwidth heuristic), ``components`` (connected components of a graph),
``laplacians``, ``embedding`` (eigen-solvers, ``spectral_embedding``), ``cuts`` (``indicator_matrix``,
``ratio_cut``, ``normalized_cut``) and ``clustering`` (``spectral_clustering``, ``SpectralResult``,
``predict``).
"""

from jaxmix.spectral.affinity import BANDWIDTH_NEIGHBORS, MODES, default_gamma, knn_affinity, rbf_affinity
from jaxmix.spectral.clustering import (
    AFFINITIES,
    SpectralResult,
    default_neighbors,
    predict,
    spectral_clustering,
)
from jaxmix.spectral.cuts import indicator_matrix, normalized_cut, ratio_cut
from jaxmix.spectral.embedding import DENSE_EIGH_MAX, METHODS, spectral_embedding
from jaxmix.spectral.laplacians import LAPLACIANS, laplacian
from jaxmix.spectral.neighbors import ALGORITHMS

__all__ = [
    "AFFINITIES",
    "ALGORITHMS",
    "BANDWIDTH_NEIGHBORS",
    "DENSE_EIGH_MAX",
    "LAPLACIANS",
    "METHODS",
    "MODES",
    "SpectralResult",
    "default_gamma",
    "default_neighbors",
    "indicator_matrix",
    "knn_affinity",
    "laplacian",
    "normalized_cut",
    "predict",
    "ratio_cut",
    "rbf_affinity",
    "spectral_clustering",
    "spectral_embedding",
]
