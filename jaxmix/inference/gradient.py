"""Gradient-based fitting with optax, in the unconstrained parameterization (docs/maths.md section 4).

By Fisher's identity, the gradient of the mean log-likelihood equals the
gradient of the ELBO at q = p_theta(z | x) held fixed, so gradient ascent on
the log-likelihood is gradient ascent on the ELBO with an exact E-step; it
shares its fixed points with EM. ``m_step_gradient`` instead holds any q fixed
and maximizes ELBO(q, theta): it must land on the closed-form ``m_step`` of
the same responsibilities, which checks those closed forms.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.scipy.special import logsumexp

from jaxmix import _validation as v
from jaxmix.inference.em import DEFAULT_CHUNK_SIZE, fit_weights, to_chunks
from jaxmix.inference.lower_bound import check_mixture, check_responsibilities, elbo_of_log_joint
from jaxmix.protocol import Unconstrained, require

MAX_STEPS = 2**31 - 1  # loop counters and step indices are int32 inside the compiled loops


class GradientResult(NamedTuple):
    """The outcome of ``fit_gradient``.

    Attributes:
      params: the parameters after the last step (constrained form).
      log_likelihood: their full-data weighted mean log-likelihood.
      history: (n_steps,) the full-data mean log-likelihood before each step;
        with minibatches it is evaluated every ``history_stride`` steps
        (one epoch by default) and NaN in between.
    """

    params: Any
    log_likelihood: jax.Array
    history: jax.Array


def check_optimizer(name: str, optimizer) -> None:
    """An optax ``GradientTransformation``, hashable (it is a static argument of ``jit``), else TypeError."""
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(f"{name} must be an optax.GradientTransformation such as optax.adam(1e-2), got "
                        f"{type(optimizer).__name__} {optimizer!r:.80}.")
    try:
        hash(optimizer)
    except TypeError as err:
        raise TypeError(f"{name} must be hashable (it is a static argument of jit).") from err


def check_steps(name: str, value) -> int:
    """An int in [1, MAX_STEPS]: the compiled loops count in int32."""
    return v.check_positive_int(name, value, maximum=MAX_STEPS)


def mean_log_likelihood(model, u, x, weights):
    """(1/sum w) sum_i w_i log p(x_i) at unconstrained parameters u (0 for an all-zero-weight batch)."""
    log_prob = logsumexp(model.log_joint(model.from_unconstrained(u), x), axis=1)
    total = jnp.sum(weights)
    return jnp.sum(weights * log_prob) / jnp.where(total > 0, total, 1.0)


def fit_gradient(key, model, params, x, optimizer: optax.GradientTransformation, *, n_steps: int,
                 batch_size: int | None = None, sample_weight=None,
                 history_stride: int | None = None) -> GradientResult:
    """Maximize the mean log-likelihood by ``optimizer`` in the unconstrained space.

    Args:
      key: a ``jax.random`` key; it draws the minibatches (unused for the full batch).
      model: a differentiable mixture (``GaussianMixture``, ``ExponentialMixture``).
      params: the initial (constrained) parameters.
      x: data.
      optimizer: any optax ``GradientTransformation``; ``optax.lbfgs`` and other
        transformations that take ``value``, ``grad`` and ``value_fn`` get them.
      n_steps: optimizer steps, run by one ``lax.scan`` inside one jit.
      batch_size: if given, each step uses a minibatch of this many points:
        epoch e visits the rows in the order ``permutation(fold_in(key, e), N)``
        in floor(N / batch_size) minibatches, as ``fit_online`` does; otherwise
        the full batch.
      sample_weight: optional non-negative (N,) weights.
      history_stride: with minibatches, evaluate the full-data log-likelihood
        every this many steps (default: once per epoch, floor(N / batch_size)).

    Examples:
      >>> import jax, jax.numpy as jnp, optax
      >>> from jaxmix import ExponentialMixture, ExponentialMixtureParams, fit_gradient
      >>> model = ExponentialMixture(2)
      >>> truth = ExponentialMixtureParams(jnp.array([0.5, 0.5]), jnp.array([1.0, 20.0]))
      >>> x, _ = model.sample(jax.random.key(0), truth, 5000)
      >>> start = ExponentialMixtureParams(jnp.array([0.5, 0.5]), jnp.array([0.5, 5.0]))
      >>> result = fit_gradient(jax.random.key(1), model, start, x, optax.adam(0.05), n_steps=500)
      >>> jnp.round(result.params.rates).tolist()
      [1.0, 20.0]
    """
    check_mixture(model, "fit_gradient")
    require(model, Unconstrained, "fit_gradient")
    check_optimizer("optimizer", optimizer)
    params, x = model.check(params, x)
    n_steps = check_steps("n_steps", n_steps)
    weights = fit_weights(model, x, sample_weight)
    if batch_size is not None:
        batch_size = v.check_positive_int("batch_size", batch_size)
        if batch_size > x.shape[0]:
            raise ValueError(f"batch_size must be at most the number of points {x.shape[0]}, got {batch_size}.")
        stride = x.shape[0] // batch_size if history_stride is None else history_stride
        stride = check_steps("history_stride", stride)
    else:
        stride = 1
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, x.dtype), params)
    return run_gradient(key, model, params, x, weights, optimizer, n_steps, batch_size, stride)


@functools.partial(jax.jit, static_argnames=("model", "optimizer", "n_steps", "batch_size", "stride"))
def run_gradient(key, model, params, x, weights, optimizer, n_steps, batch_size, stride):
    """The unchecked, compiled loop behind ``fit_gradient``."""
    optimizer = optax.with_extra_args_support(optimizer)
    xb, wb = to_chunks(x, weights, DEFAULT_CHUNK_SIZE)

    def full_data(u):
        """The weighted mean log-likelihood of all rows at u, chunk by chunk (one (K, N) pass is slow at
        large N)."""
        current = model.from_unconstrained(u)

        def add_chunk(total, chunk):
            rows, w = chunk
            return total + jnp.sum(w * logsumexp(model.log_joint(current, rows), axis=1)), None

        return jax.lax.scan(add_chunk, jnp.zeros((), x.dtype), (xb, wb))[0] / jnp.sum(weights)

    u = model.to_unconstrained(params)

    n_batches = 1 if batch_size is None else x.shape[0] // batch_size

    def step(carry, _):
        u, state, i, order = carry
        if batch_size is None:
            batch = (x, weights)
        else:  # epoch e visits the rows in the order permutation(fold_in(key, e), N), as fit_online does
            epoch, b = jnp.divmod(i, n_batches)
            shuffled = lambda: jax.random.permutation(jax.random.fold_in(key, epoch), x.shape[0]).astype(order.dtype)
            order = jax.lax.cond(b == 0, shuffled, lambda: order)
            index = jax.lax.dynamic_slice(order, (b * batch_size,), (batch_size,))
            batch = (x[index], weights[index])
        loss = lambda u: -mean_log_likelihood(model, u, *batch)
        value, grad = jax.value_and_grad(loss)(u)
        updates, state = optimizer.update(grad, state, u, value=value, grad=grad, value_fn=loss)
        if batch_size is None:
            recorded = -value
        else:
            recorded = jax.lax.cond(i % stride == 0, lambda: full_data(u), lambda: jnp.array(jnp.nan, x.dtype))
        return (optax.apply_updates(u, updates), state, i + 1, order), recorded

    order = jnp.zeros(0 if batch_size is None else x.shape[0], jnp.int32)
    (u, _, _, _), history = jax.lax.scan(step, (u, optimizer.init(u), 0, order), None, length=n_steps)
    return GradientResult(model.from_unconstrained(u), full_data(u), history)


def m_step_gradient(model, params, x, q, optimizer: optax.GradientTransformation, *, n_steps: int):
    """Maximize ELBO(q, theta) over theta with q held fixed, by ``optimizer`` (full batch).

    Only sum_ik q_ik log p(x_i, z_i = k) depends on theta; its maximizer is the
    closed-form ``model.m_step`` of the responsibilities q (docs/maths.md sections 4, 5).

    Returns:
      The parameters after ``n_steps`` steps from ``params``.
    """
    check_mixture(model, "m_step_gradient")
    require(model, Unconstrained, "m_step_gradient")
    check_optimizer("optimizer", optimizer)
    params, x = model.check(params, x)
    q = check_responsibilities(q, x.shape[0], model.n_components)
    n_steps = check_steps("n_steps", n_steps)
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, x.dtype), params)
    return _m_step_gradient(model, params, x, q.astype(x.dtype), optimizer, n_steps)


@functools.partial(jax.jit, static_argnames=("model", "optimizer", "n_steps"))
def _m_step_gradient(model, params, x, q, optimizer, n_steps):
    optimizer = optax.with_extra_args_support(optimizer)

    def loss(u):
        return -elbo_of_log_joint(model.log_joint(model.from_unconstrained(u), x), q)

    def step(carry, _):
        u, state = carry
        value, grad = jax.value_and_grad(loss)(u)
        updates, state = optimizer.update(grad, state, u, value=value, grad=grad, value_fn=loss)
        return (optax.apply_updates(u, updates), state), None

    u = model.to_unconstrained(params)
    (u, _), _ = jax.lax.scan(step, (u, optimizer.init(u)), None, length=n_steps)
    return model.from_unconstrained(u)
