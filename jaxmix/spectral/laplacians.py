"""Graph Laplacians L = D - W, L_sym and L_rw of dense or sparse (BCOO) affinities.

docs/maths.md section 6.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import sparse

from jaxmix import _validation as v

LAPLACIANS = ("unnormalized", "symmetric", "random_walk")


def times(w, u):
    """w @ u for a block u (n, c); a BCSR w multiplies u padded to whole 32-byte rows (8 float32 columns).

    XLA's CPU kernel for BCSR products vectorizes whole 32-byte rows only: on a 200,000-point kNN
    graph, 4 float32 columns took 23 ms and the same padded to 8 took 7 ms (12 columns: 30 ms; 16: 9 ms).
    """
    if not isinstance(w, sparse.BCSR):
        return w @ u
    lanes = max(1, 32 // u.dtype.itemsize)
    return (w @ jnp.pad(u, ((0, 0), (0, -u.shape[1] % lanes))))[:, : u.shape[1]]


@jax.jit
def degrees(w):
    """D_ii = sum_l w_il, for dense, BCOO or BCSR w."""
    return times(w, jnp.ones((w.shape[1], 1), w.dtype))[:, 0]


def inverse_sqrt(d):
    """D^+1/2: 1 / sqrt(d) where d > 0 and 0 at isolated vertices (the pseudo-inverse, no NaN)."""
    return jnp.where(d > 0, 1.0 / jnp.sqrt(jnp.where(d > 0, d, 1.0)), 0.0)


def _scalings(d, kind):
    """(a, b) with L = diag(a) (D - W) diag(b): (1, 1) for L, (D^+1/2, D^+1/2) for L_sym, (D^+, 1) for L_rw."""
    s = inverse_sqrt(d)
    one = jnp.ones_like(d)
    return {"unnormalized": (one, one), "symmetric": (s, s), "random_walk": (s * s, one)}[kind]


def laplacian_times(w, d, kind, u):
    """L u = diag(a) (D - W) diag(b) u for a block u (m, c), without forming L (w dense, BCOO or BCSR; d = W 1)."""
    a, b = _scalings(d, kind)
    bu = b[:, None] * u
    return a[:, None] * (d[:, None] * bu - times(w, bu))


def unchecked_laplacian(w, kind):
    """diag(a) (D - W) diag(b) as a matrix: dense for dense w, BCOO (the diagonal and -W's entries) for BCOO w."""
    d = degrees(w)
    a, b = _scalings(d, kind)
    if isinstance(w, sparse.BCOO):
        rows, cols = w.indices[:, 0], w.indices[:, 1]
        diagonal = jnp.arange(w.shape[0], dtype=w.indices.dtype)
        data = jnp.concatenate([a * d * b, -w.data * a[rows] * b[cols]])
        indices = jnp.concatenate([jnp.stack([diagonal, diagonal], 1), w.indices])
        return sparse.BCOO((data, indices), shape=w.shape)
    return a[:, None] * (jnp.diag(d) - w) * b[None, :]


def check_affinity(w, name="w"):
    """A square, finite, non-negative, symmetric dense array or 2-D BCOO matrix (values checked on the host).

    Symmetry is tested as W p = W^T p for one random probe p.
    """
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
    return unchecked_laplacian(check_affinity(w), kind)
