"""Compiled programs shared across row counts: data padded to a few sizes with zero-weight rows.

JAX compiles a program per shape. Padding the rows to ``bucket_rows`` makes data of nearby sizes
(cross-validation folds, scikit-learn's checks, repeated predictions) run one program per bucket.
"""

from __future__ import annotations

import functools

import jax
import numpy as np

MIN_ROWS = 64


def bucket_rows(n: int) -> int:
    """The row count n is padded to: at least ``MIN_ROWS``, else n rounded up to a multiple of 2^(b - 4)
    for 2^(b-1) <= n < 2^b, eight steps an octave, so padding adds less than 1/8."""
    if n <= MIN_ROWS:
        return MIN_ROWS
    step = 2 ** (n.bit_length() - 4)
    return -(-n // step) * step


def padded(x, weights=None):
    """``(x, weights)`` padded to ``bucket_rows`` rows with copies of the first row of weight 0, which
    change no fit: every jaxmix statistic is weighted (weights None: ones for the real rows)."""
    n = x.shape[0]
    pad = bucket_rows(n) - n
    weights = np.ones(n, x.dtype) if weights is None else weights
    return (np.concatenate([x, np.repeat(x[:1], pad, axis=0)]),
            np.concatenate([weights, np.zeros(pad, weights.dtype)]))


def rowwise(method, model, params, X) -> np.ndarray:
    """``method(model, params, x)`` (an unbound method of the family, such as ``Mixture.predict``) of the
    rows of X as NumPy, its first axis X's rows. X is checked by ``model.check``, padded to
    ``bucket_rows`` rows and computed by one compiled program per model, method and bucket (eager
    calls would compile each operation for each new number of rows)."""
    n = X.shape[0]
    params, x = model.check(params, padded(X)[0])
    return np.asarray(_rowwise(method, model, params, x))[:n]


@functools.partial(jax.jit, static_argnums=(0, 1))
def _rowwise(method, model, params, x):
    return method(model, params, x)
