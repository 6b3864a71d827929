"""The five Gaussian covariance structures, one small class each.

A ``GaussianMixture`` delegates everything that depends on the covariance structure to one of these
(looked up in ``COVARIANCE_TYPES``), so the mixture code holds no if/else chains over covariance types.
Shapes follow scikit-learn: full (K, D, D), diag (K, D), spherical (K,), tied (D, D), identity ``None``
(Sigma_k = I, the lecture's simplified case).

Each class provides, for means ``mu`` (K, D) and covariances ``cov``, with
points as columns (xt of shape (D, N)) and per-component arrays (K, N), the
E-step layout of ``_mixture``. Every quadratic form and second moment is
computed from the differences x_i - mu_k to each component (float32 would
cancel in an expansion about a shared point when the data sit far from it):

- ``log_prob(xt, mu, cov)``: log N(x_i; mu_k, Sigma_k), (K, N), by Cholesky factors (docs/maths.md section 5);
- ``moments(xt, ref, wr)``: ``(sums, scatter)``, the first and second moments
  sum_i wr_ik y_ik and sum_i wr_ik y_ik y_ik^T (in the form ``estimate`` needs)
  of the differences y_ik = x_i - ref_k to the reference points ref_k;
- ``estimate(scatter, nk, d, reg)``: the M-step covariance
  Sigma_k = sum_i r_ik (x_i - mu_k)(x_i - mu_k)^T / n_k + reg * I, where
  d_k = mu_k - ref_k corrects the scatter about ref_k to one about mu_k;
- ``recenter(scatter, nk, sums, delta)``: the scatter about ref_k + delta_k (maths.md section 12);
- ``scale_noise(cov, z, eps)``: Sigma_{z}^{1/2} eps for sampling;
- ``to_unconstrained(cov)`` / ``from_unconstrained(u)``: exact inverses between covariances and free
  real arrays (log-Cholesky factors for full and tied, log variances for diag and spherical);
- ``n_parameters(k, d)`` as scikit-learn counts them; ``shape(k, d)`` and ``validate(cov, k, d)``;
- ``compiler_options`` (full and tied): ``jaxmix.protocol.FAST_COMPILE_OPTIONS`` for EM programs.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxmix import _validation as v
from jaxmix._distances import exact_squared_distances, scaled_squared_distances
from jaxmix.protocol import FAST_COMPILE_OPTIONS

_LOG_2PI = math.log(2.0 * math.pi)


def _gaussian_log_prob(maha, log_det, d):
    """-1/2 (D log 2 pi + log|Sigma| + Mahalanobis^2)."""
    return -0.5 * (d * _LOG_2PI + log_det + maha)


def _check_spd(cov, what: str) -> None:
    """Symmetric positive definite, checked on concrete (..., D, D) arrays."""
    v.check_finite("covariances", cov)
    values = v.host_values(cov)
    if values is None:
        return
    for index, matrix in enumerate(values.reshape(-1, *values.shape[-2:])):
        scale = np.max(np.abs(matrix))
        if np.max(np.abs(matrix - matrix.T)) > 100 * np.finfo(matrix.dtype).eps * scale:
            raise ValueError(f"covariances must be symmetric; {what} {index} is not.")
        try:
            np.linalg.cholesky(matrix)
        except np.linalg.LinAlgError:
            raise ValueError(
                f"covariances must be positive definite; the Cholesky factorization of {what} {index} "
                "failed. Add a ridge (reg_covar * I) or check for collinear features."
            ) from None


def _regularized(cov, reg):
    """cov + reg * I, exactly symmetric (its lower triangle mirrored), the diagonal first clamped at 0.

    The estimate scatter / n - d d^T can round a zero variance to a tiny
    negative number; a variance is never negative, and the clamp keeps
    cov + reg * I positive definite. Mirroring the lower triangle makes the
    result symmetric whatever order the arithmetic ran in.
    """
    cov = jnp.tril(cov) + jnp.swapaxes(jnp.tril(cov, -1), -1, -2)
    diagonal = jnp.diagonal(cov, axis1=-2, axis2=-1)
    eye = jnp.eye(cov.shape[-1], dtype=cov.dtype)
    return cov + (jnp.maximum(-diagonal, 0.0) + reg)[..., None] * eye


def _differences(xt, ref):
    """y_ik = x_i - ref_k as (K, D, N)."""
    return xt[None, :, :] - ref[:, :, None]


_POINT_BLOCK = 128  # points per step of ``_diagonal_moments``


def _diagonal_moments(xt, ref, wr):
    """(sum_i wr_ik y_ik, sum_i wr_ik y_ik^2), both (K, D), for y_ik = x_i - ref_k.

    One loop step per block of 128 points (two per iteration of the compiled loop) adds its
    (K, D, 128) terms to two running sums in a single fused pass (no reduction inside the loop, no
    K x D x N buffer);
    the 128 lanes are summed at the end: on a CPU, faster than matrix-vector
    products per component (benchmarks/README.md, "Measurements the code relies on").
    Points are padded with zero weight to a whole number of blocks.
    """
    (d, n), k = xt.shape, ref.shape[0]
    block = min(_POINT_BLOCK, n)
    pad = (0, 0), (0, -n % block)
    xs = jnp.pad(xt, pad).reshape(d, -1, block)
    ws = jnp.pad(wr, pad).reshape(k, -1, block)

    def add_block(j, sums):
        y = xs[:, j][None] - ref[:, :, None]
        wy = ws[:, j][:, None, :] * y
        return sums[0] + wy, sums[1] + wy * y

    zeros = jnp.zeros((k, d, block), jnp.result_type(xt, ref, wr))
    first, second = jax.lax.fori_loop(0, xs.shape[1], add_block, (zeros, zeros), unroll=2)
    return jnp.sum(first, axis=-1), jnp.sum(second, axis=-1)


def _cholesky(cov):
    """The lower Cholesky factor L of cov = L L^T (..., D, D), one column per step of plain array ops.

    Column j: s = cov[:, j] - L L[j, :]^T, L[j, j] = sqrt(s_j), L[i, j] = s_i / L[j, j] for i > j.
    Written out (not ``jnp.linalg.cholesky``) so that EM programs hold no LAPACK custom call, which
    jaxlib runs on XLA's intra-op thread pool and which can deadlock two programs running at once
    (``jaxmix.inference.threads``). A matrix that is not positive definite gives NaN, as LAPACK's does in JAX;
    the input is symmetrized first, as ``jnp.linalg.cholesky`` does.
    """
    d = cov.shape[-1]
    index = jnp.arange(d)
    cov = 0.5 * (cov + jnp.swapaxes(cov, -1, -2))  # as jnp.linalg.cholesky: a symmetric gradient

    def column(j, chol):
        s = cov[..., :, j] - jnp.einsum("...ik,...k->...i", chol, chol[..., j, :])
        pivot = jnp.sqrt(s[..., j])[..., None]
        return chol.at[..., :, j].set(jnp.where(index > j, s / pivot, jnp.where(index == j, pivot, 0.0)))

    return jax.lax.fori_loop(0, d, column, jnp.zeros_like(cov))


def _inverse_cholesky(cov):
    """``(L^{-1}, L)`` for cov = L L^T (batched); L^{-1} by forward substitution, one row per step:
    row i of L^{-1} is (e_i - L[i, :] L^{-1}) / L[i, i] (rows below i still zero)."""
    chol = _cholesky(cov)
    eye = jnp.broadcast_to(jnp.eye(cov.shape[-1], dtype=cov.dtype), cov.shape)

    def row(i, inv):
        new = eye[..., i, :] - jnp.einsum("...k,...kj->...j", chol[..., i, :], inv)
        return inv.at[..., i, :].set(new / chol[..., i, i][..., None])

    return jax.lax.fori_loop(0, cov.shape[-1], row, jnp.zeros_like(cov)), chol


def _mahalanobis(xt, mu, inv_chol):
    """||L_k^{-1} (x_i - mu_k)||^2, (K, N), for xt (D, N): one (D, D) x (D, N) product per component."""

    def component(args):
        inv_chol_k, mu_k = args
        return jnp.sum(jnp.square(inv_chol_k @ (xt - mu_k[:, None])), axis=0)

    return jax.lax.map(component, (inv_chol, mu))


def _log_cholesky(cov):
    """The Cholesky factor of cov with its diagonal replaced by its log (strict upper part zero)."""
    chol = jnp.linalg.cholesky(cov)
    diagonal = jnp.diagonal(chol, axis1=-2, axis2=-1)
    eye = jnp.eye(cov.shape[-1], dtype=cov.dtype)
    return chol + (jnp.log(diagonal) - diagonal)[..., None] * eye


def _from_log_cholesky(u):
    """L L^T with L = strict lower part of u + diag(exp(diag u)); inverse of ``_log_cholesky``."""
    eye = jnp.eye(u.shape[-1], dtype=u.dtype)
    chol = jnp.tril(u, -1) + jnp.exp(jnp.diagonal(u, axis1=-2, axis2=-1))[..., None] * eye
    return chol @ jnp.swapaxes(chol, -1, -2)


class Full:
    name = "full"
    compiler_options = FAST_COMPILE_OPTIONS

    @staticmethod
    def shape(k, d):
        return (k, d, d)

    @staticmethod
    def validate(cov, k, d):
        v.check_shape("covariances", cov, (k, d, d))
        _check_spd(cov, "component")

    @staticmethod
    def log_prob(xt, mu, cov):
        inv_chol, chol = _inverse_cholesky(cov)
        log_det = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)
        return _gaussian_log_prob(_mahalanobis(xt, mu, inv_chol), log_det[:, None], mu.shape[1])

    @staticmethod
    def moments(xt, ref, wr):
        # Per component: y = x - ref_k (D, N), sums_k = (wr_k y) 1 and scatter_k = (wr_k y) y^T.
        def component(args):
            ref_k, wr_k = args
            y = xt - ref_k[:, None]
            wy = wr_k * y
            return jnp.sum(wy, axis=1), wy @ y.T

        return jax.lax.map(component, (ref, wr))

    @staticmethod
    def recenter(scatter, nk, sums, delta):
        outer = sums[:, :, None] * delta[:, None, :]
        return scatter - outer - jnp.swapaxes(outer, 1, 2) + nk[:, None, None] * delta[:, :, None] * delta[:, None, :]

    @staticmethod
    def estimate(scatter, nk, d, reg):
        return _regularized(scatter / nk[:, None, None] - d[:, :, None] * d[:, None, :], reg)

    @staticmethod
    def scale_noise(cov, z, eps):
        return jnp.einsum("nde,ne->nd", jnp.linalg.cholesky(cov)[z], eps)

    to_unconstrained = staticmethod(_log_cholesky)
    from_unconstrained = staticmethod(_from_log_cholesky)

    @staticmethod
    def n_parameters(k, d):
        return k * d * (d + 1) // 2


class Tied:
    name = "tied"
    compiler_options = FAST_COMPILE_OPTIONS

    @staticmethod
    def shape(k, d):
        return (d, d)

    @staticmethod
    def validate(cov, k, d):
        v.check_shape("covariances", cov, (d, d))
        _check_spd(cov, "tied covariance")

    @staticmethod
    def log_prob(xt, mu, cov):
        # The full type's per-component products with the one factor: the K x D x N differences formed
        # at once and multiplied together took twice the time (their reshaped copies).
        k, d = mu.shape
        inv_chol, chol = _inverse_cholesky(cov)
        log_det = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol)))
        return _gaussian_log_prob(_mahalanobis(xt, mu, jnp.broadcast_to(inv_chol, (k, d, d))), log_det, d)

    @staticmethod
    def moments(xt, ref, wr):
        # sum_k sum_i wr_ik y_ik y_ik^T: the full type's per-component scatters, summed.
        sums, scatter = Full.moments(xt, ref, wr)
        return sums, jnp.sum(scatter, axis=0)

    @staticmethod
    def recenter(scatter, nk, sums, delta):
        outer = jnp.einsum("kd,ke->de", sums, delta)
        return scatter - outer - outer.T + jnp.einsum("k,kd,ke->de", nk, delta, delta)

    @staticmethod
    def estimate(scatter, nk, d, reg):
        return _regularized((scatter - jnp.einsum("k,kd,ke->de", nk, d, d)) / jnp.sum(nk), reg)

    @staticmethod
    def scale_noise(cov, z, eps):
        return eps @ jnp.linalg.cholesky(cov).T

    to_unconstrained = staticmethod(_log_cholesky)
    from_unconstrained = staticmethod(_from_log_cholesky)

    @staticmethod
    def n_parameters(k, d):
        return d * (d + 1) // 2


class Diag:
    name = "diag"

    @staticmethod
    def shape(k, d):
        return (k, d)

    @staticmethod
    def validate(cov, k, d):
        v.check_shape("covariances", cov, (k, d))
        v.check_finite("covariances", cov)
        v.check_positive("covariances (diagonal variances)", cov)

    @staticmethod
    def log_prob(xt, mu, cov):
        d = mu.shape[1]
        maha = scaled_squared_distances(xt, mu, 1.0 / cov)
        return _gaussian_log_prob(maha, jnp.sum(jnp.log(cov), axis=-1)[:, None], d)

    moments = staticmethod(_diagonal_moments)

    @staticmethod
    def recenter(scatter, nk, sums, delta):
        return scatter - 2.0 * sums * delta + nk[:, None] * jnp.square(delta)

    @staticmethod
    def estimate(scatter, nk, d, reg):
        return jnp.maximum(scatter / nk[:, None] - jnp.square(d), 0.0) + reg

    @staticmethod
    def scale_noise(cov, z, eps):
        return jnp.sqrt(cov[z]) * eps

    to_unconstrained = staticmethod(jnp.log)
    from_unconstrained = staticmethod(jnp.exp)

    @staticmethod
    def n_parameters(k, d):
        return k * d


class Spherical:
    name = "spherical"

    @staticmethod
    def shape(k, d):
        return (k,)

    @staticmethod
    def validate(cov, k, d):
        v.check_shape("covariances", cov, (k,))
        v.check_finite("covariances", cov)
        v.check_positive("covariances (spherical variances)", cov)

    @staticmethod
    def log_prob(xt, mu, cov):
        d = mu.shape[1]
        maha = exact_squared_distances(xt, mu) / cov[:, None]
        return _gaussian_log_prob(maha, d * jnp.log(cov)[:, None], d)

    moments = staticmethod(_diagonal_moments)

    recenter = Diag.recenter

    @staticmethod
    def estimate(scatter, nk, d, reg):
        return jnp.mean(Diag.estimate(scatter, nk, d, reg), axis=-1)

    @staticmethod
    def scale_noise(cov, z, eps):
        return jnp.sqrt(cov[z])[:, None] * eps

    to_unconstrained = staticmethod(jnp.log)
    from_unconstrained = staticmethod(jnp.exp)

    @staticmethod
    def n_parameters(k, d):
        return k


class Identity:
    """Sigma_k = I for every component: only weights and means are learned."""

    name = "identity"

    @staticmethod
    def shape(k, d):
        return None

    @staticmethod
    def validate(cov, k, d):
        if cov is not None:
            raise ValueError(
                f"covariances must be None for covariance_type='identity', got an array of shape "
                f"{jnp.shape(cov)}."
            )

    @staticmethod
    def log_prob(xt, mu, cov):
        d = mu.shape[1]
        return _gaussian_log_prob(exact_squared_distances(xt, mu), 0.0, d)

    @staticmethod
    def moments(xt, ref, wr):
        return jnp.sum(wr[:, None, :] * _differences(xt, ref), axis=2), None

    @staticmethod
    def estimate(scatter, nk, d, reg):
        return None

    recenter = estimate  # None: the identity has no scatter

    @staticmethod
    def scale_noise(cov, z, eps):
        return eps

    to_unconstrained = staticmethod(lambda cov: None)
    from_unconstrained = staticmethod(lambda u: None)

    @staticmethod
    def n_parameters(k, d):
        return 0


COVARIANCE_TYPES = {cls.name: cls for cls in (Full, Diag, Spherical, Tied, Identity)}
