"""jaxmix: probabilistic clustering and latent-variable models in JAX.

Models are frozen, hashable configurations; parameters, statistics and
results are NamedTuple pytrees; every method is a pure function of
``(params, x)``. The mathematics is in docs/maths.md.
"""

from jaxmix import protocol, vae
from jaxmix._compilation_cache import enable_compilation_cache
from jaxmix._version import __version__ as __version__
from jaxmix.clustering import CentroidStats, FuzzyCMeans, FuzzyCMeansParams, KMeans, KMeansParams
from jaxmix.inference import (
    ComparisonResult,
    ConvergenceWarning,
    EMResult,
    FitResult,
    GradientResult,
    ModelSelection,
    OnlineResult,
    StochasticComparison,
    compare_fits,
    compare_stochastic,
    default_optimizers,
    e_step,
    elbo,
    fit,
    fit_em,
    fit_gradient,
    fit_online,
    global_rows,
    initialize,
    m_step_gradient,
    select_components,
)
from jaxmix.mixtures import (
    ExponentialMixture,
    ExponentialMixtureParams,
    ExponentialMixtureUnconstrained,
    ExponentialStats,
    GaussianMixture,
    GaussianMixtureParams,
    GaussianMixtureUnconstrained,
    GaussianStats,
)
from jaxmix.persistence import load, save
from jaxmix.protocol import Family, combine_stats
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
    "Family",
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
    "OnlineResult",
    "SpectralResult",
    "StochasticComparison",
    "VAE",
    "VAEParams",
    "combine_stats",
    "compare_fits",
    "compare_stochastic",
    "default_optimizers",
    "e_step",
    "elbo",
    "enable_compilation_cache",
    "fit",
    "fit_em",
    "fit_gradient",
    "fit_online",
    "global_rows",
    "indicator_matrix",
    "initialize",
    "knn_affinity",
    "laplacian",
    "load",
    "m_step_gradient",
    "normalized_cut",
    "protocol",
    "ratio_cut",
    "rbf_affinity",
    "save",
    "select_components",
    "spectral_clustering",
    "spectral_embedding",
    "vae",
]

