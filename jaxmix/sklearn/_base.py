"""What the scikit-learn estimators share: scikit-learn's validation, random_state, conversions.

Data pass through scikit-learn's ``validate_data`` (its messages, ``n_features_in_``) as float64 or
float32 and are then computed on by jaxmix in its working dtype: float32, or float64 when
``jax_enable_x64`` is on (``jaxmix._validation.working_dtype``). Fitted attributes are NumPy arrays.
"""

from __future__ import annotations

import contextlib
import functools
import warnings

import jax
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import _check_sample_weight, check_array, validate_data

from jaxmix import _validation as v
from jaxmix.inference import ConvergenceWarning as JaxmixConvergenceWarning
from jaxmix.inference import fit, fit_em

FLOAT_DTYPES = (np.float64, np.float32)

INIT_PARAMS = {"kmeans": "kmeans", "k-means++": "kmeans++", "random": "random", "random_from_data": "random_from_data"}
"""scikit-learn's ``init_params`` names and the jaxmix initialization each names (``jaxmix.initialize``)."""


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


@contextlib.contextmanager
def quiet_convergence():
    """Silence jaxmix's ``ConvergenceWarning`` inside a fit, which warns once itself (``warn_unconverged``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", JaxmixConvergenceWarning)
        yield


def warn_unconverged(estimator) -> None:
    """scikit-learn's ``ConvergenceWarning`` (the class its users filter) when the kept fit stopped at
    ``max_iter`` short of ``tol`` (not for ``tol=0``, which asks for ``max_iter`` iterations)."""
    if not estimator.converged_ and estimator.tol > 0:
        warnings.warn(ConvergenceWarning(
            f"{type(estimator).__name__} did not converge in max_iter={estimator.max_iter} iterations (the best "
            f"of its starts); increase max_iter or tol, or check the data."), stacklevel=3)


MIN_ROWS = 64


def bucket_rows(n: int) -> int:
    """The row count n is padded to: at least ``MIN_ROWS``, else n rounded up to a multiple of 2^(b - 4)
    for 2^(b-1) <= n < 2^b, eight steps an octave, so padding adds less than 1/8.

    JAX compiles a program per shape; data of nearby sizes (cross-validation folds, scikit-learn's
    checks) share one program per bucket.
    """
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


def centroid_starts(init, n_init, X, names, params_type):
    """``(jaxmix init, n_init, start)`` for a centroid estimator's ``init``: one of ``names`` (a dict from
    scikit-learn's names to jaxmix's), run ``n_init`` times, or initial centers (n_clusters, n_features),
    run once (``start`` for ``fit_restarts``; other ``n_init`` warn, as scikit-learn's KMeans does)."""
    if isinstance(init, str):
        return names[v.check_choice("init", init, names)], v.check_positive_int("n_init", n_init), None
    centers = check_array(init, dtype=X.dtype)
    if n_init not in ("auto", 1):
        warnings.warn(f"Explicit initial center position passed: performing only one init instead of "
                      f"n_init={n_init}.", RuntimeWarning, stacklevel=3)
    return "kmeans++", 1, lambda key, x, weights: params_type(centers)


def fit_restarts(model, x, sample_weight, *, random_state, n_init: int, init: str, max_iter: int, tol: float,
                 start=None):
    """The best of ``n_init`` EM runs of ``model`` on x and the final log-likelihood of each run.

    Without ``start``, ``jaxmix.fit`` initializes each run by ``init``; with it, ``start(key, x, weights)``
    gives the initial parameters of each run (user-given ones, or a warm start) and ``jaxmix.fit_em``
    runs them. The keys come from ``random_state`` (``fit_key``). x and the weights are ``padded`` (so a
    fit differs from ``jaxmix.fit`` on x alone by rounding, and by the draws of ``init="random"``).
    jaxmix's convergence warnings are silenced (``quiet_convergence``).
    """
    key = fit_key(random_state)
    x, weights = padded(x, sample_weight)
    with quiet_convergence():
        if start is None:
            result = fit(key, model, x, n_init=n_init, init=init, max_iter=max_iter, tol=tol, sample_weight=weights)
            return result.best, np.asarray(result.restart_log_likelihoods)
        runs = [fit_em(model, start(k, x, weights), x, max_iter=max_iter, tol=tol, sample_weight=weights)
                for k in jax.random.split(key, n_init)]
    finals = np.array([float(run.log_likelihood) for run in runs])
    return runs[int(np.argmax(finals))], finals
