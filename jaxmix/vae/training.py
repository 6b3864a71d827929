"""Training a VAE: ``fit`` maximizes the ELBO (docs/maths.md section 7) by an optax optimizer over shuffled
minibatches, with optional KL annealing, and returns a ``VAEFitResult``."""

from __future__ import annotations

import functools
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmix import _validation as v
from jaxmix._progress import progress_bar
from jaxmix.vae.model import VAEParams, check_x, checked
from jaxmix.vae.objectives import elbo_terms, elbo_unchecked


class FitHistory(NamedTuple):
    """Per epoch (n_epochs,): the mean ELBO of the epoch's minibatches (at the parameters of each step),
    the held-out ELBO after the epoch (NaN without ``x_valid``), the KL weight beta used, and the wall
    time in seconds since ``fit`` started."""

    train_elbo: np.ndarray
    valid_elbo: np.ndarray
    kl_weight: np.ndarray
    seconds: np.ndarray


class VAEFitResult(NamedTuple):
    """The outcome of ``fit``.

    Attributes:
      params: the ``VAEParams`` after the last step.
      history: a ``FitHistory``, one entry per epoch.
    """

    params: VAEParams
    history: FitHistory


def fit(key, model, params, x, optimizer, *, n_epochs: int, batch_size: int, x_valid=None,
        n_samples: int = 1, kl_weight: float = 1.0, n_warmup_epochs: int = 0,
        progress="auto") -> VAEFitResult:
    """Maximize the ELBO by ``optimizer`` over shuffled minibatches; returns a ``VAEFitResult``.

    Each epoch draws a permutation, drops the last N mod batch_size points, and runs its steps in one
    jitted ``lax.scan`` (compiled once per model, optimizer, shapes). The loss is -(E_q[log p(x|z)] -
    beta KL): the KL weight beta rises linearly from kl_weight / (n_warmup_epochs + 1) to ``kl_weight`` over
    the first ``n_warmup_epochs`` epochs (KL annealing), then stays there (kl_weight != 1: the beta-VAE of
    Higgins et al. 2017). The history reports the true ELBO (beta = 1) whatever beta trains.

    Args:
      key: a ``jax.random`` key for shuffling and the reparameterization noise.
      model, params: the ``VAE`` and its starting ``VAEParams``.
      x: training data (N, D).
      optimizer: an optax ``GradientTransformation``, initialized here; a static argument, so pass the
        same object again to reuse the compiled epoch.
      n_epochs, batch_size: passes over x and points per step (batch_size <= N).
      x_valid: optional held-out data; its ELBO (same n_samples) is recorded after every epoch.
      n_samples: reparameterized draws per point in the training ELBO.
      kl_weight: the KL weight beta after warm-up (1: the ELBO).
      n_warmup_epochs: epochs of KL annealing (0: none).
      progress: "auto", True or False: a bar over the epochs with the train and held-out ELBO and the
        KL weight (``jaxmix._progress``; "auto": on a terminal, outside tests, after two seconds).

    Examples:
      >>> import jax, numpy as np, optax
      >>> from jaxmix import vae
      >>> model = vae.VAE(n_features=4, latent_dim=2, hidden_sizes=(16,), n_components=3, prior_covariance="full")
      >>> x = jax.random.uniform(jax.random.key(0), (64, 4))
      >>> result = vae.fit(jax.random.key(1), model, vae.init(jax.random.key(2), model), x,
      ...                  optax.adam(1e-2), n_epochs=3, batch_size=16, progress=False)
      >>> result.history.train_elbo.shape, bool(np.all(np.isfinite(result.history.train_elbo)))
      ((3,), True)
    """
    params, x = checked(model, params, x)
    n_epochs = v.check_positive_int("n_epochs", n_epochs)
    batch_size = v.check_positive_int("batch_size", batch_size)
    n_samples = v.check_positive_int("n_samples", n_samples)
    warmup = v.check_positive_int("n_warmup_epochs", n_warmup_epochs, minimum=0)
    kl_weight = v.check_nonnegative_float("kl_weight", kl_weight)
    if batch_size > x.shape[0]:
        raise ValueError(f"batch_size must be at most the number of points {x.shape[0]}, got {batch_size}.")
    if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
        raise TypeError(f"optimizer must be an optax GradientTransformation, got {type(optimizer).__name__}.")
    if x_valid is not None:
        x_valid = check_x(model, x_valid, "x_valid")
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, x.dtype), params)
    opt_state = optimizer.init(params)
    history = np.full((4, n_epochs), np.nan)
    start = time.perf_counter()
    with progress_bar(n_epochs, "VAE epochs", progress) as bar:
        for epoch in range(n_epochs):
            key, k_epoch, k_valid = jax.random.split(key, 3)
            beta = kl_weight * min(1.0, (epoch + 1) / (warmup + 1))
            params, opt_state, train = _epoch(k_epoch, model, optimizer, batch_size, n_samples, params,
                                              opt_state, x, jnp.asarray(beta, x.dtype))
            valid = np.nan if x_valid is None else elbo_unchecked(k_valid, model, params, x_valid, n_samples)
            history[:, epoch] = float(train), float(valid), beta, time.perf_counter() - start
            bar.set_postfix_str(f"train ELBO {history[0, epoch]:.4f}  held-out ELBO {history[1, epoch]:.4f}  "
                                f"KL weight {beta:.2f}")
            bar.update()
    return VAEFitResult(params, FitHistory(*history))


@functools.partial(jax.jit, static_argnames=("model", "optimizer", "batch_size", "n_samples"))
def _epoch(key, model, optimizer, batch_size, n_samples, params, opt_state, x, beta):
    """One pass over a permutation of x in minibatches: ``(params, opt_state, mean train ELBO)``."""
    optimizer = optax.with_extra_args_support(optimizer)
    n_batches = x.shape[0] // batch_size
    k_perm, k_steps = jax.random.split(key)
    batches = jax.random.permutation(k_perm, x.shape[0])[:n_batches * batch_size].reshape(n_batches, batch_size)

    def loss(p, step_key, batch):
        reconstruction, kl = elbo_terms(step_key, model, p, batch, n_samples)
        return -jnp.mean(reconstruction - beta * kl), jnp.mean(reconstruction - kl)

    def step(carry, inputs):
        p, state = carry
        index, step_key = inputs
        (value, elbo_value), grad = jax.value_and_grad(loss, has_aux=True)(p, step_key, x[index])
        updates, state = optimizer.update(grad, state, p, value=value, grad=grad,
                                          value_fn=lambda q: loss(q, step_key, x[index])[0])
        return (optax.apply_updates(p, updates), state), elbo_value

    step_keys = jax.random.split(k_steps, n_batches)
    (params, opt_state), values = jax.lax.scan(step, (params, opt_state), (batches, step_keys))
    return params, opt_state, jnp.mean(values)
