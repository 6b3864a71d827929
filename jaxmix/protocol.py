"""The family protocol: what a model offers so that every jaxmix driver can fit it.

A *family* is a frozen, hashable configuration object (a frozen dataclass:
it is the static argument of the drivers' compiled programs) with these
members. Parameters and statistics are pytrees (NamedTuples in the library).

Required (``Family``), used by ``fit_em``, ``fit``, ``select_components``,
``initialize`` and the chunked E-step:

- ``n_components``: int, the number of components K.
- ``check(params, x) -> (params, x)``: validation at the public boundary
  (ValueError/TypeError naming the argument); ``params`` may be None when only
  x is to be checked. Drivers call it once, on concrete arrays, never inside a
  compiled program.
- ``summarize(params, x, weights) -> (stats, total)``: the E-step on one block
  of rows x (n, D) with per-row weights w (n,): additive sufficient statistics
  and total = sum_i w_i log p(x_i) (for k-means and fuzzy c-means, minus the
  weighted objective: "higher is better" holds for every family). Pure and
  jit-safe. ``combine_stats`` adds the statistics of two blocks.
- ``m_step(stats) -> params``: the M-step from the combined statistics.
- ``from_responsibilities(x, responsibilities, weights) -> params``: the M-step
  from hard or soft assignments r (N, K) of rows x (N, D) with weights (N,),
  so that one ``initialize`` serves every family.

Optional capabilities, each checked once by the driver that needs it
(``require``, a TypeError that names what is missing):

- ``LogJoint``: ``log_joint(params, x)`` -> log p(x_i, z_i = k), (N, K); needed
  by ``elbo``, ``fit_gradient``, ``m_step_gradient`` and ``compare_fits``.
- ``Unconstrained``: ``to_unconstrained(params)`` / ``from_unconstrained(u)``,
  exact inverses between parameters and free real pytrees; needed by
  ``fit_gradient``, ``m_step_gradient`` and ``compare_fits``.
- ``ParameterCount``: ``n_parameters(d)``, the free parameters for D features;
  needed by ``select_components`` (BIC and AIC).
- ``Stepwise``: ``blend(old, new, rho)``, the running statistics of online
  (stepwise) EM, (1 - rho) old + rho new, expressed as ``new`` is (about its
  reference points); needed by ``fit_online`` for statistics that are not
  plain sums (``shared_fields`` or ``combine``), which it blends leaf by leaf
  otherwise.
- ``ToleranceScale``: ``tolerance_scale(x, weights)``, the scale s of EM's
  stopping rule |L_t - L_{t-1}| < tol s (default 1: nats of mean
  log-likelihood); families whose objective has the data's squared units
  return the data's variance so the rule does not depend on their scale.
- ``FitCheck``: ``check_fit(x, weights)``, a ValueError for data that no fit of
  the family can model with finite parameters (an exponential mixture's feature
  that is 0 at every point), so that the error names the cause instead of
  ending in non-finite parameters. Every fit of in-memory data calls it once,
  on the checked rows x (N, D) and weights (N,) or None (all equal).

A family may also set ``compiler_options``, a dict of XLA options for its EM programs, put over
``jaxmix.inference.em.EM_COMPILER_OPTIONS`` (options this jaxlib does not know are dropped), such as
``FAST_COMPILE_OPTIONS``.

Statistics are summed leaf by leaf, except that a statistics type may declare
``shared_fields`` (a tuple of field names of its NamedTuple, such as the
reference point every block is centered on), kept from the first operand, or
define ``combine(other)`` for any other rule (``Combinable``). See
docs/maths.md section 11 and ``examples/custom_family.py``.
"""

from __future__ import annotations

import functools
from typing import Any, Protocol, runtime_checkable

import jax
import jax.numpy as jnp

__all__ = [
    "ColumnFamily",
    "Combinable",
    "Family",
    "FitCheck",
    "LogJoint",
    "ParameterCount",
    "Stepwise",
    "ToleranceScale",
    "Unconstrained",
    "combine_stats",
    "require",
]


# XLA options for a family whose E- and M-steps are matrix products and per-component passes (the full and
# tied Gaussian mixtures): XLA's CPU backend runs them as fast without its MLIR fusion emitters, at LLVM
# -O1, and compiles them in about half the time; running sums over blocks of points (the diagonal
# moments) run 3x slower without the emitters (benchmarks/README.md, "Measurements the code relies on").
FAST_COMPILE_OPTIONS = {"xla_cpu_use_fusion_emitters": False, "xla_backend_optimization_level": 1}


@runtime_checkable
class Family(Protocol):
    """The members every driver uses (see the module docstring)."""

    n_components: int

    def check(self, params: Any, x: Any) -> tuple[Any, jax.Array]: ...

    def summarize(self, params: Any, x: jax.Array, weights: jax.Array) -> tuple[Any, jax.Array]: ...

    def m_step(self, stats: Any) -> Any: ...

    def from_responsibilities(self, x: jax.Array, responsibilities: jax.Array, weights: jax.Array) -> Any: ...


@runtime_checkable
class LogJoint(Protocol):
    """log p(x_i, z_i = k) = log w_k + log p_k(x_i), shape (N, K), for rows x (N, D)."""

    def log_joint(self, params: Any, x: jax.Array) -> jax.Array: ...


@runtime_checkable
class Unconstrained(Protocol):
    """Exact inverse maps between parameters and free real pytrees (for optax)."""

    def to_unconstrained(self, params: Any) -> Any: ...

    def from_unconstrained(self, u: Any) -> Any: ...


@runtime_checkable
class ParameterCount(Protocol):
    """The number of free parameters for D features (BIC and AIC)."""

    def n_parameters(self, d: int) -> int: ...


@runtime_checkable
class Stepwise(Protocol):
    """Online EM's running statistics: (1 - rho) old + rho new, about ``new``'s reference points."""

    def blend(self, old: Any, new: Any, rho: jax.Array) -> Any: ...


@runtime_checkable
class ToleranceScale(Protocol):
    """The scale of EM's stopping rule for data x (N, D) and weights (N,)."""

    def tolerance_scale(self, x: jax.Array, weights: jax.Array) -> jax.Array: ...


@runtime_checkable
class FitCheck(Protocol):
    """ValueError for rows x (N, D) with weights (N,) or None that no fit can model with finite parameters."""

    def check_fit(self, x: jax.Array, weights: jax.Array | None) -> None: ...


@runtime_checkable
class Combinable(Protocol):
    """Statistics with their own rule for combining two blocks."""

    def combine(self, other: Any) -> Any: ...


def require(model, capability: type, needed_by: str) -> None:
    """TypeError unless ``model`` offers ``capability`` (a protocol class of this module)."""
    if not isinstance(model, capability):
        members = ", ".join(name for name in ("n_components", "check", "summarize", "m_step",
                                              "from_responsibilities", "log_joint", "to_unconstrained",
                                              "from_unconstrained", "n_parameters", "tolerance_scale",
                                              "blend", "check_fit")
                            if (hasattr(capability, name) or name in capability.__annotations__)
                            and not hasattr(model, name))
        raise TypeError(f"{needed_by} needs a model with {capability.__name__} ({members} missing); "
                        f"got {type(model).__name__}. See jaxmix.protocol.")


def stopping_tolerance(model, tol, x, weights):
    """EM's stopping threshold tol s, with s = ``model.tolerance_scale(x, weights)`` where the family
    declares it, else 1.

    A positive tol gives at least the smallest normal number of x's dtype, so that EM standing exactly
    still (on constant data, whose scale is floored at ``finfo.tiny``) stops: tol s would round to 0.
    """
    scale = model.tolerance_scale(x, weights) if isinstance(model, ToleranceScale) else jnp.ones((), x.dtype)
    scaled = tol * scale
    return jnp.where(tol > 0, jnp.maximum(scaled, jnp.finfo(scaled.dtype).tiny), scaled)


def blend_stats(model, old, new, rho):
    """(1 - rho) old + rho new: ``model.blend`` where the family declares it, else leaf by leaf."""
    if isinstance(model, Stepwise):
        return model.blend(old, new, rho)
    return jax.tree_util.tree_map(lambda a, b: (1 - rho) * a + rho * b, old, new)


def plain_sums(stats) -> bool:
    """True when statistics combine as plain sums of every leaf (no ``shared_fields``, no ``combine``)."""
    return not isinstance(stats, Combinable) and not getattr(type(stats), "shared_fields", ())


def combine_stats(*stats):
    """The statistics of the union of disjoint blocks: ``combine`` where the type defines it, else
    every leaf summed except the type's ``shared_fields``, kept from the first."""
    return functools.reduce(_combine_two, stats)


def summed(summary, n: int):
    """``(combined stats, total)`` of ``summary(j) -> (stats, total)`` over blocks j = 0 .. n - 1, in one
    loop from zeros (so a program holds one copy of the E-step); each block's shared fields are kept, all
    equal across blocks."""

    def add(j, carry):
        stats, total = summary(j)
        return combine_stats(stats, carry[0]), carry[1] + total

    zeros = jax.tree_util.tree_map(lambda a: jnp.zeros(a.shape, a.dtype), jax.eval_shape(summary, 0))
    return jax.lax.fori_loop(0, n, add, zeros)


def _combine_two(a, b):
    if isinstance(a, Combinable):
        return a.combine(b)
    shared = getattr(type(a), "shared_fields", ())
    if not shared:
        return jax.tree_util.tree_map(jnp.add, a, b)
    return a._replace(**{name: jax.tree_util.tree_map(jnp.add, getattr(a, name), getattr(b, name))
                         for name in a._fields if name not in shared})


class ColumnFamily:
    """Optional convenience base for families that compute on points as columns (the library's own).

    Derives the protocol's ``check``, ``summarize`` and ``from_responsibilities``
    from a subclass's ``_check_params(params)``, ``_check_x(x, params)``,
    ``_summarize(params, xt, weights)`` on xt = x^T (D, n), and
    ``_statistics(reference, xt, wr)``, the statistics of weighted
    responsibilities wr (K, n) centered on reference points (K, D), which
    ``_from_statistics`` turns into parameters. Transposing a block costs
    nothing measurable beside its E-step (benchmarks/README.md). A subclass
    whose E-step keeps K x D x n work in flight may set ``block_points``: a
    block of more points is then summarized in pieces of at most that many,
    which stay in the CPU's caches (the last padded with zero-weight copies
    of its last point).
    """

    block_points: int | None = None

    def check(self, params, x):
        """Checked ``(params, x)``; either may be None to check the other alone (``jaxmix.load`` checks
        the parameters it reads so)."""
        params = None if params is None else self._check_params(params)
        return params, None if x is None else self._check_x(x, params)

    def summarize(self, params, x, weights):
        n, block = x.shape[0], self.block_points
        if block is None or n <= block:
            return self._summarize(params, x.T, weights)
        parts = -(-n // block)
        size = -(-n // parts)
        x = jnp.pad(x, ((0, parts * size - n), (0, 0)), mode="edge")
        weights = jnp.pad(weights, (0, parts * size - n))

        def piece(j):
            rows = jax.lax.dynamic_slice_in_dim(x, j * size, size)
            return self._summarize(params, rows.T, jax.lax.dynamic_slice_in_dim(weights, j * size, size))

        return summed(piece, parts)

    def from_responsibilities(self, x, responsibilities, weights):
        """The M-step of w_i r_ik, with statistics centered on each component's weighted mean."""
        wr = responsibilities.T * weights
        counts = jnp.sum(wr, axis=1)
        reference = (wr @ x) / jnp.maximum(counts, jnp.finfo(x.dtype).tiny)[:, None]
        return self._from_statistics(self._statistics(reference, x.T, wr))
