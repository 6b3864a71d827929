"""Online EM against minibatch gradient ascent: ``jaxmix.inference.stochastic.compare_stochastic``.

What is checked against what (float64, so agreements are exact or tight):

- Shapes and names: (M, S, E + 1) log-likelihoods, (M, S) seconds per epoch,
  (M,) compile seconds, parameters with leading (M, S) axes; online EM first.
- Shared starts: start s is ``initialize`` of the s-th key split from the
  first half of ``jax.random.split(key)``; column 0 is the start's score
  (``e_step``) for every method.
- Online EM against separate ``fit_online`` calls of e = 1 .. E epochs from the
  same start and order key (log-likelihoods by ``e_step``; final parameters).
- Each optimizer against a separate ``fit_gradient`` with floor(N / batch_size)
  steps per epoch and the history every epoch.
- The summary: ``seconds`` is e x seconds per epoch, ``best_log_likelihood`` the
  largest value, a table row per method, a two-panel plot.
- Bad input raises ``ValueError`` or ``TypeError`` before any fit.
"""

import jax
import numpy as np
import optax
import pytest

from jaxmix import (
    ExponentialMixture,
    ExponentialMixtureParams,
    KMeans,
    e_step,
    fit_gradient,
    fit_online,
    initialize,
)
from jaxmix.inference.stochastic import ONLINE_EM, StochasticComparison, compare_stochastic

MODEL = ExponentialMixture(2)
N, BATCH, EPOCHS, STARTS = 600, 64, 2, 2
ADAM = optax.adam(0.05)  # one instance: the separate fit_gradient reuses its compiled loop
KEY = jax.random.key(5)


@pytest.fixture(scope="module")
def case():
    """(x, result) of one float64 comparison: online EM and adam."""
    with jax.enable_x64(True):
        truth = ExponentialMixtureParams(np.array([0.6, 0.4]), np.array([4.0, 0.5]))
        x, _ = MODEL.sample(jax.random.key(0), truth, N)
        result = compare_stochastic(KEY, MODEL, x, optimizers={"adam": ADAM}, n_starts=STARTS, n_epochs=EPOCHS,
                                    batch_size=BATCH, kappa=0.7, t0=3.0, init="random_from_data")
    return np.asarray(x), result


def _keys():
    start_key, order_key = jax.random.split(KEY)
    return jax.random.split(start_key, STARTS), jax.random.split(order_key, STARTS)


def test_shapes_and_names(case):
    _, result = case
    assert isinstance(result, StochasticComparison)
    assert result.methods == (ONLINE_EM, "adam")
    assert result.log_likelihood.shape == (2, STARTS, EPOCHS + 1)
    assert result.epoch_seconds.shape == (2, STARTS) and np.all(result.epoch_seconds >= 0)
    assert result.compile_seconds.shape == (2,) and np.all(result.compile_seconds >= 0)
    assert result.params.rates.shape == (2, STARTS, 2) and result.initial_params.rates.shape == (STARTS, 2)
    assert (result.n_starts, result.n_epochs, result.batch_size) == (STARTS, EPOCHS, BATCH)
    assert np.all(np.isfinite(result.log_likelihood))


def test_starts_are_shared_and_scored_alike(case):
    x, result = case
    start_keys, _ = _keys()
    with jax.enable_x64(True):
        for s, key in enumerate(start_keys):
            start = initialize(key, MODEL, x, "random_from_data")
            np.testing.assert_array_equal(result.initial_params.rates[s], start.rates)
            score = float(e_step(MODEL, start, x)[1])
            np.testing.assert_allclose(result.log_likelihood[:, s, 0], score, rtol=0, atol=1e-12)


def test_online_em_matches_fit_online(case):
    x, result = case
    start_keys, order_keys = _keys()
    with jax.enable_x64(True):
        for s in range(STARTS):
            start = initialize(start_keys[s], MODEL, x, "random_from_data")
            for e in range(1, EPOCHS + 1):
                fitted = fit_online(order_keys[s], MODEL, start, x, n_epochs=e, batch_size=BATCH, kappa=0.7,
                                    t0=3.0).params
                np.testing.assert_allclose(result.log_likelihood[0, s, e], float(e_step(MODEL, fitted, x)[1]),
                                           rtol=0, atol=1e-12)
            np.testing.assert_allclose(result.params.rates[0, s], fitted.rates, rtol=1e-12)


def test_optimizer_matches_fit_gradient(case):
    x, result = case
    start_keys, order_keys = _keys()
    per_epoch = N // BATCH
    with jax.enable_x64(True):
        for s in range(STARTS):
            start = initialize(start_keys[s], MODEL, x, "random_from_data")
            fitted = fit_gradient(order_keys[s], MODEL, start, x, ADAM, n_steps=EPOCHS * per_epoch,
                                  batch_size=BATCH, history_stride=per_epoch)
            expected = [*np.asarray(fitted.history)[::per_epoch], float(fitted.log_likelihood)]
            np.testing.assert_allclose(result.log_likelihood[1, s], expected, rtol=0, atol=1e-12)
            np.testing.assert_allclose(result.params.rates[1, s], fitted.params.rates, rtol=1e-12)


def test_summary(case):
    _, result = case
    np.testing.assert_allclose(result.seconds, np.arange(EPOCHS + 1) * result.epoch_seconds[..., None])
    assert result.best_log_likelihood == np.max(result.log_likelihood)
    table = result.to_markdown().splitlines()
    assert len(table) == 2 + len(result.methods)
    assert [row.split(" | ")[0] for row in table[2:]] == [f"| {m}" for m in result.methods]
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    axes = Figure().subplots(1, 2)
    result.plot(axes)
    assert [len(ax.get_lines()) for ax in axes] == [2, 2]


X = np.random.default_rng(0).exponential(size=200)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"optimizers": [optax.adam(0.1)]}, TypeError, "mapping"),
    ({"optimizers": {ONLINE_EM: optax.adam(0.1)}}, ValueError, "online_em"),
    ({"optimizers": {"adam": "adam"}}, TypeError, "GradientTransformation"),
    ({"n_starts": 0}, ValueError, "n_starts"),
    ({"n_epochs": 0}, ValueError, "n_epochs"),
    ({"batch_size": 201}, ValueError, "batch_size"),
    ({"kappa": 0.5}, ValueError, "kappa"),
    ({"init": "nope"}, ValueError, "init"),
    ({"progress": "sometimes"}, ValueError, "progress"),
])
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        compare_stochastic(KEY, MODEL, X, **kwargs)


def test_needs_a_mixture():
    with pytest.raises(TypeError, match="compare_stochastic"):
        compare_stochastic(KEY, KMeans(2), X.reshape(-1, 1), optimizers={})
