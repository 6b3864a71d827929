"""The five Gaussian covariance structures, one small class each.

A ``GaussianMixture`` delegates everything that depends on the covariance
structure to one of these (looked up in ``COVARIANCE_TYPES``), so the mixture
code holds no if/else chains over covariance types. Shapes follow
scikit-learn: full (K, D, D), diag (K, D), spherical (K,), tied (D, D),
identity ``None`` (Sigma_k = I, the lecture's simplified case).

Each class provides, for means ``mu`` (K, D) and covariances ``cov``:

- ``log_prob(x, mu, cov)``: log N(x_i; mu_k, Sigma_k), shape (N, K), through
  Cholesky factors and triangular solves (MATH.md section 5);
- ``scatter(y, wr)``: the second-moment statistic of centered data
  y_ik = x_i - ref_k weighted by wr_ik, in the form ``estimate`` needs;
- ``estimate(scatter, nk, d, reg)``: the M-step covariance
  Sigma_k = sum_i r_ik (x_i - mu_k)(x_i - mu_k)^T / n_k + reg * I, where
  d_k = mu_k - ref_k corrects the scatter about ref_k to one about mu_k;
- ``scale_noise(cov, z, eps)``: Sigma_{z}^{1/2} eps for sampling;
- ``n_parameters(k, d)`` as scikit-learn counts them;
- ``shape(k, d)`` and ``validate(cov, k, d)`` for the public boundary.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular

from jaxmix import _validation as v

_LOG_2PI = math.log(2.0 * math.pi)


def _gaussian_log_prob(maha, log_det, d):
    """-1/2 (D log 2 pi + log|Sigma| + Mahalanobis^2)."""
    return -0.5 * (d * _LOG_2PI + log_det + maha)


def _common_center(mu):
    # Mahalanobis distances are invariant to a common shift of x and mu;
    # centering both on the mean of the means keeps float32 products small.
    return jax.lax.stop_gradient(jnp.mean(mu, axis=0))


def _check_spd(cov, what: str) -> None:
    """Symmetric positive definite, checked on concrete (..., D, D) arrays."""
    if not v.is_concrete(cov):
        return
    v.check_finite("covariances", cov)
    asym = jnp.max(jnp.abs(cov - jnp.swapaxes(cov, -1, -2)), axis=(-1, -2))
    scale = jnp.max(jnp.abs(cov), axis=(-1, -2))
    tol = 100 * jnp.finfo(cov.dtype).eps
    bad = jnp.nonzero(jnp.atleast_1d(asym > tol * scale))[0]
    if bad.size:
        raise ValueError(f"covariances must be symmetric; {what} {int(bad[0])} is not.")
    chol_ok = jnp.all(jnp.isfinite(jnp.linalg.cholesky(cov)), axis=(-1, -2))
    bad = jnp.nonzero(jnp.atleast_1d(~chol_ok))[0]
    if bad.size:
        raise ValueError(
            f"covariances must be positive definite; the Cholesky factorization of {what} "
            f"{int(bad[0])} failed. Add a ridge (reg_covar * I) or check for collinear features."
        )


class Full:
    name = "full"

    @staticmethod
    def shape(k, d):
        return (k, d, d)

    @staticmethod
    def validate(cov, k, d):
        v.check_shape("covariances", cov, (k, d, d))
        _check_spd(cov, "component")

    @staticmethod
    def log_prob(x, mu, cov):
        k, d = mu.shape
        chol = jnp.linalg.cholesky(cov)
        eye = jnp.broadcast_to(jnp.eye(d, dtype=cov.dtype), cov.shape)
        # prec_chol[k] = L_k^{-T}: ||(x - mu_k) L_k^{-T}||^2 is the Mahalanobis distance.
        prec_chol = jnp.swapaxes(solve_triangular(chol, eye, lower=True), -1, -2)
        c = _common_center(mu)
        # One GEMM (N, D) x (D, K*D) for all components at once.
        y = (x - c) @ jnp.transpose(prec_chol, (1, 0, 2)).reshape(d, k * d)
        m = jnp.einsum("kd,kde->ke", mu - c, prec_chol).reshape(k * d)
        maha = jnp.sum(jnp.square(y - m).reshape(x.shape[0], k, d), axis=-1)
        log_det = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)
        return _gaussian_log_prob(maha, log_det, d)

    @staticmethod
    def scatter(y, wr):
        return jnp.einsum("nk,nkd,nke->kde", wr, y, y)

    @staticmethod
    def estimate(scatter, nk, d, reg):
        cov = scatter / nk[:, None, None] - d[:, :, None] * d[:, None, :]
        return cov + reg * jnp.eye(d.shape[-1], dtype=cov.dtype)

    @staticmethod
    def scale_noise(cov, z, eps):
        return jnp.einsum("nde,ne->nd", jnp.linalg.cholesky(cov)[z], eps)

    @staticmethod
    def n_parameters(k, d):
        return k * d * (d + 1) // 2


class Tied:
    name = "tied"

    @staticmethod
    def shape(k, d):
        return (d, d)

    @staticmethod
    def validate(cov, k, d):
        v.check_shape("covariances", cov, (d, d))
        _check_spd(cov, "the tied covariance")

    @staticmethod
    def log_prob(x, mu, cov):
        d = mu.shape[1]
        chol = jnp.linalg.cholesky(cov)
        c = _common_center(mu)
        y = solve_triangular(chol, (x - c).T, lower=True).T
        m = solve_triangular(chol, (mu - c).T, lower=True).T
        maha = jnp.sum(jnp.square(y[:, None, :] - m[None, :, :]), axis=-1)
        log_det = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol)))
        return _gaussian_log_prob(maha, log_det, d)

    @staticmethod
    def scatter(y, wr):
        return jnp.einsum("nk,nkd,nke->de", wr, y, y)

    @staticmethod
    def estimate(scatter, nk, d, reg):
        cov = (scatter - jnp.einsum("k,kd,ke->de", nk, d, d)) / jnp.sum(nk)
        return cov + reg * jnp.eye(d.shape[-1], dtype=cov.dtype)

    @staticmethod
    def scale_noise(cov, z, eps):
        return eps @ jnp.linalg.cholesky(cov).T

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
    def log_prob(x, mu, cov):
        d = mu.shape[1]
        maha = jnp.sum(jnp.square(x[:, None, :] - mu[None]) / cov[None], axis=-1)
        return _gaussian_log_prob(maha, jnp.sum(jnp.log(cov), axis=-1), d)

    @staticmethod
    def scatter(y, wr):
        return jnp.einsum("nk,nkd->kd", wr, jnp.square(y))

    @staticmethod
    def estimate(scatter, nk, d, reg):
        return scatter / nk[:, None] - jnp.square(d) + reg

    @staticmethod
    def scale_noise(cov, z, eps):
        return jnp.sqrt(cov[z]) * eps

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
    def log_prob(x, mu, cov):
        d = mu.shape[1]
        sq = jnp.sum(jnp.square(x[:, None, :] - mu[None]), axis=-1)
        return _gaussian_log_prob(sq / cov, d * jnp.log(cov), d)

    scatter = Diag.scatter

    @staticmethod
    def estimate(scatter, nk, d, reg):
        return jnp.mean(Diag.estimate(scatter, nk, d, reg), axis=-1)

    @staticmethod
    def scale_noise(cov, z, eps):
        return jnp.sqrt(cov[z])[:, None] * eps

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
    def log_prob(x, mu, cov):
        d = mu.shape[1]
        sq = jnp.sum(jnp.square(x[:, None, :] - mu[None]), axis=-1)
        return _gaussian_log_prob(sq, 0.0, d)

    @staticmethod
    def scatter(y, wr):
        return None

    @staticmethod
    def estimate(scatter, nk, d, reg):
        return None

    @staticmethod
    def scale_noise(cov, z, eps):
        return eps

    @staticmethod
    def n_parameters(k, d):
        return 0


COVARIANCE_TYPES = {cls.name: cls for cls in (Full, Diag, Spherical, Tied, Identity)}
