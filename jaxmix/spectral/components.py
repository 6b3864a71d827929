"""Connected components of affinity graphs: the check that a graph can hold n_clusters clusters.

docs/maths.md section 6: a graph of c connected components has c zero Laplacian eigenvalues.
"""

from __future__ import annotations

import warnings

import numpy as np

from jaxmix import _validation as v
from jaxmix.spectral.laplacians import degrees


def scipy_sparse():
    """``scipy.sparse`` with its ``csgraph``, imported here: scipy stays optional but for kNN clustering."""
    try:
        import scipy.sparse
        import scipy.sparse.csgraph
    except ImportError as error:
        raise ImportError(
            "spectral clustering on a kNN graph needs scipy (scipy.sparse): install jaxmix[spectral] "
            "(pip install \"jaxmix[spectral]\")."
        ) from error
    return scipy.sparse


def knn_components(index, a) -> int:
    """Connected components of the graph joining x_i to its neighbours index[i, j] with a[i, j] > 0.

    The neighbour lists are the rows of a CSR matrix of A as they are (no sort, no COO of the BCOO's
    coordinates), and A's weak components are those of A + A^T. Needs scipy (``jaxmix[spectral]``).
    """
    sp = scipy_sparse()
    edges = a > 0
    indptr = np.concatenate([[0], np.cumsum(np.sum(edges, axis=1))])
    graph = sp.csr_matrix((np.ones(indptr[-1]), index[edges], indptr), shape=(len(index), len(index)))
    return int(sp.csgraph.connected_components(graph, directed=True, connection="weak")[0])


def dense_components(w) -> int:
    """Connected components of the graph with an edge wherever w_il > 0 (dense w; isolated vertices count).

    Breadth-first search reading each vertex's row once: O(m^2) like building W, without building a
    sparse copy of its positive entries.
    """
    adjacent = np.asarray(w > 0)
    unseen, count = np.ones(w.shape[0], bool), 0
    while unseen.any():
        count += 1
        frontier = np.arange(w.shape[0]) == np.argmax(unseen)
        while frontier.any():
            unseen &= ~frontier
            frontier = adjacent[frontier].any(axis=0) & unseen
    return count


def check_connected_enough(w, n_clusters, count_components, remedy):
    """ValueError when fewer than n_clusters vertices have an edge; UserWarning for more components than that.

    A graph of c <= n_clusters connected components is the ideal case of spectral clustering (each
    component a cluster or a union of clusters). With c > n_clusters the Laplacian has c zero
    eigenvalues, the embedding is an arbitrary basis of their eigenspace, and k-means groups whole
    components arbitrarily; scikit-learn warns for any c > 1.
    """
    d = v.host_values(degrees(w))
    if d is None:
        return
    if int(np.sum(d > 0)) < n_clusters:
        raise ValueError(
            f"the affinity graph has {int(np.sum(d > 0))} non-isolated vertices, fewer than "
            f"n_clusters={n_clusters}; {remedy}."
        )
    n_components = count_components()
    if n_components > n_clusters:
        warnings.warn(
            f"the affinity graph has {n_components} connected components, more than n_clusters={n_clusters}: "
            "the clusters group whole components arbitrarily, so the partition is not reliable (graph not "
            f"fully connected, the spectral embedding may not work as expected); {remedy} to connect it.",
            UserWarning,
            stacklevel=3,
        )
