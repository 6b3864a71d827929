"""Exponential mixtures checked against independent references.

- Densities: ``log_joint``, ``log_prob``, ``posterior``, ``predict`` and
  ``score`` against ``scipy.stats.expon`` (scale = 1 / rate) mixed by hand with
  ``scipy.special.logsumexp``, float64, rtol 1e-10, K in {1, 3, 5}, for x of
  shape (N,) and (N, 1); ``bic``, ``aic`` and ``n_parameters`` (2K - 1) by hand.
- EM: one ``e_step`` + ``m_step`` against the docs/maths.md section 3 formulas written
  in NumPy (u_j = mean_i q_ji, lambda_j = sum_i q_ji / sum_i q_ji x_i) with
  scipy's responsibilities; statistics of disjoint chunks add up; integer
  ``sample_weight`` equals repeating rows.
- ``sample``: component frequencies and per-component means 1 / rate within 5
  standard errors, and a Kolmogorov-Smirnov test of x given z; keys reproduce.
- Properties (hypothesis): posterior rows sum to one; ``log_prob`` does not
  depend on the order of the components.
- Hard but valid input (float32): x = 0, points far in the tail, rates six
  orders of magnitude apart, duplicated points, K = 1.
- Transformations: ``jit`` equals eager; ``vmap`` over stacked parameter sets
  equals a loop; ``grad`` of ``score`` w.r.t. the rates equals the analytic
  1 / lambda - mean(x) for K = 1 and central finite differences for K = 3.
- D features (rates (K, D)): densities against products of ``scipy.stats.expon``
  for D = 3 (float64, rtol 1e-10); the M-step from given responsibilities
  against lambda_kd = n_k / sum_i w_i q_ik x_id; ``fit_em`` on D = 2 against a
  NumPy EM from the same start (1e-10) and near the generating rates; shape
  errors naming both shapes; ``sample`` of shape (n, D) with per-feature means.
"""

import chex
import jax
import numpy as np
import optax
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp
from scipy.stats import expon, kstest

from jaxmix import ExponentialMixture, ExponentialMixtureParams, combine_stats, e_step, fit_em

KS = (1, 3, 5)
N = 40  # one N (and 2N) throughout: every new array shape costs JAX compilations

x64_settings = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


# -- independent helpers (NumPy / SciPy) -----------------------------------------


def random_params(rng, k, log_rate_range=(np.log(0.2), np.log(5.0))):
    return ExponentialMixtureParams(rng.dirichlet(np.full(k, 3.0)), np.exp(rng.uniform(*log_rate_range, k)))


def random_data(rng, params, n):
    weights = np.asarray(params.weights, np.float64)
    z = rng.choice(len(weights), size=n, p=weights / weights.sum())
    return rng.exponential(1.0 / np.asarray(params.rates, np.float64)[z])


def scipy_log_joint(params, x):
    """log u_j + log Exp(x_i; lambda_j) with scipy.stats.expon, shape (N, K)."""
    x = np.asarray(x, np.float64).reshape(-1, 1)
    rates = np.asarray(params.rates, np.float64)
    return np.log(np.asarray(params.weights, np.float64)) + expon.logpdf(x, scale=1.0 / rates)


def scipy_posterior(params, x):
    lj = scipy_log_joint(params, x)
    return np.exp(lj - logsumexp(lj, axis=1, keepdims=True))


def assert_f64_close(actual, expected, rtol=1e-10, atol=1e-12):
    actual = np.asarray(actual)
    assert actual.dtype == np.float64, actual.dtype
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


# -- 1. densities against scipy ----------------------------------------------------


@pytest.mark.parametrize("column", [False, True], ids=["x(N,)", "x(N,1)"])
@pytest.mark.parametrize("k", KS)
def test_densities_match_scipy(x64, k, column):
    rng = np.random.default_rng([k, 1])
    params = random_params(rng, k)
    x = random_data(rng, params, N)
    x_in = x[:, None] if column else x
    model = ExponentialMixture(k)
    ref = scipy_log_joint(params, x)
    log_px = logsumexp(ref, axis=1)

    assert_f64_close(model.log_joint(params, x_in), ref)
    assert_f64_close(model.log_prob(params, x_in), log_px)
    assert_f64_close(model.posterior(params, x_in), np.exp(ref - log_px[:, None]))
    assert_f64_close(model.score(params, x_in), np.mean(log_px))
    np.testing.assert_array_equal(model.predict(params, x_in), ref.argmax(axis=1))


@pytest.mark.parametrize("k", KS)
def test_information_criteria_by_hand(x64, k):
    rng = np.random.default_rng([k, 2])
    params = random_params(rng, k)
    x = random_data(rng, params, N)
    model = ExponentialMixture(k)
    total = np.sum(logsumexp(scipy_log_joint(params, x), axis=1))
    p = 2 * k - 1  # k rates and k - 1 free weights
    assert model.n_parameters() == p
    assert_f64_close(model.bic(params, x), -2 * total + p * np.log(N), atol=0)
    assert_f64_close(model.aic(params, x), -2 * total + 2 * p, atol=0)


# -- 7. EM -----------------------------------------------------------------------------


def test_one_em_step_matches_math_md(x64):
    k = 3
    rng = np.random.default_rng(3)
    truth = ExponentialMixtureParams(np.array([0.2, 0.3, 0.5]), np.array([0.3, 2.0, 8.0]))
    x = random_data(rng, truth, 2 * N)
    init = ExponentialMixtureParams(np.array([0.4, 0.3, 0.3]), np.array([0.5, 1.0, 4.0]))
    model = ExponentialMixture(k)

    stats, loglik = e_step(model, init, x)
    new = model.m_step(stats)

    q = scipy_posterior(init, x)  # (N, K), docs/maths.md section 3
    expected = ExponentialMixtureParams(q.mean(axis=0), q.sum(axis=0) / (q * x[:, None]).sum(axis=0))
    chex.assert_trees_all_close(tuple(new), tuple(expected), rtol=1e-10, atol=0)
    assert_f64_close(loglik, np.mean(logsumexp(scipy_log_joint(init, x), axis=1)))


def test_chunked_statistics_add_up(x64):
    k = 3
    rng = np.random.default_rng(4)
    params = random_params(rng, k)
    x = random_data(rng, params, 2 * N)
    model = ExponentialMixture(k)

    whole, _ = e_step(model, params, x)
    a, _ = e_step(model, params, x[:N])
    b, _ = e_step(model, params, x[N:])
    combined = combine_stats(a, b)  # counts and sums add; the reference (current means) is shared
    chex.assert_trees_all_close(combined, whole, rtol=1e-12, atol=1e-12)
    chex.assert_trees_all_close(model.m_step(combined), model.m_step(whole), rtol=1e-12, atol=1e-12)


def test_integer_sample_weight_equals_repeated_rows(x64):
    k = 3
    rng = np.random.default_rng(5)
    params = random_params(rng, k)
    x = random_data(rng, params, N)
    counts = rng.permutation(np.repeat([0, 1, 3, 4], N // 4))  # sums to 2N
    model = ExponentialMixture(k)

    weighted, ll_w = e_step(model, params, x, sample_weight=counts)
    repeated, ll_r = e_step(model, params, np.repeat(x, counts))
    chex.assert_trees_all_close(weighted, repeated, rtol=1e-12, atol=1e-12)
    assert_f64_close(ll_w, ll_r)


# -- 3. sampling -------------------------------------------------------------------------

N_SAMPLE = 40_000
SAMPLE_PARAMS = ExponentialMixtureParams(np.array([0.2, 0.3, 0.5]), np.array([0.5, 2.0, 10.0]))


def test_sample_moments():
    params, k, n = SAMPLE_PARAMS, 3, N_SAMPLE
    x, z = ExponentialMixture(k).sample(jax.random.key(0), params, n)
    assert x.shape == (n,) and z.shape == (n,)
    x, z = np.asarray(x, np.float64), np.asarray(z)
    assert np.all(x >= 0)

    w = params.weights
    np.testing.assert_array_less(np.abs(np.bincount(z, minlength=k) / n - w), 5 * np.sqrt(w * (1 - w) / n))
    for j, rate in enumerate(params.rates):
        xj = x[z == j]
        # Exp(rate) has mean and standard deviation 1 / rate.
        assert abs(xj.mean() - 1 / rate) < 5 / rate / np.sqrt(len(xj))
        assert kstest(xj, expon(scale=1 / rate).cdf).pvalue > 1e-6


def test_sample_keys():
    model = ExponentialMixture(3)
    x1, z1 = model.sample(jax.random.key(1), SAMPLE_PARAMS, N_SAMPLE)
    x2, z2 = model.sample(jax.random.key(1), SAMPLE_PARAMS, N_SAMPLE)
    x3, z3 = model.sample(jax.random.key(2), SAMPLE_PARAMS, N_SAMPLE)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(z1, z2)
    assert not np.allclose(x1, x3)
    assert not np.array_equal(z1, z3)


# -- 2. properties (hypothesis) -----------------------------------------------------------

seeds = st.integers(0, 2**32 - 1)
ks = st.sampled_from(KS)
# log-rate ranges: similar rates, and rates up to six orders of magnitude apart
rate_ranges = st.sampled_from([(np.log(0.5), np.log(2.0)), (np.log(1e-3), np.log(1e3))])


@x64_settings
@given(seed=seeds, k=ks, log_rates=rate_ranges)
def test_posterior_rows_sum_to_one(x64, seed, k, log_rates):
    rng = np.random.default_rng(seed)
    params = random_params(rng, k, log_rates)
    x = random_data(rng, params, N)
    post = np.asarray(ExponentialMixture(k).posterior(params, x))
    assert np.all(post >= 0)
    np.testing.assert_allclose(post.sum(axis=1), 1.0, rtol=0, atol=1e-12)


@x64_settings
@given(seed=seeds, k=ks, log_rates=rate_ranges)
def test_log_prob_invariant_to_component_order(x64, seed, k, log_rates):
    rng = np.random.default_rng(seed)
    params = random_params(rng, k, log_rates)
    x = random_data(rng, params, N)
    perm = rng.permutation(k)
    permuted = ExponentialMixtureParams(params.weights[perm], params.rates[perm])
    model = ExponentialMixture(k)
    np.testing.assert_allclose(model.log_prob(permuted, x), model.log_prob(params, x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        model.posterior(permuted, x), model.posterior(params, x)[:, perm], rtol=1e-12, atol=1e-12
    )


# -- 5. hard but valid input (float32) ---------------------------------------------------

F32 = dict(rtol=1e-5, atol=1e-5)  # float32 result vs float64 reference


def test_zero_and_far_tail_points():
    params = ExponentialMixtureParams(np.array([0.2, 0.3, 0.5]), np.array([0.1, 1.0, 10.0]))
    rng = np.random.default_rng(6)
    x = random_data(rng, params, N)
    x[:4] = [0.0, 0.0, 1e4, 3e4]  # log joint down to ~ -3e5 for the fast components
    x = x.astype(np.float32)
    model = ExponentialMixture(3)
    ref = scipy_log_joint(params, x)

    log_px = np.asarray(model.log_prob(params, x))
    post = np.asarray(model.posterior(params, x))
    assert np.all(np.isfinite(log_px)) and np.all(np.isfinite(post))
    np.testing.assert_allclose(log_px, logsumexp(ref, axis=1), **F32)
    np.testing.assert_allclose(post, scipy_posterior(params, x), atol=1e-5)
    np.testing.assert_allclose(post.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(model.predict(params, x))[:4], [2, 2, 0, 0])


def test_rates_six_orders_of_magnitude_apart():
    params = ExponentialMixtureParams(np.array([0.2, 0.3, 0.5]), np.array([1e-3, 1.0, 1e3]))
    x = random_data(np.random.default_rng(7), params, N).astype(np.float32)
    model = ExponentialMixture(3)
    ref = scipy_log_joint(params, x)
    np.testing.assert_allclose(model.log_joint(params, x), ref, **F32)
    np.testing.assert_allclose(model.posterior(params, x), scipy_posterior(params, x), atol=1e-5)
    new = model.m_step(e_step(model, params, x)[0])
    assert all(np.all(np.isfinite(leaf)) for leaf in new)
    assert np.isfinite(model.score(new, x))


def test_duplicate_points():
    rng = np.random.default_rng(8)
    params = random_params(rng, 3)
    half = random_data(rng, params, N // 2)
    x = np.concatenate([half, half]).astype(np.float32)
    model = ExponentialMixture(3)
    log_px = np.asarray(model.log_prob(params, x))
    np.testing.assert_array_equal(log_px[: N // 2], log_px[N // 2:])
    np.testing.assert_allclose(log_px, logsumexp(scipy_log_joint(params, x), axis=1), **F32)
    new = model.m_step(e_step(model, params, x)[0])
    assert np.isfinite(model.score(new, x))


def test_single_component():
    rng = np.random.default_rng(9)
    params = ExponentialMixtureParams(np.ones(1), np.array([2.5]))
    x = random_data(rng, params, N).astype(np.float32)
    model = ExponentialMixture(1)
    np.testing.assert_allclose(model.posterior(params, x), np.ones((N, 1)), rtol=0, atol=1e-6)
    np.testing.assert_allclose(model.log_prob(params, x), expon.logpdf(x, scale=1 / 2.5), **F32)
    new = model.m_step(e_step(model, params, x)[0])  # K = 1: the MLE rate 1 / mean(x)
    np.testing.assert_allclose(new.rates, [1 / np.mean(x.astype(np.float64))], rtol=1e-5)


# -- 6. jit, vmap, grad ------------------------------------------------------------------


def test_jit_matches_eager():
    rng = np.random.default_rng(10)
    params = random_params(rng, 3)
    x = random_data(rng, params, N).astype(np.float32)
    model = ExponentialMixture(3)
    np.testing.assert_allclose(jax.jit(model.log_prob)(params, x), model.log_prob(params, x), **F32)
    em = lambda p, x: model.m_step(e_step(model, p, x)[0])
    chex.assert_trees_all_close(jax.jit(em)(params, x), em(params, x), **F32)


def test_vmap_over_parameter_sets():
    rng = np.random.default_rng(11)
    sets = [random_params(rng, 3) for _ in range(4)]
    stacked = jax.tree.map(lambda *leaves: np.stack(leaves), *sets)
    x = random_data(rng, sets[0], N).astype(np.float32)
    model = ExponentialMixture(3)
    batched = jax.jit(jax.vmap(model.log_prob, in_axes=(0, None)))(stacked, x)
    np.testing.assert_allclose(batched, np.stack([model.log_prob(p, x) for p in sets]), **F32)


def test_grad_of_single_exponential_is_analytic(x64):
    rng = np.random.default_rng(12)
    x = rng.exponential(0.7, N)
    model = ExponentialMixture(1)
    rate = np.array([1.3])
    g = jax.jit(jax.grad(lambda r: model.score(ExponentialMixtureParams(np.ones(1), r), x)))(rate)
    assert_f64_close(g, 1 / rate - x.mean())  # d/dlambda mean(log lambda - lambda x)


def test_grad_of_score_matches_finite_differences(x64):
    rng = np.random.default_rng(13)
    params = random_params(rng, 3)
    x = random_data(rng, params, N)
    model = ExponentialMixture(3)

    def score(rates):
        return model.score(params._replace(rates=rates), x)

    g = jax.jit(jax.grad(score))(params.rates)
    v, h = rng.normal(size=3), 1e-6
    fd = (float(score(params.rates + h * v)) - float(score(params.rates - h * v))) / (2 * h)
    np.testing.assert_allclose(np.sum(g * v), fd, rtol=1e-6)


# -- 8. D features: products of independent exponentials -----------------------------------

RATES_3D = np.array([[0.5, 2.0, 8.0], [4.0, 0.3, 1.0], [1.5, 6.0, 0.2]])  # (K, D) = (3, 3)


def random_data_d(rng, params, n):
    z = rng.choice(len(params.weights), size=n, p=np.asarray(params.weights))
    return rng.exponential(1.0 / np.asarray(params.rates)[z])


def scipy_log_joint_d(params, x):
    """log u_k + sum_d log Exp(x_id; lambda_kd), scipy.stats.expon per feature, shape (N, K)."""
    rates = np.asarray(params.rates, np.float64)
    per_feature = expon.logpdf(x[:, None, :], scale=1.0 / rates[None])  # (N, K, D)
    return np.log(np.asarray(params.weights, np.float64)) + per_feature.sum(axis=2)


def numpy_em_d(x, u, lam, n_iter):
    """docs/maths.md section 3 in D features: q_ik, u_k = mean_i q_ik, lambda_kd = sum_i q_ik / sum_i q_ik x_id."""
    history = []
    for _ in range(n_iter):
        lj = scipy_log_joint_d(ExponentialMixtureParams(u, lam), x)
        log_px = logsumexp(lj, axis=1, keepdims=True)
        history.append(np.mean(log_px))
        q = np.exp(lj - log_px)
        u, lam = q.mean(axis=0), q.sum(axis=0)[:, None] / (q.T @ x)
    return u, lam, np.array(history)


def test_densities_of_three_features_match_scipy(x64):
    rng = np.random.default_rng(20)
    params = ExponentialMixtureParams(np.array([0.2, 0.3, 0.5]), RATES_3D)
    x = random_data_d(rng, params, N)
    x[0] = 0.0  # the edge of the support
    model = ExponentialMixture(3)
    ref = scipy_log_joint_d(params, x)
    log_px = logsumexp(ref, axis=1)
    assert_f64_close(model.log_joint(params, x), ref)
    assert_f64_close(model.log_prob(params, x), log_px)
    assert_f64_close(model.posterior(params, x), np.exp(ref - log_px[:, None]))
    p = 3 * 3 + 3 - 1  # K D rates and K - 1 weights
    assert model.n_parameters(3) == p
    assert_f64_close(model.bic(params, x), -2 * log_px.sum() + p * np.log(N), atol=0)


def test_m_step_from_responsibilities_is_the_closed_form(x64):
    rng = np.random.default_rng(21)
    x = rng.exponential(size=(N, 3))
    q = rng.dirichlet(np.ones(3), size=N)  # given responsibilities (N, K)
    w = rng.uniform(0.5, 2.0, N)
    model = ExponentialMixture(3)
    got = model.from_responsibilities(x, q, w)
    wq = w[:, None] * q
    n_k = wq.sum(axis=0)
    assert_f64_close(got.weights, n_k / n_k.sum())
    assert_f64_close(got.rates, n_k[:, None] / (wq.T @ x))  # lambda_kd = n_k / sum_i w_i q_ik x_id

    stats, _ = e_step(model, got, x)
    assert stats.counts.shape == (3,) and stats.sums.shape == (3, 3)
    one = model.from_responsibilities(x[:, :1], q, w)  # one feature keeps rates (K,)
    assert_f64_close(one.rates, n_k / (wq.T @ x[:, 0]))


def test_fit_of_two_features_matches_numpy_em_and_recovers_rates(x64):
    truth = ExponentialMixtureParams(np.array([0.4, 0.6]), np.array([[1.0, 10.0], [8.0, 0.5]]))
    x = random_data_d(np.random.default_rng(22), truth, 10 * N)
    start = ExponentialMixtureParams(np.array([0.5, 0.5]), np.array([[0.5, 3.0], [3.0, 0.5]]))
    n_iter = 30
    u, lam, history = numpy_em_d(x, start.weights, start.rates, n_iter)
    result = fit_em(ExponentialMixture(2), start, x, max_iter=n_iter, tol=0.0)
    assert result.params.rates.shape == (2, 2)
    assert_f64_close(result.params.weights, u)
    assert_f64_close(result.params.rates, lam)
    assert_f64_close(result.history, history)
    # Statistical tolerance: ~200 points a component give rates to ~7% (one standard error).
    np.testing.assert_allclose(result.params.rates, truth.rates, rtol=0.3)
    np.testing.assert_allclose(result.params.weights, truth.weights, atol=0.1)


def test_shapes_of_several_features_are_checked():
    model = ExponentialMixture(3)
    params = ExponentialMixtureParams(np.full(3, 1 / 3), RATES_3D)
    x = np.ones((N, 2))
    with pytest.raises(ValueError, match=r"x must have shape \(n_samples, 3\) for rates of shape \(3, 3\), "
                                         r"got \(40, 2\)"):
        model.log_prob(params, x)
    with pytest.raises(ValueError, match=r"got \(40,\)"):
        model.log_prob(params, np.ones(N))
    with pytest.raises(ValueError, match=r"x must have shape \(n_samples,\) or \(n_samples, 1\) for rates of "
                                         r"shape \(3,\), got \(40, 2\)"):
        model.log_prob(params._replace(rates=np.ones(3)), x)
    with pytest.raises(ValueError, match=r"x must have shape \(n_samples, 3\)"):
        fit_em(model, params, x, max_iter=2)
    with pytest.raises(ValueError, match=r"rates must have shape \(3,\) for one feature or \(3, D\).*got \(3, 1\)"):
        model.log_prob(params._replace(rates=np.ones((3, 1))), x[:, :1])
    with pytest.raises(ValueError, match=r"rates must have shape \(3, 3\), got \(2, 3\)"):
        model.log_prob(params._replace(rates=RATES_3D[:2]), np.ones((N, 3)))
    with pytest.raises(ValueError, match="non-negative"):
        model.log_prob(params, -np.ones((N, 3)))


def test_a_feature_zero_at_every_point_is_refused_before_fitting():
    """Its rate's maximum-likelihood value is infinite: every fit names the feature, instead of ending in
    non-finite parameters; the feature's value at points of weight 0 does not count, and its log-density
    can still be evaluated."""
    from jaxmix import fit, fit_gradient, fit_online, initialize
    from jaxmix.sklearn import ExponentialMixture as Estimator

    model = ExponentialMixture(2)
    x = np.abs(np.random.default_rng(0).normal(size=(N, 3)))
    x[:, 1] = 0.0
    params = initialize(jax.random.key(0), model, x[:, [0, 2]])._replace(rates=np.ones((2, 3)))
    message = r"feature\(s\) \[1\] of x are 0 at all n_samples=\d+ points with positive weight"
    key = jax.random.key(0)
    fits = [lambda: fit(key, model, x), lambda: fit_em(model, params, x),
            lambda: fit_gradient(key, model, params, x, optax.adam(0.1), n_steps=2),
            lambda: fit_online(key, model, params, x, n_epochs=1, batch_size=10), lambda: Estimator(2).fit(x)]
    for run in fits:
        with pytest.raises(ValueError, match=message):
            run()
    x[:3, 1] = 1.0
    weights = np.r_[np.zeros(3), np.ones(N - 3)]
    with pytest.raises(ValueError, match=message):
        fit_em(model, params, x, sample_weight=weights)
    assert np.isfinite(fit_em(model, params, x, max_iter=3).log_likelihood)
    assert np.all(np.isfinite(model.log_prob(params, np.zeros((4, 3)))))


def test_sample_of_several_features():
    params = ExponentialMixtureParams(np.array([0.2, 0.3, 0.5]), RATES_3D)
    x, z = ExponentialMixture(3).sample(jax.random.key(3), params, N_SAMPLE)
    assert x.shape == (N_SAMPLE, 3) and z.shape == (N_SAMPLE,)
    x, z = np.asarray(x, np.float64), np.asarray(z)
    assert np.all(x >= 0)
    for j in range(3):
        xj = x[z == j]
        # Exp(rate) has mean and standard deviation 1 / rate, feature by feature.
        np.testing.assert_array_less(np.abs(xj.mean(axis=0) - 1 / RATES_3D[j]), 5 / RATES_3D[j] / np.sqrt(len(xj)))
