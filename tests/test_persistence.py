"""``jaxmix.save`` / ``jaxmix.load`` for every model: exact round trips in float32 and float64 (the loaded
model computes what the saved one did), checkpoints, spectral results, metadata and custom families, and
files of another family, with bad parameters, or of a newer format as ValueErrors naming the path.

The file format's own damaged and forged cases are in tests/test_pytree_io.py, the VAE's in test_vae.py.
"""

import dataclasses
import json
import re
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxmix
from jaxmix import vae

FAMILIES = [*(jaxmix.GaussianMixture(2, covariance_type=c) for c in ("full", "tied", "diag", "spherical", "identity")),
            jaxmix.ExponentialMixture(2), jaxmix.KMeans(2), jaxmix.FuzzyCMeans(2)]
IDS = ["full", "tied", "diag", "spherical", "identity", "exponential", "kmeans", "fuzzy"]
DTYPES = {"float32": False, "float64": True}


def data(model, dtype):
    """40 rows of two groups in two features (one positive feature for the exponential mixture)."""
    x = np.random.default_rng(0).normal(size=(40, 2)) + np.repeat([[0.0, 0.0], [4.0, 4.0]], 20, axis=0)
    return jnp.asarray(np.abs(x[:, :1]) if isinstance(model, jaxmix.ExponentialMixture) else x, dtype)


def assert_bitwise(tree, expected):
    """The same tree structure, classes, dtypes and bits; Python scalars equal."""
    assert jax.tree_util.tree_structure(tree) == jax.tree_util.tree_structure(expected)
    for leaf, want in zip(jax.tree_util.tree_leaves(tree), jax.tree_util.tree_leaves(expected)):
        if not isinstance(want, jax.Array):  # a Python scalar (OnlineResult.n_steps) stays one
            assert type(leaf) is type(want) and leaf == want
            continue
        assert isinstance(leaf, jax.Array) and leaf.dtype == want.dtype and leaf.shape == want.shape
        bits = lambda a: np.atleast_1d(np.asarray(a)).view(np.uint8)
        np.testing.assert_array_equal(bits(leaf), bits(want))


def round_trip(tmp_path, model, saved):
    """``saved`` through ``jaxmix.save`` / ``jaxmix.load``: checks the model and the class, returns what loaded."""
    path = tmp_path / "saved.npz"
    jaxmix.save(path, model, saved)
    loaded_model, loaded = jaxmix.load(path, type(model))
    assert loaded_model == model and type(loaded) is type(saved)
    assert_bitwise(loaded, saved)
    return loaded


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("model", FAMILIES, ids=IDS)
def test_every_family_and_result_round_trips_bitwise(tmp_path, model, dtype):
    with jax.enable_x64(DTYPES[dtype]):
        x = data(model, dtype)
        em = jaxmix.fit_em(model, jaxmix.initialize(jax.random.key(0), model, x), x, max_iter=3, tol=0.0)
        online = jaxmix.OnlineResult(em.params, em.history, None, 3)  # the drivers' own results: next test
        for saved in (em.params, em, jaxmix.FitResult(em, em.log_likelihood[None]), online):
            loaded = round_trip(tmp_path, model, saved)
        np.testing.assert_array_equal(model.predict(loaded.params, x), model.predict(em.params, x))


@pytest.mark.filterwarnings("ignore::jaxmix.ConvergenceWarning")
def test_the_drivers_results_round_trip_bitwise(tmp_path, x64):
    model = jaxmix.GaussianMixture(2, covariance_type="diag")
    x = data(model, "float64")
    fitted = jaxmix.fit(jax.random.key(0), model, x, n_init=2, max_iter=5)
    round_trip(tmp_path, model, fitted)
    round_trip(tmp_path, model, jaxmix.fit_online(jax.random.key(1), model, fitted.params, x, batch_size=20,
                                                  n_epochs=1))


def test_gradient_results_checkpoints_and_selections_round_trip(tmp_path, x64):
    model = jaxmix.GaussianMixture(2, covariance_type="diag")
    x = data(model, "float64")
    start = jaxmix.initialize(jax.random.key(0), model, x)
    gradient = jaxmix.fit_gradient(jax.random.key(1), model, start, x, optax.adam(0.1), n_steps=3)
    jaxmix.save(tmp_path / "gradient.npz", model, gradient)
    assert_bitwise(jaxmix.load(tmp_path / "gradient.npz")[1], gradient)
    # A checkpoint of fit_em is a file of the same format: jaxmix.load reads it as (model, state).
    result = jaxmix.fit_em(model, start, x, max_iter=4, tol=0.0, checkpoint=tmp_path / "em.ckpt")
    loaded_model, state = jaxmix.load(tmp_path / "em.ckpt")
    assert loaded_model == model and type(state).__name__ == "EMState" and int(state.iteration) == 4
    assert_bitwise(state.params, result.params)
    selection = jaxmix.ModelSelection(np.array([1, 2]), ("full", "diag"), np.array([3.0, 2.0]),
                                      np.array([2.0, 1.0]), np.array([-1.5, -1.2]), 1, (start, start))
    jaxmix.save(tmp_path / "selection.npz", None, selection)
    loaded = jaxmix.load(tmp_path / "selection.npz")[1]
    assert loaded.covariance_types == ("full", "diag") and loaded.best == 1
    assert_bitwise(loaded.params, selection.params)


def test_a_spectral_result_loads_ready_to_predict(tmp_path):
    t = np.linspace(0.0, 3.0, 30)
    x = np.concatenate([np.stack([t, np.zeros(30)], 1), np.stack([t, np.full(30, 2.0)], 1)]).astype(np.float32)
    result = jaxmix.spectral_clustering(jax.random.key(0), x, 2, affinity="knn", n_neighbors=5)
    jaxmix.save(tmp_path / "spectral.npz", None, result)
    model, loaded = jaxmix.load(tmp_path / "spectral.npz")
    assert model is None and loaded.kind == result.kind and loaded.gamma == result.gamma
    with pytest.raises(ValueError, match=r"spectral\.npz: it holds no model"):
        jaxmix.load(tmp_path / "spectral.npz", jaxmix.KMeans)
    assert_bitwise(loaded, result)
    new = x[::7] + 0.05
    np.testing.assert_array_equal(jaxmix.spectral.predict(loaded, new), jaxmix.spectral.predict(result, new))


def test_a_vae_fit_result_round_trips(tmp_path):
    model = vae.VAE(4, 2, hidden_sizes=(8,), n_components=2)
    params = vae.init(jax.random.key(0), model)
    result = vae.VAEFitResult(params, vae.FitHistory(*(np.arange(3, dtype=np.float32) for _ in range(4))))
    jaxmix.save(tmp_path / "vae.npz", model, result, metadata={"note": "digits", "seed": 0})
    loaded_model, loaded, metadata = jaxmix.load(tmp_path / "vae.npz", vae.VAE, metadata=True)
    assert loaded_model == model and metadata == {"note": "digits", "seed": 0}
    assert_bitwise(loaded.params, params)
    np.testing.assert_array_equal(loaded.history.seconds, np.arange(3, dtype=np.float32))


def test_metadata_keeps_numpy_arrays_and_64_bits_need_x64(tmp_path, x64):
    model = jaxmix.KMeans(2)
    params = jaxmix.KMeansParams(jnp.array([[0.0, 1.0], [2.0, 3.0]]))
    labels = np.array([0, 1, 1], np.int64)
    jaxmix.save(tmp_path / "kmeans.npz", model, params, metadata={"labels": labels, "init": "k-means++"})
    _, _, metadata = jaxmix.load(tmp_path / "kmeans.npz", metadata=True)
    assert type(metadata["labels"]) is np.ndarray and metadata["labels"].dtype == np.int64
    with jax.enable_x64(False), pytest.warns(UserWarning, match="holds float64 arrays; without x64 they load"):
        _, narrowed = jaxmix.load(tmp_path / "kmeans.npz")
    assert narrowed.centers.dtype == jnp.float32


class CoinParams(NamedTuple):
    p: jax.Array


@dataclasses.dataclass(frozen=True)
class Coins:
    n_components: int


def test_a_custom_family_loads_with_its_classes(tmp_path):
    jaxmix.save(tmp_path / "coins.npz", Coins(1), CoinParams(jnp.array([0.5])))
    with pytest.raises(ValueError, match=r"names the class 'CoinParams', which is not one of the classes.*are read "
                                         r"when given: jaxmix.load\(path, types=\(MyFamily, MyParams\)\)"):
        jaxmix.load(tmp_path / "coins.npz")
    model, params = jaxmix.load(tmp_path / "coins.npz", Coins, types=(Coins, CoinParams))
    assert model == Coins(1) and isinstance(params, CoinParams) and float(params.p[0]) == 0.5


@pytest.mark.parametrize("model", FAMILIES, ids=IDS)
def test_another_family_or_bad_parameters_raise_naming_the_path(tmp_path, model):
    params = jaxmix.initialize(jax.random.key(0), model, data(model, "float32"))
    path = tmp_path / "model.npz"
    jaxmix.save(path, model, params)
    other = jaxmix.KMeans if not isinstance(model, jaxmix.KMeans) else jaxmix.GaussianMixture
    with pytest.raises(ValueError, match=re.escape(f"{path}: it holds a {type(model).__name__}, not a "
                                                   f"{other.__name__}")):
        jaxmix.load(path, other)
    with pytest.raises(ValueError, match=re.escape(f"{path}: it holds {model}, not")):
        jaxmix.load(path, dataclasses.replace(model, **{dataclasses.fields(model)[0].name: 3}))  # K = 3
    field = [name for name in params._fields if getattr(params, name) is not None][-1]  # variances, rates, centers
    with pytest.raises(ValueError, match=r"finite|positive"):  # refused before writing, and when crafted
        jaxmix.save(tmp_path / "bad.npz", model, params._replace(**{field: getattr(params, field) * np.nan}))
    with np.load(path) as file:
        arrays = dict(file)
    name = f"['params'].{field}"
    np.savez(tmp_path / "crafted.npz", **{**arrays, name: np.full_like(arrays[name], np.nan)})
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / "crafted.npz")) + ": .*(finite|positive)"):
        jaxmix.load(tmp_path / "crafted.npz")
    header = json.loads(str(arrays["__jaxmix__"]))
    newer = np.array(json.dumps({**header, "format_version": 2}))
    np.savez(tmp_path / "newer.npz", **{**arrays, "__jaxmix__": newer})
    with pytest.raises(ValueError, match=r"format version 2, .* upgrade jaxmix"):
        jaxmix.load(tmp_path / "newer.npz")
