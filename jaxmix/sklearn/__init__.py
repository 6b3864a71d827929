"""scikit-learn estimators on jaxmix's functional core: ``from jaxmix.sklearn import GaussianMixture``.

Needs scikit-learn (``pip install "jaxmix[sklearn]"``); ``import jaxmix`` does not import this package.
Each estimator validates with scikit-learn's own utilities, fits through jaxmix's drivers (``jaxmix.fit``,
``jaxmix.fit_em``, ``jaxmix.spectral_clustering``), keeps its fitted state in NumPy attributes with a
trailing underscore, and passes scikit-learn's ``parametrize_with_checks`` (tests/test_sklearn_checks.py).
Estimators pickle, as scikit-learn's do, and also ``save(path)`` / ``Estimator.load(path)`` in jaxmix's
one file format (``jaxmix.save``; no pickle).
"""

from jaxmix.sklearn.exponential import ExponentialMixture
from jaxmix.sklearn.fuzzy import FuzzyCMeans
from jaxmix.sklearn.gaussian import GaussianMixture
from jaxmix.sklearn.kmeans import KMeans
from jaxmix.sklearn.spectral import SpectralClustering

__all__ = ["ExponentialMixture", "FuzzyCMeans", "GaussianMixture", "KMeans", "SpectralClustering"]
