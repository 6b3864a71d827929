"""jaxmix: probabilistic clustering and latent-variable models in JAX.

Models are frozen, hashable configurations; parameters, statistics and
results are NamedTuple pytrees; every method is a pure function of
``(params, x)``. The mathematics is in MATH.md.
"""

from jaxmix.elbo import elbo
from jaxmix.exponential import ExponentialMixture, ExponentialMixtureParams, ExponentialStats
from jaxmix.gaussian import GaussianMixture, GaussianMixtureParams, GaussianStats

__all__ = [
    "ExponentialMixture",
    "ExponentialMixtureParams",
    "ExponentialStats",
    "GaussianMixture",
    "GaussianMixtureParams",
    "GaussianStats",
    "elbo",
]

__version__ = "0.1.0"
