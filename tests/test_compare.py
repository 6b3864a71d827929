"""The EM-versus-gradient harness: ``jaxmix.inference.compare.compare_fits`` and ``ComparisonResult``.

What is checked against what (float64 unless stated, so agreements are tight):

- Shapes: every array has the documented (M, S, ...) shape; ``methods`` lists EM
  first, then the optimizers in the order given.
- Shared starts: the initializations are ``initialize(keys[s], model, x, init)`` with
  ``keys = jax.random.split(key, n_starts)``, and column 0 of every method's
  history (each method's own evaluation, EM through its chunked E-step, the
  optimizers through the unconstrained map) equals ``model.score`` of those
  parameters, to 1e-12 in float64 and 1e-5 in float32.
- EM against a separate ``fit_em`` from the same start (history, n_iter,
  final log-likelihood); adam against a separate ``fit_gradient``.
- The summary: the best value is the largest finite history entry; ``at_best``,
  ``iterations_to_best`` (the first iteration after which a start stays within
  ``atol``, checked by a loop and on a hand-built history that touches the
  optimum, leaves and returns) and ``n_at_best`` follow their definitions;
  counts are at most ``n_starts``; the Markdown table has a row per method.
- Bad input raises ``ValueError`` (values) or ``TypeError`` (types), before any compilation.
"""

import jax
import numpy as np
import optax
import pytest
import scipy.special
import scipy.stats
from references import blobs

from jaxmix import ExponentialMixture, FuzzyCMeans, GaussianMixture, KMeans, fit_em, fit_gradient, initialize
from jaxmix.inference.compare import ComparisonResult, compare_fits, default_optimizers, summarize_runs

# "random_from_data" compiles several times faster than the default "kmeans++"; the init method is
# not what these tests check (test_starts_are_model_init_of_the_split_keys checks the contract).
N_STARTS, MAX_ITER, N_STEPS, TOL, INIT = 3, 25, 15, 1e-7, "random_from_data"


X = blobs(scale=1.0)
X_EXP = np.random.default_rng(0).exponential(np.where(np.arange(150) % 2, 0.25, 2.0))


def family(name):
    """(model, data, optimizers) for each family; L-BFGS, slow to compile, runs on the cheaper family."""
    return {
        "gmm-full": (GaussianMixture(3, "full"), X, {"adam": optax.adam(0.05)}),
        "exponential": (ExponentialMixture(2), X_EXP, {"adam": optax.adam(0.05), "lbfgs": optax.lbfgs()}),
    }[name]


FAMILIES = ("gmm-full", "exponential")
KEY = jax.random.key(3)


@pytest.fixture(scope="module", params=FAMILIES)
def case(request):
    """(model, x, optimizers, result) of one float64 comparison per family, shared by the tests."""
    model, x, optimizers = family(request.param)
    with jax.enable_x64(True):
        result = compare_fits(KEY, model, x, optimizers=optimizers, n_starts=N_STARTS, max_iter=MAX_ITER,
                              tol=TOL, n_steps=N_STEPS, init=INIT)
    return model, x, optimizers, result


def start(params, s):
    return jax.tree_util.tree_map(lambda leaf: leaf[s], params)


def test_result_has_the_documented_shapes(case):
    model, x, optimizers, result = case
    m, t = 1 + len(optimizers), max(MAX_ITER, N_STEPS) + 1
    assert isinstance(result, ComparisonResult)
    assert result.methods == ("em", *optimizers)
    assert result.n_starts == N_STARTS
    assert result.history.shape == (m, N_STARTS, t)
    assert result.wall_time.shape == (m, t)
    for name in ("final_log_likelihood", "n_iter", "iterations_to_best", "at_best"):
        assert getattr(result, name).shape == (m, N_STARTS), name
    for name in ("compile_seconds", "run_seconds", "seconds_per_iteration", "n_at_best"):
        assert getattr(result, name).shape == (m,), name
    assert result.history.dtype == np.float64
    k, d = model.n_components, x.reshape(len(x), -1).shape[1]
    shapes = {"weights": (k,), "means": (k, d), "covariances": (k, d, d), "rates": (k,)}
    assert type(result.initial_params) is type(result.params)
    for field in result.initial_params._fields:
        assert getattr(result.initial_params, field).shape == (N_STARTS, *shapes[field]), field
        assert getattr(result.params, field).shape == (m, N_STARTS, *shapes[field]), field
    assert np.all(result.compile_seconds > 0) and np.all(result.seconds_per_iteration > 0)


def test_history_is_padded_after_each_run(case):
    _, _, _, result = case
    em = result.history[0]
    np.testing.assert_array_equal(result.n_iter[1:], N_STEPS)
    for s, n in enumerate(result.n_iter[0]):
        assert 1 <= n <= MAX_ITER
        assert np.all(np.isfinite(em[s, :n + 1])) and np.all(np.isnan(em[s, n + 1:]))
        assert np.all(np.diff(em[s, :n + 1]) >= -1e-12)  # EM never decreases the log-likelihood
    assert np.all(np.isfinite(result.history[1:, :, :N_STEPS + 1]))
    assert np.all(np.isnan(result.history[1:, :, N_STEPS + 1:]))


# The seeding does not depend on the family; one saves a compile.
@pytest.mark.parametrize("case", ["exponential"], indirect=True)
def test_starts_are_model_init_of_the_split_keys(case, x64):
    model, x, _, result = case
    for s, start_key in enumerate(jax.random.split(KEY, N_STARTS)):
        expected = initialize(start_key, model, x, INIT)
        for got, want in zip(jax.tree_util.tree_leaves(start(result.initial_params, s)),
                             jax.tree_util.tree_leaves(expected)):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def mean_log_likelihood(model, params, x):
    """An independent reference: scipy's densities, mixed in NumPy."""
    if isinstance(model, ExponentialMixture):
        log_joint = np.log(params.weights) + scipy.stats.expon.logpdf(x[:, None], scale=1 / params.rates)
    else:
        components = zip(params.means, params.covariances)
        log_joint = np.log(params.weights) + np.stack(
            [scipy.stats.multivariate_normal(m, c).logpdf(x) for m, c in components], axis=1)
    return np.mean(scipy.special.logsumexp(log_joint, axis=1))


def test_every_method_starts_from_the_same_log_likelihood(case):
    model, x, _, result = case
    scores = [mean_log_likelihood(model, start(result.initial_params, s), x) for s in range(N_STARTS)]
    first = result.history[:, :, 0]
    np.testing.assert_allclose(first, np.broadcast_to(scores, first.shape), rtol=1e-12, atol=0)
    assert np.unique(np.round(scores, 6)).size > 1  # the starts differ, so the check has teeth


def test_em_matches_a_separate_fit_em_from_the_same_start(case, x64):
    model, x, _, result = case
    for s in range(N_STARTS):
        single = fit_em(model, start(result.initial_params, s), x, max_iter=MAX_ITER, tol=TOL)
        assert int(single.n_iter) == result.n_iter[0, s]
        np.testing.assert_allclose(result.final_log_likelihood[0, s], single.log_likelihood, rtol=1e-10)
        n = int(single.n_iter)  # fit_em's history is NaN from n on; compare_fits puts the final value at n
        np.testing.assert_allclose(result.history[0, s, :n], single.history[:n], rtol=1e-10)
        assert np.all(np.isnan(single.history[n:]))
        for got, want in zip(jax.tree_util.tree_leaves(start(start(result.params, 0), s)),
                             jax.tree_util.tree_leaves(single.params)):
            np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10)


def test_adam_matches_a_separate_fit_gradient_from_the_same_start(case, x64):
    model, x, optimizers, result = case
    m = result.methods.index("adam")
    for s in range(N_STARTS):
        params = start(result.initial_params, s)
        single = fit_gradient(KEY, model, params, x, optimizers["adam"], n_steps=N_STEPS)
        np.testing.assert_allclose(result.final_log_likelihood[m, s], single.log_likelihood, rtol=1e-10)
        np.testing.assert_allclose(result.history[m, s, :N_STEPS], single.history, rtol=1e-10)


def test_summary_follows_its_definitions(case):
    _, _, _, result = case
    history, best, atol = result.history, result.best_log_likelihood, result.atol
    assert best == np.nanmax(history)
    np.testing.assert_array_equal(result.at_best, result.final_log_likelihood >= best - atol)
    np.testing.assert_array_equal(result.n_at_best, result.at_best.sum(axis=1))
    assert np.all((0 <= result.n_at_best) & (result.n_at_best <= N_STARTS))
    assert result.n_at_best.sum() >= 1  # the best belongs to someone (EM here, which never decreases)
    for m in range(len(result.methods)):
        for s in range(N_STARTS):
            assert result.iterations_to_best[m, s] == iterations_to_stay(
                history[m, s], result.n_iter[m, s], best - atol)
    np.testing.assert_array_equal(result.iterations_to_best >= 0, result.at_best)
    np.testing.assert_allclose(result.seconds_per_iteration, result.run_seconds / result.n_iter.max(axis=1))


def iterations_to_stay(curve, n_iter, threshold):
    """The first t with curve[t'] >= threshold for all t' = t .. n_iter, by a plain loop; -1 if none."""
    for t in range(n_iter + 1):
        if all(curve[u] >= threshold for u in range(t, n_iter + 1)):
            return t
    return -1


def test_iterations_to_best_counts_from_where_a_start_stays():
    """A start that touches the optimum early, leaves and comes back is counted from its return.

    (The old count took the first touch: adam's median of 20 in the demo, where its median curve stays
    above the tolerance until about iteration 50.) Best = 0, atol = 0.1; EM stops early on starts 1, 2
    (NaN padding after n_iter), adam's history is shorter and padded to EM's length.
    """
    nan = np.nan
    em = np.array([[-3, 0, -1, -1, 0, -0.05, 0], [-3, -2, 0, -1, nan, nan, nan],
                   [-3, -1, 0, 0, nan, nan, nan], [0, 0, 0, 0, 0, 0, 0]])
    adam = np.array([[-3, 0, -2, -2, 0], [-3, -2, -2, -2, -2], [-3, nan, 0, 0, 0], [-3, 0, 0, -0.2, 0]])
    n_em, n_adam = np.array([6, 3, 3, 6]), np.full(4, 4)
    starts = np.zeros(4)
    result = summarize_runs([("em", starts, em, n_em, 1.0, 1.0), ("adam", starts, adam, n_adam, 1.0, 1.0)],
                        starts, atol=0.1)
    assert result.best_log_likelihood == 0.0
    expected = [[4, -1, 2, 0], [4, -1, 2, 4]]
    np.testing.assert_array_equal(result.iterations_to_best, expected)
    for m, (curve, n_iter) in enumerate([(em, n_em), (adam, n_adam)]):
        assert [iterations_to_stay(c, n, -0.1) for c, n in zip(curve, n_iter)] == expected[m]
    np.testing.assert_array_equal(result.at_best, [[True, False, True, True], [True, False, True, True]])
    rows = result.to_markdown().splitlines()[2:]
    assert "| 3 (3/4 reach) |" in rows[0] and "| 4 (3/4 reach) |" in rows[1]  # medians of 0, 2, 4, inf


def test_markdown_has_a_row_per_method(case):
    _, _, _, result = case
    lines = result.to_markdown().splitlines()
    assert len(lines) == 2 + len(result.methods)
    assert lines[1] == "|---" * 7 + "|"
    assert all(line.startswith("| ") and line.endswith(" |") for line in lines[:1] + lines[2:])
    for name, line, count in zip(result.methods, lines[2:], result.n_at_best):
        assert line.startswith(f"| {name} |")
        assert f"| {count}/{N_STARTS} |" in line


def test_float32_starts_agree_to_rounding():
    """In the default float32 every method still starts from the same value, to rounding."""
    model, x, _ = family("exponential")
    result = compare_fits(KEY, model, x, optimizers={"adam": optax.adam(0.05)}, n_starts=N_STARTS,
                          max_iter=MAX_ITER, n_steps=N_STEPS)
    assert result.history.dtype == np.float32
    np.testing.assert_allclose(result.history[1, :, 0], result.history[0, :, 0], rtol=1e-5)
    assert np.all(np.isfinite(result.final_log_likelihood))


def test_default_optimizers():
    optimizers = default_optimizers()
    assert list(optimizers) == ["adam", "sgd", "lbfgs"]
    assert all(isinstance(o, optax.GradientTransformation) for o in optimizers.values())


BAD_VALUES = [
    ({"n_starts": 0}, "n_starts"),
    ({"max_iter": 0}, "max_iter"),
    ({"n_steps": 0}, "n_steps"),
    ({"tol": -1.0}, "tol"),
    ({"atol": -1e-4}, "atol"),
    ({"repeats": 0}, "repeats"),
    ({"init": "spectral"}, "init"),
    ({"em": False, "optimizers": {}}, "Nothing to compare"),
    ({"optimizers": {"em": optax.adam(0.1)}}, "'em'"),
    ({"sample_weight": -np.ones(150)}, "sample_weight"),
    ({"max_iter": 10**12}, "max_iter must be <= 10000000"),
    ({"n_steps": 10**12}, "n_steps must be <= 2147483647"),
    ({"n_steps": 2**31}, "n_steps"),
]


@pytest.mark.parametrize(("kwargs", "match"), BAD_VALUES)
def test_bad_values_raise_value_error(kwargs, match):
    model, x, _ = family("exponential")
    with pytest.raises(ValueError, match=match):
        compare_fits(KEY, model, x, **kwargs)


@pytest.mark.parametrize("x", [np.ones((10, 2, 1)), -X_EXP, np.full(150, np.nan), X_EXP[:1]])
def test_bad_data_raises_value_error(x):
    with pytest.raises(ValueError, match=r"x|n_components"):
        compare_fits(KEY, ExponentialMixture(2), x, optimizers={})


BAD_TYPES = [
    ({"n_starts": 2.0}, "n_starts"),
    ({"em": 1}, "em"),
    ({"optimizers": [optax.adam(0.1)]}, "optimizers"),
    ({"optimizers": {"adam": "adam"}}, "optimizers"),
    ({"optimizers": {1: optax.adam(0.1)}}, "optimizers"),
    ({"optimizers": {"adam": None}}, r"optimizers\['adam'\] must be an optax.GradientTransformation such as"),
    ({"optimizers": {"adam": optax.adam}}, r"optimizers\['adam'\] must be an optax.GradientTransformation"),
]


@pytest.mark.parametrize(("kwargs", "match"), BAD_TYPES)
def test_bad_types_raise_type_error(kwargs, match):
    model, x, _ = family("exponential")
    with pytest.raises(TypeError, match=match):
        compare_fits(KEY, model, x, **kwargs)


def test_bad_key_and_non_differentiable_model_raise_type_error():
    with pytest.raises(TypeError, match="key"):
        compare_fits(0, ExponentialMixture(2), X_EXP)
    for model in (KMeans(3), FuzzyCMeans(3)):
        with pytest.raises(TypeError, match=r"optimizers=\{\} to run EM alone\) needs a model with LogJoint"):
            compare_fits(KEY, model, X)


def test_plot_draws_median_and_band_per_method(case):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    result = case[3]
    fig = Figure()
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 2)
    result.plot(axes, colors={"em": "black"})

    for ax in axes.ravel():
        assert len(ax.lines) == len(result.methods) + (ax in axes[1]), "one median per method (+ atol line)"
        assert len(ax.collections) == len(result.methods), "one 10-90 % band per method"
    em_median = axes[0, 0].lines[0].get_ydata()
    assert axes[0, 0].lines[0].get_color() == "black"
    # The median curve starts at the shared initialization and ends at the median final value.
    np.testing.assert_allclose(em_median[0], np.median(result.history[0, :, 0]), rtol=1e-6)
    last = np.median(result.final_log_likelihood[0])
    np.testing.assert_allclose(em_median[result.n_iter[0].max()], last, rtol=1e-6)
    assert [t.get_text() for t in axes[0, 0].get_legend().get_texts()] == list(result.methods)
