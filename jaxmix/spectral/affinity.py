"""Affinity graphs: the dense Gaussian (rbf) affinity and the sparse k-nearest-neighbour graph.

docs/maths.md section 6. ``rbf_affinity`` is dense (m x m); ``knn_affinity`` is a
``jax.experimental.sparse.BCOO`` with O(m * n_neighbors) entries; the Laplacians, embeddings and
cuts accept both.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import sparse

from jaxmix import _validation as v
from jaxmix._distances import exact_squared_distances
from jaxmix.spectral.components import knn_components, scipy_sparse
from jaxmix.spectral.neighbors import check_algorithm, knn_search, neighbours

MODES = ("connectivity", "distance")

BANDWIDTH_NEIGHBORS = 10  # the median heuristic's neighbour rank (see ``rbf_affinity``)
_BANDWIDTH_QUERIES = 1024  # evenly spaced points whose neighbour distances give the median


def _check_bandwidth(gamma, sigma):
    if gamma is not None and sigma is not None:
        raise ValueError(f"give gamma or sigma, not both; got gamma={gamma!r}, sigma={sigma!r}.")
    if sigma is not None:
        if v.check_nonnegative_float("sigma", sigma) == 0:
            raise ValueError(f"sigma must be > 0, got {sigma!r}.")
        return 1.0 / (2.0 * float(sigma) ** 2)
    if gamma is not None and v.check_nonnegative_float("gamma", gamma) == 0:
        raise ValueError(f"gamma must be > 0, got {gamma!r}.")
    return None if gamma is None else float(gamma)


def _median_heuristic(kth_squared_distances) -> float:
    """gamma = 1 / (2 sigma^2), sigma^2 the median squared distance to the n_neighbors-th neighbour."""
    median = float(np.median(np.asarray(kth_squared_distances)))
    if median <= 0:
        raise ValueError(
            "x has too many repeated points: the median distance to the "
            f"{BANDWIDTH_NEIGHBORS}th nearest neighbour is 0; pass gamma or sigma explicitly."
        )
    return 1.0 / (2.0 * median)


@jax.jit
def _rbf_rows(x_new, x, gamma):
    """exp(-gamma ||x_new_i - x_l||^2), shape (n, m).

    ||x_new_i - x_l||^2 is summed from the differences, so it carries a relative error of about d eps
    for near points too; the expansion ||a||^2 - 2 a.b + ||b||^2 errs by eps (||a||^2 + ||b||^2),
    which for two float32 clusters 10^4 apart moved weights by up to 0.86.
    """
    return jnp.exp(-gamma * exact_squared_distances(x.T, x_new))


@jax.jit
def _rbf(x, gamma):
    return _rbf_rows(x, x, gamma) * (1.0 - jnp.eye(x.shape[0], dtype=x.dtype))


def rbf_affinity(x, *, gamma=None, sigma=None) -> jax.Array:
    """The dense Gaussian affinity w_il = exp(-||x_i - x_l||^2 / (2 sigma^2)) = exp(-gamma ||x_i - x_l||^2).

    docs/maths.md section 6. W is symmetric and non-negative with a zero diagonal by choice: a self-loop
    adds the same w_ii = 1 to D and W, so it cancels in L = D - W but would shift the normalized
    Laplacians; a zero diagonal matches scikit-learn's graph Laplacians.

    Default bandwidth (neither gamma nor sigma given): sigma^2 is the median, over up to 1,024
    evenly spaced points, of the squared distance to their 10th nearest neighbour. The classical
    median heuristic (the median of all pairwise distances) measures the size of the whole data
    set; on two moons or concentric circles it gives a graph in which the clusters are no better
    separated than in k-means (adjusted Rand index 0.25 and 0.0 at m = 5,000), while the
    neighbour-distance median follows the local density (ARI 1.0 on both).

    Examples:
      >>> import jax.numpy as jnp
      >>> w = rbf_affinity(jnp.array([[0.0], [1.0], [3.0]]), gamma=0.5)
      >>> [[round(float(e), 4) for e in row] for row in w]
      [[0.0, 0.6065, 0.0111], [0.6065, 0.0, 0.1353], [0.0111, 0.1353, 0.0]]
    """
    x = v.check_data(x)
    gamma = _check_bandwidth(gamma, sigma)
    return _rbf(x, _default_gamma(x, check_algorithm("auto", x.shape[1])) if gamma is None else gamma)


def default_gamma(x, *, algorithm: str = "auto") -> float:
    """The bandwidth of ``rbf_affinity`` and ``spectral_clustering`` when given none: gamma = 1 / (2 sigma^2).

    sigma^2 is the median, over up to 1,024 evenly spaced points of x, of the squared distance to
    their 10th nearest neighbour (see ``rbf_affinity``; docs/maths.md section 6), found with the
    kNN backend ``algorithm`` ("auto", "kdtree" or "brute", see ``jaxmix.spectral.neighbors``).

    Examples:
      >>> import jax.numpy as jnp
      >>> x = jnp.arange(24.0).reshape(12, 2)  # 10th-neighbour squared distances 200 to 800, median 452
      >>> gamma = default_gamma(x)
      >>> round(gamma, 6), bool(jnp.all(rbf_affinity(x) == rbf_affinity(x, gamma=gamma)))
      (0.001106, True)
    """
    x = v.check_data(x)
    return _default_gamma(x, check_algorithm(algorithm, x.shape[1]))


def _default_gamma(x, algorithm) -> float:
    """The median heuristic of ``default_gamma`` on checked x, with a resolved kNN backend."""
    m = x.shape[0]
    queries = x[np.linspace(0, m - 1, min(m, _BANDWIDTH_QUERIES)).astype(int)]
    k = min(BANDWIDTH_NEIGHBORS, m - 1)
    if k < 1:
        raise ValueError(f"x needs at least 2 points to choose a bandwidth, got shape {x.shape}.")
    squared, _ = knn_search(queries, x, k + 1, algorithm)  # the query itself is its own 0th neighbour
    return _median_heuristic(squared[:, k])


def _edge_weights(squared, gamma):
    return np.ones_like(squared) if gamma is None else np.exp(-gamma * squared)


def _knn_lists(x, n_neighbors, mode, gamma, algorithm, include_self=False):
    """A as neighbour lists: row i holds x_i's n_neighbors nearest points index[i] (m, n_neighbors), weighted
    a[i] (ones for connectivity, exp(-gamma d^2) for distance), and the gamma used (None for connectivity)."""
    squared, index = neighbours(x, n_neighbors - include_self, algorithm)
    if mode == "distance" and gamma is None:
        gamma = _median_heuristic(squared[:, -1])
    m = x.shape[0]
    if include_self:  # each point is its own nearest neighbour, at distance 0
        squared = np.concatenate([np.zeros((m, 1), squared.dtype), squared], axis=1)
        index = np.concatenate([np.arange(m, dtype=index.dtype)[:, None], index], axis=1)
    return index, _edge_weights(squared, None if mode == "connectivity" else gamma), gamma


def _knn_graph(x, n_neighbors, mode, gamma, algorithm):
    """``spectral_clustering``'s kNN graph W = (A + A^T) / 2 as a BCSR matrix, the gamma used and a function
    counting its connected components (``knn_components`` on the neighbour lists).

    scipy adds A and A^T in compressed rows, merging the entries of mutual neighbours (O(nnz), no sort):
    fewer entries than the 2 m n_neighbors of ``knn_affinity``, and no Laplacian copy to sort later.
    """
    index, a, gamma = _knn_lists(x, n_neighbors, mode, gamma, algorithm)
    m, k = index.shape
    rows = scipy_sparse().csr_matrix((a.ravel(), index.ravel(), np.arange(0, m * k + 1, k)), shape=(m, m))
    w = (rows + rows.T).tocsr()
    arrays = (jnp.asarray(0.5 * w.data, x.dtype), jnp.asarray(w.indices), jnp.asarray(w.indptr, w.indices.dtype))
    return sparse.BCSR(arrays, shape=(m, m)), gamma, functools.partial(knn_components, index, a)


def knn_affinity(x, *, n_neighbors=10, mode="connectivity", gamma=None, include_self=False,
                 algorithm: str = "auto") -> sparse.BCOO:
    """The symmetrized k-nearest-neighbour graph W = (A + A^T) / 2 as a sparse BCOO matrix.

    A_il = 1 (``mode="connectivity"``) or exp(-gamma ||x_i - x_l||^2) (``mode="distance"``; gamma by
    the median heuristic of ``rbf_affinity`` on the farthest kept neighbour when None) when x_l is
    one of the n_neighbors nearest other points of x_i, else 0. Stored as the 2 m n_neighbors
    entries of A and A^T (BCOO sums duplicates), so memory is O(m n_neighbors), never O(m^2).
    docs/maths.md section 6.

    ``algorithm`` is the neighbour search (``jaxmix.spectral.neighbors``): "kdtree" (scipy's
    ``cKDTree``; ImportError without scipy), "brute" (blockwise JAX) or "auto": "kdtree" when scipy
    is importable and x has at most 16 features, else "brute". Both give the same graph up to ties
    in distance.

    ``include_self=True`` counts x_i as its own nearest neighbour, with n_neighbors - 1 others
    (n_neighbors >= 2) and A_ii = 1: W is then exactly scikit-learn's
    ``SpectralClustering(affinity="nearest_neighbors", n_neighbors=k).affinity_matrix_``, 0.5 (A + A^T)
    with A = ``kneighbors_graph(x, k, include_self=True)``, whose diagonal is 1. The default keeps
    no self-loops, as ``rbf_affinity``: a self-loop adds w_ii to D and W alike, so it cancels in
    L = D - W but shifts the normalized Laplacians, and it takes the place of a neighbour, leaving
    the graph less connected for the same k. scikit-learn's own Laplacian ignores the diagonal,
    so its clustering uses the default graph of n_neighbors - 1.

    Examples:
      >>> import jax.numpy as jnp
      >>> w = knn_affinity(jnp.array([[0.0], [1.0], [3.0]]), n_neighbors=1)
      >>> w.todense().tolist()
      [[0.0, 1.0, 0.0], [1.0, 0.0, 0.5], [0.0, 0.5, 0.0]]
      >>> knn_affinity(jnp.array([[0.0], [1.0], [3.0]]), n_neighbors=2, include_self=True).todense().tolist()
      [[1.0, 1.0, 0.0], [1.0, 1.0, 0.5], [0.0, 0.5, 1.0]]
    """
    x = v.check_data(x)
    if not isinstance(include_self, bool):
        raise TypeError(f"include_self must be a bool, got {type(include_self).__name__} {include_self!r}.")
    n_neighbors = v.check_positive_int("n_neighbors", n_neighbors)
    if include_self and n_neighbors < 2:
        raise ValueError(
            f"n_neighbors must be >= 2 with include_self=True (it counts each point), got {n_neighbors}."
        )
    if n_neighbors - include_self >= x.shape[0]:
        limit = "<= the number of points with include_self=True" if include_self else "< the number of points"
        raise ValueError(f"n_neighbors must be {limit} {x.shape[0]}, got {n_neighbors}.")
    v.check_choice("mode", mode, MODES)
    gamma = _check_bandwidth(gamma, None)
    if gamma is not None and mode == "connectivity":
        raise ValueError(
            f"gamma weights the edges of mode='distance' only; got gamma={gamma} with mode={mode!r}."
        )
    index, a, _ = _knn_lists(x, n_neighbors, mode, gamma, check_algorithm(algorithm, x.shape[1]), include_self)
    m, k = index.shape
    rows = np.repeat(np.arange(m, dtype=np.int32), k)
    cols = index.ravel()
    # W = (A + A^T) / 2 kept as the 2 m n_neighbors entries of A and A^T: BCOO sums duplicates.
    indices = np.concatenate([np.stack([rows, cols], 1), np.stack([cols, rows], 1)])
    data = np.concatenate([a.ravel(), a.ravel()]) * 0.5
    return sparse.BCOO((jnp.asarray(data, x.dtype), jnp.asarray(indices)), shape=(m, m))
