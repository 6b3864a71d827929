"""Data, scikit-learn stand-ins and memory release shared by several test modules (imported as ``references``)."""

import ctypes
import ctypes.util
import gc
import sys

import jax
import numpy as np
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from sklearn.mixture._gaussian_mixture import _compute_precision_cholesky


def blobs(seed=0, scale=3.0):
    """Three overlapping, differently shaped 2-D clusters of 50 points each, (150, 2).

    The test modules that fit it share (N, D, K) = (150, 2, 3), so their compiled loops are reused.
    """
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(50, 2)) * [1.0, 0.5]
    b = rng.normal(size=(50, 2)) @ np.array([[1.0, 0.6], [0.0, 0.8]]) + [4.0, 1.0]
    c = rng.normal(size=(50, 2)) * 0.7 + [1.0, 5.0]
    return scale * np.concatenate([a, b, c])


def sklearn_model(params, cov_type):
    """A scikit-learn GaussianMixture holding ``params`` (no fitting)."""
    weights, means, cov = (np.asarray(a, np.float64) for a in params)
    sk = SkGaussianMixture(len(weights), covariance_type=cov_type)
    sk.weights_, sk.means_, sk.covariances_ = weights, means, cov
    sk.precisions_cholesky_ = _compute_precision_cholesky(cov, cov_type)
    sk.n_features_in_ = means.shape[1]
    return sk


_LIBC = ctypes.CDLL(ctypes.util.find_library("c")) if sys.platform.startswith("linux") else None


def release_memory():
    """Drop JAX's compiled programs and hand the freed memory back to the system: glibc's allocator keeps
    what the compiler freed unless asked (``malloc_trim``)."""
    jax.clear_caches()
    gc.collect()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
