"""Checks at the public boundary.

Every public entry point validates its concrete inputs here, in plain Python,
before any jitted work. Shape and dtype checks always run (shapes are static,
so they also work under the user's ``jit``); value checks (finiteness, signs,
positive definiteness) run only on concrete arrays and are skipped when an
argument is a tracer. On an array spread over several devices (``is_spread``: rows
sharded by ``jax.sharding``, possibly over several processes) the checks of data and
weights run as compiled reductions whose scalar results every device holds, so x is
never gathered; ``host_values`` gives None for such an array. Jitted internals never
call into this module.
"""

from __future__ import annotations

import numbers
import os

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec


def is_concrete(*arrays) -> bool:
    """True when no argument (or leaf of one) is a JAX tracer."""
    leaves = jax.tree_util.tree_leaves(arrays)
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in leaves)


# The largest loop length a compiled loop accepts: counters are int32, and a fit's history is
# one float per iteration (4 * 10**7 bytes in float32 at this bound).
MAX_ITERATIONS = 10**7


def check_positive_int(name: str, value, minimum: int = 1, maximum: int | None = None) -> int:
    """An int in [minimum, maximum] (bools rejected), for static configuration."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}.")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}.")
    return int(value)


def check_choice(name: str, value, choices) -> str:
    """One of the strings ``choices``: TypeError for a non-string, ValueError for another string."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, one of {sorted(choices)}; got {type(value).__name__} "
                        f"{value!r:.80}.")
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}.")
    return value


def check_nonnegative_float(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}.")
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value}.")
    return float(value)


def working_dtype(dtype) -> np.dtype:
    """The float dtype jaxmix computes in for input of ``dtype``.

    Floats of 32 bits or more keep their dtype (float64 becomes float32 unless
    ``jax_enable_x64`` is on, as everywhere in JAX); float16 and bfloat16 are
    computed in float32; integers and booleans in the default float dtype.
    """
    if jnp.issubdtype(dtype, jnp.floating):
        return np.dtype(np.float32) if jnp.finfo(dtype).bits < 32 else jax.dtypes.canonicalize_dtype(dtype)
    return jax.dtypes.canonicalize_dtype(np.float64)


def as_float_array(name: str, value) -> jax.Array:
    """Convert to a JAX array of the working float dtype (``working_dtype``).

    Non-JAX input is converted on the host (NumPy), so integers are never
    wrapped through int32 on the way: int64 timestamps of 1.7e12 become the
    nearest float. Values beyond the working dtype's range raise a
    ``ValueError``; complex, string or object input a ``TypeError``. A tracer
    is cast without value checks.
    """
    if isinstance(value, (jax.Array, jax.core.Tracer)):
        arr = value
    else:
        try:
            arr = np.asarray(value)
            if arr.dtype == object:  # e.g. Python ints beyond int64
                arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError, OverflowError) as err:
            raise TypeError(f"{name} must be a numeric array, got {type(value).__name__}.") from err
    if not (jnp.issubdtype(arr.dtype, jnp.floating) or jnp.issubdtype(arr.dtype, jnp.integer)
            or arr.dtype == np.bool_):
        raise TypeError(f"{name} must have a real numeric dtype, got {arr.dtype}.")
    dtype = working_dtype(arr.dtype)
    if isinstance(arr, np.ndarray):
        with np.errstate(over="ignore", invalid="ignore"):
            converted = arr.astype(dtype, copy=False)
        if converted.size and np.any(np.isinf(converted) & np.isfinite(arr)):
            raise ValueError(
                f"{name} holds values beyond the range of {dtype} (largest magnitude "
                f"{float(np.max(np.abs(arr[np.isfinite(arr)]))):.3g}); rescale the data, or compute in "
                'float64 with jax.config.update("jax_enable_x64", True).'
            )
        return jnp.asarray(converted)
    return arr if arr.dtype == dtype else arr.astype(dtype)


def is_spread(arr) -> bool:
    """True for a concrete ``jax.Array`` laid out over several devices and not replicated on them."""
    return (isinstance(arr, jax.Array) and is_concrete(arr) and len(arr.sharding.device_set) > 1
            and not arr.is_fully_replicated)


def smallest(arr) -> float | None:
    """The minimum of a concrete array (reduced on its devices when it is spread over several), or None for
    a tracer."""
    if is_spread(arr):
        return float(jax.jit(jnp.min)(arr))
    values = host_values(arr)
    return None if values is None else float(np.min(values))


def largest_per_column(x, weights=None):
    """``(max_i x_id (D,), n)`` over the n rows of positive weight (all rows for None) of a concrete (N, D)
    array, as NumPy (reduced on its devices when it is spread over several); None for a tracer."""
    if is_spread(x) or is_spread(weights):
        if is_spread(x) and weights is not None:  # the weights laid out as x's rows (a fit may have moved x)
            weights = jax.device_put(weights, NamedSharding(x.sharding.mesh, PartitionSpec(x.sharding.spec[0])))
        largest, n = _largest_per_column(x, weights)
        return np.asarray(largest), int(n)
    values = host_values(x)
    if values is None:
        return None
    if weights is not None:
        values = values[host_values(weights) > 0]
    return np.max(values, axis=0), values.shape[0]


@jax.jit
def _largest_per_column(x, weights):
    if weights is None:
        return jnp.max(x, axis=0), x.shape[0]
    return jnp.max(jnp.where(weights[:, None] > 0, x, -jnp.inf), axis=0), jnp.sum(weights > 0)


def host_values(arr):
    """The values of a concrete array as NumPy, or None for a tracer or an array spread over devices.

    Value checks run in NumPy so they also work on concrete arrays closed
    over inside the user's ``jit``, where jnp operations would trace.
    """
    return np.asarray(arr) if is_concrete(arr) and not is_spread(arr) else None


@jax.jit
def _spread_summary(a):
    """(non-finite entries, min, max, largest per-column span max_d (max_i a_id - min_i a_id)) on the devices."""
    span = jnp.max(jnp.max(a, axis=0) - jnp.min(a, axis=0)) if a.ndim == 2 else jnp.zeros((), a.dtype)
    return jnp.sum(~jnp.isfinite(a)), jnp.min(a), jnp.max(a), span


def check_finite(name: str, arr) -> None:
    """Reject NaN or inf in a concrete array (no-op under tracing)."""
    if is_spread(arr):
        n_bad = int(_spread_summary(arr)[0])
    else:
        a = host_values(arr)
        n_bad = 0 if a is None else int(np.sum(~np.isfinite(a)))
    if n_bad:
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
    if x.shape[1] < 1:
        raise ValueError(f"{name} must hold at least one feature, got shape {x.shape}.")
    if n_features is not None and x.shape[1] != n_features:
        raise ValueError(
            f"{name} has {x.shape[1]} feature(s) but the parameters have {n_features}; "
            f"got {name} of shape {x.shape}."
        )
    check_finite(name, x)
    check_span(name, x)
    return x


def check_span(name: str, x) -> None:
    """Reject data whose squared distances overflow the dtype (no-op under tracing).

    Every distance between points, and to centers inside the data's range,
    is at most the diagonal of its bounding box; when D times the square of
    the widest span overflows, a point at 1e20 beside data near 0 in float32
    say, densities and posteriors would become inf and NaN.
    """
    a = x if is_spread(x) else host_values(x)
    if a is None or a.size == 0:
        return
    span = float(_spread_summary(a)[3]) if is_spread(a) else float(np.max(np.ptp(a, axis=0)))
    limit = float(np.sqrt(np.finfo(a.dtype).max / (16 * a.shape[1])))
    if span > limit:
        raise ValueError(
            f"{name} spans {span:.3g} in one feature, so squared distances overflow {a.dtype} (a span of "
            f"at most "
            f"{limit:.3g} fits); rescale the data, drop far outliers, or compute in float64 with "
            'jax.config.update("jax_enable_x64", True).'
        )


def check_sample_size(n: int, bytes_per_sample: int) -> int:
    """A number of draws whose arrays fit in memory: ValueError before anything is allocated."""
    n = check_positive_int("n", n)
    available = memory_bytes()
    if n * bytes_per_sample > available:
        raise ValueError(
            f"n={n} draws need {n * bytes_per_sample / 2**30:.3g} GiB, more than the "
            f"{available / 2**30:.3g} GiB of memory; draw them in batches with separate keys."
        )
    return n


def memory_bytes() -> int:
    """The default device's memory: its allocator's limit, or the host's physical memory on a CPU."""
    stats = jax.devices()[0].memory_stats() or {}
    if "bytes_limit" in stats:
        return int(stats["bytes_limit"])
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_shape(name: str, arr, shape: tuple) -> None:
    if tuple(arr.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(arr.shape)}.")


def check_simplex(name: str, value) -> jax.Array:
    """Probabilities along the last axis: finite, non-negative, summing to one; the converted array.

    The sums may miss one by K max(1000 eps, 2 eps_in): eps of the working
    dtype and eps_in of the dtype given (float16 rounding of K entries).
    """
    is_jax = isinstance(value, (jax.Array, jax.core.Tracer))
    input_dtype = value.dtype if is_jax else np.asarray(value).dtype
    arr = as_float_array(name, value)
    check_finite(name, arr)
    a = host_values(arr)
    if a is not None and a.size:
        if np.any(a < 0):
            raise ValueError(f"{name} must be non-negative, got min {a.min()}.")
        k = a.shape[-1]
        eps_in = float(jnp.finfo(input_dtype).eps) if jnp.issubdtype(input_dtype, jnp.floating) else 0.0
        tol = k * max(1000 * float(np.finfo(a.dtype).eps), 2 * eps_in)
        err = float(np.max(np.abs(np.sum(a, axis=-1, dtype=np.float64) - 1.0)))
        if err > tol:
            where = "" if a.ndim == 1 else "each row of "
            raise ValueError(
                f"{where}{name} must sum to one (within {tol:.1e}); it is off by {err:.3g}. Normalize with "
                f"{name} / {name}.sum(axis=-1, keepdims=True)."
            )
    return arr


def check_weights(weights) -> jax.Array:
    """Mixture weights: a finite vector of non-negative entries summing to one."""
    shape = np.shape(weights)
    if len(shape) != 1 or shape[0] < 1:
        raise ValueError(f"weights must be a 1-D array of shape (n_components,), got shape {shape}.")
    return check_simplex("weights", weights)


def check_positive(name: str, arr) -> None:
    """Reject non-positive entries in a concrete array (no-op under tracing)."""
    a = host_values(arr)
    if a is not None and np.any(a <= 0):
        raise ValueError(f"{name} must be strictly positive, got min {a.min()}.")


def check_sample_weight(sample_weight, n_samples: int, normalize: bool = False) -> jax.Array | None:
    """Per-point weights (N,): finite, non-negative, not all zero. None means all ones.

    With ``normalize`` the weights are scaled to mean one, in float64 on the
    host for concrete input (so weights of 1e-40 or 1e37 lose nothing to
    float32), which makes a fit independent of their scale; a sum that is not
    finite even in float64 is rejected.
    """
    if sample_weight is None:
        return None
    w = as_float_array("sample_weight", sample_weight)
    check_shape("sample_weight", w, (n_samples,))
    if not is_concrete(w):
        return w / jnp.mean(w) if normalize else w
    if is_spread(w):
        return _spread_sample_weight(w, normalize)
    is_jax = isinstance(sample_weight, jax.Array)
    a = host_values(w) if is_jax else np.asarray(sample_weight, dtype=np.float64)
    check_finite("sample_weight", a)
    if np.any(a < 0):
        raise ValueError(f"sample_weight must be non-negative, got min {a.min()}.")
    if not np.any(a > 0):
        raise ValueError("sample_weight must have at least one positive entry, got all zeros.")
    if not normalize:
        return w
    with np.errstate(over="ignore"):
        total = float(np.sum(a, dtype=np.float64))
    if not np.isfinite(total):
        raise ValueError("sample_weight sums to infinity; scale the weights down (only their ratios matter).")
    return jnp.asarray((a * (n_samples / total)).astype(w.dtype))


def _spread_sample_weight(w, normalize: bool) -> jax.Array:
    """``check_sample_weight`` of weights spread over devices, checked and scaled there: mean one as
    w_i / m * (N / sum_j (w_j / m)) with m = max w, whose sum cannot overflow."""
    check_finite("sample_weight", w)
    _, low, high, _ = (float(value) for value in _spread_summary(w))
    if low < 0:
        raise ValueError(f"sample_weight must be non-negative, got min {low}.")
    if high <= 0:
        raise ValueError("sample_weight must have at least one positive entry, got all zeros.")
    return _mean_one(w) if normalize else w


@jax.jit
def _mean_one(w):
    scaled = w / jnp.max(w)
    return scaled * (w.shape[0] / jnp.sum(scaled))
