"""The VAE's configuration ``VAE`` and parameters ``VAEParams``: ``init``, the encoder and decoder
(``encode``, ``decode``), and the checks every public function of ``jaxmix.vae`` runs on them."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmix import _validation as v
from jaxmix.mixtures.covariance import COVARIANCE_TYPES
from jaxmix.mixtures.gaussian import GaussianMixture, GaussianMixtureUnconstrained
from jaxmix.vae.mlp import ACTIVATIONS, Dense, mlp_apply, mlp_init

DECODERS = ("bernoulli", "gaussian")
PRIOR_COVARIANCES = ("diag", "full", "spherical")


@dataclasses.dataclass(frozen=True)
class VAE:
    """A VAE's static configuration; frozen and hashable, so it can be a static ``jit`` argument.

    Args:
      n_features: D, the data dimension.
      latent_dim: L >= 1.
      hidden_sizes: hidden widths of the encoder D -> hidden -> 2L (mu and log sigma^2); the decoder
        L -> reversed(hidden) -> D mirrors it. ``()`` gives affine maps: with a Gaussian decoder and the
        N(0, I) prior, probabilistic PCA.
      decoder: ``"bernoulli"`` (logits; data in [0, 1]) or ``"gaussian"`` (N(f(z), sigma^2 I)).
      n_components: ``None`` for the prior N(0, I); K >= 1 for a mixture of K Gaussians.
      decoder_std: the Gaussian decoder's fixed sigma; ``None`` learns log sigma (Bernoulli: must be None).
      activation: hidden nonlinearity, one of ``ACTIVATIONS``.
      prior_covariance: the mixture components' covariances S_k, one of ``PRIOR_COVARIANCES``:
        ``"diag"`` (diag v_k), ``"full"`` (any S_k = C_k C_k^T, for correlated, elongated clusters in z)
        or ``"spherical"`` (v_k I); ignored for N(0, I).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxmix import vae
      >>> model = vae.VAE(n_features=4, latent_dim=2, hidden_sizes=(16,), n_components=3, prior_covariance="full")
      >>> params = vae.init(jax.random.key(0), model)
      >>> x = jnp.full((5, 4), 0.5)
      >>> float(vae.elbo(jax.random.key(1), model, params, x)) < 0
      True
      >>> labels, responsibilities = vae.cluster(model, params, x)
      >>> labels.shape, responsibilities.shape
      ((5,), (5, 3))
    """

    n_features: int
    latent_dim: int
    hidden_sizes: tuple[int, ...] = (128,)
    decoder: str = "bernoulli"
    n_components: int | None = None
    decoder_std: float | None = None
    activation: str = "relu"
    prior_covariance: str = "diag"

    def __post_init__(self):
        v.check_positive_int("n_features", self.n_features)
        v.check_positive_int("latent_dim", self.latent_dim)
        if isinstance(self.hidden_sizes, (str, bytes)) or not isinstance(self.hidden_sizes, Iterable):
            raise TypeError(f"hidden_sizes must be a sequence of ints such as (128,) or (), got "
                            f"{type(self.hidden_sizes).__name__} {self.hidden_sizes!r}.")
        object.__setattr__(self, "hidden_sizes", tuple(
            v.check_positive_int(f"hidden_sizes[{i}]", size) for i, size in enumerate(self.hidden_sizes)))
        v.check_choice("decoder", self.decoder, DECODERS)
        if self.n_components is not None:
            v.check_positive_int("n_components", self.n_components)
        v.check_choice("prior_covariance", self.prior_covariance, PRIOR_COVARIANCES)
        v.check_choice("activation", self.activation, ACTIVATIONS)
        if self.decoder_std is not None:
            if self.decoder != "gaussian":
                raise ValueError(f"decoder_std applies to the Gaussian decoder only; got decoder_std="
                                 f"{self.decoder_std!r} with decoder={self.decoder!r}.")
            if v.check_nonnegative_float("decoder_std", self.decoder_std) == 0:
                raise ValueError("decoder_std must be > 0 (or None to learn it), got 0.")

    @property
    def prior_mixture(self) -> GaussianMixture | None:
        """The ``GaussianMixture(K, prior_covariance)`` whose log-density is the prior's, or None for N(0, I)."""
        if self.n_components is None:
            return None
        return GaussianMixture(self.n_components, covariance_type=self.prior_covariance)


class VAEParams(NamedTuple):
    """Parameters: ``encoder`` and ``decoder`` MLP layers; ``decoder_log_std`` the learned log sigma ()
    of a Gaussian decoder (else None); ``prior`` the mixture prior's unconstrained parameters, as
    ``model.prior_mixture.to_unconstrained`` gives them (logits (K,), means (K, L), and log variances
    (K, L) for diag, log-Cholesky factors (K, L, L) for full, log variances (K,) for spherical), or None
    for N(0, I)."""

    encoder: tuple[Dense, ...]
    decoder: tuple[Dense, ...]
    decoder_log_std: jax.Array | None
    prior: GaussianMixtureUnconstrained | None


def init(key, model: VAE, dtype=None) -> VAEParams:
    """Initial parameters: LeCun-normal weights, zero biases (so q starts at sigma = 1), sigma = 1 for a
    learned Gaussian decoder, and a mixture prior with equal weights, identity covariances and N(0, I) means."""
    check_model(model)
    dtype = jnp.dtype(jnp.result_type(float) if dtype is None else dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"dtype must be a floating-point dtype, got {dtype}.")
    return _init(key, model, dtype)


@functools.partial(jax.jit, static_argnames=("model", "dtype"))
def _init(key, model, dtype):
    k_enc, k_dec, k_prior = jax.random.split(key, 3)
    d, latent, hidden = model.n_features, model.latent_dim, model.hidden_sizes
    log_std = jnp.zeros((), dtype) if model.decoder == "gaussian" and model.decoder_std is None else None
    prior = None
    if model.n_components is not None:  # zero log variances or log-Cholesky factors: S_k = I
        k = model.n_components
        prior = GaussianMixtureUnconstrained(jnp.zeros(k, dtype), jax.random.normal(k_prior, (k, latent), dtype),
                                             jnp.zeros(prior_covariance_shape(model.prior_covariance, k, latent),
                                                       dtype))
    return VAEParams(mlp_init(k_enc, (d, *hidden, 2 * latent), dtype=dtype),
                     mlp_init(k_dec, (latent, *hidden[::-1], d), dtype=dtype), log_std, prior)


def prior_covariance_shape(covariance_type, k, latent_dim):
    """The shape of the prior's (unconstrained) covariances: the constrained shape, as for ``GaussianMixture``."""
    return COVARIANCE_TYPES[covariance_type].shape(k, latent_dim)


# -- the networks, unchecked -------------------------------------------------------------


def encoder_output(model, params, x):
    """The encoder's (mu_phi(x), log sigma_phi(x)^2), each (..., L)."""
    out = mlp_apply(params.encoder, x, ACTIVATIONS[model.activation])
    return out[..., :model.latent_dim], out[..., model.latent_dim:]


def decoder_output(model, params, z):
    """f_theta(z): the Gaussian decoder's mean or the Bernoulli decoder's logits, (..., D)."""
    return mlp_apply(params.decoder, z, ACTIVATIONS[model.activation])


def decoder_mean(model, params, z):
    """E[x | z]: f_theta(z), or sigmoid f_theta(z) for the Bernoulli decoder."""
    out = decoder_output(model, params, z)
    return jax.nn.sigmoid(out) if model.decoder == "bernoulli" else out


# -- checks at the public boundary ---------------------------------------------------------


def check_model(model):
    if not isinstance(model, VAE):
        raise TypeError(f"model must be a jaxmix.vae.VAE, got {type(model).__name__}.")


@functools.lru_cache(maxsize=64)
def _expected_shapes(model):
    shapes = jax.eval_shape(lambda key: _init(key, model, jnp.dtype(jnp.float32)), jax.random.key(0))
    return jax.tree_util.tree_structure(shapes), [leaf.shape for leaf in jax.tree_util.tree_leaves(shapes)]


def check_params(model, params) -> VAEParams:
    """``params`` as ``init(key, model)`` gives them: its tree structure and shapes, real floating leaves
    (else ``TypeError``) and, on concrete arrays, finite values and a mixture prior whose constrained
    parameters (softmax(logits), means, exp or log-Cholesky covariances) pass ``GaussianMixture``'s checks."""
    check_model(model)
    if not isinstance(params, VAEParams):
        raise TypeError(f"params must be a jaxmix.vae.VAEParams, got {type(params).__name__}.")
    structure, shapes = _expected_shapes(model)
    paths, treedef = jax.tree_util.tree_flatten_with_path(params)
    if treedef != structure:
        raise ValueError(f"params do not match model {model}: expected the tree {structure}, got {treedef}.")
    for (path, leaf), shape in zip(paths, shapes):
        name = f"params{jax.tree_util.keystr(path)}"
        try:
            dtype = jnp.result_type(leaf)
        except TypeError:
            dtype = None
        if dtype is None or not jnp.issubdtype(dtype, jnp.floating):
            raise TypeError(f"{name} must be a real floating-point array, got {type(leaf).__name__} of dtype "
                            f"{dtype}.")
        if jnp.shape(leaf) != shape:
            raise ValueError(f"{name} must have shape {shape} for {model}, got {jnp.shape(leaf)}.")
        values = v.host_values(leaf)
        if values is not None and not np.all(np.isfinite(values)):
            raise ValueError(f"{name} has {np.sum(~np.isfinite(values))} NaN or infinite value(s); "
                             "parameters must be finite (after a diverged fit, lower the learning rate).")
    mixture = model.prior_mixture
    if mixture is not None and v.is_concrete(params.prior):
        constrained = _constrained_prior(model, params.prior)
        try:  # log_joint checks its parameters first; at the K means it is the cheapest call that does
            mixture.log_joint(constrained, constrained.means)
        except ValueError as error:
            raise ValueError(f"params.prior does not give a valid mixture prior: {error}") from None
    return params


@functools.partial(jax.jit, static_argnames="model")
def _constrained_prior(model, prior):
    return model.prior_mixture.from_unconstrained(prior)


def check_x(model, x, name="x"):
    """Data (N, D) for ``model``: ``check_data``'s checks, and values in [0, 1] for the Bernoulli decoder."""
    x = v.check_data(x, model.n_features, name)
    values = v.host_values(x)
    if model.decoder == "bernoulli" and values is not None and (values.min() < 0 or values.max() > 1):
        raise ValueError(f"{name} must lie in [0, 1] for the Bernoulli decoder, got values in "
                         f"[{values.min():.4g}, {values.max():.4g}]; rescale it or use decoder='gaussian'.")
    return x


def checked(model, params, x):
    """``(check_params(model, params), check_x(model, x))``."""
    return check_params(model, params), check_x(model, x)


def check_z(model, z):
    """Latent points (N, L) for ``model``."""
    return v.check_data(z, model.latent_dim, "z")


# -- checked public functions -----------------------------------------------------------------


def encode(model, params, x):
    """q_phi(z | x): its means mu_phi(x) (N, L) and log variances log sigma_phi(x)^2 (N, L)."""
    return encoder_output(model, *checked(model, params, x))


def decode(model, params, z):
    """The decoder's mean E[x | z] (N, D): f_theta(z) (Gaussian) or sigmoid of the logits (Bernoulli)."""
    params = check_params(model, params)
    return decoder_mean(model, params, check_z(model, z))
