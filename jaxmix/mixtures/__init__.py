"""Mixture families: the shared base, Gaussian covariance structures, Gaussian and exponential mixtures."""

from jaxmix.mixtures.base import Mixture
from jaxmix.mixtures.exponential import (
    ExponentialMixture,
    ExponentialMixtureParams,
    ExponentialMixtureUnconstrained,
    ExponentialStats,
)
from jaxmix.mixtures.gaussian import (
    GaussianMixture,
    GaussianMixtureParams,
    GaussianMixtureUnconstrained,
    GaussianStats,
)

__all__ = [
    "ExponentialMixture",
    "ExponentialMixtureParams",
    "ExponentialMixtureUnconstrained",
    "ExponentialStats",
    "GaussianMixture",
    "GaussianMixtureParams",
    "GaussianMixtureUnconstrained",
    "GaussianStats",
    "Mixture",
]
