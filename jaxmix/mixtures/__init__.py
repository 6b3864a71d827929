"""Mixture families: the shared base, Gaussian covariance structures, Gaussian and exponential mixtures."""
