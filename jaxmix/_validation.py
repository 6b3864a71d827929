"""Checks at the public boundary.

Every public entry point validates its concrete inputs here, in plain Python,
before any jitted work. Shape and dtype checks always run (shapes are static,
so they also work under the user's ``jit``); value checks (finiteness, signs,
positive definiteness) run only on concrete arrays and are skipped when an
argument is a tracer. Jitted internals never call into this module.
"""

from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(*arrays) -> bool:
    """True when no argument (or leaf of one) is a JAX tracer."""
    leaves = jax.tree_util.tree_leaves(arrays)
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in leaves)


def check_positive_int(name: str, value, minimum: int = 1) -> int:
    """An int >= minimum (bools rejected), for static configuration."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}.")
    return int(value)


def check_choice(name: str, value, choices) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}.")
    return value


def check_nonnegative_float(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}.")
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value}.")
    return float(value)


def as_float_array(name: str, value) -> jax.Array:
    """Convert to a floating JAX array; reject non-numeric input with a TypeError.

    Integer and boolean input is promoted to the default float dtype
    (float32, or float64 with ``jax_enable_x64``).
    """
    if isinstance(value, jax.core.Tracer):
        arr = value
    else:
        try:
            arr = jnp.asarray(value)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name} must be a numeric array, got {type(value).__name__}.") from err
    if not (jnp.issubdtype(arr.dtype, jnp.floating) or jnp.issubdtype(arr.dtype, jnp.integer)
            or arr.dtype == jnp.bool_):
        raise TypeError(f"{name} must have a real numeric dtype, got {arr.dtype}.")
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        arr = arr.astype(jnp.result_type(float))
    return arr


def host_values(arr):
    """The values of a concrete array as NumPy, or None for a tracer.

    Value checks run in NumPy so they also work on concrete arrays closed
    over inside the user's ``jit``, where jnp operations would trace.
    """
    return np.asarray(arr) if is_concrete(arr) else None


def check_finite(name: str, arr) -> None:
    """Reject NaN or inf in a concrete array (no-op under tracing)."""
    a = host_values(arr)
    if a is not None and not np.all(np.isfinite(a)):
        n_bad = int(np.sum(~np.isfinite(a)))
        raise ValueError(
            f"{name} contains {n_bad} NaN or infinite value(s); remove or impute them before fitting."
        )


def check_data(x, n_features: int | None = None, name: str = "x") -> jax.Array:
    """Validate a data matrix of shape (N, D): rank 2, N >= 1, finite, matching D."""
    x = as_float_array(name, x)
    if x.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array of shape (n_samples, n_features), got shape {x.shape}. "
            "Reshape a single feature with x.reshape(-1, 1) and a single sample with x.reshape(1, -1)."
        )
    if x.shape[0] < 1:
        raise ValueError(f"{name} must hold at least one sample, got shape {x.shape}.")
    if n_features is not None and x.shape[1] != n_features:
        raise ValueError(
            f"{name} has {x.shape[1]} feature(s) but the parameters have {n_features}; "
            f"got {name} of shape {x.shape}."
        )
    check_finite(name, x)
    return x


def check_shape(name: str, arr, shape: tuple) -> None:
    if tuple(arr.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(arr.shape)}.")


def check_weights(weights) -> jax.Array:
    """Mixture weights: a finite vector of non-negative entries summing to one."""
    weights = as_float_array("weights", weights)
    if weights.ndim != 1 or weights.shape[0] < 1:
        raise ValueError(f"weights must be a 1-D array of shape (n_components,), got shape {weights.shape}.")
    check_finite("weights", weights)
    w = host_values(weights)
    if w is not None:
        if np.any(w < 0):
            raise ValueError(f"weights must be non-negative, got min {w.min()}.")
        total = float(np.sum(w, dtype=np.float64))
        tol = 1000 * float(np.finfo(w.dtype).eps) * max(1, w.shape[0])
        if abs(total - 1.0) > tol:
            raise ValueError(
                f"weights must sum to one (within {tol:.1e}), got sum {total!r}; normalize them with "
                "weights / weights.sum()."
            )
    return weights


def check_positive(name: str, arr) -> None:
    """Reject non-positive entries in a concrete array (no-op under tracing)."""
    a = host_values(arr)
    if a is not None and np.any(a <= 0):
        raise ValueError(f"{name} must be strictly positive, got min {a.min()}.")


def check_sample_weight(sample_weight, n_samples: int) -> jax.Array | None:
    """Per-point weights (N,): finite, non-negative, not all zero. None means all ones."""
    if sample_weight is None:
        return None
    w = as_float_array("sample_weight", sample_weight)
    check_shape("sample_weight", w, (n_samples,))
    check_finite("sample_weight", w)
    a = host_values(w)
    if a is not None:
        if np.any(a < 0):
            raise ValueError(f"sample_weight must be non-negative, got min {a.min()}.")
        if not np.any(a > 0):
            raise ValueError("sample_weight must have at least one positive entry, got all zeros.")
    return w
