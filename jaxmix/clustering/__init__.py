"""Centroid families: the shared base, k-means and fuzzy c-means."""
