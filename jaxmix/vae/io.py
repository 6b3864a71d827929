"""Saving and loading ``VAEParams`` as a plain ``.npz`` file (no pickle), through ``jaxmix._pytree_io``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxmix import _pytree_io
from jaxmix.mixtures.gaussian import GaussianMixtureUnconstrained
from jaxmix.vae.mlp import Dense
from jaxmix.vae.model import (
    PRIOR_COVARIANCES,
    VAE,
    VAEParams,
    check_model,
    check_params,
    prior_covariance_shape,
)

_FORMAT = "jaxmix.vae.VAEParams/1"
_WHAT = "VAE parameter file written by jaxmix.vae.save"
# The prior's covariance type from the rank of its covariances: spherical (K,), diag (K, L), full (K, L, L).
_PRIOR_BY_RANK = {len(prior_covariance_shape(name, 1, 1)): name for name in PRIOR_COVARIANCES}


def _template(structure) -> VAEParams:
    """A ``VAEParams`` of placeholders with the layer counts and optional parts ``structure`` describes."""
    if structure["prior"] not in (None, *PRIOR_COVARIANCES):
        raise ValueError(f"the prior must be null or one of {PRIOR_COVARIANCES}, got {structure['prior']!r}")
    layers = lambda n: tuple(Dense(0, 0) for _ in range(n))
    prior = None if structure["prior"] is None else GaussianMixtureUnconstrained(0, 0, 0)
    return VAEParams(layers(structure["encoder"]), layers(structure["decoder"]),
                     0 if structure["decoder_log_std"] else None, prior)


def save(path, params: VAEParams) -> None:
    """Write ``params`` to exactly ``path`` (no suffix added) as a plain ``.npz`` (no pickle): one array per
    leaf, named by its pytree path (``.encoder[0].weights``, ...), and a JSON description of the structure:
    layer counts, whether log sigma is learned, and the mixture prior's covariance type (or null for N(0, I)).

    ``params`` are checked as ``load`` checks them (shapes of some ``VAE``, finite real floats). The file is
    replaced atomically: if writing fails, a previous file at ``path`` is left as it was.
    """
    if not isinstance(params, VAEParams):
        raise TypeError(f"params must be a jaxmix.vae.VAEParams, got {type(params).__name__}.")
    prior = None
    if params.prior is not None:
        covariances = getattr(params.prior, "covariances", None)
        if np.ndim(covariances) not in _PRIOR_BY_RANK:
            raise ValueError(f"params.prior.covariances must have rank 1, 2 or 3 (spherical, diag, full), "
                             f"got shape {np.shape(covariances)}.")
        prior = _PRIOR_BY_RANK[np.ndim(covariances)]
    check_params(_implied_model(params, prior), params)
    structure = {"format": _FORMAT, "encoder": len(params.encoder), "decoder": len(params.decoder),
                 "decoder_log_std": params.decoder_log_std is not None, "prior": prior}
    _pytree_io.save(path, params, structure, _template)


def load(path, model: VAE | None = None) -> VAEParams:
    """Read parameters written by ``save``; never unpickles. With ``model``, also check that they fit it.

    Raises ``ValueError`` naming ``path`` and what is wrong when the file is not such a file (empty,
    truncated, corrupt, a header that declares more than the file holds), lacks or adds arrays, holds
    non-finite or non-float values, shapes that ``init`` gives no ``VAE`` (layers that do not chain
    D -> hidden -> 2L and L -> reversed(hidden) -> D, a prior that does not fit L), or parameters of
    another model than ``model``. A missing file raises ``FileNotFoundError``.
    """
    if model is not None:
        check_model(model)
    params, structure = _pytree_io.load(path, _template, tag=_FORMAT, what=_WHAT)
    try:
        check_params(_implied_model(params, structure["prior"]), params)
        if model is not None:  # the covariance types' shapes differ: (K,), (K, L), (K, L, L)
            check_params(model, params)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: {error}") from None
    return jax.tree_util.tree_map(jnp.asarray, params)


def _implied_model(params: VAEParams, prior_covariance: str | None) -> VAE:
    """The VAE, up to the decoder's kind, whose ``init`` has the widths of ``params``' encoder and prior."""
    try:
        encoder = params.encoder
        hidden = tuple(np.shape(layer.weights)[1] for layer in encoder[:-1])
        return VAE(np.shape(encoder[0].weights)[0], np.shape(encoder[-1].weights)[1] // 2, hidden,
                   decoder="bernoulli" if params.decoder_log_std is None else "gaussian",
                   n_components=None if params.prior is None else np.shape(params.prior.logits)[0],
                   prior_covariance=prior_covariance or "diag")
    except (AttributeError, IndexError, TypeError, ValueError) as error:
        raise ValueError(f"params.encoder and params.prior have the shapes of no VAE ({error}).") from None
