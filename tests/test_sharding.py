"""EM on rows spread over devices (jaxmix.inference.sharding) equals EM on one device.

The fits run in child processes with four CPU devices (``XLA_FLAGS``), so that the rest of the
suite keeps one: this file is also the children's script. Every family, ``fit_em`` and ``fit``,
float64: x sharded by ``jax.device_put`` (N = 200, on an explicit mesh) or built by ``global_rows``
(N = 202, padded to 204 with zero-weight rows) against the same fit of the host array, to 1e-10
relative, with the same iteration counts, the results replicated; and the compiled sharded
programs hold no array of x's rows: no collective with N elements or more, no shape of N rows.
"""

import os
import pathlib
import re
import subprocess
import sys
import warnings

import numpy as np

DEVICES = 4
# both sides of every comparison compiled alike.
N_EVEN, N_ODD = 200, 202  # N_ODD rows are padded to 204 by global_rows
# family: (n_features, init of fit, rows spread by "device_put" or "global_rows")
FAMILIES = {
    "gaussian-full": (3, "kmeans", "global_rows"),
    "gaussian-tied": (3, "random", "device_put"),
    "gaussian-diag": (3, "random_from_data", "global_rows"),
    "gaussian-spherical": (3, "random", "device_put"),
    "gaussian-identity": (3, "random", "global_rows"),
    "exponential": (1, "kmeans++", "global_rows"),
    "kmeans": (3, "random_from_data", "device_put"),
    "fuzzy": (3, "random_from_data", "global_rows"),
    "bernoulli": (5, "kmeans++", "device_put"),  # its prior is in units of points: rows not padded
}
ONLINE = ("gaussian-tied", "kmeans")  # also fit_online (rows not padded: the same minibatches)


def test_sharded_fits_equal_one_device_fits():
    """One child with four CPU devices, under a deadline, killed whatever happens (one child, not two side
    by side: the test run's memory peaks while it runs)."""
    # conftest.py's compile flags, and four CPU devices
    env = {**os.environ, "XLA_FLAGS": f"{os.environ['XLA_FLAGS']} --xla_force_host_platform_device_count={DEVICES}"}
    child_process = subprocess.Popen([sys.executable, __file__], env=env, text=True, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
    try:
        output = child_process.communicate(timeout=300)[0]
    finally:
        child_process.kill()
        child_process.wait()
    assert child_process.returncode == 0, output[-5000:]
    assert output.count(": equal") == 2 * len(FAMILIES) + len(ONLINE) + 1, output


def check_program(what, text, x_shape):
    """No collective in the compiled text whose result has as many elements as x has rows (x's size or
    more, in particular); no shape of x's rows."""
    assert f"num_partitions={DEVICES}" in text, what
    for line in text.splitlines():
        if match := re.search(r"= (.*?) (all-gather|all-to-all|collective-permute)(?:-start)?\(", line):
            sizes = [np.prod([int(n) for n in dims.split(",") if n]) for dims in re.findall(r"\[([\d,]*)\]",
                                                                                            match[1])]
            assert max(sizes) < x_shape[0], (what, line[:200])
    rows = re.findall(rf"\[{x_shape[0]}(?:,\d+)*\]", text)
    assert not rows, f"{what}: a device holds an array of x's rows: {sorted(set(rows))}"


def child():
    """The fits of every family of FAMILIES, on the host array and on four devices; prints one line per
    equal pair."""
    import jax
    import jax.numpy as jnp
    from jax.sharding import NamedSharding, PartitionSpec

    import jaxmix

    jax.config.update("jax_enable_x64", True)
    warnings.simplefilter("ignore", jaxmix.ConvergenceWarning)
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "examples"))
    from custom_family import BernoulliMixture
    from references import release_memory

    models = {"exponential": jaxmix.ExponentialMixture(2), "kmeans": jaxmix.KMeans(3),
              "fuzzy": jaxmix.FuzzyCMeans(3), "bernoulli": BernoulliMixture(3)}
    mesh = jax.make_mesh((DEVICES,), ("data",))  # explicit axes: the fits take any mesh
    check_refusals(mesh)
    rng = np.random.default_rng(0)
    for name, (d, init, layout) in FAMILIES.items():
        model = models.get(name) or jaxmix.GaussianMixture(3, name.split("-")[1])
        n = N_EVEN if layout == "device_put" else N_ODD
        x = rng.normal(size=(n, d)) + 3.0 * (np.arange(n) % 3)[:, None]
        x = np.abs(x) if name == "exponential" else (x > 2.5).astype(float) if name == "bernoulli" else x
        if layout == "device_put":
            spread, weights = jax.device_put(x, NamedSharding(mesh, PartitionSpec("data"))), None
        else:
            spread, weights = jaxmix.global_rows(x)
        assert spread.shape[0] % DEVICES == 0 and len(spread.sharding.device_set) == DEVICES
        settings = {"max_iter": 60, "tol": 1e-6, "chunk_size": 16}
        labels = jax.nn.one_hot(np.arange(n) % model.n_components, model.n_components)  # a poor start
        start = model.from_responsibilities(jnp.asarray(x), labels, jnp.ones(n))
        one, spread_em = (jaxmix.fit_em(model, start, data, sample_weight=w, **settings)
                          for data, w in ((x, None), (spread, weights)))
        compare(f"{name} fit_em", one, spread_em)
        one, spread_fit = (jaxmix.fit(jax.random.key(0), model, data, sample_weight=w, init=init, n_init=2,
                                      **settings) for data, w in ((x, None), (spread, weights)))
        compare(f"{name} fit ({init})", one, spread_fit)
        if name in ONLINE:
            one, spread_online = (jaxmix.fit_online(jax.random.key(1), model, start, data, batch_size=40, n_epochs=2,
                                                    log_likelihood=True) for data in (x, spread))
            compare(f"{name} fit_online", one, spread_online)
        for what, text in sharded_programs(model, start, spread, weights, init, settings):
            check_program(f"{name} {what}", text, spread.shape)
        release_memory()  # a family's programs: two children run side by side beside the other tests


def sharded_programs(model, start, x, weights, init, settings):
    """The compiled text of the programs ``fit_em`` and ``fit`` ran on x (from JAX's cache), with
    the arguments the two build."""
    import jax
    import jax.numpy as jnp

    from jaxmix.inference import em, restarts, sharding

    rows = sharding.row_shards(x)
    params, x_checked = model.check(start, x)
    x_checked, weights_checked = sharding.fit_data(model, x_checked, weights, rows)
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, x_checked.dtype), params)
    tol = jnp.asarray(settings["tol"], x_checked.dtype)
    yield "fit_em", em.em_program.jitted(model).lower(model, params, x_checked, weights_checked, tol,
                                                      settings["max_iter"], settings["chunk_size"],
                                                      rows).compile().as_text()
    static, dynamic = restarts.fit_arguments(jax.random.key(0), model, x, n_init=2, init=init, sample_weight=weights,
                                             **settings)
    yield "fit", restarts.fit_program.jitted(static["model"]).lower(*dynamic, **static).compile().as_text()


def check_refusals(mesh):
    """Spread data and weights are checked on the devices: a NaN in x, a negative or all-zero weight
    raise the messages of host arrays."""
    import jax
    from jax.sharding import NamedSharding, PartitionSpec

    import jaxmix

    def spread(a):
        return jax.device_put(np.asarray(a, float), NamedSharding(mesh, PartitionSpec("data")))

    x, model, start = np.arange(16.0).reshape(8, 2), jaxmix.KMeans(2), jaxmix.KMeansParams(np.eye(2))
    for data, weights, message in ((np.where(x == 5.0, np.nan, x), None, "x contains 1 NaN"),
                                   (x, -np.arange(8.0), "sample_weight must be non-negative"),
                                   (x, np.zeros(8), "at least one positive entry")):
        try:
            jaxmix.fit_em(model, start, spread(data), sample_weight=None if weights is None else spread(weights))
        except ValueError as error:
            assert message in str(error), error
        else:
            raise AssertionError(f"no error for {message!r}")
    try:
        jaxmix.fit_em(jaxmix.ExponentialMixture(2), None, spread(np.arange(-1.0, 7.0)))
    except ValueError as error:
        assert "must be non-negative" in str(error), error
    else:
        raise AssertionError("no error for negative data of an exponential mixture")
    try:  # a feature 0 at every point of positive weight: counted on the devices
        zero_feature, weights = np.c_[np.arange(8.0), np.r_[1.0, np.zeros(7)]], np.r_[0.0, np.ones(7)]
        jaxmix.fit_em(jaxmix.ExponentialMixture(2), None, spread(zero_feature), sample_weight=spread(weights))
    except ValueError as error:
        assert "feature(s) [1] of x are 0 at all n_samples=7 points" in str(error), error
    else:
        raise AssertionError("no error for a feature 0 at every point of an exponential mixture")
    print("refusals: equal to those of host arrays", flush=True)


def compare(what, one, spread):
    """Parameters, log-likelihoods (of every restart for ``fit``) to 1e-10 relative and iteration
    counts equal; the sharded result replicated on every device."""
    import jax

    def values(result):
        best = getattr(result, "best", result)
        return best, jax.tree_util.tree_leaves((best.params, best.log_likelihood, best.history,
                                                getattr(result, "restart_log_likelihoods", ())))

    (one, a), (spread, b) = values(one), values(spread)
    assert all(leaf.is_fully_replicated for leaf in b), what
    error = max(float(np.max(np.where(np.isnan(u) & np.isnan(v), 0.0, np.abs(v - u) / np.maximum(np.abs(u), 1e-300))))
                for u, v in ((np.asarray(u), np.asarray(v)) for u, v in zip(a, b)))
    n_iter = [int(getattr(result, "n_iter", getattr(result, "n_steps", 0))) for result in (one, spread)]
    assert error < 1e-10 and n_iter[0] == n_iter[1], (what, error, n_iter)
    print(f"{what}: equal, max relative difference {error:.1e}, {n_iter[0]} iterations", flush=True)


if __name__ == "__main__":
    child()
