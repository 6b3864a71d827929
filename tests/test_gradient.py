"""Gradient fitting (``jaxmix.gradient``) against docs/maths.md section 4 and independent references.

- Parameterization: ``from_unconstrained(to_unconstrained(p)) == p`` for every
  covariance type and the exponential mixture (float32 rtol 1e-5, float64
  1e-12); ``to_unconstrained(from_unconstrained(u)) == u`` for random u, where
  the weight logits are only defined up to an additive constant (softmax is not
  injective) and full/tied factors only through their lower triangle; both maps
  against a NumPy transcription of the formulas; gradients through
  ``from_unconstrained`` finite for near-singular covariances (eigenvalues 1e-8
  .. 1 in float64, 1e-5 .. 1 in float32).
- Fisher's identity (float64, rtol 1e-8): at q = posterior(theta) held fixed,
  grad_u ELBO(q, from_unconstrained(u)) = grad_u ``mean_log_likelihood``, and
  both equal the analytic gradient written out in NumPy (weighted, too).
- At an EM fixed point the gradient of the mean log-likelihood vanishes
  (|g| / |g_start| < 1e-4).
- ``m_step_gradient`` (L-BFGS; Adam looser) lands on the closed-form M-step of
  the same responsibilities, computed here in NumPy and by ``model.m_step``.
- EM and Adam (with a decaying learning rate) from the same start reach the same
  mean log-likelihood; L-BFGS too, monotonically. Integer sample weights equal
  repeated rows, zero weights remove rows.
- float32 robustness: D = 10, K = 8 full covariances from a poor start.
- Minibatches: history layout, determinism in the key, argument errors.
- A second call with the same model, optimizer object and shapes does not retrace.
- Tests marked LIBRARY BUG in their docstrings expose defects found while
  writing this file (zero weights with minibatches, a zero-weight component in
  the start, history_stride=0); they fail until the library is fixed.

JAX compiles once per (model, optimizer object, n_steps, shapes); the tests
share one data set (N = 400, K = 3, D = 2) and module-level optimizers so that
compilations are reused across tests and the file stays fast.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy.special import logsumexp, softmax
from scipy.stats import multivariate_normal

from jaxmix import (
    ExponentialMixture,
    ExponentialMixtureParams,
    ExponentialMixtureUnconstrained,
    FuzzyCMeans,
    GaussianMixture,
    GaussianMixtureParams,
    GaussianMixtureUnconstrained,
    GradientResult,
    KMeans,
    fit_em,
    fit_gradient,
    initialize,
    m_step_gradient,
)
from jaxmix.inference import gradient
from jaxmix.inference.lower_bound import elbo_of_log_joint

COV_TYPES = ("full", "diag", "spherical", "tied", "identity")
FAMILIES = COV_TYPES + ("exponential",)
K, D, N = 3, 2, 400
DTYPES = ("float32", "float64")

TRUE_MEANS = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
TRUE_RATES = np.array([0.5, 4.0, 40.0])
EM_ITERS = 200


# -- independent helpers (NumPy / SciPy only) ------------------------------------------


def use_dtype(request, dtype):
    """Enter float64 mode (the ``x64`` fixture) when the test runs in float64."""
    if dtype == "float64":
        request.getfixturevalue("x64")
    return np.dtype(dtype)


def random_spd(rng, d, size=()):
    a = rng.normal(size=(*size, d, d))
    s = a @ np.swapaxes(a, -1, -2) / d + 0.5 * np.eye(d)
    return 0.5 * (s + np.swapaxes(s, -1, -2))


def random_cov(cov_type, rng, k=K, d=D):
    return {
        "full": lambda: random_spd(rng, d, (k,)),
        "diag": lambda: rng.uniform(0.5, 2.0, (k, d)),
        "spherical": lambda: rng.uniform(0.5, 2.0, k),
        "tied": lambda: random_spd(rng, d),
        "identity": lambda: None,
    }[cov_type]()


def random_params(family, rng, k=K, d=D):
    weights = rng.dirichlet(np.full(k, 3.0))
    if family == "exponential":
        return ExponentialMixtureParams(weights, np.exp(rng.uniform(np.log(0.2), np.log(5.0), k)))
    return GaussianMixtureParams(weights, rng.normal(0.0, 2.0, (k, d)), random_cov(family, rng, k, d))


def random_unconstrained(family, rng, k=K, d=D):
    """Random free parameters; full/tied factors have random (ignored) upper parts too."""
    logits = rng.normal(0.0, 1.0, k)
    if family == "exponential":
        return ExponentialMixtureUnconstrained(logits, rng.normal(0.0, 1.0, k))
    cov = {
        "full": lambda: rng.normal(0.0, 0.3, (k, d, d)),
        "diag": lambda: rng.normal(0.0, 1.0, (k, d)),
        "spherical": lambda: rng.normal(0.0, 1.0, k),
        "tied": lambda: rng.normal(0.0, 0.3, (d, d)),
        "identity": lambda: None,
    }[family]()
    return GaussianMixtureUnconstrained(logits, rng.normal(0.0, 2.0, (k, d)), cov)


def np_cholesky_factor(u):
    """L = strict lower part of u + diag(exp(diag u)), for (..., D, D)."""
    d = u.shape[-1]
    return np.tril(u, -1) + np.exp(np.diagonal(u, axis1=-2, axis2=-1))[..., None] * np.eye(d)


def np_from_unconstrained(family, u):
    """The parameterization written out: softmax, L L^T, exp."""
    weights = softmax(np.asarray(u.logits, np.float64))
    if family == "exponential":
        return ExponentialMixtureParams(weights, np.exp(np.asarray(u.log_rates, np.float64)))
    cov = None if u.covariances is None else np.asarray(u.covariances, np.float64)
    if family in ("full", "tied"):
        chol = np_cholesky_factor(cov)
        cov = chol @ np.swapaxes(chol, -1, -2)
    elif family in ("diag", "spherical"):
        cov = np.exp(cov)
    return GaussianMixtureParams(weights, np.asarray(u.means, np.float64), cov)


def np_to_unconstrained(family, params):
    logits = np.log(np.asarray(params.weights, np.float64))
    if family == "exponential":
        return ExponentialMixtureUnconstrained(logits, np.log(np.asarray(params.rates, np.float64)))
    cov = params.covariances
    if family in ("full", "tied"):
        chol = np.linalg.cholesky(np.asarray(cov, np.float64))
        d = chol.shape[-1]
        cov = chol + (np.log(np.diagonal(chol, axis1=-2, axis2=-1)) - np.diagonal(chol, axis1=-2, axis2=-1))[
            ..., None] * np.eye(d)
    elif family in ("diag", "spherical"):
        cov = np.log(np.asarray(cov, np.float64))
    return GaussianMixtureUnconstrained(logits, np.asarray(params.means, np.float64), cov)


def dense_covariances(family, cov, k, d):
    return {
        "full": lambda: cov,
        "diag": lambda: np.stack([np.diag(c) for c in cov]),
        "spherical": lambda: cov[:, None, None] * np.eye(d),
        "tied": lambda: np.broadcast_to(cov, (k, d, d)),
        "identity": lambda: np.broadcast_to(np.eye(d), (k, d, d)),
    }[family]()


def np_log_joint(family, params, x):
    """log w_k + log p_k(x_i) with SciPy, (N, K)."""
    weights = np.asarray(params.weights, np.float64)
    x = np.asarray(x, np.float64)
    if family == "exponential":
        rates = np.asarray(params.rates, np.float64)
        return np.log(weights) + np.log(rates) - x.reshape(-1, 1) * rates
    means = np.asarray(params.means, np.float64)
    k, d = means.shape
    cov = None if params.covariances is None else np.asarray(params.covariances, np.float64)
    dense = dense_covariances(family, cov, k, d)
    log_pdf = [multivariate_normal(m, c).logpdf(x) for m, c in zip(means, dense)]
    return np.log(weights) + np.stack(log_pdf, axis=1)


def np_posterior(family, params, x):
    log_joint = np_log_joint(family, params, x)
    return np.exp(log_joint - logsumexp(log_joint, axis=1, keepdims=True))


def np_mean_log_likelihood(family, params, x, w):
    lp = logsumexp(np_log_joint(family, params, x), axis=1)
    return np.sum(w * lp) / np.sum(w)


def np_grad_mean_log_likelihood(family, params, x, w):
    """Analytic d/du of (1/sum w) sum_i w_i log p(x_i), in the unconstrained coordinates.

    With r_ik the posterior and c_ik = w_i r_ik / sum w: d/dlogits_k = sum_i c_ik - w_k (sum_i
    c_ik = n_k); d/dmu_k = Sigma_k^-1 sum_i c_ik y_ik (y = x - mu); d/dSigma_k = G_k =
    1/2 sum_i c_ik (P y y^T P - P) (P = Sigma^-1), which becomes 2 G L (times L_jj on
    the log diagonal, zero above it) for Sigma = L L^T, sigma^2 G_dd for a log variance and
    s tr G for a log spherical variance s. Exponential: d/dlog lambda_k = sum_i c_ik (1 - lambda_k x_i).
    """
    x = np.asarray(x, np.float64)
    c = w[:, None] * np_posterior(family, params, x) / np.sum(w)
    nk = c.sum(axis=0)
    weights = np.asarray(params.weights, np.float64)
    g_logits = nk - weights
    if family == "exponential":
        rates = np.asarray(params.rates, np.float64)
        return ExponentialMixtureUnconstrained(g_logits, nk - rates * (c.T @ x.reshape(-1)))
    means = np.asarray(params.means, np.float64)
    k, d = means.shape
    cov = None if params.covariances is None else np.asarray(params.covariances, np.float64)
    dense = dense_covariances(family, cov, k, d)
    g_means = np.zeros((k, d))
    g_sigma = np.zeros((k, d, d))
    for j in range(k):
        prec = np.linalg.inv(dense[j])
        y = x - means[j]
        g_means[j] = prec @ (c[:, j] @ y)
        py = y @ prec
        g_sigma[j] = 0.5 * ((c[:, j, None] * py).T @ py - nk[j] * prec)
    if family in ("full", "tied"):
        g = g_sigma if family == "full" else g_sigma.sum(axis=0)
        chol = np.linalg.cholesky(cov)
        g_chol = 2.0 * g @ chol
        g_cov = np.tril(g_chol, -1) + (np.diagonal(g_chol, axis1=-2, axis2=-1)
                                        * np.diagonal(chol, axis1=-2, axis2=-1))[..., None] * np.eye(d)
    elif family == "diag":
        g_cov = cov * np.diagonal(g_sigma, axis1=-2, axis2=-1)
    elif family == "spherical":
        g_cov = cov * np.trace(g_sigma, axis1=-2, axis2=-1)
    else:
        g_cov = None
    return GaussianMixtureUnconstrained(g_logits, g_means, g_cov)


def np_m_step(family, q, x):
    """Closed-form maximizer of sum_ik q_ik log p(x_i, k) (docs/maths.md sections 3 and 5), no ridge."""
    x = np.asarray(x, np.float64)
    nk = q.sum(axis=0)
    weights = nk / nk.sum()
    if family == "exponential":
        return ExponentialMixtureParams(weights, nk / (q.T @ x.reshape(-1)))
    means = (q.T @ x) / nk[:, None]
    scatter = np.stack([(q[:, j, None] * (x - means[j])).T @ (x - means[j]) for j in range(len(nk))])
    cov = {
        "full": lambda: scatter / nk[:, None, None],
        "diag": lambda: np.diagonal(scatter, axis1=1, axis2=2) / nk[:, None],
        "spherical": lambda: np.trace(scatter, axis1=1, axis2=2) / (nk * x.shape[1]),
        "tied": lambda: scatter.sum(axis=0) / nk.sum(),
        "identity": lambda: None,
    }[family]()
    return GaussianMixtureParams(weights, means, cov)


def assert_tree_allclose(actual, expected, rtol, atol=0.0):
    for name, a, b in zip(expected._fields, actual, expected):
        if b is None:
            assert a is None, name
            continue
        np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=rtol, atol=atol,
                                   err_msg=name)


def tree_norm(tree):
    return float(np.sqrt(sum(np.sum(np.square(np.asarray(leaf))) for leaf in jax.tree.leaves(tree))))


# -- the shared problem (N = 400, K = 3; well separated) ----------------------------


def make_data(family, seed=0, n=N):
    rng = np.random.default_rng([FAMILIES.index(family), seed])
    z = rng.choice(K, n, p=[0.3, 0.3, 0.4])
    if family == "exponential":
        return rng.exponential(1.0 / TRUE_RATES[z])[:, None]  # (N, 1): what the unchecked functions take
    shape = np.array([[1.0, 0.3], [0.0, 0.7]])
    return TRUE_MEANS[z] + rng.normal(size=(n, D)) @ shape


def make_model(family, reg_covar=0.0):
    # reg_covar = 0: the closed-form M-step adds reg_covar * I to every covariance,
    # while the likelihood (and the ELBO) that the gradient code maximizes has no
    # ridge; without it EM's fixed points are exactly the stationary points of the
    # mean log-likelihood.
    if family == "exponential":
        return ExponentialMixture(K)
    return GaussianMixture(K, family, reg_covar=reg_covar)


def poor_start(family, seed=0):
    """A start away from the optimum but in its basin: equal weights, shifted means, broad covariances."""
    rng = np.random.default_rng([FAMILIES.index(family), seed, 99])
    weights = np.full(K, 1.0 / K)
    if family == "exponential":
        return ExponentialMixtureParams(weights, TRUE_RATES * np.exp(rng.uniform(-0.7, 0.7, K)))
    cov = {
        "full": np.broadcast_to(2.0 * np.eye(D), (K, D, D)).copy(),
        "diag": np.full((K, D), 2.0),
        "spherical": np.full(K, 2.0),
        "tied": 2.0 * np.eye(D),
        "identity": None,
    }[family]
    return GaussianMixtureParams(weights, TRUE_MEANS + rng.normal(0.0, 1.0, (K, D)), cov)


def _gradients(model, u, x, q, w):
    """(w-weighted mean log-likelihood, its u-gradient, grad_u ELBO(q, from_unconstrained(u)) at fixed q)."""
    g_elbo = jax.grad(lambda u: elbo_of_log_joint(model.log_joint(model.from_unconstrained(u), x), q))(u)
    value, g_ll = jax.value_and_grad(gradient.mean_log_likelihood, argnums=1)(model, u, x, w)
    return value, g_ll, g_elbo


# One compilation per model, dtype and shape (N = 400, K = 3, D = 2 throughout),
# shared by the Fisher, EM-fixed-point and near-singular tests.
gradients = jax.jit(_gradients, static_argnums=0)


def grad_mean_ll(model, u, x, w):
    q = jnp.full((x.shape[0], model.n_components), 1.0 / model.n_components, x.dtype)
    return gradients(model, u, x, q, w)[:2]


# Module-level optimizers: the optimizer is a static argument of the jitted
# loop, so one object per use keeps the compilations shared between tests.
N_STEPS = 500
KEY = jax.random.key(0)  # full-batch fits draw no minibatches; the key is unused
# A user's choice for Adam: a large step early, annealed to 1% by the end so that
# the iterates stop oscillating around the optimum (constant-step Adam hovers at
# a distance of order the learning rate).
ADAM = optax.adam(optax.cosine_decay_schedule(init_value=0.1, decay_steps=N_STEPS, alpha=0.01))
LBFGS = optax.lbfgs()


# -- 1. the parameterization --------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("family", FAMILIES)
def test_from_to_round_trip(request, family, dtype):
    dtype = use_dtype(request, dtype)
    rng = np.random.default_rng([FAMILIES.index(family), 1])
    model = make_model(family)
    params = jax.tree.map(lambda a: jnp.asarray(a, dtype), random_params(family, rng))

    u = model.to_unconstrained(params)
    assert all(leaf.dtype == dtype for leaf in jax.tree.leaves(u))
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    # to_unconstrained against the formulas (log w, log-Cholesky, log variances, log rates).
    assert_tree_allclose(u, np_to_unconstrained(family, params), **tol)

    back = model.from_unconstrained(u)
    assert type(back) is type(params)
    assert all(leaf.dtype == dtype for leaf in jax.tree.leaves(back))
    assert_tree_allclose(back, params, **tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("family", FAMILIES)
def test_to_from_round_trip(request, family, dtype):
    dtype = use_dtype(request, dtype)
    rng = np.random.default_rng([FAMILIES.index(family), 2])
    model = make_model(family)
    u = jax.tree.map(lambda a: jnp.asarray(a, dtype), random_unconstrained(family, rng))
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)

    params = model.from_unconstrained(u)
    assert_tree_allclose(params, np_from_unconstrained(family, u), **tol)
    np.testing.assert_allclose(np.sum(np.asarray(params.weights, np.float64)), 1.0, rtol=tol["rtol"])

    back = model.to_unconstrained(params)
    assert all(leaf.dtype == dtype for leaf in jax.tree.leaves(back))
    # softmax(logits + c) = softmax(logits): the logits come back normalized to
    # logsumexp = 0; the factors come back lower triangular (the upper part of u
    # never enters L).
    u64 = jax.tree.map(lambda a: np.asarray(a, np.float64), u)
    expected = u64._replace(logits=u64.logits - logsumexp(u64.logits))
    if family in ("full", "tied"):
        expected = expected._replace(covariances=np.tril(u64.covariances))
    assert_tree_allclose(back, expected, **tol)


def near_singular_problem(cov_type, dtype, rng):
    """Covariances with eigenvalues `smallest` and 1 (condition number 1e8 or 1e5), data sampled from them."""
    smallest = 1e-8 if dtype == np.float64 else 1e-5
    k, d, n = K, D, N  # the shared shapes: the gradient's compilation is reused
    eigs = np.array([smallest, 1.0])

    def rotated():
        q, _ = np.linalg.qr(rng.normal(size=(d, d)))
        return (q * eigs) @ q.T

    cov = {
        "full": lambda: np.stack([rotated() for _ in range(k)]),
        "tied": rotated,
        "diag": lambda: np.stack([rng.permutation(eigs) for _ in range(k)]),
        "spherical": lambda: np.array([smallest, np.sqrt(smallest), 1.0]),
    }[cov_type]()
    cov = 0.5 * (cov + np.swapaxes(cov, -1, -2)) if cov_type in ("full", "tied") else cov
    means = rng.normal(0.0, 3.0, (k, d))
    dense = dense_covariances(cov_type, cov, k, d)
    z = rng.integers(0, k, n)
    chol = np.linalg.cholesky(dense)
    x = means[z] + np.einsum("nde,ne->nd", chol[z], rng.normal(size=(n, d)))
    params = GaussianMixtureParams(np.full(k, 1.0 / k), means, cov)
    return make_model(cov_type), jax.tree.map(lambda a: jnp.asarray(a, dtype), params), jnp.asarray(x, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cov_type", ("full", "diag", "spherical", "tied"))
def test_gradient_finite_near_singular(request, cov_type, dtype):
    dtype = use_dtype(request, dtype)
    rng = np.random.default_rng([COV_TYPES.index(cov_type), 3])
    model, params, x = near_singular_problem(cov_type, dtype, rng)
    u = model.to_unconstrained(params)
    assert all(np.all(np.isfinite(np.asarray(leaf))) for leaf in jax.tree.leaves(u))

    value, g = grad_mean_ll(model, u, x, jnp.ones(x.shape[0], dtype))
    assert np.isfinite(value)
    for name, leaf in zip(g._fields, g):
        assert leaf.dtype == dtype
        assert np.all(np.isfinite(np.asarray(leaf))), name
    assert tree_norm(g.covariances) > 0


# -- 2. Fisher's identity --------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_fishers_identity(x64, family):
    """grad_u ELBO(q, from_unconstrained(u)) at q = posterior (held fixed) = grad_u mean log-likelihood."""
    rng = np.random.default_rng([FAMILIES.index(family), 4])
    model = make_model(family)
    x = jnp.asarray(make_data(family))
    params = poor_start(family)  # not a stationary point: the gradients are far from 0
    u = model.to_unconstrained(jax.tree.map(jnp.asarray, params))
    q = np_posterior(family, params, x)
    ones = jnp.ones(N)

    _, g_ll, g_elbo = gradients(model, u, x, q, ones)
    g_np = np_grad_mean_log_likelihood(family, params, x, np.ones(N))
    assert tree_norm(g_np) > 1e-2
    scale = tree_norm(g_np)
    assert_tree_allclose(g_elbo, g_ll, rtol=1e-8, atol=1e-12 * scale)
    assert_tree_allclose(g_ll, g_np, rtol=1e-8, atol=1e-12 * scale)
    if family in ("full", "tied"):  # the upper part of the factor is ignored: zero gradient
        upper = np.triu(np.ones((D, D), bool), 1)
        assert np.all(np.asarray(g_ll.covariances)[..., upper] == 0)

    # Weighted mean log-likelihood: value against SciPy, gradient against the formula.
    w = rng.uniform(0.0, 3.0, N)
    w[:10] = 0.0
    value, g_w = grad_mean_ll(model, u, x, jnp.asarray(w))
    np.testing.assert_allclose(value, np_mean_log_likelihood(family, params, x, w), rtol=1e-12)
    expected = np_grad_mean_log_likelihood(family, params, x, w)
    assert_tree_allclose(g_w, expected, rtol=1e-8, atol=1e-12 * scale)


# -- 3. EM fixed points are stationary -----------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_em_fixed_point_is_stationary(x64, family):
    model = make_model(family)
    x = jnp.asarray(make_data(family))
    start = poor_start(family)
    em = fit_em(model, start, x, max_iter=EM_ITERS, tol=0.0)
    assert int(em.n_iter) == EM_ITERS

    ones = jnp.ones(N)
    g_start = grad_mean_ll(model, model.to_unconstrained(jax.tree.map(jnp.asarray, start)), x, ones)[1]
    g_end = grad_mean_ll(model, model.to_unconstrained(em.params), x, ones)[1]
    assert tree_norm(g_start) > 1e-2
    assert tree_norm(g_end) / tree_norm(g_start) < 1e-4
    # The analytic gradient says the same.
    g_np = np_grad_mean_log_likelihood(family, em.params, x, np.ones(N))
    assert tree_norm(g_np) / tree_norm(g_start) < 1e-4


# -- 4. m_step_gradient = closed-form M-step ------------------------------------------


def blended_responsibilities(family, x, rng):
    """Responsibilities that are nobody's posterior: posterior at a poor start mixed with Dirichlet noise."""
    post = np_posterior(family, poor_start(family, seed=1), x)
    return 0.7 * post + 0.3 * rng.dirichlet(np.ones(K), N)


@pytest.mark.parametrize("family", FAMILIES)
def test_m_step_gradient_matches_closed_form(x64, family):
    rng = np.random.default_rng([FAMILIES.index(family), 5])
    model = make_model(family)  # reg_covar = 0: see make_model
    x = jnp.asarray(make_data(family))
    q = blended_responsibilities(family, x, rng)
    start = poor_start(family)
    expected = np_m_step(family, q, x)

    # The library's own closed form agrees with the NumPy one.
    ones = jnp.ones(x.shape[0], x.dtype)
    assert_tree_allclose(model.from_responsibilities(x, jnp.asarray(q), ones), expected, rtol=1e-9, atol=1e-12)

    got = m_step_gradient(model, start, x, q, LBFGS, n_steps=150)
    assert type(got) is type(start)
    assert_tree_allclose(got, expected, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("family", ("full", "exponential"))
def test_m_step_gradient_adam(x64, family):
    rng = np.random.default_rng([FAMILIES.index(family), 5])
    model = make_model(family)
    x = jnp.asarray(make_data(family))
    q = blended_responsibilities(family, x, rng)
    expected = np_m_step(family, q, x)
    got = m_step_gradient(model, poor_start(family), x, q, ADAM, n_steps=N_STEPS)
    assert_tree_allclose(got, expected, rtol=2e-2, atol=2e-2)


# -- 5. EM and gradient ascent reach the same optimum ----------------------------


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_em_and_adam_agree(x64, cov_type):
    """Same start, well-separated clusters: EM and Adam (cosine-annealed, see ADAM) agree."""
    model = make_model(cov_type)
    x = jnp.asarray(make_data(cov_type))
    start = poor_start(cov_type)
    em = fit_em(model, start, x, max_iter=EM_ITERS, tol=0.0)
    result = fit_gradient(KEY, model, start, x, ADAM, n_steps=N_STEPS)

    assert isinstance(result, GradientResult)
    assert result.history.shape == (N_STEPS,)
    start_ll = np_mean_log_likelihood(cov_type, start, x, np.ones(N))
    np.testing.assert_allclose(result.history[0], start_ll, rtol=1e-12)
    assert float(em.log_likelihood) > start_ll + 0.1  # the start is genuinely poor
    np.testing.assert_allclose(result.log_likelihood, em.log_likelihood, rtol=0, atol=1e-3)
    # log_likelihood is the full-data value of the returned params.
    final_ll = np_mean_log_likelihood(cov_type, result.params, x, np.ones(N))
    np.testing.assert_allclose(result.log_likelihood, final_ll, rtol=1e-12)
    # Same start, so the same labels: the means agree too.
    np.testing.assert_allclose(result.params.means, em.params.means, atol=1e-4)


def test_sample_weight_equals_repeated_rows(x64):
    """Integer weights count points that many times; zero weights remove them.

    Weighted: 300 points, the first 100 with weight 2, plus 100 far-away junk points
    of weight 0. Unweighted: the same 300 points with the first 100 repeated. Both
    have 400 rows, like test_em_and_adam_agree[diag], whose compilation they reuse.
    """
    family = "diag"
    model = make_model(family)
    base = make_data(family)[:300]
    junk = np.random.default_rng(7).normal(50.0, 1.0, (100, D))
    w = np.concatenate([np.full(100, 2.0), np.ones(200), np.zeros(100)])
    weighted = fit_gradient(KEY, model, poor_start(family), np.concatenate([base, junk]), ADAM,
                            n_steps=N_STEPS, sample_weight=w)
    repeated = fit_gradient(KEY, model, poor_start(family), np.concatenate([base, base[:100]]), ADAM,
                            n_steps=N_STEPS)
    assert_tree_allclose(weighted.params, repeated.params, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(weighted.history, repeated.history, rtol=1e-9)
    np.testing.assert_allclose(weighted.log_likelihood, repeated.log_likelihood, rtol=1e-9)


def test_lbfgs_full_batch(x64):
    family = "full"
    model = make_model(family)
    x = jnp.asarray(make_data(family))
    start = poor_start(family)
    result = fit_gradient(KEY, model, start, x, LBFGS, n_steps=60)
    history = np.asarray(result.history)
    assert np.all(np.isfinite(history))
    np.testing.assert_allclose(history[0], np_mean_log_likelihood(family, start, x, np.ones(N)), rtol=1e-12)
    # The zoom line search enforces sufficient decrease: the history never goes down.
    assert np.all(np.diff(history) >= -1e-12)
    assert float(result.log_likelihood) > history[0] + 0.1
    em = fit_em(model, start, x, max_iter=EM_ITERS, tol=0.0)
    np.testing.assert_allclose(result.log_likelihood, em.log_likelihood, rtol=0, atol=1e-8)


# -- 6. float32 robustness --------------------------------------------------------


def test_float32_no_nan_from_poor_start():
    rng = np.random.default_rng(6)
    k, d, n = 8, 10, 600
    means = rng.normal(0.0, 4.0, (k, d))
    covs = random_spd(rng, d, (k,))
    z = rng.integers(0, k, n)
    x = means[z] + np.einsum("nde,ne->nd", np.linalg.cholesky(covs)[z], rng.normal(size=(n, d)))
    model = GaussianMixture(k, "full")
    # A poor start (what init "random" gives): every mean within 0.1 of the data
    # mean, every covariance the data's covariance, equal weights.
    start = GaussianMixtureParams(np.full(k, 1.0 / k), x.mean(axis=0) + rng.normal(0.0, 0.1, (k, d)),
                                  np.broadcast_to(np.cov(x.T), (k, d, d)).copy())
    start = jax.tree.map(lambda a: np.asarray(a, np.float32), start)
    x = x.astype(np.float32)
    result = fit_gradient(KEY, model, start, jnp.asarray(x), optax.adam(0.02), n_steps=300)

    history = np.asarray(result.history)
    assert history.dtype == np.float32
    assert np.all(np.isfinite(history))
    for leaf in jax.tree.leaves(result.params):
        assert leaf.dtype == np.float32
        assert np.all(np.isfinite(np.asarray(leaf)))
    np.linalg.cholesky(np.asarray(result.params.covariances, np.float64))  # positive definite
    start_ll = np_mean_log_likelihood("full", start, x, np.ones(n))
    np.testing.assert_allclose(history[0], start_ll, rtol=1e-5)
    assert float(result.log_likelihood) >= start_ll
    assert float(result.log_likelihood) > start_ll + 1.0  # and it did real work
    final_ll = np_mean_log_likelihood("full", result.params, x, np.ones(n))
    np.testing.assert_allclose(result.log_likelihood, final_ll, rtol=1e-4)


# -- 7. minibatches and argument checks ----------------------------------------------

MINIBATCH_ADAM = optax.adam(0.05)
BATCH, MINIBATCH_STEPS = 100, 40


def minibatch_fit(key, **kwargs):
    family = "full"
    x = jnp.asarray(make_data(family), jnp.float32)
    return fit_gradient(key, make_model(family), poor_start(family), x, MINIBATCH_ADAM, n_steps=MINIBATCH_STEPS,
                        batch_size=BATCH, **kwargs)


def test_minibatch_history_and_determinism():
    family = "full"
    x = make_data(family)
    start = poor_start(family)
    steps = MINIBATCH_STEPS
    stride = N // BATCH  # the default: once per epoch
    result = minibatch_fit(jax.random.key(1))

    history = np.asarray(result.history)
    assert history.shape == (steps,)
    on = np.arange(steps) % stride == 0
    assert np.all(np.isfinite(history[on]))
    assert np.all(np.isnan(history[~on]))
    np.testing.assert_allclose(history[0], np_mean_log_likelihood(family, start, x, np.ones(N)), rtol=1e-5)
    assert float(result.log_likelihood) > history[0]
    final_ll = np_mean_log_likelihood(family, result.params, x, np.ones(N))
    np.testing.assert_allclose(result.log_likelihood, final_ll, rtol=1e-5)

    again = minibatch_fit(jax.random.key(1))
    for a, b in zip(jax.tree.leaves(result), jax.tree.leaves(again)):
        np.testing.assert_array_equal(a, b)
    other = minibatch_fit(jax.random.key(2))
    assert not np.array_equal(other.params.means, result.params.means)


def test_minibatch_with_zero_weights_stays_finite():
    """LIBRARY BUG (reported): zero sample weights are valid (EM and full-batch fitting accept
    them, e.g. to mask padding rows), but a minibatch that draws only zero-weight points has the
    loss sum(w log p) / sum(w) = 0 / 0 = NaN, and its NaN gradient poisons the parameters for
    good. Here 100 of 400 points have weight 1 and batches hold 5 points, so about a quarter of
    the steps draw such a batch. Expected: finite parameters (e.g. skip or zero such updates)."""
    family = "exponential"  # cheap to compile; the bug is in the generic minibatch loss
    x = make_data(family)
    w = np.zeros(N)
    w[::4] = 1.0
    result = fit_gradient(jax.random.key(0), make_model(family), poor_start(family), x.astype(np.float32),
                          MINIBATCH_ADAM,
                          n_steps=40, batch_size=5, sample_weight=w)
    for leaf in jax.tree.leaves(result.params):
        assert np.all(np.isfinite(np.asarray(leaf)))
    assert np.isfinite(float(result.log_likelihood))


def test_zero_weight_component_in_start(x64):
    """LIBRARY BUG (reported): a start with a component of weight 0 passes validation (EM
    with the default reg_covar handles it: the component stays empty), but fit_gradient returns
    all-NaN parameters and history: to_unconstrained maps w = 0 to the logit -inf, and the gradient of
    log(w_k) + log p_k(x) at w_k = 0 is inf * 0 = NaN. Expected: either a ValueError at the
    boundary or a finite fit. (Same static arguments as test_em_and_adam_agree[diag].)"""
    family = "diag"
    model = make_model(family)
    x = make_data(family)
    start = poor_start(family)._replace(weights=np.array([0.0, 0.5, 0.5]))
    try:
        result = fit_gradient(KEY, model, start, x, ADAM, n_steps=N_STEPS)
    except ValueError:
        return
    assert np.all(np.isfinite(np.asarray(result.history)))
    for leaf in jax.tree.leaves(result.params):
        assert np.all(np.isfinite(np.asarray(leaf)))


def test_argument_errors():
    model = make_model("full")
    x = jnp.asarray(make_data("full"), jnp.float32)
    start = poor_start("full")
    with pytest.raises(ValueError, match="batch_size"):
        fit_gradient(jax.random.key(0), model, start, x, MINIBATCH_ADAM, n_steps=5, batch_size=N + 1)
    with pytest.raises(ValueError, match="batch_size"):
        fit_gradient(jax.random.key(0), model, start, x, MINIBATCH_ADAM, n_steps=5, batch_size=0)
    for steps in (0, -1):
        with pytest.raises(ValueError, match="n_steps"):
            fit_gradient(KEY, model, start, x, MINIBATCH_ADAM, n_steps=steps)
        with pytest.raises(ValueError, match="n_steps"):
            m_step_gradient(model, start, x, np.full((N, K), 1.0 / K), MINIBATCH_ADAM, n_steps=steps)


NOT_OPTIMIZERS = [("adam", "str 'adam'"), (None, "NoneType None"), (optax.adam, "function")]


@pytest.mark.parametrize(("optimizer", "shown"), NOT_OPTIMIZERS)
def test_optimizer_that_is_not_a_gradient_transformation_raises_type_error(optimizer, shown):
    """It was an AttributeError ('str' object has no attribute 'init') from inside the jit."""
    family = "exponential"
    model, start, x = make_model(family), poor_start(family), make_data(family)
    message = f"optimizer must be an optax.GradientTransformation such as optax.adam\\(1e-2\\), got {shown}"
    with pytest.raises(TypeError, match=message):
        fit_gradient(KEY, model, start, x, optimizer, n_steps=5)
    with pytest.raises(TypeError, match=message):
        m_step_gradient(model, start, x, np.full((N, K), 1.0 / K), optimizer, n_steps=5)


@pytest.mark.parametrize("model", [KMeans(K), FuzzyCMeans(K)])
def test_model_without_likelihood_raises_type_error(model):
    """k-means models have no likelihood; it was an AttributeError (no 'to_unconstrained')."""
    x = make_data("full")
    params = initialize(jax.random.key(0), model, x)
    message = rf"needs a model with LogJoint \(log_joint missing\); got {type(model).__name__}"
    with pytest.raises(TypeError, match=message):
        fit_gradient(KEY, model, params, x, MINIBATCH_ADAM, n_steps=5)
    with pytest.raises(TypeError, match=message):
        m_step_gradient(model, params, x, np.full((N, K), 1.0 / K), MINIBATCH_ADAM, n_steps=5)


def test_step_counts_beyond_int32_raise_value_error():
    """10**12 steps was an OverflowError from inside the jit; the loops count in int32."""
    family = "exponential"
    model, start, x = make_model(family), poor_start(family), make_data(family)
    bound = r"must be <= 2147483647"
    for steps in (10**12, 2**31):
        with pytest.raises(ValueError, match="n_steps " + bound):
            fit_gradient(KEY, model, start, x, MINIBATCH_ADAM, n_steps=steps)
        with pytest.raises(ValueError, match="n_steps " + bound):
            m_step_gradient(model, start, x, np.full((N, K), 1.0 / K), MINIBATCH_ADAM, n_steps=steps)
        with pytest.raises(ValueError, match="history_stride " + bound):
            fit_gradient(jax.random.key(0), model, start, x, MINIBATCH_ADAM, n_steps=5, batch_size=BATCH,
                         history_stride=steps)
    assert gradient.check_steps("n_steps", 2**31 - 1) == 2**31 - 1


def test_history_stride_zero_is_rejected():
    """LIBRARY BUG (reported): history_stride=0 is not a stride; it must raise, not silently
    fall back to the default (``history_stride or default`` in fit_gradient).

    (Same static arguments as the minibatch test, so a silent fallback costs no compilation.)
    """
    with pytest.raises(ValueError, match="history_stride"):
        minibatch_fit(jax.random.key(0), history_stride=0)
    with pytest.raises(ValueError, match="history_stride"):
        minibatch_fit(jax.random.key(0), history_stride=-1)


# -- 8. no recompilation --------------------------------------------------------------


def test_second_call_does_not_retrace():
    family = "exponential"  # the cheapest compilation
    model = make_model(family)
    optimizer = optax.adam(0.05)  # a fresh object: the first call must compile
    x = jnp.asarray(make_data(family), jnp.float32)
    start = poor_start(family)
    before = gradient.run_gradient._cache_size()
    first = fit_gradient(KEY, model, start, x, optimizer, n_steps=7)
    compiled = gradient.run_gradient._cache_size()
    assert compiled == before + 1
    # Same model (an equal, freshly built one too), optimizer object and shapes;
    # different data, start and weight values.
    second = fit_gradient(KEY, make_model(family), poor_start(family, seed=5), x + 1.0, optimizer, n_steps=7)
    fit_gradient(KEY, model, start, x, optimizer, n_steps=7, sample_weight=np.linspace(0.5, 2.0, N))
    assert gradient.run_gradient._cache_size() == compiled
    assert not np.array_equal(first.params.rates, second.params.rates)
    # Minibatches: a new key is a traced argument, not a new compilation.
    fit_gradient(jax.random.key(0), model, start, x, optimizer, n_steps=7, batch_size=50)
    compiled = gradient.run_gradient._cache_size()
    fit_gradient(jax.random.key(1), model, start, x + 1.0, optimizer, n_steps=7, batch_size=50)
    assert gradient.run_gradient._cache_size() == compiled
