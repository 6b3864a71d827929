"""Nearest-neighbour search for the kNN graphs and the bandwidth heuristic (docs/maths.md section 6).

Two backends, chosen by the ``algorithm`` argument of ``knn_affinity`` and ``spectral_clustering``:

* ``"kdtree"``: scipy's ``cKDTree`` (scipy is optional: ``pip install "jaxmix[spectral]"``). A tree
  query costs about k log m per point against m d for brute force, but trees degrade towards
  brute force as the dimension grows.
* ``"brute"``: a blockwise pure-JAX search (``_brute_search``), memory O(block * m), exact to the
  float rounding of the data.
* ``"auto"``: ``"kdtree"`` when scipy is importable and the data have at most 16 features, else
  ``"brute"``.

Both return the same neighbours up to ties in distance.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxmix import _validation as v

ALGORITHMS = ("auto", "kdtree", "brute")

_KDTREE_MAX_FEATURES = 16  # algorithm="auto": cKDTree up to this many features, brute force above
_KNN_BLOCK_ENTRIES = 2**22  # entries of one query-block x points distance matrix in the JAX kNN search
_KNN_EXTRA_CANDIDATES = 8  # the JAX kNN search keeps k + 8 candidates, then ranks them by exact distances


def _kdtree_class():
    """scipy's ``cKDTree``, imported here so that scipy stays optional."""
    try:
        from scipy.spatial import cKDTree
    except ImportError as error:
        raise ImportError(
            "algorithm='kdtree' needs scipy: install jaxmix[spectral] (pip install \"jaxmix[spectral]\"), "
            "or pass algorithm='brute'."
        ) from error
    return cKDTree


def check_algorithm(algorithm, n_features: int) -> str:
    """The kNN backend for data of n_features features: "kdtree" or "brute" (``"auto"`` resolved).

    ``"auto"`` takes "kdtree" when scipy is importable and n_features <= 16, else "brute";
    ``"kdtree"`` without scipy raises ImportError.
    """
    v.check_choice("algorithm", algorithm, ALGORITHMS)
    if algorithm == "brute":
        return algorithm
    if algorithm == "auto" and n_features > _KDTREE_MAX_FEATURES:
        return "brute"
    try:
        _kdtree_class()
    except ImportError:
        if algorithm == "kdtree":
            raise
        return "brute"
    return "kdtree"


@functools.partial(jax.jit, static_argnames=("k", "block", "exact"))
def _knn_blocks(queries, points, k, block, exact):
    """(squared distances, indices) (n, k) of the k nearest points of each query, by blocks of queries.

    ``exact=False`` expands ||q - p||^2 = ||q||^2 - 2 q.p + ||p||^2 (one full-precision matrix product
    per block), which errs by up to (2 d + 16) eps (||q||^2 + ||p||^2) (``_brute_search`` checks the
    result against this); ``exact=True`` sums the squared differences (relative error ~ d eps).
    """
    n, d = queries.shape
    padded = jnp.pad(queries, ((0, (-n) % block), (0, 0))).reshape(-1, block, d)
    norms = jnp.sum(jnp.square(points), axis=1)

    def nearest(q):
        if exact:
            squared = jnp.sum(jnp.square(q[:, None, :] - points[None, :, :]), axis=-1)
        else:
            product = jnp.matmul(q, points.T, precision=jax.lax.Precision.HIGHEST)
            squared = jnp.sum(jnp.square(q), axis=1)[:, None] - 2.0 * product + norms
        negative, index = jax.lax.top_k(-squared, k)
        return -negative, index

    squared, index = jax.lax.map(nearest, padded)
    return squared.reshape(-1, k)[:n], index.reshape(-1, k)[:n]


def _exact_squared(queries, points, index):
    """||q_i - p_index_ij||^2 (n, c) in float64, summed feature by feature from the differences."""
    total = np.zeros(index.shape)
    for j in range(points.shape[1]):
        total += np.square(queries[:, j, None].astype(np.float64) - points[index, j])
    return total


def _kdtree_search(queries, points, k):
    distances, index = _kdtree_class()(points).query(queries, k=k, workers=-1)
    distances, index = distances.reshape(len(queries), k), index.reshape(len(queries), k)
    return np.square(distances, out=distances).astype(points.dtype), index.astype(np.int32)


def _brute_search(queries, points, k):
    """The blockwise JAX search: candidates by the fast expansion, ranked by exact distances.

    ``lax.top_k`` over blocks of squared distances (4M entries each, memory O(block * m)) keeps the
    c = k + 8 nearest by the fast expansion of ``_knn_blocks`` on data centred on the mean of the
    points, then ranks them by their exact distances. The expansion cancels in floating point when
    the data sit far from the mean compared with their neighbour distances (two float32 clusters
    10^4 apart), so a query's candidates are accepted only when every other point is provably
    farther than its k-th: when s_c - E >= s_k, s_c the c-th expanded distance,
    E = (2 d + 16) eps (||q||^2 + max_p ||p||^2) its error bound and s_k the k-th exact distance;
    the other queries are searched again by summed differences.
    """
    shift = points.mean(axis=0, dtype=np.float64).astype(points.dtype)
    q, p = queries - shift, points - shift
    m, d = points.shape
    c = min(m, k + _KNN_EXTRA_CANDIDATES)

    def candidates(rows, exact):
        block = max(1, min(len(rows), _KNN_BLOCK_ENTRIES // m))
        expanded, index = _knn_blocks(jnp.asarray(rows), jnp.asarray(p), c, block, exact)
        return np.asarray(expanded, np.float64), np.array(index)

    expanded, index = candidates(q, False)
    squared = _exact_squared(queries, points, index)
    norms_q, norms_p = (np.sum(np.square(a, dtype=np.float64), axis=1) for a in (q, p))
    bound = (2 * d + 16) * np.finfo(points.dtype).eps * (norms_q + np.max(norms_p))
    unsure = (c < m) & (expanded[:, -1] - bound < np.sort(squared, axis=1)[:, k - 1])
    if np.any(unsure):
        index[unsure] = candidates(q[unsure], True)[1]
        squared[unsure] = _exact_squared(queries[unsure], points, index[unsure])
    order = np.argsort(squared, axis=1, kind="stable")[:, :k]
    return (np.take_along_axis(squared, order, axis=1).astype(points.dtype),
            np.take_along_axis(index, order, axis=1).astype(np.int32))


def knn_search(queries, points, k, algorithm):
    """(squared distances, indices) (n, k) of the k nearest points of each query, as NumPy arrays.

    ``algorithm`` is "kdtree" (``cKDTree``) or "brute" (``_brute_search``), as ``check_algorithm``
    resolves it.
    """
    queries, points = np.asarray(queries), np.asarray(points)
    search = _kdtree_search if algorithm == "kdtree" else _brute_search
    return search(queries, points, k)


def locality_order(x) -> np.ndarray:
    """A permutation of the rows of x that keeps the points of each leaf of a kd-tree together (cKDTree's
    ``indices``): near points get near positions, so that a kNN graph on x[order] has its entries near
    its diagonal and products with it read nearby rows of the block they multiply."""
    return _kdtree_class()(np.asarray(x)).indices


def neighbours(x, n_neighbors, algorithm):
    """The n_neighbors nearest other points of every point: (squared distances, indices) (m, n_neighbors)."""
    squared, index = knn_search(x, x, n_neighbors + 1, algorithm)
    is_self = index == np.arange(len(index))[:, None]
    # Drop the point itself (the first entry unless it has duplicates), else the farthest neighbour.
    keep = np.ones_like(is_self)
    keep[np.arange(len(index)), np.where(is_self.any(axis=1), is_self.argmax(axis=1), n_neighbors)] = False
    return squared[keep].reshape(-1, n_neighbors), index[keep].reshape(-1, n_neighbors)
