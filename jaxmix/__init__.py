"""jaxmix: probabilistic clustering and latent-variable models in JAX.

Models are frozen, hashable configurations; parameters, statistics and
results are NamedTuple pytrees; every method is a pure function of
``(params, x)``. The mathematics is in docs/maths.md.
"""

from jaxmix.clustering.centroids import CentroidStats
from jaxmix.inference.compare import ComparisonResult, compare_fits, default_optimizers
from jaxmix.inference.lower_bound import elbo
from jaxmix.inference.em import ConvergenceWarning, EMResult, combine_stats, fit_em
from jaxmix.mixtures.exponential import (
    ExponentialMixture,
    ExponentialMixtureParams,
    ExponentialMixtureUnconstrained,
    ExponentialStats,
)
from jaxmix.inference.restarts import FitResult, fit
from jaxmix.clustering.fuzzy import FuzzyCMeans, FuzzyCMeansParams
from jaxmix.mixtures.gaussian import GaussianMixture, GaussianMixtureParams, GaussianMixtureUnconstrained, GaussianStats
from jaxmix.inference.gradient import GradientResult, fit_gradient, m_step_gradient
from jaxmix.clustering.kmeans import KMeans, KMeansParams
from jaxmix.inference.selection import ModelSelection, select_components
from jaxmix.spectral import (
    SpectralResult,
    indicator_matrix,
    knn_affinity,
    laplacian,
    normalized_cut,
    ratio_cut,
    rbf_affinity,
    spectral_clustering,
    spectral_embedding,
)
from jaxmix import vae
from jaxmix.vae import VAE, VAEParams

__all__ = [
    "CentroidStats",
    "ComparisonResult",
    "ConvergenceWarning",
    "EMResult",
    "ExponentialMixture",
    "ExponentialMixtureParams",
    "ExponentialMixtureUnconstrained",
    "ExponentialStats",
    "FitResult",
    "FuzzyCMeans",
    "FuzzyCMeansParams",
    "GaussianMixture",
    "GaussianMixtureParams",
    "GaussianMixtureUnconstrained",
    "GaussianStats",
    "GradientResult",
    "KMeans",
    "KMeansParams",
    "ModelSelection",
    "SpectralResult",
    "VAE",
    "VAEParams",
    "combine_stats",
    "compare_fits",
    "default_optimizers",
    "elbo",
    "fit",
    "fit_em",
    "fit_gradient",
    "indicator_matrix",
    "knn_affinity",
    "laplacian",
    "m_step_gradient",
    "normalized_cut",
    "ratio_cut",
    "rbf_affinity",
    "select_components",
    "spectral_clustering",
    "spectral_embedding",
    "vae",
]

__version__ = "0.1.0"
