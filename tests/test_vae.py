"""The VAE against closed forms: probabilistic PCA (Tipping and Bishop 1999), Gaussian KL, mixture densities.

CPU time is mostly XLA compilation, so the tests share models and shapes where they can (the PPCA ``draws``
at 300 points; ``SMALL``, the docstring examples' model, whose ``init`` and ``sample`` several tests use).

With an affine Gaussian decoder f(z) = W z + m, noise sigma^2 I and the prior N(0, I), the VAE is PPCA:
p(x) = N(m, W W^T + sigma^2 I) and p(z | x) = N(M^-1 W^T (x - m), sigma^2 M^-1), M = W^T W + sigma^2 I.
With W = U diag(s) (U orthonormal columns) M is diagonal, so an affine encoder with constant log
variances represents the exact posterior, and ELBO(q) = log p(x) - KL(q || p(z | x)) exactly.
"""

import dataclasses
import functools
import json
import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import stats
from scipy.special import logsumexp as np_logsumexp

import jaxmix
from jaxmix import vae
from jaxmix.mixtures.gaussian import GaussianMixtureUnconstrained
from jaxmix.vae import training

D, L, SIGMA = 5, 2, 0.5
SCALES = np.array([3.0, 1.5])


def ppca_truth(seed=0):
    rng = np.random.default_rng(seed)
    u = np.linalg.qr(rng.normal(size=(D, L)))[0]
    return u, rng.normal(size=D)


def ppca_data(n, seed=0):
    u, m = ppca_truth(seed)
    rng = np.random.default_rng(seed + 1)
    return rng.normal(size=(n, L)) @ (u * SCALES).T + m + SIGMA * rng.normal(size=(n, D))


def ppca_log_prob(w, m, sigma, x):
    """Exact PPCA log-density log N(x; m, W W^T + sigma^2 I) by scipy, W of shape (D, L)."""
    return stats.multivariate_normal(m, w @ w.T + sigma**2 * np.eye(len(m))).logpdf(x)


def ppca_params(model, mean_scale=1.0, var_scale=1.0, seed=0):
    """VAE parameters of the PPCA truth with the encoder at the exact posterior, its mean map scaled by
    ``mean_scale`` and its variances by ``var_scale`` (1, 1: q = p(z | x))."""
    u, m = ppca_truth(seed)
    post_var = SIGMA**2 / (SCALES**2 + SIGMA**2)
    w_mean = mean_scale * u * (SCALES / (SCALES**2 + SIGMA**2))
    encoder = vae.Dense(jnp.concatenate([w_mean, np.zeros((D, L))], axis=1),
                        jnp.concatenate([-m @ w_mean, np.log(var_scale * post_var)]))
    decoder = vae.Dense(jnp.asarray((u * SCALES).T), jnp.asarray(m))
    prior = None
    if model.n_components is not None:  # every component N(0, I): the mixture is the standard normal
        k = model.n_components
        covariances = {"diag": (k, L), "full": (k, L, L), "spherical": (k,)}[model.prior_covariance]
        prior = GaussianMixtureUnconstrained(jnp.linspace(-1.0, 1.0, k), jnp.zeros((k, L)), jnp.zeros(covariances))
    return vae.VAEParams((encoder,), (decoder,), jnp.asarray(np.log(SIGMA)), prior)


def posterior_gap(x, mean_scale, var_scale, seed=0):
    """Mean over points of KL(q(z | x) || p(z | x)) for the q of ``ppca_params``, in closed form."""
    u, m = ppca_truth(seed)
    post_var = SIGMA**2 / (SCALES**2 + SIGMA**2)
    post_mean = (x - m) @ (u * (SCALES / (SCALES**2 + SIGMA**2)))
    kl = 0.5 * (var_scale - 1.0 - np.log(var_scale) + (1 - mean_scale) ** 2 * post_mean**2 / post_var)
    return np.mean(np.sum(kl, axis=1))


PPCA = vae.VAE(D, L, hidden_sizes=(), decoder="gaussian")
PRIORS = {name: vae.VAE(D, L, hidden_sizes=(), decoder="gaussian", n_components=3, prior_covariance=name)
          for name in vae.PRIOR_COVARIANCES}
PPCA_FULL = PRIORS["full"]
KEYS = jax.random.split(jax.random.key(0), 12)
N_DRAWS = 300  # points in every ``draws`` call, so that they share compilations
SMALL = vae.VAE(4, 2, hidden_sizes=(16,), n_components=3, prior_covariance="full")  # the VAE docstring's model
X_SMALL = np.asarray(jax.random.uniform(jax.random.key(0), (64, 4)))


@functools.partial(jax.jit, static_argnames=("bound", "model", "n_samples"))
def draws(bound, model, params, x, keys, n_samples):
    """``bound`` (vae.elbo or vae.iwae_bound) for each key, vmapped under jit as a user would compose it."""
    return jax.vmap(lambda key: bound(key, model, params, x, n_samples=n_samples))(keys)


# -- the ELBO and the IWAE bound in the PPCA case -------------------------------------------


@pytest.mark.parametrize("mean_scale, var_scale", [(1.0, 1.0), (0.7, 2.5)])
def test_elbo_is_log_likelihood_minus_posterior_kl(x64, mean_scale, var_scale):
    """E[ELBO] = log p(x) - KL(q || p(z|x)): exact log p at the exact posterior (docs/maths.md section 4)."""
    x = ppca_data(N_DRAWS)
    params = ppca_params(PPCA, mean_scale, var_scale)
    u, m = ppca_truth()
    target = np.mean(ppca_log_prob(u * SCALES, m, SIGMA, x)) - posterior_gap(x, mean_scale, var_scale)
    values = np.asarray(draws(vae.elbo, PPCA, params, x, KEYS, 32))
    standard_error = values.std(ddof=1) / np.sqrt(len(values))
    assert 0 < standard_error < 0.01  # the check below is tight enough to see a wrong constant
    assert abs(values.mean() - target) < 4 * standard_error


def test_mixture_estimator_is_exact_at_the_posterior(x64):
    """For the mixture prior the ELBO uses log p(x|z) + log p(z) - log q(z|x), which at q = p(z|x) equals
    log p(x) for every draw; a mixture of identical N(0, I) components (full covariances, log-Cholesky
    factors 0) is the PPCA prior. The same holds for every IWAE bound."""
    x = ppca_data(N_DRAWS)
    u, m = ppca_truth()
    exact = np.mean(ppca_log_prob(u * SCALES, m, SIGMA, x))
    np.testing.assert_allclose(vae.elbo(KEYS[0], PPCA_FULL, ppca_params(PPCA_FULL), x), exact, rtol=1e-12)
    np.testing.assert_allclose(draws(vae.iwae_bound, PPCA, ppca_params(PPCA), x, KEYS[:6], 8), exact, rtol=1e-12)


def test_iwae_increases_with_n_samples_towards_log_likelihood(x64):
    x = ppca_data(N_DRAWS)
    params = ppca_params(PPCA, mean_scale=0.7, var_scale=2.5)
    u, m = ppca_truth()
    log_p = np.mean(ppca_log_prob(u * SCALES, m, SIGMA, x))
    sizes = (1, 8, 512)
    values = np.array([draws(vae.iwae_bound, PPCA, params, x, KEYS[:6], s) for s in sizes])
    means, errors = values.mean(axis=1), values.std(axis=1, ddof=1) / np.sqrt(values.shape[1])
    # IWAE_1 is the single-sample ELBO: log p - KL(q || p(z|x)) in expectation.
    assert abs(means[0] - (log_p - posterior_gap(x, 0.7, 2.5))) < 4 * errors[0]
    steps = np.diff(means)
    assert np.all(steps > -3 * np.hypot(errors[1:], errors[:-1]))  # non-decreasing, statistically
    assert steps[0] > 0.05 and means[-1] < log_p + 3 * errors[-1]
    assert log_p - means[-1] < 0.1 * (log_p - means[0])  # approaches log p


def test_linear_vae_reaches_ppca_maximum_likelihood(x64, capsys):
    """Trained on PPCA data, an affine VAE reaches the closed-form maximum of the log-likelihood:
    (1/N) log L_max = -1/2 (D log 2 pi + sum_{j<=L} log lambda_j + (D - L) log sigma_ML^2 + D), with
    lambda the eigenvalues of the sample covariance and sigma_ML^2 the mean of the D - L smallest.
    Also fit's history, progress display, KL warm-up, and no recompilation on a second call."""
    x = ppca_data(2000, seed=3)
    lam = np.linalg.eigvalsh(np.cov(x.T, bias=True))[::-1]
    sigma2 = lam[L:].mean()
    best = -0.5 * (D * np.log(2 * np.pi) + np.sum(np.log(lam[:L])) + (D - L) * np.log(sigma2) + D)
    optimizer = optax.adam(optax.cosine_decay_schedule(3e-2, 3000))
    start = vae.init(jax.random.key(2), PPCA)
    result = vae.fit(jax.random.key(1), PPCA, start, x, optimizer, n_epochs=300, batch_size=200,
                     x_valid=x[:N_DRAWS], n_warmup_epochs=3, progress=True)
    assert isinstance(result, vae.VAEFitResult)
    params, history = result.params, result.history
    (decoder,) = params.decoder
    learned = ppca_log_prob(np.asarray(decoder.weights).T, np.asarray(decoder.bias),
                            float(np.exp(params.decoder_log_std)), x)
    assert np.mean(learned) <= best + 1e-9
    assert best - np.mean(learned) < 5e-4  # nats per point
    # The encoder learned the posterior: ELBO = log p - KL(q || p(z|x)) is within 5e-3 of log p.
    values = np.asarray(draws(vae.elbo, PPCA, params, x[:N_DRAWS], KEYS, 32))
    gap = np.mean(learned[:N_DRAWS]) - values.mean()
    assert -4 * values.std(ddof=1) / np.sqrt(len(values)) < gap < 5e-3

    printed = capsys.readouterr()
    assert printed.out == "" and "VAE epochs" in printed.err and "held-out ELBO" in printed.err
    np.testing.assert_allclose(history.kl_weight[:5], [0.25, 0.5, 0.75, 1.0, 1.0])
    assert history.train_elbo[-1] > history.train_elbo[0] and abs(history.valid_elbo[-1] - values.mean()) < 0.1
    assert np.all(np.isfinite(history.valid_elbo)) and np.all(np.diff(history.seconds) >= 0)
    chex.assert_trees_all_equal_shapes_and_dtypes(start, params)
    compiled = training._epoch._cache_size()
    again = vae.fit(jax.random.key(3), PPCA, params, x, optimizer, n_epochs=2, batch_size=200, progress=False)
    assert training._epoch._cache_size() == compiled and capsys.readouterr() == ("", "")
    assert np.all(np.isnan(again.history.valid_elbo))


# -- closed forms: KL, prior densities, clustering -------------------------------------------


def test_gaussian_kl_matches_monte_carlo(x64):
    rng = np.random.default_rng(0)
    mean, log_var = rng.normal(size=(4, 3)), rng.normal(scale=0.5, size=(4, 3))
    eps = rng.normal(size=(200_000, 4, 3))
    z = mean + np.exp(0.5 * log_var) * eps
    log_ratio = np.sum(stats.norm.logpdf(z, mean, np.exp(0.5 * log_var)) - stats.norm.logpdf(z), axis=-1)
    closed = np.asarray(vae.gaussian_kl(jnp.asarray(mean), jnp.asarray(log_var)))
    errors = log_ratio.std(axis=0) / np.sqrt(len(eps))
    assert np.all(np.abs(log_ratio.mean(axis=0) - closed) < 4 * errors)
    np.testing.assert_allclose(vae.gaussian_kl(jnp.zeros(3), jnp.zeros(3)), 0.0, atol=1e-15)


def random_prior(covariance_type, k=3, seed=0):
    """Random unconstrained prior parameters: logits, means, and log variances or log-Cholesky factors."""
    rng = np.random.default_rng(seed)
    shape = {"diag": (k, L), "full": (k, L, L), "spherical": (k,)}[covariance_type]
    covariances = rng.normal(scale=0.5, size=shape)
    return GaussianMixtureUnconstrained(jnp.asarray(rng.normal(size=k)), jnp.asarray(rng.normal(size=(k, L)) * 2),
                                        jnp.asarray(np.tril(covariances) if covariance_type == "full" else covariances))


def reference_prior(covariance_type, prior):
    """Weights and covariance matrices (K, L, L) from unconstrained parameters, by numpy: softmax, and
    S_k = diag(exp(u_k)), C_k C_k^T (C_k the strict lower part of u_k plus diag(exp(diag u_k))), exp(u_k) I."""
    logits, u = np.asarray(prior.logits), np.asarray(prior.covariances)
    weights = np.exp(logits - logits.max()) / np.sum(np.exp(logits - logits.max()))
    if covariance_type == "diag":
        return weights, np.stack([np.diag(np.exp(row)) for row in u])
    if covariance_type == "spherical":
        return weights, np.exp(u)[:, None, None] * np.eye(L)
    chol = np.tril(u, -1) + np.stack([np.diag(np.exp(np.diag(row))) for row in u])
    return weights, chol @ np.swapaxes(chol, 1, 2)


def reference_log_joint(covariance_type, prior, z):
    """log w_k + log N(z_i; m_k, S_k) (N, K), by scipy."""
    weights, covariances = reference_prior(covariance_type, prior)
    return np.stack([np.log(w) + stats.multivariate_normal(m, s).logpdf(z)
                     for w, m, s in zip(weights, np.asarray(prior.means), covariances)], axis=1)


def test_mixture_prior_density_is_gaussian_mixture_log_prob(x64):
    """For every covariance type, log p(z) is GaussianMixture.log_prob at the constrained parameters, and
    equals an independent scipy evaluation of the documented parameterization."""
    z = np.random.default_rng(1).normal(size=(50, L)) * 3
    for name, model in PRIORS.items():
        params = ppca_params(model)._replace(prior=random_prior(name))
        ours = vae.log_prior(model, params, z)
        weights, _ = reference_prior(name, params.prior)
        gmm = model.prior_mixture
        constrained = gmm.from_unconstrained(params.prior)
        np.testing.assert_allclose(ours, gmm.log_prob(constrained, z), rtol=1e-13, err_msg=name)
        np.testing.assert_allclose(ours, np_logsumexp(reference_log_joint(name, params.prior, z), axis=1),
                                   rtol=1e-12, err_msg=name)
        np.testing.assert_allclose(constrained.weights, weights, rtol=1e-13, err_msg=name)
    np.testing.assert_allclose(vae.log_prior(PPCA, ppca_params(PPCA), z),
                               np.sum(stats.norm.logpdf(z), axis=1), rtol=1e-13)


def total_log_prior(params, z, model):
    return jnp.sum(vae.log_prior(model, params, z))


def test_mixture_prior_gradients_under_jit(x64):
    """log p(z) under ``jit(grad)``, where the prior's values are tracers and its checks are skipped, has
    the closed-form gradients d/dz_i = sum_k r_ik S_k^-1 (m_k - z_i) and d/dm_k = sum_i r_ik S_k^-1 (z_i - m_k)."""
    z = np.random.default_rng(1).normal(size=(50, L)) * 3
    for name, model in PRIORS.items():
        params = ppca_params(model)._replace(prior=random_prior(name))
        grad_params, grad_z = jax.jit(jax.grad(total_log_prior, argnums=(0, 1)), static_argnames="model")(
            params, z, model=model)
        _, covariances = reference_prior(name, params.prior)
        log_joint = reference_log_joint(name, params.prior, z)
        r = np.exp(log_joint - np_logsumexp(log_joint, axis=1, keepdims=True))
        pulls = np.einsum("kab,kib->ika", np.linalg.inv(covariances), np.asarray(params.prior.means)[:, None] - z)
        np.testing.assert_allclose(grad_z, np.einsum("ik,ika->ia", r, pulls), rtol=1e-10, err_msg=name)
        np.testing.assert_allclose(grad_params.prior.means, -np.einsum("ik,ika->ka", r, pulls), rtol=1e-10,
                                   err_msg=name)


def test_decoder_log_likelihoods_match_scipy(x64):
    rng = np.random.default_rng(2)
    x, z = rng.uniform(size=(6, D)), rng.normal(size=(6, L))
    params = ppca_params(PPCA)
    mean = z @ params.decoder[0].weights + params.decoder[0].bias
    np.testing.assert_allclose(vae.log_likelihood(PPCA, params, x, z),
                               np.sum(stats.norm.logpdf(x, mean, SIGMA), axis=1), rtol=1e-12)
    bernoulli = vae.VAE(D, L, hidden_sizes=(), decoder="bernoulli")
    params = params._replace(decoder_log_std=None)
    p = 1 / (1 + np.exp(-np.asarray(mean)))
    x01 = (x > 0.5).astype(float)
    np.testing.assert_allclose(vae.log_likelihood(bernoulli, params, x01, z),
                               np.sum(stats.bernoulli.logpmf(x01, p), axis=1), rtol=1e-12)
    np.testing.assert_allclose(vae.decode(bernoulli, params, z), p, rtol=1e-12)


def test_cluster_is_the_mixture_posterior_of_the_encoder_mean(x64):
    params = ppca_params(PPCA_FULL)._replace(prior=random_prior("full"))
    x = ppca_data(40)
    labels, responsibilities = vae.cluster(PPCA_FULL, params, x)
    mean, _ = vae.encode(PPCA_FULL, params, x)
    log_joint = reference_log_joint("full", params.prior, np.asarray(mean))
    expected = np.exp(log_joint - np_logsumexp(log_joint, axis=1, keepdims=True))
    np.testing.assert_allclose(responsibilities, expected, rtol=1e-11)
    np.testing.assert_array_equal(labels, np.argmax(expected, axis=1))
    with pytest.raises(ValueError, match="mixture prior"):
        vae.cluster(PPCA, ppca_params(PPCA), x)


def test_sample_draws_from_the_full_prior():
    """Components far apart: each draw's nearest mean is its component; the fractions are the weights and
    each component's sample covariance is its S_k = C_k C_k^T (log-Cholesky u_k: C_k = [[1, 0], [0.8, 1]])."""
    n, weights, means = 6000, np.array([0.2, 0.5, 0.3]), np.array([[-20.0, 0.0], [20.0, 0.0], [0.0, 20.0]])
    log_chol = np.array([[[0.0, 0.0], [0.8, 0.0]], [[0.0, 0.0], [-0.8, 0.0]], [[np.log(2), 0.0], [0.0, 0.0]]])
    params = vae.init(jax.random.key(0), SMALL)._replace(prior=GaussianMixtureUnconstrained(
        jnp.log(jnp.asarray(weights, jnp.float32)), jnp.asarray(means, jnp.float32),
        jnp.asarray(log_chol, jnp.float32)))
    x_mean, z = vae.sample(jax.random.key(1), SMALL, params, n)
    chex.assert_shape((x_mean, z), [(n, 4), (n, 2)])
    assert np.all((0 <= x_mean) & (x_mean <= 1))
    z = np.asarray(z, np.float64)
    labels = np.argmin(np.sum((z[:, None] - means) ** 2, axis=-1), axis=1)
    fractions = np.bincount(labels, minlength=3) / n
    assert np.all(np.abs(fractions - weights) < 4 * np.sqrt(weights * (1 - weights) / n))
    chol = np.tril(log_chol, -1) + np.exp(np.diagonal(log_chol, axis1=1, axis2=2))[:, :, None] * np.eye(2)
    for k in range(3):
        np.testing.assert_allclose(np.cov(z[labels == k].T), chol[k] @ chol[k].T, atol=0.15 * (k + 1))


def test_mlp_matches_numpy():
    layers = vae.mlp_init(jax.random.key(0), (3, 8, 2), bias_init=jax.nn.initializers.ones)  # mlp_init's example
    chex.assert_shape([layers[0].weights, layers[0].bias, layers[1].weights], [(3, 8), (8,), (8, 2)])
    x = np.random.default_rng(0).normal(size=(5, 3))
    hidden = np.tanh(x @ np.asarray(layers[0].weights) + 1.0)
    np.testing.assert_allclose(vae.mlp_apply(layers, x, jnp.tanh), hidden @ np.asarray(layers[1].weights) + 1.0,
                               rtol=1e-5, atol=1e-5)


# -- training, save and load, bad input ---------------------------------------------------------


@pytest.mark.parametrize("model", [SMALL, PPCA, PPCA_FULL], ids=["full-prior-float32", "ppca-float64",
                                                                   "full-prior-float64"])
def test_save_load_round_trip(tmp_path, model):
    with jax.enable_x64(model is not SMALL):
        if model is PPCA_FULL:  # random full covariances, in float64
            params = ppca_params(model)._replace(prior=random_prior("full"))
        else:
            params = vae.init(jax.random.key(0), model)
        if model is SMALL:  # init puts S_k = I: log-Cholesky factors 0
            chex.assert_trees_all_equal(params.prior.covariances, jnp.zeros((3, 2, 2)))
            np.testing.assert_array_equal(model.prior_mixture.from_unconstrained(params.prior).covariances,
                                          np.broadcast_to(np.eye(2), (3, 2, 2)))
        path = tmp_path / "params.npz"
        jaxmix.save(path, model, params)
        loaded_model, loaded = jaxmix.load(path, model)
        assert loaded_model == model
        chex.assert_trees_all_equal(loaded, params, strict=True)  # values, shapes and dtypes
        assert jax.tree_util.tree_structure(loaded) == jax.tree_util.tree_structure(params)
        with np.load(path, allow_pickle=False) as data:  # plain arrays only
            assert all(data[name].dtype != object for name in data.files)
            fields = {**dataclasses.asdict(model), "hidden_sizes": list(model.hidden_sizes)}  # JSON lists
            assert json.loads(str(data["__jaxmix__"]))["model"] == {"class": "VAE", "fields": fields}
        # Identical parameters give identical outputs (with shapes other tests compile anyway).
        if model is SMALL:
            for a, b in zip(vae.sample(KEYS[0], model, loaded, 6000), vae.sample(KEYS[0], model, params, 6000)):
                np.testing.assert_array_equal(a, b)
        else:
            z = np.random.default_rng(1).normal(size=(50, L))
            np.testing.assert_array_equal(vae.log_prior(model, loaded, z), vae.log_prior(model, params, z))


def test_load_rejects_wrong_structure(tmp_path):
    good = tmp_path / "good.npz"
    jaxmix.save(good, SMALL, vae.init(jax.random.key(0), SMALL))
    with np.load(good) as data:
        arrays = dict(data)
    header = json.loads(str(arrays["__jaxmix__"]))
    np.savez(tmp_path / "plain.npz", weights=np.ones(3))
    with pytest.raises(ValueError, match="cannot be read as a jaxmix file: it has no '__jaxmix__' entry"):
        jaxmix.load(tmp_path / "plain.npz")
    np.savez(tmp_path / "missing.npz", **{k: a for k, a in arrays.items() if k != "['params'].prior.means"})
    with pytest.raises(ValueError, match=r"lacks the array \['params'\].prior.means"):
        jaxmix.load(tmp_path / "missing.npz")
    np.savez(tmp_path / "chain.npz", **{**arrays, "['params'].decoder[1].weights": np.ones((7, 4), np.float32)})
    with pytest.raises(ValueError, match=r"decoder\[1\].weights must have shape \(16, 4\)"):
        jaxmix.load(tmp_path / "chain.npz")
    for prior, message in [("tied", "cannot be built.*prior_covariance"),
                           ("diag", r"prior.covariances must have shape \(3, 2\)")]:
        forged = {**header, "model": {**header["model"], "fields": {**header["model"]["fields"],
                                                                    "prior_covariance": prior}}}
        np.savez(tmp_path / "forged.npz", **{**arrays, "__jaxmix__": np.array(json.dumps(forged))})
        with pytest.raises(ValueError, match=message):
            jaxmix.load(tmp_path / "forged.npz")
    other = vae.VAE(4, 2, hidden_sizes=(9,), n_components=3, prior_covariance="full")
    with pytest.raises(ValueError, match=re.escape(f"{good}: it holds {SMALL}, not {other}")):
        jaxmix.load(good, other)


def test_bad_input_raises_naming_the_argument():
    params = vae.init(jax.random.key(0), SMALL)
    key, x, adam = jax.random.key(1), np.full((5, 4), 0.5), optax.adam(1e-3)
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\]"):
        vae.elbo(key, SMALL, params, x + 1.0)
    with pytest.raises(ValueError, match="x contains 1 NaN"):
        vae.elbo(key, SMALL, params, np.where(np.eye(5, 4) > 0.5, np.nan, x)[:1])
    with pytest.raises(ValueError, match="x has 3 feature"):
        vae.iwae_bound(key, SMALL, params, x[:, :3], n_samples=2)
    with pytest.raises(ValueError, match="x_valid must lie"):
        vae.fit(key, SMALL, params, x, adam, n_epochs=1, batch_size=2, x_valid=x - 1.0)
    with pytest.raises(ValueError, match="batch_size must be at most"):
        vae.fit(key, SMALL, params, x, adam, n_epochs=1, batch_size=6)
    with pytest.raises(ValueError, match="n_samples"):
        vae.elbo(key, SMALL, params, x, n_samples=0)
    with pytest.raises(ValueError, match="latent_dim"):
        vae.VAE(6, 0)
    with pytest.raises(ValueError, match="decoder_std"):
        vae.VAE(6, 2, decoder_std=1.0)
    with pytest.raises(ValueError, match="decoder"):
        vae.VAE(6, 2, decoder="poisson")
    for covariance_type in ("tied", "identity"):
        with pytest.raises(ValueError, match=r"prior_covariance must be one of \['diag', 'full', 'spherical'\]"):
            vae.VAE(6, 2, n_components=2, prior_covariance=covariance_type)
    with pytest.raises(ValueError, match=r"params.*shape"):
        vae.elbo(key, vae.VAE(4, 3, hidden_sizes=(16,), n_components=3, prior_covariance="full"), params, x)
    assert vae.VAE(6, 2, hidden_sizes=[8, np.int64(4)]).hidden_sizes == (8, 4)  # any sequence of ints
    with pytest.raises(TypeError, match="dtype must be a floating-point dtype"):
        vae.init(jax.random.key(0), SMALL, dtype=jnp.int32)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"hidden_sizes": 5}, TypeError, "hidden_sizes must be a sequence of ints"),
    ({"hidden_sizes": "16"}, TypeError, "hidden_sizes must be a sequence of ints"),
    ({"hidden_sizes": (16, 0)}, ValueError, r"hidden_sizes\[1\] must be >= 1"),
    ({"hidden_sizes": (16.0,)}, TypeError, r"hidden_sizes\[0\] must be an int"),
    ({"activation": ["relu"]}, TypeError, "activation must be a string"),
    ({"activation": "sigmoid"}, ValueError, "activation must be one of"),
    ({"decoder": ["gaussian"]}, TypeError, "decoder must be a string"),
    ({"n_components": 2, "prior_covariance": ["full"]}, TypeError, "prior_covariance must be a string"),
    ({"n_components": 2, "prior_covariance": None}, TypeError, "prior_covariance must be a string"),
    ({"n_components": 2.0}, TypeError, "n_components must be an int"),
    ({"n_components": 0}, ValueError, "n_components must be >= 1"),
    ({"n_features": "6"}, TypeError, "n_features must be an int"),
    ({"latent_dim": True}, TypeError, "latent_dim must be an int"),
    ({"decoder": "gaussian", "decoder_std": "1"}, TypeError, "decoder_std must be a real number"),
    ({"decoder": "gaussian", "decoder_std": -1.0}, ValueError, "decoder_std must be a finite number >= 0"),
    ({"decoder": "gaussian", "decoder_std": 0.0}, ValueError, "decoder_std must be > 0"),
])
def test_constructor_errors_name_the_argument(kwargs, error, message):
    with pytest.raises(error, match=message):
        vae.VAE(**{"n_features": 6, "latent_dim": 2, **kwargs})


def test_invalid_params_raise_naming_the_leaf(tmp_path):
    """NaN, complex or overflowing parameters are refused by every public function, naming the leaf,
    instead of giving NaN (or a complex ELBO)."""
    params = vae.init(jax.random.key(0), SMALL)
    key, x, z = jax.random.key(1), np.full((5, 4), 0.5), np.zeros((5, 2))
    encoder, decoder, prior = params.encoder, params.decoder, params.prior
    bad = [
        (params._replace(encoder=(encoder[0]._replace(weights=encoder[0].weights.at[1, 2].set(jnp.nan)),
                                  encoder[1])), ValueError, r"params\.encoder\[0\]\.weights has 1 NaN"),
        (params._replace(decoder=(decoder[0], decoder[1]._replace(bias=decoder[1].bias.astype(complex)))),
         TypeError, r"params\.decoder\[1\]\.bias must be a real floating-point array, got .* complex64"),
        (params._replace(prior=prior._replace(means=prior.means.at[0, 0].set(jnp.inf))), ValueError,
         r"params\.prior\.means has 1 NaN or infinite"),
        # A log-Cholesky diagonal of 100: exp(100) overflows float32, S_1 is not a covariance.
        (params._replace(prior=prior._replace(covariances=prior.covariances.at[1, 0, 0].set(100.0))),
         ValueError, "params.prior does not give a valid mixture prior: covariances"),
    ]
    calls = {
        "elbo": lambda p: vae.elbo(key, SMALL, p, x),
        "iwae_bound": lambda p: vae.iwae_bound(key, SMALL, p, x, n_samples=2),
        "encode": lambda p: vae.encode(SMALL, p, x),
        "decode": lambda p: vae.decode(SMALL, p, z),
        "log_likelihood": lambda p: vae.log_likelihood(SMALL, p, x, z),
        "log_prior": lambda p: vae.log_prior(SMALL, p, z),
        "cluster": lambda p: vae.cluster(SMALL, p, x),
        "sample": lambda p: vae.sample(key, SMALL, p, 3),
        "fit": lambda p: vae.fit(key, SMALL, p, x, optax.sgd(0.1), n_epochs=1, batch_size=5),
        "save": lambda p: jaxmix.save(tmp_path / "params.npz", SMALL, p),
    }
    for call in calls.values():
        for p, error, message in bad:
            with pytest.raises(error, match=message):
                call(p)
    assert not (tmp_path / "params.npz").exists()


def test_load_rejects_non_finite_or_non_float_leaves(tmp_path):
    good = tmp_path / "good.npz"
    jaxmix.save(good, SMALL, vae.init(jax.random.key(0), SMALL))
    with np.load(good) as data:
        arrays = dict(data)
    path = tmp_path / "bad.npz"
    for name, value, message in [
            (".encoder[1].bias", np.where(np.arange(4) == 2, np.nan, arrays["['params'].encoder[1].bias"]),
             "has 1 NaN"),
            (".prior.logits", arrays["['params'].prior.logits"].astype(np.complex64), "must be a real floating-point"),
            (".decoder[0].weights", np.ones((2, 16), np.int32), "must be a real floating-point")]:
        np.savez(path, **{**arrays, f"['params']{name}": value})
        with pytest.raises(ValueError, match=re.escape(f"{path}: params{name} ") + message):
            jaxmix.load(path)


def test_large_integer_data_is_not_wrapped():
    """int64 data beyond 2^31 (exact in float32) gives the ELBO of the same data as floats, or a ValueError
    naming x: never the ELBO of values wrapped to int32 (2^32 -> 0)."""
    params = ppca_params(PPCA)
    x = np.array([[2**32, 3 * 2**31, -(2**33), 2**40, 5], [1, 2, 3, 4, 5]], np.int64)
    expected = vae.elbo(KEYS[0], PPCA, params, x.astype(np.float64))
    assert np.isfinite(expected)
    try:
        result = vae.elbo(KEYS[0], PPCA, params, x)
    except ValueError as error:
        assert str(error).startswith("x ")
    else:
        assert result == expected
