"""Drivers written once against the family protocol (``jaxmix.protocol``): EM, initialization,
restarts, gradient fitting, the ELBO, model selection, and the EM-versus-gradient comparisons."""

from jaxmix.inference.compare import ComparisonResult, compare_fits, default_optimizers
from jaxmix.inference.driver import fit_em
from jaxmix.inference.em import ConvergenceWarning, EMResult, e_step
from jaxmix.inference.gradient import GradientResult, fit_gradient, m_step_gradient
from jaxmix.inference.initialization import initialize
from jaxmix.inference.lower_bound import elbo
from jaxmix.inference.online import OnlineResult, fit_online
from jaxmix.inference.restarts import FitResult, fit
from jaxmix.inference.selection import ModelSelection, select_components
from jaxmix.inference.sharding import global_rows
from jaxmix.inference.stochastic import StochasticComparison, compare_stochastic

__all__ = [
    "ComparisonResult",
    "ConvergenceWarning",
    "EMResult",
    "FitResult",
    "GradientResult",
    "ModelSelection",
    "OnlineResult",
    "StochasticComparison",
    "compare_fits",
    "compare_stochastic",
    "default_optimizers",
    "e_step",
    "elbo",
    "fit",
    "fit_em",
    "fit_gradient",
    "fit_online",
    "global_rows",
    "initialize",
    "m_step_gradient",
    "select_components",
]
