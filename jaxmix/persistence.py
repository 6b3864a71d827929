"""Saving and loading every model in one format: ``jaxmix.save(path, model, params)``, ``jaxmix.load(path)``.

A file is an ``.npz`` archive read with ``allow_pickle=False``: one array per leaf of the saved tree and
a JSON header with the library version, the format version, the model's class and configuration, and the
tree's structure (``jaxmix._pytree_io``). The same format holds a family's parameters, the results of the
fitting drivers (``EMResult``, ``FitResult``, ``OnlineResult``, ``GradientResult``, ``ModelSelection``),
the checkpoints ``fit_em`` and ``fit_online`` write, a ``SpectralResult`` (enough for ``predict``) and a
VAE with its ``VAEParams`` or ``VAEFitResult``.
"""

from __future__ import annotations

import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmix import _pytree_io
from jaxmix.clustering import CentroidStats, FuzzyCMeans, FuzzyCMeansParams, KMeans, KMeansParams
from jaxmix.clustering.fuzzy import FuzzyStats
from jaxmix.clustering.kmeans import KMeansStats
from jaxmix.inference import EMResult, FitResult, GradientResult, ModelSelection, OnlineResult
from jaxmix.inference.em import EMState
from jaxmix.inference.online import OnlineState
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
from jaxmix.protocol import ColumnFamily
from jaxmix.spectral import SpectralResult
from jaxmix.vae import VAE, VAEParams
from jaxmix.vae.mlp import Dense
from jaxmix.vae.model import check_params as check_vae_params
from jaxmix.vae.training import FitHistory, VAEFitResult

__all__ = ["load", "save"]

KIND = "model"
MODELS = (GaussianMixture, ExponentialMixture, KMeans, FuzzyCMeans, VAE)
# Every class a file may name: the models, their parameters and statistics, the drivers' results and states.
TYPES = {cls.__name__: cls for cls in (
    *MODELS, GaussianMixtureParams, GaussianMixtureUnconstrained, GaussianStats, ExponentialMixtureParams,
    ExponentialMixtureUnconstrained, ExponentialStats, KMeansParams, KMeansStats, FuzzyCMeansParams, FuzzyStats,
    CentroidStats, EMResult, EMState, FitResult, OnlineResult, OnlineState, GradientResult, ModelSelection,
    SpectralResult, VAEParams, Dense, FitHistory, VAEFitResult)}


def save(path, model, params, *, metadata=None) -> None:
    """Write ``model`` and ``params`` to exactly ``path`` (no suffix added), atomically, without pickle.

    Args:
      path: the file to write; a previous file there is replaced only once the new one is complete.
      model: the configuration (a family such as ``GaussianMixture(3)``, or a ``VAE``), or None for a
        tree that carries its own (a ``SpectralResult``, a ``ModelSelection``).
      params: the model's parameters, or a result or checkpoint state holding them in ``.params``
        (``EMResult``, ``FitResult``, ``OnlineResult``, ``GradientResult``, ``VAEFitResult``, ...): any
        tree of arrays, Python scalars, None, tuples, lists, dicts and the library's NamedTuples. The
        parameters are checked as the model's methods check them before anything is written.
      metadata: an optional tree of the same kinds (a dict of settings and arrays, say), returned by
        ``load(path, metadata=True)``.

    A custom family is saved as any frozen dataclass whose fields are JSON scalars (or tuples of them);
    loading it needs its classes: ``load(path, types=(MyFamily, MyParams))``.

    Examples:
      >>> import os, tempfile, jax, jax.numpy as jnp
      >>> import jaxmix
      >>> x = jax.random.normal(jax.random.key(0), (100, 2))
      >>> model = jaxmix.GaussianMixture(2, covariance_type="diag")
      >>> result = jaxmix.fit(jax.random.key(1), model, x)
      >>> path = os.path.join(tempfile.mkdtemp(), "gmm.npz")
      >>> jaxmix.save(path, model, result)
      >>> loaded_model, loaded = jaxmix.load(path)
      >>> loaded_model == model, bool(jnp.all(loaded.params.means == result.params.means))
      (True, True)
    """
    config = None
    if model is not None:
        config = _pytree_io.encode_config(model)
        _check_params(model, params)
    _pytree_io.save(path, {"params": params, "metadata": metadata}, {"kind": KIND, "model": config})


def load(path, family=None, *, metadata: bool = False, types=()) -> tuple[Any, ...]:
    """Read a file written by ``save`` (or a checkpoint of ``fit_em`` / ``fit_online``): ``(model, params)``,
    or ``(model, params, metadata)`` with ``metadata=True``. Nothing is unpickled or imported.

    Args:
      path: the file.
      family: if given, the model the file must hold: a class (``jaxmix.KMeans``) or an instance that the
        saved model must equal; a file of another family raises ``ValueError``.
      metadata: also return the metadata tree given to ``save`` (None if there was none).
      types: further classes the file may name (a custom family, its parameter NamedTuples).

    Arrays come back exactly as saved (bitwise) as JAX arrays, metadata's as NumPy arrays. 64-bit arrays
    need x64 (``jax.config.update("jax_enable_x64", True)``); without it they are converted to 32 bits
    with a warning. A checkpoint loads as ``(model, state)``, its state an ``EMState`` or ``OnlineState``.

    Raises:
      ValueError: naming ``path`` and what is wrong: a truncated, corrupt or foreign file, a newer format
        version, an object array, classes or arrays other than the structure describes, another family than
        ``family``, or parameters the model's checks reject (non-finite, negative variances, wrong shapes).
      FileNotFoundError: ``path`` does not exist.
    """
    allowed = {**TYPES, **{cls.__name__: cls for cls in types}}
    tree, header = _pytree_io.load(path, allowed)
    try:
        model = None if header.get("model") is None else _pytree_io.decode_config(header["model"], allowed)
        if header.get("kind") == KIND:
            if not isinstance(tree, dict) or set(tree) != {"params", "metadata"}:
                raise ValueError("its tree is not {'params', 'metadata'}.")
            params, extra = tree["params"], tree["metadata"]
        elif header.get("kind") == "checkpoint":
            params, extra = tree, None
        else:
            raise ValueError(f"it holds a {header.get('kind')!r}, not a model or a checkpoint.")
        _check_family(model, family)
        params = _device_arrays(path, params)
        if model is not None:
            _check_params(model, params)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: {error}") from None
    return (model, params, extra) if metadata else (model, params)


def _check_family(model, family) -> None:
    if family is None:
        return
    if model is None:
        raise ValueError(f"it holds no model (a tree that carries its own configuration), not {family}.")
    if isinstance(family, type):
        if not isinstance(model, family):
            raise ValueError(f"it holds a {type(model).__name__}, not a {family.__name__}.")
    elif model != family:
        raise ValueError(f"it holds {model}, not {family}.")


def _check_params(model, params) -> None:
    """The model's own checks of the parameters in ``params`` (itself, or its ``.params``)."""
    params = getattr(params, "params", params)
    if isinstance(model, VAE):
        check_vae_params(model, params)
    elif isinstance(model, ColumnFamily):
        model.check(params, None)


def _device_arrays(path, tree):
    """The tree with its array leaves as JAX arrays of the same dtype; 64-bit ones, without x64, as 32-bit
    with a warning."""
    leaves = [leaf for leaf in jax.tree_util.tree_leaves(tree) if isinstance(leaf, np.ndarray)]
    narrowed = sorted({str(leaf.dtype) for leaf in leaves if jax.dtypes.canonicalize_dtype(leaf.dtype) != leaf.dtype})
    if narrowed:
        warnings.warn(f"{path} holds {', '.join(narrowed)} arrays; without x64 they load as 32-bit (enable "
                      "x64 with jax.config.update('jax_enable_x64', True) to load them exactly).", stacklevel=3)
    return jax.tree_util.tree_map(lambda leaf: jnp.asarray(leaf) if isinstance(leaf, np.ndarray) else leaf,
                                  tree)
