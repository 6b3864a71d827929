"""Fitting by jaxmix's EM drivers for the estimators: starts, restarts, and convergence warnings."""

from __future__ import annotations

import contextlib
import warnings

import jax
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_array

from jaxmix import _validation as v
from jaxmix.inference import ConvergenceWarning as JaxmixConvergenceWarning
from jaxmix.inference import fit, fit_em
from jaxmix.sklearn._base import fit_key
from jaxmix.sklearn._rows import padded

INIT_PARAMS = {"kmeans": "kmeans", "k-means++": "kmeans++", "random": "random", "random_from_data": "random_from_data"}
"""scikit-learn's ``init_params`` names and the jaxmix initialization each names (``jaxmix.initialize``)."""


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
