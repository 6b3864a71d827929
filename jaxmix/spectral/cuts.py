"""Graph cuts of a partition: the indicator matrix H, RatioCut and the normalized cut.

docs/maths.md section 6. RatioCut(C_1..C_k) = Tr(H^T L H) for the indicator matrix H of
``indicator_matrix``: spectral clustering relaxes H to the eigenvectors of the smallest eigenvalues of L.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxmix import _validation as v
from jaxmix.spectral.laplacians import check_affinity, degrees


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
    volume = one_hot.T @ degrees(w)
    within = jnp.sum(one_hot * (w @ one_hot), axis=0)
    return volume - within, jnp.sum(one_hot, axis=0), volume


def _check_partition(w, labels):
    w = check_affinity(w)
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
    """Ncut(C_1..C_k) = sum_j cut(C_j) / vol(C_j), vol(C_j) = sum_{i in C_j} D_ii (docs/maths.md section 6).

    The Shi-Malik normalized cut; an empty cluster's 0/0 is taken as 0.
    """
    w, labels, k = _check_partition(w, labels)
    cut, _, volume = _cuts(w, labels, k)
    return jnp.sum(jnp.where(volume > 0, cut / jnp.where(volume > 0, volume, 1.0), 0.0))
