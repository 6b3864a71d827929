"""The Laplacian eigen-embedding (Laplacian eigenmaps) of an affinity graph (docs/maths.md section 6).

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

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import sparse
from jax.experimental.sparse.linalg import lobpcg_standard

from jaxmix import _validation as v
from jaxmix.spectral.laplacians import (
    LAPLACIANS,
    check_affinity,
    degrees,
    inverse_sqrt,
    laplacian_times,
    unchecked_laplacian,
)

METHODS = ("dense", "lobpcg")

DENSE_EIGH_MAX = 2048  # method=None: full eigh up to this many points, LOBPCG above
_EXTRA_VECTORS = 2  # LOBPCG block = n_clusters + this (a wider gap to the first unwanted eigenvalue)
_LOBPCG_ITERATIONS = 1000
_LOBPCG_SHIFT = 0.1  # LOBPCG runs on shift I - L, shift = 0.1 (normalized) or 0.1 max_i D_ii (see above)
_LOBPCG_RTOL = 1e-4  # residual ||A u - theta u|| <= rtol (theta + ||A u||) at convergence


def _sign_flip(vectors):
    """Each column times the sign of its entry of largest magnitude (positive after), as scikit-learn."""
    largest = jnp.take_along_axis(vectors, jnp.argmax(jnp.abs(vectors), axis=0)[None, :], axis=0)
    return vectors * jnp.where(largest < 0, -1.0, 1.0)


def normalize_rows(u):
    norms = jnp.linalg.norm(u, axis=1, keepdims=True)
    return jnp.where(norms > 0, u / jnp.where(norms > 0, norms, 1.0), 0.0)


def embed(w, start, n_components, kind, method, n_iter=_LOBPCG_ITERATIONS):
    """(embedding, eigenvalues, basis) of checked w; ``start`` (m, b) starts at most n_iter LOBPCG steps.

    LOBPCG multiplies blocks by L without forming it (``laplacian_times``); a BCOO w goes to it in
    compressed rows (``BCSR``), whose product with a block is faster than BCOO's. The dense method
    gets w densified.
    """
    if isinstance(w, (sparse.BCOO, sparse.BCSR)) and method == "dense":
        w = w.todense()
    elif isinstance(w, sparse.BCOO):
        w = _compressed_rows(w)
    return _solve(w, start, n_components, kind, method, n_iter)


def _compressed_rows(a):
    """BCOO to BCSR by a stable counting sort of the rows in NumPy (duplicates kept: they still add up).

    ``BCSR.from_bcoo`` sorts on the device, which is slower on CPU.
    """
    index = np.asarray(a.indices)
    order = np.argsort(index[:, 0], kind="stable")
    indptr = np.zeros(a.shape[0] + 1, index.dtype)
    np.cumsum(np.bincount(index[:, 0], minlength=a.shape[0]), out=indptr[1:])
    return sparse.BCSR((a.data[jnp.asarray(order)], jnp.asarray(index[order, 1]), jnp.asarray(indptr)),
                       shape=a.shape)


@functools.partial(jax.jit, static_argnames=("n_components", "kind", "method", "n_iter"))
def _solve(w, start, n_components, kind, method, n_iter):
    """Eigenvectors of L (kind "unnormalized") or L_sym (the others), then the embedding of ``kind``."""
    d = degrees(w)
    solved = "unnormalized" if kind == "unnormalized" else "symmetric"
    if method == "dense":
        values, vectors = jnp.linalg.eigh(unchecked_laplacian(w, solved))
    else:
        shift = _LOBPCG_SHIFT * (1.0 if kind != "unnormalized" else jnp.max(d))
        operator = lambda u: shift * u - laplacian_times(w, d, solved, u)
        theta, vectors, _ = lobpcg_standard(operator, start, m=n_iter, tol=_LOBPCG_RTOL / (10 * d.shape[0]))
        values = shift - theta  # theta descends, so the eigenvalues of L ascend
    values, vectors = values[:n_components], vectors[:, :n_components]
    if kind == "random_walk":  # L_rw v = lambda v for v = D^-1/2 u, u an eigenvector of L_sym
        vectors = inverse_sqrt(d)[:, None] * vectors
    vectors = _sign_flip(vectors)
    embedding = normalize_rows(vectors) if kind == "symmetric" else vectors
    basis = inverse_sqrt(d)[:, None] * vectors if kind == "symmetric" else vectors
    return embedding, values, basis


def check_embedding_args(key, w, n_components, kind, method):
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
            raise ValueError(
                f"method='lobpcg' needs m > 5 (n_components + 1) vertices, got m={m}; use 'dense'."
            )
    return n_components, method


def block_size(m, n_components):
    """LOBPCG's block: n_components + 2 columns, fewer than m / 5 (``lobpcg_standard``'s limit)."""
    return min(n_components + _EXTRA_VECTORS, (m - 1) // 5)


def random_start(key, m, n_components, dtype):
    """LOBPCG's random starting block (m, ``block_size(m, n_components)``), standard normal."""
    return jax.random.normal(key, (m, block_size(m, n_components)), dtype)


def spectral_embedding(key, w, n_components: int, *, kind: str = "symmetric", method: str | None = None):
    """Laplacian eigenmaps: the eigenvectors of the n_components smallest eigenvalues of a Laplacian of w.

    Returns ``(embedding, eigenvalues)``, (m, n_components) and (n_components,) ascending, with
    L u_j = lambda_j u_j (docs/maths.md section 6). ``kind``: "unnormalized" (L = D - W),
    "symmetric" (L_sym; each row of the embedding then normalized to unit length, as in
    Ng-Jordan-Weiss) or "random_walk" (L_rw, Shi-Malik: v = D^-1/2 u for u an eigenvector of L_sym,
    so V^T D V = I). Each column's sign makes its largest-magnitude entry positive.

    ``method``: "dense" (``jnp.linalg.eigh``), "lobpcg" (``lobpcg_standard`` on 0.1 I - L, see the
    module docstring, from a random block drawn with ``key``; dense or BCOO w) or None: "dense" up
    to 2,048 vertices, "lobpcg" above. ``key`` (a ``jax.random`` key) is required either way so that
    the call does not change with the size of w; the dense ``eigh`` ignores it.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> w = jnp.array([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])  # a path: eigenvalues 0, 1, 3
      >>> embedding, eigenvalues = spectral_embedding(jax.random.key(0), w, 2, kind="unnormalized")
      >>> [round(float(e), 5) + 0.0 for e in eigenvalues], embedding.shape
      ([0.0, 1.0], (3, 2))
    """
    w = check_affinity(w)
    n_components, method = check_embedding_args(key, w, n_components, kind, method)
    start = random_start(key, w.shape[0], n_components, w.dtype) if method == "lobpcg" else None
    embedding, values, _ = embed(w, start, n_components, kind, method)
    return embedding, values
