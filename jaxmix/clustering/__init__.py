"""Centroid families: the shared base, k-means and fuzzy c-means."""

from jaxmix.clustering.centroids import CentroidModel, CentroidStats
from jaxmix.clustering.fuzzy import FuzzyCMeans, FuzzyCMeansParams
from jaxmix.clustering.kmeans import KMeans, KMeansParams

__all__ = ["CentroidModel", "CentroidStats", "FuzzyCMeans", "FuzzyCMeansParams", "KMeans", "KMeansParams"]
