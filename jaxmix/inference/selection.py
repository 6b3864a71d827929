"""Model selection: BIC and AIC over numbers of components and covariance types."""

from __future__ import annotations

import itertools
import numbers
import warnings
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import jax
import numpy as np

from jaxmix import _validation as v
from jaxmix._progress import check_progress, progress_bar
from jaxmix.inference.em import DEFAULT_CHUNK_SIZE, ConvergenceWarning, checked_result
from jaxmix.inference.restarts import fit_arguments, fit_program
from jaxmix.inference.sharding import row_shards
from jaxmix.inference.threads import run_side_by_side, usable_cores
from jaxmix.mixtures.gaussian import GaussianMixture
from jaxmix.protocol import Family, ParameterCount, require


class ModelSelection(NamedTuple):
    """One row per candidate (n_components[i], covariance_types[i]); ``best`` indexes the lowest BIC.

    ``params[i]`` holds candidate i's fitted ``GaussianMixtureParams`` (the best of its
    restarts) and ``log_likelihood[i]`` their mean log-likelihood on x.
    """

    n_components: np.ndarray
    covariance_types: tuple
    bic: np.ndarray
    aic: np.ndarray
    log_likelihood: np.ndarray
    best: int
    params: tuple = ()


    def to_markdown(self) -> str:
        """The table as Markdown, the BIC-best row marked."""
        lines = ["| K | covariance | mean log-likelihood | BIC | AIC | |", "|---|---|---|---|---|---|"]
        for i, (k, cov) in enumerate(zip(self.n_components, self.covariance_types)):
            mark = "best BIC" if i == self.best else ""
            lines.append(f"| {k} | {cov} | {self.log_likelihood[i]:.4f} | {self.bic[i]:.1f} | "
                         f"{self.aic[i]:.1f} | {mark} |")
        return "\n".join(lines)


def select_components(key, x, n_components=(1, 2, 3, 4, 5, 6), covariance_types=("full", "diag", "spherical", "tied"),
                      *, family=None, n_init: int = 1, init: str = "kmeans", max_iter: int = 100,
                      tol: float = 1e-3, reg_covar: float = 1e-6, progress="auto") -> ModelSelection:
    """Fit a ``GaussianMixture`` for every (K, covariance type) pair and tabulate BIC and AIC.

    BIC = -2 N L + p log N and AIC = -2 N L + 2 p (lower is better; L the mean
    log-likelihood, p the free parameters), as scikit-learn computes them
    (docs/maths.md section 9). Every candidate gets its own key split from ``key``.

    ``family``, a callable K -> model of any family on the protocol with
    ``n_parameters(d)`` (``jaxmix.protocol.ParameterCount``), replaces the
    Gaussian candidates by ``family(K)`` for each K in ``n_components``
    (``covariance_types`` and ``reg_covar`` are then unused; the table names
    each candidate by its class). ``progress``: a bar over the candidates
    (``jaxmix._progress``: "auto", True or False).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxmix import select_components
      >>> x = jnp.concatenate([jax.random.normal(jax.random.key(1), (300, 2)),
      ...                      jax.random.normal(jax.random.key(2), (300, 2)) + 8.0])
      >>> table = select_components(jax.random.key(0), x, [1, 2, 3], ["spherical"])
      >>> int(table.n_components[table.best])
      2
    """
    if isinstance(covariance_types, str):
        covariance_types = (covariance_types,)
    if isinstance(n_components, numbers.Integral) or not isinstance(n_components, Iterable):
        raise TypeError(f"n_components must be a sequence of ints such as range(1, 7) or [3], got "
                        f"{type(n_components).__name__} {n_components!r}.")
    if not v.is_concrete(key, x):
        raise TypeError("select_components cannot run inside jax.jit or vmap: it compiles and runs one "
                        "program per candidate. Call it on concrete arrays, or jit jaxmix.inference.restarts for one "
                        "candidate.")
    if family is None:
        candidates = list(itertools.product(n_components, covariance_types))
        models = [GaussianMixture(k, cov, reg_covar) for k, cov in candidates]
    else:
        models = [family(k) for k in n_components]
        candidates = [(k, type(model).__name__) for k, model in zip(n_components, models)]
    if not candidates:
        raise ValueError("n_components and covariance_types must each name at least one candidate.")
    check_progress(progress)
    for model in models:
        require(model, Family, "select_components")
        require(model, ParameterCount, "select_components")
    _, x = models[0].check(None, x)
    n, d = x.shape
    arguments = [  # every argument checked before anything is compiled
        fit_arguments(candidate_key, model, x, n_init=n_init, init=init, max_iter=max_iter, tol=tol,
                      sample_weight=None, chunk_size=DEFAULT_CHUNK_SIZE)
        for candidate_key, model in zip(jax.random.split(key, len(models)), models)
    ]
    # Every candidate is its own program. Trace and lower them here (under the caller's JAX
    # configuration, x64 included), then compile them side by side, and run them on a thread per
    # core (XLA compiles a program on one core and keeps about one busy running a moderate one,
    # releasing the GIL; see jaxmix.inference.restarts.restart_plan).
    # Programs that may not run beside another (jaxmix.inference.threads) run alone.
    lowered = [fit_program.jitted(static["model"]).lower(*dynamic, **static) for static, dynamic in arguments]
    with ThreadPoolExecutor(max_workers=usable_cores()) as pool:
        compiled = list(pool.map(lambda program: program.compile(), lowered))
    # Rows spread over devices (jaxmix.inference.sharding): one candidate at a time, so that every process
    # runs the programs' collectives in the same order.
    workers = 1 if row_shards(x) is not None else usable_cores()
    with progress_bar(len(models), "select_components", progress) as bar:
        runs = run_side_by_side([(program, dynamic) for program, (_, dynamic) in zip(compiled, arguments)],
                                workers, done=bar.update)
    fits = [result.best for result in runs]
    with warnings.catch_warnings(record=True) as caught:  # one ConvergenceWarning per call, not per candidate
        warnings.simplefilter("always", ConvergenceWarning)
        for model, (_, cov), result, (_, (_, _, weights, _)) in zip(models, candidates, fits, arguments):
            checked_result(model, result, x, weights, tol,
                           what=f"EM for n_components={model.n_components}, candidate {cov!r}")
    if caught:
        warnings.warn(ConvergenceWarning(f"{len(caught)} of {len(candidates)} candidates did not converge; "
                                         f"the first: {caught[0].message}"), stacklevel=2)
    # best.log_likelihood is the mean log-likelihood of the returned parameters (fit's final E-step).
    log_likelihood = np.array([float(result.log_likelihood) for result in fits])
    p = np.array([model.n_parameters(d) for model in models])
    bic = -2.0 * n * log_likelihood + p * np.log(n)
    aic = -2.0 * n * log_likelihood + 2.0 * p
    return ModelSelection(np.array([k for k, _ in candidates]), tuple(c for _, c in candidates), bic, aic,
                          log_likelihood, int(np.argmin(bic)), tuple(result.params for result in fits))
