"""Spectral clustering: affinity graphs, graph Laplacians, the Laplacian eigen-embedding (docs/maths.md section 6).

Build a graph W on the points, embed point i as row i of the eigenvectors of the k smallest
eigenvalues of a graph Laplacian, cluster the rows with the library's own ``KMeans``. Affinities
are dense (``rbf_affinity``, m x m) or sparse (``knn_affinity``, a ``jax.experimental.sparse.BCOO``
with O(m * n_neighbors) entries); every function below accepts both.

Eigen-solvers: ``method="dense"`` is the full ``jnp.linalg.eigh`` (exact, O(m^3)); ``method="lobpcg"``
runs ``jax.experimental.sparse.linalg.lobpcg_standard``, which finds the largest eigenvalues, on
c I - L with a small c: c = 0.1 for the normalized Laplacians, 0.1 max_i D_ii for L = D - W. Its
eigenvalues c - lambda are largest for the smallest lambda of L. The shift is kept small on
purpose: in float32 the Ritz values c - lambda carry an absolute error of about c eps, and with
c = 2 (the usual bound on the spectrum) they could not tell lambda_2 ~ 1e-6 of a kNN graph on
10^6 points from lambda_3 (two moons fell to ARI 0.3-0.6 on 2 of 3 data seeds); c > 0 keeps
LOBPCG's convergence test, r < tol (theta + ||A u||), meaningful (with c = 0 it is r < 0 and the
iteration breaks down into NaN once converged). It only multiplies L by a block of
n_components + 2 vectors, dense or sparse, so a few eigenvectors of a 5,000 x 5,000 dense graph
cost tens of matrix-block products instead of one O(m^3) decomposition. ``spectral_clustering``
starts LOBPCG from the eigenvectors of a 512-point landmark graph (``_landmark_start``).
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import sparse
from jax.experimental.sparse.linalg import lobpcg_standard

from jaxmix import _validation as v
from jaxmix._distances import exact_squared_distances
from jaxmix.inference.restarts import fit
from jaxmix.clustering.kmeans import KMeans, KMeansParams

AFFINITIES = ("rbf", "knn")
LAPLACIANS = ("unnormalized", "symmetric", "random_walk")
MODES = ("connectivity", "distance")
METHODS = ("dense", "lobpcg")

BANDWIDTH_NEIGHBORS = 10  # the median heuristic's neighbour rank (see ``rbf_affinity``)
DENSE_EIGH_MAX = 2048  # method=None: full eigh up to this many points, LOBPCG above
_BANDWIDTH_QUERIES = 1024  # evenly spaced points whose neighbour distances give the median
_EXTRA_VECTORS = 2  # LOBPCG block = n_clusters + this (a wider gap to the first unwanted eigenvalue)
_LOBPCG_ITERATIONS = 1000
_REFINE_ITERATIONS = 10  # LOBPCG steps from the landmark start (``_landmark_start``)
_N_LANDMARKS = 512
_LOBPCG_SHIFT = 0.1  # LOBPCG runs on shift I - L, shift = 0.1 (normalized) or 0.1 max_i D_ii (see above)
_LOBPCG_RTOL = 1e-4  # residual ||A u - theta u|| <= rtol (theta + ||A u||) at convergence
_KDTREE_MAX_FEATURES = 16  # cKDTree beats brute force only in low dimension
_KNN_BLOCK_ENTRIES = 2**22  # entries of one query-block x points distance matrix in the JAX kNN search
_KNN_EXTRA_CANDIDATES = 8  # the JAX kNN search keeps k + 8 candidates, then ranks them by exact distances


class SpectralResult(NamedTuple):
    """A spectral clustering of the m training points x and what ``predict`` needs to extend it.

    ``labels`` (m,); ``embedding`` (m, k), the rows k-means clustered; ``eigenvalues`` (k,) of the
    Laplacian, ascending; ``centers`` (k, k), the k-means centers in the embedding; ``x`` (m, d);
    ``basis`` (m, k), the vectors the Nystrom extension averages (D^-1/2 u for the normalized
    Laplacians, the eigenvectors v for L = D - W); ``gamma``, the bandwidth used (None for a
    connectivity graph); and the configuration ``affinity``, ``laplacian``, ``n_neighbors``.
    """

    labels: jax.Array
    embedding: jax.Array
    eigenvalues: jax.Array
    centers: jax.Array
    x: jax.Array
    basis: jax.Array
    gamma: float | None
    affinity: str
    laplacian: str
    n_neighbors: int


# -- affinities -----------------------------------------------------------------------------------
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
    return _rbf(x, _default_gamma(x) if gamma is None else gamma)


def _default_gamma(x) -> float:
    """The median heuristic of ``rbf_affinity`` on concrete x."""
    m = x.shape[0]
    queries = x[np.linspace(0, m - 1, min(m, _BANDWIDTH_QUERIES)).astype(int)]
    k = min(BANDWIDTH_NEIGHBORS, m - 1)
    if k < 1:
        raise ValueError(f"x needs at least 2 points to choose a bandwidth, got shape {x.shape}.")
    squared, _ = _knn_search(queries, x, k + 1)  # the query itself is its own 0th neighbour
    return _median_heuristic(squared[:, k])


@functools.partial(jax.jit, static_argnames=("k", "block", "exact"))
def _knn_blocks(queries, points, k, block, exact):
    """(squared distances, indices) (n, k) of the k nearest points of each query, by blocks of queries.

    ``exact=False`` expands ||q - p||^2 = ||q||^2 - 2 q.p + ||p||^2 (one full-precision matrix product
    per block), which errs by up to (2 d + 16) eps (||q||^2 + ||p||^2) (``_knn_search`` checks the
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


def _knn_search(queries, points, k):
    """(squared distances, indices) (n, k) of the k nearest points, as NumPy arrays.

    scipy's cKDTree when scipy is installed and there are at most 16 features: a tree query costs
    about k log m per point, against m d for brute force (measured on two moons, 10 neighbours:
    50,000 points in 0.2 s with the tree against 9 s blockwise, which grows as m^2: minutes at
    200,000). Otherwise a blockwise pure-JAX search (``lax.top_k`` over blocks of squared distances,
    4M entries each, memory O(block * m)) keeps the c = k + 8 nearest by the fast expansion of
    ``_knn_blocks`` on data centred on the mean of the points, then ranks them by their exact
    distances. The expansion cancels in floating point when the data sit far from the mean compared
    with their neighbour distances (two float32 clusters 10^4 apart), so a query's candidates are
    accepted only when every other point is provably farther than its k-th: when
    s_c - E >= s_k, s_c the c-th expanded distance, E = (2 d + 16) eps (||q||^2 + max_p ||p||^2) its
    error bound and s_k the k-th exact distance; the other queries are searched again by summed
    differences (on CPU at m = 20,000, d = 32: 3.0 s for the expansion pass, 5.5 s more for an
    exact pass over every query, as two float32 clusters 10^4 apart need).
    """
    queries, points = np.asarray(queries), np.asarray(points)
    if points.shape[1] <= _KDTREE_MAX_FEATURES:
        try:
            from scipy.spatial import cKDTree
        except ImportError:
            pass
        else:
            distances, index = cKDTree(points).query(queries, k=k, workers=-1)
            distances, index = distances.reshape(len(queries), k), index.reshape(len(queries), k)
            return np.square(distances).astype(points.dtype), index.astype(np.int32)
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


def _neighbours(x, n_neighbors):
    """The n_neighbors nearest other points of every point: (squared distances, indices) (m, n_neighbors)."""
    squared, index = _knn_search(x, x, n_neighbors + 1)
    is_self = index == np.arange(len(index))[:, None]
    # Drop the point itself (the first entry unless it has duplicates), else the farthest neighbour.
    keep = np.argsort(is_self, axis=1, kind="stable")[:, :n_neighbors]
    return np.take_along_axis(squared, keep, axis=1), np.take_along_axis(index, keep, axis=1)


def _edge_weights(squared, gamma):
    return np.ones_like(squared) if gamma is None else np.exp(-gamma * squared)


def _knn_graph(x, n_neighbors, mode, gamma, include_self=False):
    """The symmetrized kNN graph of checked x, the gamma used (None for connectivity) and a function
    counting its connected components (``_knn_components`` on the neighbour lists, read as CSR)."""
    squared, index = _neighbours(x, n_neighbors - include_self)
    if mode == "distance" and gamma is None:
        gamma = _median_heuristic(squared[:, -1])
    m = x.shape[0]
    if include_self:  # each point is its own nearest neighbour, at distance 0
        squared = np.concatenate([np.zeros((m, 1), squared.dtype), squared], axis=1)
        index = np.concatenate([np.arange(m, dtype=index.dtype)[:, None], index], axis=1)
    a = _edge_weights(squared, None if mode == "connectivity" else gamma)
    rows = np.repeat(np.arange(m, dtype=np.int32), n_neighbors)
    cols = index.ravel()
    # W = (A + A^T) / 2 kept as the 2 m n_neighbors entries of A and A^T: BCOO sums duplicates.
    indices = np.concatenate([np.stack([rows, cols], 1), np.stack([cols, rows], 1)])
    data = np.concatenate([a.ravel(), a.ravel()]) * 0.5
    w = sparse.BCOO((jnp.asarray(data, x.dtype), jnp.asarray(indices)), shape=(m, m))
    return w, gamma, functools.partial(_knn_components, index, a)


def knn_affinity(x, *, n_neighbors=10, mode="connectivity", gamma=None, include_self=False) -> sparse.BCOO:
    """The symmetrized k-nearest-neighbour graph W = (A + A^T) / 2 as a sparse BCOO matrix.

    A_il = 1 (``mode="connectivity"``) or exp(-gamma ||x_i - x_l||^2) (``mode="distance"``; gamma by
    the median heuristic of ``rbf_affinity`` on the farthest kept neighbour when None) when x_l is
    one of the n_neighbors nearest other points of x_i, else 0. Stored as the 2 m n_neighbors
    entries of A and A^T (BCOO sums duplicates), so memory is O(m n_neighbors), never O(m^2); the
    neighbour search is described in ``_knn_search``. docs/maths.md section 6.

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
        raise ValueError(f"gamma weights the edges of mode='distance' only; got gamma={gamma} with mode={mode!r}.")
    return _knn_graph(x, n_neighbors, mode, gamma, include_self)[0]


# -- Laplacians -----------------------------------------------------------------------------------
def _degrees(w):
    """D_ii = sum_l w_il, for dense or BCOO w."""
    return w @ jnp.ones(w.shape[0], w.dtype)


def _inverse_sqrt(d):
    """D^+1/2: 1 / sqrt(d) where d > 0 and 0 at isolated vertices (the pseudo-inverse, no NaN)."""
    return jnp.where(d > 0, 1.0 / jnp.sqrt(jnp.where(d > 0, d, 1.0)), 0.0)


def _laplacian(w, kind):
    """diag(a) (D - W) diag(b): (1, 1) for L, (D^+1/2, D^+1/2) for L_sym, (D^+, 1) for L_rw."""
    d = _degrees(w)
    s = _inverse_sqrt(d)
    one = jnp.ones_like(d)
    a, b = {"unnormalized": (one, one), "symmetric": (s, s), "random_walk": (s * s, one)}[kind]
    if isinstance(w, sparse.BCOO):
        rows, cols = w.indices[:, 0], w.indices[:, 1]
        diagonal = jnp.arange(w.shape[0], dtype=w.indices.dtype)
        data = jnp.concatenate([a * d * b, -w.data * a[rows] * b[cols]])
        indices = jnp.concatenate([jnp.stack([diagonal, diagonal], 1), w.indices])
        return sparse.BCOO((data, indices), shape=w.shape)
    return a[:, None] * (jnp.diag(d) - w) * b[None, :]


def _check_affinity(w, name="w"):
    """A square, finite, non-negative, symmetric dense array or 2-D BCOO matrix (values checked on the host)."""
    if isinstance(w, sparse.BCOO):
        if w.ndim != 2 or w.n_batch or w.n_dense:
            raise ValueError(f"{name} must be a 2-D BCOO matrix without batch or dense dimensions, got {w}.")
        data = v.as_float_array(name, w.data)
        w = sparse.BCOO((data, w.indices), shape=w.shape)
    else:
        data = w = v.as_float_array(name, w)
        if w.ndim != 2:
            raise ValueError(f"{name} must be a square 2-D affinity matrix, got shape {w.shape}.")
    if w.shape[0] != w.shape[1]:
        raise ValueError(f"{name} must be square, got shape {w.shape}.")
    v.check_finite(name, data)
    values = v.host_values(data)
    if values is None:
        return w
    if values.size and values.min() < 0:
        raise ValueError(f"{name} must be non-negative (an affinity), got min {values.min()}.")
    probe = np.random.default_rng(0).standard_normal(w.shape[0]).astype(values.dtype)
    if isinstance(w, sparse.BCOO):  # W p against W^T p: equal for every p iff W is symmetric
        index = np.asarray(w.indices)
        forward = np.bincount(index[:, 0], values * probe[index[:, 1]], minlength=w.shape[0])
        backward = np.bincount(index[:, 1], values * probe[index[:, 0]], minlength=w.shape[0])
        scale = np.bincount(index[:, 0], values * np.abs(probe[index[:, 1]]), minlength=w.shape[0])
    else:
        forward, backward, scale = values @ probe, probe @ values, values @ np.abs(probe)
    tol = 100 * np.finfo(values.dtype).eps * max(1.0, float(scale.max(initial=0.0)))
    if np.max(np.abs(forward - backward), initial=0.0) > tol:
        raise ValueError(f"{name} must be symmetric (w_il = w_li), got max |W p - W^T p| above {tol:.1e}.")
    return w


def laplacian(w, kind: str = "unnormalized"):
    """The graph Laplacian L = D - W, L_sym = D^-1/2 L D^-1/2 or L_rw = D^-1 L (docs/maths.md section 6).

    D_ii = sum_l w_il. For a dense w the result is dense; for a BCOO w it is a BCOO matrix (the
    diagonal entries and -W's entries, O(nnz)). An isolated vertex (D_ii = 0) gets a zero row and
    column: D^-1/2 and D^-1 are the pseudo-inverses, 0 where D_ii = 0, so nothing divides by zero.

    Examples:
      >>> import jax.numpy as jnp
      >>> laplacian(jnp.array([[0.0, 4.0], [4.0, 0.0]]), "symmetric").tolist()
      [[1.0, -1.0], [-1.0, 1.0]]
    """
    v.check_choice("kind", kind, LAPLACIANS)
    return _laplacian(_check_affinity(w), kind)


# -- the embedding ----------------------------------------------------------------------------------
def _sign_flip(vectors):
    """Each column times the sign of its entry of largest magnitude (positive after), as scikit-learn."""
    largest = jnp.take_along_axis(vectors, jnp.argmax(jnp.abs(vectors), axis=0)[None, :], axis=0)
    return vectors * jnp.where(largest < 0, -1.0, 1.0)


def _normalize_rows(u):
    norms = jnp.linalg.norm(u, axis=1, keepdims=True)
    return jnp.where(norms > 0, u / jnp.where(norms > 0, norms, 1.0), 0.0)


def _embed(w, start, n_components, kind, method, n_iter=_LOBPCG_ITERATIONS):
    """(embedding, eigenvalues, basis) of checked w; ``start`` (m, b) starts at most n_iter LOBPCG steps.

    A sparse Laplacian goes to LOBPCG in compressed rows (``BCSR``): its product with a block runs
    about 5x faster on CPU than BCOO's (measured at m = 200,000).
    """
    lap, d = _laplacian_and_degrees(w, "unnormalized" if kind == "unnormalized" else "symmetric")
    if isinstance(lap, sparse.BCOO):
        lap = lap.todense() if method == "dense" else _compressed_rows(lap)
    return _solve(lap, d, start, n_components, kind, method, n_iter)


def _compressed_rows(a):
    """BCOO to BCSR by a stable counting sort of the rows in NumPy (duplicates kept: they still add up).

    ``BCSR.from_bcoo`` sorts on the device, about 10x slower on CPU at 4 million entries.
    """
    index = np.asarray(a.indices)
    order = np.argsort(index[:, 0], kind="stable")
    indptr = np.zeros(a.shape[0] + 1, index.dtype)
    np.cumsum(np.bincount(index[:, 0], minlength=a.shape[0]), out=indptr[1:])
    return sparse.BCSR((a.data[jnp.asarray(order)], jnp.asarray(index[order, 1]), jnp.asarray(indptr)),
                       shape=a.shape)


@functools.partial(jax.jit, static_argnames="kind")
def _laplacian_and_degrees(w, kind):
    return _laplacian(w, kind), _degrees(w)


@functools.partial(jax.jit, static_argnames=("n_components", "kind", "method", "n_iter"))
def _solve(lap, d, start, n_components, kind, method, n_iter):
    """Eigenvectors of L (kind "unnormalized") or L_sym (the others), then the embedding of ``kind``."""
    if method == "dense":
        values, vectors = jnp.linalg.eigh(lap)
    else:
        shift = _LOBPCG_SHIFT * (1.0 if kind != "unnormalized" else jnp.max(d))
        theta, vectors, _ = lobpcg_standard(
            lambda u: shift * u - lap @ u, start, m=n_iter, tol=_LOBPCG_RTOL / (10 * d.shape[0])
        )
        values = shift - theta  # theta descends, so the eigenvalues of L ascend
    values, vectors = values[:n_components], vectors[:, :n_components]
    if kind == "random_walk":  # L_rw v = lambda v for v = D^-1/2 u, u an eigenvector of L_sym
        vectors = _inverse_sqrt(d)[:, None] * vectors
    vectors = _sign_flip(vectors)
    embedding = _normalize_rows(vectors) if kind == "symmetric" else vectors
    basis = _inverse_sqrt(d)[:, None] * vectors if kind == "symmetric" else vectors
    return embedding, values, basis


def _check_embedding_args(w, n_components, kind, method, key):
    v.check_choice("kind", kind, LAPLACIANS)
    m = w.shape[0]
    n_components = v.check_positive_int("n_components", n_components)
    if n_components > m:
        raise ValueError(f"n_components must be <= the number of vertices {m}, got {n_components}.")
    if method is None:
        method = "dense" if m <= DENSE_EIGH_MAX else "lobpcg"
    v.check_choice("method", method, METHODS)
    if method == "lobpcg":
        if key is None:
            raise ValueError("key is required with method='lobpcg' (it draws the starting block), got None.")
        if 5 * (n_components + 1) >= m:
            raise ValueError(f"method='lobpcg' needs m > 5 (n_components + 1) vertices, got m={m}; use 'dense'.")
    return n_components, method


def _block_size(m, n_components):
    """LOBPCG's block: n_components + 2 columns, fewer than m / 5 (``lobpcg_standard``'s limit)."""
    return min(n_components + _EXTRA_VECTORS, (m - 1) // 5)


def _start(key, m, n_components, dtype):
    return jax.random.normal(key, (m, _block_size(m, n_components)), dtype)


def spectral_embedding(w, n_components: int, *, kind: str = "symmetric", method: str | None = None, key=None):
    """Laplacian eigenmaps: the eigenvectors of the n_components smallest eigenvalues of a Laplacian of w.

    Returns ``(embedding, eigenvalues)``, (m, n_components) and (n_components,) ascending, with
    L u_j = lambda_j u_j (docs/maths.md section 6). ``kind``: "unnormalized" (L = D - W),
    "symmetric" (L_sym; each row of the embedding then normalized to unit length, as in
    Ng-Jordan-Weiss) or "random_walk" (L_rw, Shi-Malik: v = D^-1/2 u for u an eigenvector of L_sym,
    so V^T D V = I). Each column's sign makes its largest-magnitude entry positive.

    ``method``: "dense" (``jnp.linalg.eigh``), "lobpcg" (``lobpcg_standard`` on 0.1 I - L, see the module docstring, from a
    random block drawn with ``key``, which it then requires; dense or BCOO w) or None: "dense" up
    to 2,048 vertices, "lobpcg" above.

    Examples:
      >>> import jax.numpy as jnp
      >>> w = jnp.array([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])  # a path: L has eigenvalues 0, 1, 3
      >>> embedding, eigenvalues = spectral_embedding(w, 2, kind="unnormalized")
      >>> [round(float(e), 5) + 0.0 for e in eigenvalues], embedding.shape
      ([0.0, 1.0], (3, 2))
    """
    w = _check_affinity(w)
    n_components, method = _check_embedding_args(w, n_components, kind, method, key)
    start = _start(key, w.shape[0], n_components, w.dtype) if method == "lobpcg" else None
    embedding, values, _ = _embed(w, start, n_components, kind, method)
    return embedding, values


# -- cuts -------------------------------------------------------------------------------------------
def _check_labels(labels, n_clusters=None):
    """1-D integer cluster indices, >= 0 and < n_clusters when given (values checked when concrete)."""
    if not isinstance(labels, jax.Array):  # JAX arrays and tracers keep their dtype, others go through NumPy
        labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(
            f"labels must be integer cluster indices in [0, K), got dtype {labels.dtype}; map other labels "
            "to indices first, e.g. np.unique(labels, return_inverse=True)[1]."
        )
    if labels.ndim != 1:
        raise ValueError(f"labels must be a 1-D array of cluster indices, got shape {labels.shape}.")
    values = v.host_values(labels)
    if values is not None and values.size:
        low, high = int(values.min()), int(values.max())
        if low < 0 or (n_clusters is not None and high >= n_clusters):
            valid = "[0, K)" if n_clusters is None else f"[0, {n_clusters}) for n_clusters={n_clusters}"
            raise ValueError(f"labels must lie in {valid}, got values from {low} to {high}.")
    return jnp.asarray(labels)


def indicator_matrix(labels, n_clusters: int) -> jax.Array:
    """H (m, n_clusters) with H_ij = 1/sqrt(|C_j|) if x_i is in C_j else 0; an empty C_j gives a zero column.

    ``labels`` (m,) are integers in [0, n_clusters) (ValueError otherwise, when concrete).
    """
    n_clusters = v.check_positive_int("n_clusters", n_clusters)
    one_hot = jax.nn.one_hot(_check_labels(labels, n_clusters), n_clusters)
    sizes = jnp.sum(one_hot, axis=0)
    return one_hot * jnp.where(sizes > 0, 1.0 / jnp.sqrt(jnp.maximum(sizes, 1.0)), 0.0)


def _cuts(w, labels, n_clusters):
    """(cut(C_j), |C_j|, vol(C_j)) for each j: cut = sum_{i in C_j, l not in C_j} w_il = vol - within."""
    one_hot = jax.nn.one_hot(labels, n_clusters, dtype=w.dtype)
    volume = one_hot.T @ _degrees(w)
    within = jnp.sum(one_hot * (w @ one_hot), axis=0)
    return volume - within, jnp.sum(one_hot, axis=0), volume


def _check_partition(w, labels):
    w = _check_affinity(w)
    labels = _check_labels(labels)
    if labels.shape != (w.shape[0],):
        raise ValueError(f"labels must have shape ({w.shape[0]},), one per vertex of w, got {labels.shape}.")
    values = v.host_values(labels)
    n_clusters = int(values.max()) + 1 if values is not None and values.size else 1
    return w, labels, n_clusters


def ratio_cut(w, labels) -> jax.Array:
    """RatioCut(C_1..C_k) = sum_j cut(C_j) / |C_j| over the non-empty clusters (docs/maths.md section 6)."""
    w, labels, k = _check_partition(w, labels)
    cut, size, _ = _cuts(w, labels, k)
    return jnp.sum(jnp.where(size > 0, cut / jnp.maximum(size, 1.0), 0.0))


def normalized_cut(w, labels) -> jax.Array:
    """Ncut(C_1..C_k) = sum_j cut(C_j) / vol(C_j), vol(C_j) = sum_{i in C_j} D_ii (Shi-Malik; 0/0 taken as 0)."""
    w, labels, k = _check_partition(w, labels)
    cut, _, volume = _cuts(w, labels, k)
    return jnp.sum(jnp.where(volume > 0, cut / jnp.where(volume > 0, volume, 1.0), 0.0))


# -- spectral clustering and its out-of-sample extension --------------------------------------------
def _knn_components(index, a) -> int:
    """Connected components of the graph joining x_i to its neighbours index[i, j] with a[i, j] > 0.

    The neighbour lists are the rows of a CSR matrix of A as they are (no sort), and A's weak
    components are those of A + A^T: 2.8 s on two moons at m = 10^6 with 20 neighbours (0.6 s at
    200,000), where going through scipy's COO of the BCOO's coordinates took 8 s.
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    edges = a > 0
    indptr = np.concatenate([[0], np.cumsum(np.sum(edges, axis=1))])
    graph = csr_matrix((np.ones(indptr[-1]), index[edges], indptr), shape=(len(index), len(index)))
    return int(connected_components(graph, directed=True, connection="weak")[0])


def _dense_components(w) -> int:
    """Connected components of the graph with an edge wherever w_il > 0 (dense w; isolated vertices count).

    Breadth-first search reading each vertex's row once: O(m^2) like building W, 35 ms at m = 5,000
    where scipy's CSR of the 2.7 million positive entries took 0.3 s.
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


def _check_connected_enough(w, n_clusters, count_components, remedy):
    """ValueError when fewer than n_clusters vertices have an edge; UserWarning for more components than that.

    A graph of c <= n_clusters connected components is the ideal case of spectral clustering (each
    component a cluster or a union of clusters). With c > n_clusters the Laplacian has c zero
    eigenvalues, the embedding is an arbitrary basis of their eigenspace, and k-means groups whole
    components arbitrarily; scikit-learn warns for any c > 1.
    """
    d = v.host_values(_degrees(w))
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


def spectral_clustering(key, x, n_clusters: int, *, affinity: str = "rbf", n_neighbors: int | None = None, gamma=None,
                        laplacian: str = "symmetric", n_init: int = 10) -> SpectralResult:
    """Spectral clustering of x into n_clusters: affinity W, Laplacian, embedding, k-means on its rows.

    docs/maths.md section 6. ``affinity="rbf"``: the dense ``rbf_affinity`` (gamma by its median heuristic
    when None); ``"knn"``: ``knn_affinity`` with ``n_neighbors`` (connectivity weights, or
    exp(-gamma d^2) when gamma is given). The embedding is ``spectral_embedding`` with
    n_components = n_clusters (eigh up to 2,048 points, LOBPCG above) of the ``laplacian`` kind;
    its rows are clustered by ``KMeans(n_clusters)`` with ``n_init`` k-means++ restarts
    (``jaxmix.fit``). ``predict`` extends the result to new points.

    ``n_neighbors=None`` takes max(10, ceil(log2 m)) neighbours (10, scikit-learn's default, up
    to m = 1,024; 20 at m = 10^6). A kNN graph needs k of order log m to stay connected, and on
    long thin clusters too few neighbours make the smooth modes along each cluster cheaper than
    the cut between clusters: two moons at m = 10^6 with k = 10 have a second eigenvalue of
    3.7e-7 for a mode along the moons, below the 2e-6 normalized cut of the true partition
    (ARI 0.61 on one data seed), and k = 20 separates them (ARI 1.000).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> t = jnp.linspace(0.0, 3.0, 40)
      >>> x = jnp.concatenate([jnp.stack([t, jnp.zeros(40)], 1), jnp.stack([t, jnp.ones(40) * 2], 1)])
      >>> result = spectral_clustering(jax.random.key(0), x, 2, affinity="knn", n_neighbors=5)
      >>> bool(jnp.all(result.labels[:40] == result.labels[0])), bool(result.labels[0] != result.labels[40])
      (True, True)
    """
    x = v.check_data(x)
    m = x.shape[0]
    n_clusters = v.check_positive_int("n_clusters", n_clusters, minimum=2)
    if n_clusters > m:
        raise ValueError(f"n_clusters must be <= the number of points {m}, got {n_clusters}.")
    v.check_choice("affinity", affinity, AFFINITIES)
    v.check_choice("laplacian", laplacian, LAPLACIANS)
    n_neighbors = default_neighbors(m) if n_neighbors is None else v.check_positive_int("n_neighbors", n_neighbors)
    n_init = v.check_positive_int("n_init", n_init)
    gamma = _check_bandwidth(gamma, None)
    if affinity == "knn" and n_neighbors >= m:
        raise ValueError(f"n_neighbors must be < the number of points {m}, got {n_neighbors}.")
    if affinity == "rbf" and gamma is None:
        gamma = _default_gamma(x)
    w, gamma, count_components = _graph(x, affinity, n_neighbors, gamma)
    remedy = ("decrease gamma (a wider bandwidth joins more points)" if affinity == "rbf"
              else "increase n_neighbors")
    _check_connected_enough(w, n_clusters, count_components, remedy)
    embed_key, kmeans_key = jax.random.split(key)
    n_clusters, method = _check_embedding_args(w, n_clusters, laplacian, None, embed_key)
    if method == "dense":
        embedding, values, basis = _embed(w, None, n_clusters, laplacian, method)
    else:
        start = _landmark_start(embed_key, x, w, n_clusters, laplacian, affinity, n_neighbors, gamma)
        embedding, values, basis = _embed(w, start, n_clusters, laplacian, method, _REFINE_ITERATIONS)
    model = KMeans(n_clusters)
    centers = fit(kmeans_key, model, embedding, n_init=n_init, init="kmeans++").best.params.centers
    labels = model.predict(KMeansParams(centers), embedding)
    return SpectralResult(labels, embedding, values, centers, x, basis, gamma, affinity, laplacian, n_neighbors)


def default_neighbors(m: int) -> int:
    """``spectral_clustering``'s kNN neighbour count for m points: max(10, ceil(log2 m)), below m."""
    return min(max(10, math.ceil(math.log2(m))), m - 1)


@functools.partial(jax.jit, static_argnames="kind")
def _extend(weights, basis, eigenvalues, kind):
    """The Nystrom extension of the embedding to n new points.

    ``weights`` (n, r) are their affinities w(x, x_l) to r training points and ``basis`` those
    points' rows of ``SpectralResult.basis``: (m, k) for "rbf" (r = m, every point), (n, r, k) for "knn". From the
    eigen-equation of the training graph, with d(x) = sum_l w(x, x_l):
    v(x) = sum_l w(x, x_l) v_l / (d(x) - lambda) for L = D - W, and for the normalized Laplacians
    v(x) = sum_l w(x, x_l) v_l / (d(x) (1 - lambda)) with v = D^-1/2 u; then L_rw's embedding is v(x)
    and L_sym's is u(x) = d(x)^1/2 v(x) with its row normalized (where d(x)^1/2 cancels).
    """
    total = weights @ basis if basis.ndim == 2 else jnp.einsum("nr,nrk->nk", weights, basis)
    d = jnp.sum(weights, axis=1, keepdims=True)
    denominator = d - eigenvalues if kind == "unnormalized" else d * (1.0 - eigenvalues)
    values = jnp.where(denominator > 0, total / jnp.where(denominator > 0, denominator, 1.0), 0.0)
    return _normalize_rows(values) if kind == "symmetric" else values


def predict(result: SpectralResult, x_new) -> jax.Array:
    """Cluster labels of new points: the Nystrom extension of the embedding, then the nearest k-means center.

    The new point's affinities to the training points (all of them for ``"rbf"``; its n_neighbors
    nearest for ``"knn"``, weighted as in training) extend each eigenvector through its own
    eigen-equation (see ``_extend``), as if the point had been one more vertex of the graph;
    scikit-learn's ``SpectralClustering`` has no predict (its issue 15808).
    """
    if not isinstance(result, SpectralResult):
        raise TypeError(f"result must be a SpectralResult, got {type(result).__name__}.")
    x_new = v.check_data(x_new, result.x.shape[1], name="x_new").astype(result.x.dtype)
    embedding = _extension(x_new, result.x, result.basis, result.eigenvalues, result.laplacian,
                           result.affinity, result.n_neighbors, result.gamma)
    return KMeans(result.centers.shape[0]).predict(KMeansParams(result.centers), embedding)


def _graph(x, affinity, n_neighbors, gamma):
    """The affinity graph of ``spectral_clustering`` (dense rbf, or the kNN graph), its gamma and a
    function counting its connected components."""
    if affinity == "rbf":
        w = _rbf(x, gamma)
        return w, gamma, functools.partial(_dense_components, w)
    return _knn_graph(x, n_neighbors, "connectivity" if gamma is None else "distance", gamma)


def _extension(x_new, x, basis, eigenvalues, kind, affinity, n_neighbors, gamma):
    """The embedding of x_new extended from the graph on x (``_extend``), with x_new's affinities to x."""
    if affinity == "rbf":
        return _extend(_rbf_rows(x_new, x, gamma), basis, eigenvalues, kind)
    squared, index = _knn_search(x_new, x, n_neighbors)
    weights = jnp.asarray(_edge_weights(squared, gamma), x.dtype)
    return _extend(weights, basis[jnp.asarray(index)], eigenvalues, kind)


def _landmark_start(key, x, w, n_clusters, kind, affinity, n_neighbors, gamma):
    """LOBPCG's starting block for the graph w on x: eigenvectors of a landmark subgraph, extended.

    LOBPCG converges at a rate set by the relative gap (lambda_{b+1} - lambda_k) / lambda_max,
    which for a kNN graph on 2-D data shrinks like 1/m (about 1e-5 at m = 200,000): from a random
    block it needs hundreds of iterations. The same graph built on 512 random landmarks has the
    same low eigenfunctions (both approximate one limit operator); its exact eigenvectors (eigh),
    extended to all points by the Nystrom extension of ``predict``, leave LOBPCG only the error
    in the high frequencies, which it removes fastest. For the normalized Laplacians the start is
    u = D^1/2 v, v the extended random-walk eigenvectors.
    """
    m = x.shape[0]
    block = _block_size(m, n_clusters)
    landmarks = x[jax.random.choice(key, m, (min(m, _N_LANDMARKS),), replace=False)]
    walk = "unnormalized" if kind == "unnormalized" else "random_walk"
    _, values, basis = _embed(_graph(landmarks, affinity, n_neighbors, gamma)[0], None, block, walk, "dense")
    start = _extension(x, landmarks, basis, values, walk, affinity, n_neighbors, gamma)
    return start if kind == "unnormalized" else jnp.sqrt(_degrees(w))[:, None] * start
