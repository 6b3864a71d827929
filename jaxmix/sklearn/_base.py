"""What every estimator uses: scikit-learn's validation, random_state as a JAX key, NumPy conversions.

Data pass through scikit-learn's ``validate_data`` (its messages, ``n_features_in_``) as float64 or
float32 and are then computed on by jaxmix in its working dtype: float32, or float64 when
``jax_enable_x64`` is on (``jaxmix._validation.working_dtype``). Fitted attributes are NumPy arrays.
"""

from __future__ import annotations

import jax
import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import _check_sample_weight, validate_data

FLOAT_DTYPES = (np.float64, np.float32)


def fit_key(random_state) -> jax.Array:
    """``jax.random.key(seed)``, the seed an int drawn from ``check_random_state(random_state)``
    (an int, None for NumPy's global generator, or a ``np.random.RandomState``), as scikit-learn draws
    seeds for the libraries it calls."""
    return jax.random.key(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def preserved_dtypes() -> list[str]:
    """The float dtypes whose input gives output of the same dtype: both in 64-bit mode, else float32."""
    return ["float64", "float32"] if jax.dtypes.canonicalize_dtype(np.float64) == np.float64 else ["float32"]


def check_data(estimator, X, *, reset: bool, **checks) -> np.ndarray:
    """``validate_data`` as a 2-D float64 or float32 array (other dtypes become float64);
    ``reset=True`` in fit records ``n_features_in_``, ``reset=False`` checks it; ``checks``: more of
    ``check_array``'s arguments."""
    return validate_data(estimator, X, reset=reset, dtype=list(FLOAT_DTYPES), **checks)


def check_weights(sample_weight, X):
    """``_check_sample_weight`` (shape, non-negative) of X's dtype, or None when not given."""
    if sample_weight is None:
        return None
    return _check_sample_weight(sample_weight, X, dtype=X.dtype, ensure_non_negative=True)


def to_numpy(tree):
    """Every array leaf of a pytree as a NumPy array."""
    return jax.tree_util.tree_map(np.asarray, tree)
