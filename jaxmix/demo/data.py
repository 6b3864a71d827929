"""What the demo's sections share: fold_in tags, the example models and their data, section 5's fit,
and the label helpers that compare fitted clusters with the components that drew the points."""

from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np

from jaxmix.inference import fit
from jaxmix.mixtures import ExponentialMixture, ExponentialMixtureParams, GaussianMixture, GaussianMixtureParams

GAUSSIAN_DATA, EXPONENTIAL_DATA, CLUSTER_DATA = 0, 1, 2  # fold_in tags, one per data set
FITTING = 3  # fold_in tag of the key the fits of sections 5 to 7 and 9 start from
COMPARING = 4  # fold_in tag of the key of section 8's starts
DIGITS = 5  # fold_in tag of the key of section 10's VAE
MOONS = 6  # fold_in tag of the two moons of section 9

# -- the examples ---------------------------------------------------------------
GAUSSIAN = GaussianMixture(3, covariance_type="full")
GAUSSIAN_VALUES = {
    "weights": [0.5, 0.3, 0.2],
    "means": [[-2.0, 0.0], [2.0, 1.5], [0.5, -2.5]],
    "covariances": [[[1.2, 0.7], [0.7, 1.0]], [[0.6, -0.3], [-0.3, 0.8]], [[1.5, 0.0], [0.0, 0.3]]],
}
EXPONENTIAL = ExponentialMixture(2)
EXPONENTIAL_VALUES = {"weights": [0.6, 0.4], "rates": [4.0, 0.5]}


def _elongated(sd_long, sd_short, degrees):
    """The 2x2 covariance with standard deviations (sd_long, sd_short) along axes turned by ``degrees``."""
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    rotation = np.array([[c, -s], [s, c]])
    return np.round(rotation @ np.diag([sd_long**2, sd_short**2]) @ rotation.T, 4).tolist()


# Sections 5 to 7 fit models to 1500 points from three elongated clusters (means ordered by x_1):
# (standard deviation along, across, angle of the long axis in degrees) for each.
CLUSTER_SHAPES = [(2.2, 0.35, 50.0), (2.4, 0.35, -10.0), (1.8, 0.35, 35.0)]
CLUSTER_VALUES = {
    "weights": [0.4, 0.35, 0.25],
    "means": [[-2.0, 0.0], [1.0, 2.0], [3.0, -2.0]],
    "covariances": [_elongated(*shape) for shape in CLUSTER_SHAPES],
}
_N_CLUSTER_POINTS = 1500
K = 3
_FITTED_GAUSSIAN = GaussianMixture(K, covariance_type="full")
N_INIT = 4


@functools.partial(jax.jit, static_argnames=("model", "n"))
def _sample(model, key, params, n):
    return model.sample(key, params, n)


@functools.partial(jax.jit, static_argnames="model")
def log_joint_and_prob(model, params, x):
    return model.log_joint(params, x), model.log_prob(params, x)


def _params(cls, values):
    return cls(**{name: jnp.array(value) for name, value in values.items()})


def gaussian_example(key, n=600):
    """The Gaussian mixture's parameters and n samples (x, z) from it."""
    params = _params(GaussianMixtureParams, GAUSSIAN_VALUES)
    x, z = _sample(GAUSSIAN, jax.random.fold_in(key, GAUSSIAN_DATA), params, n)
    return params, np.asarray(x), np.asarray(z)


def exponential_example(key, n=3000):
    """Section 4's parameters and n samples x from them."""
    params = _params(ExponentialMixtureParams, EXPONENTIAL_VALUES)
    return params, np.asarray(_sample(EXPONENTIAL, jax.random.fold_in(key, EXPONENTIAL_DATA), params, n)[0])


def cluster_example(key):
    """The elongated-cluster data of sections 5 to 7: (x, z) and the key the fits start from."""
    params = _params(GaussianMixtureParams, CLUSTER_VALUES)
    x, z = _sample(GAUSSIAN, jax.random.fold_in(key, CLUSTER_DATA), params, _N_CLUSTER_POINTS)
    return np.asarray(x), np.asarray(z), jax.random.fold_in(key, FITTING)


def fit_gaussian(x, fit_key):
    """Section 5's fit (section 6 compares with it; the second call reuses the compiled program)."""
    return fit(fit_key, _FITTED_GAUSSIAN, x, n_init=N_INIT)


def predict_gaussian(params, x):
    """Labels argmax_j log p(x_i, z_i = j) of x under parameters of section 5's fitted mixture."""
    return np.asarray(log_joint_and_prob(_FITTED_GAUSSIAN, params, x)[0]).argmax(axis=1)


def by_first_coordinate(centers):
    """Relabel components in order of their centers' x_1, so a colour means the same cluster in every panel.

    Returns ``(order, rank)``: ``centers[order]`` is sorted, ``rank[j]`` is the new label of component j.
    """
    order = np.argsort(np.asarray(centers)[:, 0], kind="stable")
    return order, np.argsort(order)


def n_mislabelled(labels, z, k=K):
    """Points whose label differs from the generating component z, under the best matching of labels."""
    counts = np.zeros((k, k), int)
    np.add.at(counts, (labels, z), 1)
    return len(z) - max(sum(counts[j, p[j]] for j in range(k)) for p in itertools.permutations(range(k)))
