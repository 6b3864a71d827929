"""Streamed data (``jaxmix.inference.sources``): ``fit_em``, ``fit`` and ``initialize`` on a source.

What is checked against what:

- Every family (the five Gaussian covariance types, the exponential mixture on 1-D data, k-means,
  fuzzy c-means, the Bernoulli mixture of examples/custom_family.py) on a memmap, streamed in
  blocks of 700 rows (the last one padded), against the same data in memory: ``fit_em`` from the
  same start (with and without sample weights) agrees to 1e-10 relative in float64, with the same
  iteration count; so do ``initialize`` and ``fit`` (n_init=2, the same key, weighted) of a Gaussian
  and the exponential mixture. The same for an h5py, zarr and dask source where installed.
- ``RowSource.take`` (the rows of a sample) against NumPy fancy indexing, for each kind of source.
- Bad input: NaN or inf in a late block, past the rows of the initialization sample, raises a
  ValueError naming its row's index in the whole source; so does a bad row inside the sample; a
  negative value in a late block of exponential data names its block; rows that change width, an
  empty source, a non-numeric dtype and a 3-D source raise clear errors.
- Reading is one pass per E-step: a source that counts its rows reads N rows for the sample and
  N per E-step (max_iter + 1 of them), each read at most ``block_rows`` rows; the first pass, not a
  separate one, checks the data.
"""

import pathlib
import sys

import jax
import numpy as np
import pytest

from jaxmix import (
    ExponentialMixture,
    ExponentialMixtureParams,
    FuzzyCMeans,
    FuzzyCMeansParams,
    GaussianMixture,
    GaussianMixtureParams,
    KMeans,
    KMeansParams,
    fit,
    fit_em,
    initialize,
)
from jaxmix.inference import sources

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "examples"))
import custom_family

N, D, K, BLOCK_ROWS = 2000, 3, 3, 700  # 700 does not divide 2000: three blocks, the last one padded
MAX_ITER, TOL = 60, 1e-7
RTOL = 1e-10
CENTERS = np.array([[0.0, 0.0, 0.0], [5.0, 1.0, -2.0], [1.0, 6.0, 3.0]])


def blobs3(seed=0):
    """Three separated 3-D clusters of different shapes, (N, D)."""
    rng = np.random.default_rng(seed)
    scales = np.array([[1.0, 0.5, 0.8], [0.7, 1.2, 1.0], [1.1, 0.9, 0.6]])
    labels = rng.integers(0, K, N)
    return CENTERS[labels] + rng.normal(size=(N, D)) * scales[labels]


def exponential_data(seed=0, n=N):
    """Exponential draws of means 0.5 and 4, (n,)."""
    return np.random.default_rng(seed).exponential(np.where(np.arange(n) % 3, 0.5, 4.0))


def binary_data(seed=0):
    """Bits from three prototypes of 8 Bernoulli probabilities, (N, 8) of 0/1."""
    rng = np.random.default_rng(seed)
    probs = np.array([[0.9] * 4 + [0.1] * 4, [0.1] * 4 + [0.9] * 4, [0.8, 0.2] * 4])
    return (rng.uniform(size=(N, 8)) < probs[rng.integers(0, K, N)]).astype(np.float64)


def gaussian(cov):
    """GaussianMixture(K, cov), from centers off the true ones and unit covariances."""
    covariances = {"full": np.stack([np.eye(D)] * K), "tied": np.eye(D), "diag": np.ones((K, D)),
                   "spherical": np.ones(K), "identity": None}[cov]
    return GaussianMixture(K, cov), GaussianMixtureParams(np.array([0.3, 0.3, 0.4]), CENTERS + 0.5, covariances), blobs3


FAMILIES = {
    **{f"gmm-{cov}": lambda cov=cov: gaussian(cov) for cov in ("full", "tied", "diag", "spherical", "identity")},
    "exponential": lambda: (ExponentialMixture(2), ExponentialMixtureParams(np.array([0.5, 0.5]),
                                                                           np.array([1.0, 0.5])), exponential_data),
    "kmeans": lambda: (KMeans(K), KMeansParams(CENTERS + 0.5), blobs3),
    "fuzzy": lambda: (FuzzyCMeans(K), FuzzyCMeansParams(CENTERS + 0.5), blobs3),
    "bernoulli": lambda: (custom_family.BernoulliMixture(K), custom_family.BernoulliParams(
        np.full(K, 1 / K), np.array([[0.6] * 4 + [0.4] * 4, [0.4] * 4 + [0.6] * 4, [0.55, 0.45] * 4])), binary_data),
}


def weights_for(n):
    return np.random.default_rng(1).uniform(0.2, 3.0, n)


def memmap_of(tmp_path, x, name="x.npy"):
    np.save(tmp_path / name, x)
    return np.load(tmp_path / name, mmap_mode="r")


def assert_same_tree(streamed, in_memory):
    for a, b in zip(jax.tree_util.tree_leaves(streamed), jax.tree_util.tree_leaves(in_memory), strict=True):
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype == np.float64
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=RTOL * np.max(np.abs(b)))


def assert_same_fit(streamed, in_memory):
    assert_same_tree(streamed.params, in_memory.params)
    np.testing.assert_allclose(streamed.log_likelihood, in_memory.log_likelihood, rtol=RTOL)
    np.testing.assert_allclose(streamed.history, in_memory.history, rtol=RTOL, equal_nan=True)
    assert int(streamed.n_iter) == int(in_memory.n_iter)
    assert bool(streamed.converged) == bool(in_memory.converged)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_memmap_fit_em_equals_in_memory_fit_em(x64, tmp_path, name):
    model, start, make_data = FAMILIES[name]()
    x = make_data()
    source = memmap_of(tmp_path, x)
    assert sources.is_source(source) and not sources.is_source(x)
    for sample_weight in (None, weights_for(N)):
        in_memory = fit_em(model, start, x, max_iter=MAX_ITER, tol=TOL, sample_weight=sample_weight)
        assert bool(in_memory.converged) and int(in_memory.n_iter) >= 3
        streamed = fit_em(model, start, source, max_iter=MAX_ITER, tol=TOL, sample_weight=sample_weight,
                          block_rows=BLOCK_ROWS)
        assert_same_fit(streamed, in_memory)


def check_fit_and_initialize(model, x, source, init):
    """``initialize`` and ``fit`` (n_init=2, weighted) on ``source`` equal the same calls on the array x."""
    key, weights = jax.random.key(3), weights_for(x.shape[0])
    assert_same_tree(initialize(key, model, source, init, weights), initialize(key, model, x, init, weights))
    in_memory = fit(key, model, x, n_init=2, init=init, max_iter=MAX_ITER, tol=TOL, sample_weight=weights)
    streamed = fit(key, model, source, n_init=2, init=init, max_iter=MAX_ITER, tol=TOL, sample_weight=weights,
                   block_rows=BLOCK_ROWS)
    np.testing.assert_allclose(streamed.restart_log_likelihoods, in_memory.restart_log_likelihoods, rtol=RTOL)
    assert_same_fit(streamed.best, in_memory.best)  # the restarts' fits differ by > 1e-9: the same one is kept


@pytest.mark.parametrize("name, init", [("gmm-full", "random"), ("exponential", "random_from_data")])
def test_memmap_fit_and_initialize_equal_in_memory(x64, tmp_path, name, init):
    model, _, make_data = FAMILIES[name]()
    x = make_data()
    check_fit_and_initialize(model, x, memmap_of(tmp_path, x), init)


def h5py_source(tmp_path, x):
    h5py = pytest.importorskip("h5py")
    file = h5py.File(tmp_path / "x.h5", "w")
    file.create_dataset("x", data=x, chunks=(500, *x.shape[1:]))
    return file["x"]


def zarr_source(tmp_path, x):
    zarr = pytest.importorskip("zarr")
    return zarr.array(x, chunks=(500, *x.shape[1:]))


def dask_source(tmp_path, x):
    dask_array = pytest.importorskip("dask.array")
    return dask_array.from_array(x, chunks=(500, *x.shape[1:]))


SOURCES = {"h5py": h5py_source, "zarr": zarr_source, "dask": dask_source}


@pytest.mark.parametrize("kind", list(SOURCES))
def test_other_sources_fit_as_in_memory(x64, tmp_path, kind):
    model, start, make_data = FAMILIES["gmm-full"]()
    x = make_data()
    source = SOURCES[kind](tmp_path, x)
    assert sources.is_source(source)
    streamed = fit_em(model, start, source, max_iter=MAX_ITER, tol=TOL, block_rows=BLOCK_ROWS)
    assert_same_fit(streamed, fit_em(model, start, x, max_iter=MAX_ITER, tol=TOL))
    check_fit_and_initialize(model, x, source, "random")


@pytest.mark.parametrize("kind", ["memmap", *SOURCES])
def test_take_reads_the_rows_of_a_sample(x64, tmp_path, kind):
    x = blobs3()[:1000]
    source = sources.RowSource(memmap_of(tmp_path, x) if kind == "memmap" else SOURCES[kind](tmp_path, x))
    indices = np.array([0, 1, 2, 17, 500, 998, 999])
    np.testing.assert_array_equal(source.take(indices), x[indices])
    rows, drawn = source.sample(jax.random.key(0), n=300)
    assert np.all(np.diff(drawn) > 0) and 200 < drawn.size <= 300
    np.testing.assert_array_equal(rows, x[drawn])


class CountingRows:
    """An array-like source over x that records the rows of each read."""

    def __init__(self, x):
        self.x, self.shape, self.dtype, self.reads = x, x.shape, x.dtype, []

    def __getitem__(self, index):
        rows = self.x[index]
        self.reads.append(rows.shape[0])
        return rows


def test_a_fit_reads_the_sample_and_one_pass_per_e_step(x64):
    model, start, make_data = FAMILIES["gmm-diag"]()
    source, max_iter = CountingRows(make_data()), 4
    fit_em(model, start, source, max_iter=max_iter, tol=0.0, block_rows=BLOCK_ROWS)
    assert source.reads[0] == N  # the sample: every row, as N <= SAMPLE_ROWS
    assert source.reads[1:] == [700, 700, 600] * (max_iter + 1)  # max_iter E-steps and the final one


def late_bad_rows(x, block_rows):
    """Two rows of the last block that the fit's sample (``RowSource.sample``, no key) skips."""
    _, sampled = sources.RowSource(x).sample()
    skipped = np.setdiff1d(np.arange((x.shape[0] - 1) // block_rows * block_rows, x.shape[0]), sampled)
    assert skipped.size > 2
    return skipped[[skipped.size // 2, skipped.size // 2 + 1]]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -1.0])
def test_bad_value_past_the_sample_is_found_in_its_block(x64, tmp_path, bad):
    block_rows = BLOCK_ROWS  # 98 blocks
    x = exponential_data(n=sources.SAMPLE_ROWS + 3000)
    rows = late_bad_rows(x, block_rows)
    x[rows] = bad
    source = CountingRows(memmap_of(tmp_path, x))
    model, start, _ = FAMILIES["exponential"]()
    block = f"rows {len(x) // block_rows * block_rows}:{len(x)}"
    message = (f"in {block} of x: x must be non-negative" if bad < 0 else
               f"x has NaN or inf in row {rows[0]} and 1 more in {block};")
    with pytest.raises(ValueError, match=message):
        fit_em(model, start, source, max_iter=5, block_rows=block_rows)
    assert source.reads[0] < len(x) and sum(source.reads[1:]) == len(x)  # the sample, then the first pass


def test_bad_value_in_the_sample_is_named_by_its_row(x64, tmp_path):
    x = blobs3()
    x[1234, 1] = np.nan
    source = memmap_of(tmp_path, x)
    model, start, _ = FAMILIES["gmm-diag"]()
    for call in (lambda: fit_em(model, start, source, block_rows=BLOCK_ROWS),
                 lambda: fit(jax.random.key(0), model, source, block_rows=BLOCK_ROWS),
                 lambda: initialize(jax.random.key(0), model, source)):
        with pytest.raises(ValueError, match="x has NaN or inf in row 1234;"):
            call()


class ChangingWidth(CountingRows):
    """Rows from 1400 on come back one column short."""

    def __getitem__(self, index):
        rows = super().__getitem__(index)
        return rows[:, :-1] if index.start >= 1400 and index.stop - index.start < N else rows


class ObjectRows(CountingRows):
    def __init__(self, x):
        super().__init__(x)
        self.dtype = np.dtype(object)


def test_malformed_sources_raise_clear_errors(x64, tmp_path):
    x = blobs3()
    model, start, _ = FAMILIES["gmm-diag"]()
    with pytest.raises(ValueError, match=r"returned rows 1400:2000 with shape \(600, 2\), expected \(600, 3\): "
                                         "its rows change width"):
        fit_em(model, start, ChangingWidth(x), block_rows=BLOCK_ROWS)
    cases = [
        (memmap_of(tmp_path, np.zeros((0, D)), "empty.npy"), ValueError, r"has no rows \(shape \(0, 3\)\)"),
        (memmap_of(tmp_path, np.array([["a", "b"]] * 5), "text.npy"), TypeError, "must have a real numeric dtype"),
        (ObjectRows(x), TypeError, "must have a real numeric dtype, got object"),
        (memmap_of(tmp_path, np.zeros((4, 2, 2)), "cube.npy"), ValueError, r"must have shape \(n_samples, n_fea"),
    ]
    for source, error, message in cases:
        for call in (lambda: fit_em(model, start, source),
                     lambda: fit(jax.random.key(0), model, source),
                     lambda: initialize(jax.random.key(0), model, source)):
            with pytest.raises(error, match=message):
                call()
