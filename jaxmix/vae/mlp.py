"""A pure-functional MLP: layers as ``Dense`` NamedTuples, ``mlp_init`` and ``mlp_apply``, and the
hidden nonlinearities a ``VAE`` may name."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxmix import _validation as v

ACTIVATIONS: dict[str, Callable] = {
    "relu": jax.nn.relu, "elu": jax.nn.elu, "gelu": jax.nn.gelu, "softplus": jax.nn.softplus, "tanh": jnp.tanh,
}


class Dense(NamedTuple):
    """One affine layer y = x W + b: weights (n_in, n_out), bias (n_out,)."""

    weights: jax.Array
    bias: jax.Array


_LECUN_NORMAL = jax.nn.initializers.lecun_normal()


def mlp_init(key, sizes, *, weight_init=_LECUN_NORMAL,
             bias_init=jax.nn.initializers.zeros, dtype=None) -> tuple[Dense, ...]:
    """Layers of an MLP with layer widths ``sizes`` = (n_in, hidden..., n_out), as a tuple of ``Dense``.

    ``weight_init`` and ``bias_init`` are ``jax.nn.initializers`` (``init(key, shape, dtype)``); dtype
    defaults to JAX's default float (float64 under ``jax_enable_x64``).

    Examples:
      >>> import jax
      >>> layers = mlp_init(jax.random.key(0), (3, 8, 2))
      >>> [layer.weights.shape for layer in layers], mlp_apply(layers, jax.numpy.ones((5, 3))).shape
      ([(3, 8), (8, 2)], (5, 2))
    """
    sizes = tuple(v.check_positive_int("sizes", size) for size in sizes)
    if len(sizes) < 2:
        raise ValueError(f"sizes must hold at least the input and output widths, got {sizes}.")
    dtype = jnp.result_type(float) if dtype is None else dtype
    keys = jax.random.split(key, len(sizes) - 1)
    return tuple(
        Dense(weight_init(k, (n_in, n_out), dtype), bias_init(k, (n_out,), dtype))
        for k, n_in, n_out in zip(keys, sizes[:-1], sizes[1:])
    )


def mlp_apply(layers, x, activation: Callable = jax.nn.relu):
    """The MLP's output: ``activation`` after every layer but the last, which stays affine."""
    for layer in layers[:-1]:
        x = activation(x @ layer.weights + layer.bias)
    return x @ layers[-1].weights + layers[-1].bias
