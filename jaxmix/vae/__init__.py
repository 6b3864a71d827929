"""Variational autoencoders: the amortized ELBO, the IWAE bound and a Gaussian-mixture prior (docs/maths.md section 7).

The generative model is p_theta(x, z) = p(z) p_theta(x | z) with z in R^L and a decoder network f_theta:

- Gaussian decoder p_theta(x | z) = N(x; f_theta(z), sigma^2 I), sigma learned or fixed;
- Bernoulli decoder log p_theta(x | z) = sum_d x_d l_d - softplus(l_d), logits l = f_theta(z), for x in [0, 1];
- prior p(z) = N(0, I), or a mixture sum_k w_k N(z; m_k, S_k) with learnable w, m, S, whose log-density,
  samples, parameterization and component posterior are ``GaussianMixture(K, prior_covariance)``'s:
  w = softmax(logits), and S_k = diag(exp u_k) (``"diag"``), exp(u_k) I (``"spherical"``) or C_k C_k^T
  with C_k lower triangular, u_k its strict lower part and log diagonal (``"full"``, log-Cholesky).

The encoder q_phi(z | x) = N(mu_phi(x), diag sigma_phi(x)^2) outputs mu and log sigma^2 from one MLP.
It replaces EM's exact E-step (docs/maths.md section 4) by an amortized one, so

    ELBO(x) = E_q[log p_theta(x | z)] - KL(q_phi(z | x) || p(z))  <=  log p_theta(x),

with the expectation estimated by reparameterization z = mu + sigma * eps, eps ~ N(0, I), and the KL in
closed form for the N(0, I) prior. Configuration is a frozen, hashable ``VAE``; parameters are the
``VAEParams`` pytree; the functions here are pure and compose with ``jit``, ``vmap`` and ``grad``
(``fit`` is the one driver with its own jit).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Iterable
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.scipy.special import logsumexp

from jaxmix import _pytree_io
from jaxmix import _validation as v
from jaxmix.mixtures.covariance import _LOG_2PI, COVARIANCE_TYPES
from jaxmix.mixtures.gaussian import GaussianMixture, GaussianMixtureUnconstrained

DECODERS = ("bernoulli", "gaussian")
PRIOR_COVARIANCES = ("diag", "full", "spherical")
ACTIVATIONS: dict[str, Callable] = {
    "relu": jax.nn.relu, "elu": jax.nn.elu, "gelu": jax.nn.gelu, "softplus": jax.nn.softplus, "tanh": jnp.tanh,
}


# -- a pure-functional MLP ---------------------------------------------------------


class Dense(NamedTuple):
    """One affine layer y = x W + b: weights (n_in, n_out), bias (n_out,)."""

    weights: jax.Array
    bias: jax.Array


def mlp_init(key, sizes, *, weight_init=jax.nn.initializers.lecun_normal(),
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


# -- configuration and parameters ----------------------------------------------------


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
      >>> model = VAE(n_features=4, latent_dim=2, hidden_sizes=(16,), n_components=3, prior_covariance="full")
      >>> params = init(jax.random.key(0), model)
      >>> x = jnp.full((5, 4), 0.5)
      >>> float(elbo(jax.random.key(1), model, params, x)) < 0
      True
      >>> labels, responsibilities = cluster(model, params, x)
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
    _check_model(model)
    dtype = jnp.dtype(jnp.result_type(float) if dtype is None else dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"dtype must be a floating-point dtype, got {dtype}.")
    return _init(key, model, dtype)


@functools.partial(jax.jit, static_argnames=("model", "dtype"))
def _init(key, model, dtype):
    k_enc, k_dec, k_prior = jax.random.split(key, 3)
    d, l, hidden = model.n_features, model.latent_dim, model.hidden_sizes
    log_std = jnp.zeros((), dtype) if model.decoder == "gaussian" and model.decoder_std is None else None
    prior = None
    if model.n_components is not None:  # zero log variances or log-Cholesky factors: S_k = I
        k = model.n_components
        prior = GaussianMixtureUnconstrained(jnp.zeros(k, dtype), jax.random.normal(k_prior, (k, l), dtype),
                                             jnp.zeros(_prior_covariance_shape(model.prior_covariance, k, l), dtype))
    return VAEParams(mlp_init(k_enc, (d, *hidden, 2 * l), dtype=dtype),
                     mlp_init(k_dec, (l, *hidden[::-1], d), dtype=dtype), log_std, prior)


# -- densities: unchecked building blocks --------------------------------------------


def _encode(model, params, x):
    out = mlp_apply(params.encoder, x, ACTIVATIONS[model.activation])
    return out[..., :model.latent_dim], out[..., model.latent_dim:]


def _decoder_output(model, params, z):
    return mlp_apply(params.decoder, z, ACTIVATIONS[model.activation])


def _decoder_mean(model, params, z):
    out = _decoder_output(model, params, z)
    return jax.nn.sigmoid(out) if model.decoder == "bernoulli" else out


def _log_likelihood(model, params, x, z):
    """log p_theta(x | z), summed over features; z (..., N, L) broadcasts against x (N, D)."""
    out = _decoder_output(model, params, z)
    if model.decoder == "bernoulli":
        return jnp.sum(x * out - jax.nn.softplus(out), axis=-1)
    log_std = params.decoder_log_std if model.decoder_std is None else jnp.log(model.decoder_std)
    residual = (x - out) * jnp.exp(-log_std)
    return -0.5 * jnp.sum(jnp.square(residual), axis=-1) - model.n_features * (log_std + 0.5 * _LOG_2PI)


def _prior_covariance_shape(covariance_type, k, latent_dim):
    """The shape of the prior's (unconstrained) covariances: the constrained shape, as for ``GaussianMixture``."""
    return COVARIANCE_TYPES[covariance_type].shape(k, latent_dim)


def _log_prior(model, params, z):
    """log p(z) for z (..., L): N(0, I), or logsumexp_k of the mixture's log w_k + log N(z; m_k, S_k)."""
    mixture = model.prior_mixture
    if mixture is None:
        return -0.5 * jnp.sum(jnp.square(z) + _LOG_2PI, axis=-1)
    flat = z.reshape(-1, z.shape[-1])
    log_joint = mixture._log_joint(mixture.from_unconstrained(params.prior), flat.T)
    return logsumexp(log_joint, axis=0).reshape(z.shape[:-1])


def gaussian_kl(mean, log_var):
    """KL(N(mu, diag e^lv) || N(0, I)) = 1/2 sum_l (e^lv_l + mu_l^2 - 1 - lv_l), over the last axis."""
    return 0.5 * jnp.sum(jnp.exp(log_var) + jnp.square(mean) - 1.0 - log_var, axis=-1)


def _samples(model, params, key, x, num_samples):
    """Reparameterized draws z = mu + sigma eps (S, N, L) with log p(x|z), log p(z), log q(z|x), each (S, N)."""
    mean, log_var = _encode(model, params, x)
    eps = jax.random.normal(key, (num_samples, *mean.shape), mean.dtype)
    z = mean + jnp.exp(0.5 * log_var) * eps
    log_q = -0.5 * jnp.sum(jnp.square(eps) + log_var + _LOG_2PI, axis=-1)
    return (mean, log_var), _log_likelihood(model, params, x, z), _log_prior(model, params, z), log_q


def _elbo_terms(model, params, key, x, num_samples):
    """Per point (N,): the reconstruction term E_q[log p(x|z)] and KL(q(z|x) || p(z)), each estimated
    from ``num_samples`` draws, the KL in closed form for the N(0, I) prior."""
    (mean, log_var), log_px, log_pz, log_q = _samples(model, params, key, x, num_samples)
    if model.n_components is None:
        kl = gaussian_kl(mean, log_var)
    else:
        kl = jnp.mean(log_q - log_pz, axis=0)
    return jnp.mean(log_px, axis=0), kl


@functools.partial(jax.jit, static_argnames=("model", "num_samples"))
def _elbo_jit(model, num_samples, key, params, x):
    reconstruction, kl = _elbo_terms(model, params, key, x, num_samples)
    return jnp.mean(reconstruction - kl)


@functools.partial(jax.jit, static_argnames=("model", "num_samples"))
def _iwae(model, num_samples, key, params, x):
    _, log_px, log_pz, log_q = _samples(model, params, key, x, num_samples)
    return jnp.mean(logsumexp(log_px + log_pz - log_q, axis=0) - math.log(num_samples))


# -- checked public functions ----------------------------------------------------------


def _check_model(model):
    if not isinstance(model, VAE):
        raise TypeError(f"model must be a jaxmix.vae.VAE, got {type(model).__name__}.")


@functools.lru_cache(maxsize=64)
def _expected_shapes(model):
    shapes = jax.eval_shape(lambda key: _init(key, model, jnp.dtype(jnp.float32)), jax.random.key(0))
    return jax.tree_util.tree_structure(shapes), [leaf.shape for leaf in jax.tree_util.tree_leaves(shapes)]


def _check_params(model, params) -> VAEParams:
    """``params`` as ``init(key, model)`` gives them: its tree structure and shapes, real floating leaves
    (else ``TypeError``) and, on concrete arrays, finite values and a mixture prior whose constrained
    parameters (softmax(logits), means, exp or log-Cholesky covariances) pass ``GaussianMixture``'s checks."""
    _check_model(model)
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
        try:  # inside a user's jit the constrained parameters are tracers, whose value checks are skipped
            mixture._check_params(_constrained_prior(model, params.prior))
        except ValueError as error:
            raise ValueError(f"params.prior does not give a valid mixture prior: {error}") from None
    return params


@functools.partial(jax.jit, static_argnames="model")
def _constrained_prior(model, prior):
    return model.prior_mixture.from_unconstrained(prior)


def _check_x(model, x, name="x"):
    x = v.check_data(x, model.n_features, name)
    values = v.host_values(x)
    if model.decoder == "bernoulli" and values is not None and (values.min() < 0 or values.max() > 1):
        raise ValueError(f"{name} must lie in [0, 1] for the Bernoulli decoder, got values in "
                         f"[{values.min():.4g}, {values.max():.4g}]; rescale it or use decoder='gaussian'.")
    return x


def _checked(model, params, x):
    return _check_params(model, params), _check_x(model, x)


def encode(model, params, x):
    """q_phi(z | x): its means mu_phi(x) (N, L) and log variances log sigma_phi(x)^2 (N, L)."""
    return _encode(model, *_checked(model, params, x))


def decode(model, params, z):
    """The decoder's mean E[x | z] (N, D): f_theta(z) (Gaussian) or sigmoid of the logits (Bernoulli)."""
    params = _check_params(model, params)
    return _decoder_mean(model, params, v.check_data(z, model.latent_dim, "z"))


def log_likelihood(model, params, x, z):
    """log p_theta(x_i | z_i) (N,), the decoder's log-density summed over features."""
    params, x = _checked(model, params, x)
    return _log_likelihood(model, params, x, v.check_data(z, model.latent_dim, "z"))


def log_prior(model, params, z):
    """log p(z_i) (N,): N(0, I), or the mixture's logsumexp_k [log w_k + log N(z_i; m_k, S_k)]."""
    params = _check_params(model, params)
    return _log_prior(model, params, v.check_data(z, model.latent_dim, "z"))


def elbo(key, model, params, x, *, num_samples: int = 1):
    """The mean over points of ELBO(x_i) = E_q[log p(x_i | z)] - KL(q(z | x_i) || p(z)) (docs/maths.md section 7).

    The expectation is averaged over ``num_samples`` reparameterized draws z = mu + sigma eps. For the
    N(0, I) prior the KL is exact, 1/2 sum (sigma^2 + mu^2 - 1 - log sigma^2); for the mixture prior, whose
    KL has no closed form, the per-draw estimate log p(x|z) + log p(z) - log q(z|x) is averaged instead.
    Unbiased for the ELBO, which is at most log p_theta(x), with equality iff q = p_theta(z | x).
    """
    params, x = _checked(model, params, x)
    return _elbo_jit(model, v.check_positive_int("num_samples", num_samples), key, params, x)


def iwae_bound(key, model, params, x, *, num_samples: int):
    """The importance-weighted bound, mean over points (Burda et al. 2016), with S = ``num_samples``:

        IWAE_S(x) = E[ log (1/S) sum_s p(x, z_s) / q(z_s | x) ],  z_s ~ q(z | x) independently.

    IWAE_1 is the ELBO; IWAE_S is non-decreasing in S and tends to log p_theta(x) as S grows.
    """
    params, x = _checked(model, params, x)
    return _iwae(model, v.check_positive_int("num_samples", num_samples), key, params, x)


def cluster(model, params, x):
    """Cluster by the mixture prior: ``(labels (N,), responsibilities (N, K))`` of z = mu_phi(x), with
    r_ik = w_k N(z_i; m_k, S_k) / sum_j w_j N(z_i; m_j, S_j) (the E-step of docs/maths.md section 5)."""
    params, x = _checked(model, params, x)
    if model.n_components is None:
        raise ValueError("cluster needs a mixture prior; model.n_components is None (prior N(0, I)).")
    return _cluster(model, params, x)


@functools.partial(jax.jit, static_argnames="model")
def _cluster(model, params, x):
    mixture = model.prior_mixture
    z = _encode(model, params, x)[0]
    responsibilities = mixture._posterior(mixture.from_unconstrained(params.prior), z.T)
    return jnp.argmax(responsibilities, axis=0), responsibilities.T


def sample(key, model, params, n: int):
    """``(x_mean, z)``: n latent draws z ~ p(z) (n, L) and their decoded means E[x | z] (n, D)."""
    params = _check_params(model, params)
    itemsize = params.decoder[0].weights.dtype.itemsize
    widest = max((model.latent_dim, model.n_features, *model.hidden_sizes))
    return _sample(key, model, params, v.check_sample_size(n, 3 * widest * itemsize))


@functools.partial(jax.jit, static_argnames=("model", "n"))
def _sample(key, model, params, n):
    mixture = model.prior_mixture
    if mixture is None:
        z = jax.random.normal(key, (n, model.latent_dim), params.decoder[0].weights.dtype)
    else:
        z = mixture.sample(key, mixture.from_unconstrained(params.prior), n)[0]
    return _decoder_mean(model, params, z), z


# -- training --------------------------------------------------------------------------


class FitHistory(NamedTuple):
    """Per epoch (num_epochs,): the mean ELBO of the epoch's minibatches (at the parameters of each step),
    the held-out ELBO after the epoch (NaN without ``x_valid``), the KL weight beta used, and the wall
    time in seconds since ``fit`` started."""

    train_elbo: np.ndarray
    valid_elbo: np.ndarray
    kl_weight: np.ndarray
    seconds: np.ndarray


def fit(key, model, params, x, optimizer, *, num_epochs: int, batch_size: int, x_valid=None,
        num_samples: int = 1, kl_weight: float = 1.0, kl_warmup_epochs: int = 0, progress: bool = True):
    """Maximize the ELBO by ``optimizer`` over shuffled minibatches; returns ``(params, history)``.

    Each epoch draws a permutation, drops the last N mod batch_size points, and runs its steps in one
    jitted ``lax.scan`` (compiled once per model, optimizer, shapes). The loss is -(E_q[log p(x|z)] -
    beta KL): the KL weight beta rises linearly from kl_weight / (kl_warmup_epochs + 1) to ``kl_weight`` over
    the first ``kl_warmup_epochs`` epochs (KL annealing), then stays there (kl_weight != 1: the beta-VAE of
    Higgins et al. 2017). The history reports the true ELBO (beta = 1) whatever beta trains.

    Args:
      key: a ``jax.random`` key for shuffling and the reparameterization noise.
      model, params: the ``VAE`` and its starting ``VAEParams``.
      x: training data (N, D).
      optimizer: an optax ``GradientTransformation``, initialized here; a static argument, so pass the
        same object again to reuse the compiled epoch.
      num_epochs, batch_size: passes over x and points per step (batch_size <= N).
      x_valid: optional held-out data; its ELBO (same num_samples) is recorded after every epoch.
      num_samples: reparameterized draws per point in the training ELBO.
      kl_weight: the KL weight beta after warm-up (1: the ELBO).
      kl_warmup_epochs: epochs of KL annealing (0: none).
      progress: print epoch, train and held-out ELBO, beta and time at about 20 epochs.

    Examples:
      >>> import jax, optax
      >>> model = VAE(n_features=4, latent_dim=2, hidden_sizes=(16,), n_components=3, prior_covariance="full")
      >>> x = jax.random.uniform(jax.random.key(0), (64, 4))
      >>> params, history = fit(jax.random.key(1), model, init(jax.random.key(2), model), x,
      ...                       optax.adam(1e-2), num_epochs=3, batch_size=16, progress=False)
      >>> history.train_elbo.shape, bool(np.all(np.isfinite(history.train_elbo)))
      ((3,), True)
    """
    params, x = _checked(model, params, x)
    num_epochs = v.check_positive_int("num_epochs", num_epochs)
    batch_size = v.check_positive_int("batch_size", batch_size)
    num_samples = v.check_positive_int("num_samples", num_samples)
    warmup = v.check_positive_int("kl_warmup_epochs", kl_warmup_epochs, minimum=0)
    kl_weight = v.check_nonnegative_float("kl_weight", kl_weight)
    if batch_size > x.shape[0]:
        raise ValueError(f"batch_size must be at most the number of points {x.shape[0]}, got {batch_size}.")
    if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
        raise TypeError(f"optimizer must be an optax GradientTransformation, got {type(optimizer).__name__}.")
    if x_valid is not None:
        x_valid = _check_x(model, x_valid, "x_valid")
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, x.dtype), params)
    opt_state = optimizer.init(params)
    history = np.full((4, num_epochs), np.nan)
    report = set(np.linspace(0, num_epochs - 1, min(num_epochs, 20)).round().astype(int).tolist())
    start = time.perf_counter()
    for epoch in range(num_epochs):
        key, k_epoch, k_valid = jax.random.split(key, 3)
        beta = kl_weight * min(1.0, (epoch + 1) / (warmup + 1))
        params, opt_state, train = _epoch(model, optimizer, batch_size, num_samples, k_epoch, params,
                                          opt_state, x, jnp.asarray(beta, x.dtype))
        valid = np.nan if x_valid is None else _elbo_jit(model, num_samples, k_valid, params, x_valid)
        history[:, epoch] = float(train), float(valid), beta, time.perf_counter() - start
        if progress and epoch in report:
            print(f"epoch {epoch + 1:>{len(str(num_epochs))}}/{num_epochs}  train ELBO {history[0, epoch]:.4f}  "
                  f"held-out ELBO {history[1, epoch]:.4f}  KL weight {beta:.2f}  {history[3, epoch]:.1f} s",
                  flush=True)
    return params, FitHistory(*history)


@functools.partial(jax.jit, static_argnames=("model", "optimizer", "batch_size", "num_samples"))
def _epoch(model, optimizer, batch_size, num_samples, key, params, opt_state, x, beta):
    """One pass over a permutation of x in minibatches: ``(params, opt_state, mean train ELBO)``."""
    optimizer = optax.with_extra_args_support(optimizer)
    n_batches = x.shape[0] // batch_size
    k_perm, k_steps = jax.random.split(key)
    batches = jax.random.permutation(k_perm, x.shape[0])[:n_batches * batch_size].reshape(n_batches, batch_size)

    def loss(p, step_key, batch):
        reconstruction, kl = _elbo_terms(model, p, step_key, batch, num_samples)
        return -jnp.mean(reconstruction - beta * kl), jnp.mean(reconstruction - kl)

    def step(carry, inputs):
        p, state = carry
        index, step_key = inputs
        (value, elbo_value), grad = jax.value_and_grad(loss, has_aux=True)(p, step_key, x[index])
        updates, state = optimizer.update(grad, state, p, value=value, grad=grad,
                                          value_fn=lambda q: loss(q, step_key, x[index])[0])
        return (optax.apply_updates(p, updates), state), elbo_value

    (params, opt_state), values = jax.lax.scan(step, (params, opt_state), (batches, jax.random.split(k_steps, n_batches)))
    return params, opt_state, jnp.mean(values)


# -- save and load ---------------------------------------------------------------------

_FORMAT = "jaxmix.vae.VAEParams/1"
_WHAT = "VAE parameter file written by jaxmix.vae.save"
# The prior's covariance type from the rank of its covariances: spherical (K,), diag (K, L), full (K, L, L).
_PRIOR_BY_RANK = {len(_prior_covariance_shape(name, 1, 1)): name for name in PRIOR_COVARIANCES}


def _template(structure) -> VAEParams:
    """A ``VAEParams`` of placeholders with the layer counts and optional parts ``structure`` describes."""
    if structure["prior"] not in (None, *PRIOR_COVARIANCES):
        raise ValueError(f"the prior must be null or one of {PRIOR_COVARIANCES}, got {structure['prior']!r}")
    layers = lambda n: tuple(Dense(0, 0) for _ in range(n))  # noqa: E731
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
    _check_params(_implied_model(params, prior), params)
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
        _check_model(model)
    params, structure = _pytree_io.load(path, _template, tag=_FORMAT, what=_WHAT)
    try:
        _check_params(_implied_model(params, structure["prior"]), params)
        if model is not None:  # the covariance types' shapes differ: (K,), (K, L), (K, L, L)
            _check_params(model, params)
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
