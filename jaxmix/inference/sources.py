"""Data that stays where it is: rows read block by block from a memmap, an h5py or zarr dataset, a dask array.

A *source* is any array-like with ``.shape``, ``.dtype`` and row slicing
``x[a:b]`` that is not an in-memory array; a NumPy memmap
(``np.load(path, mmap_mode="r")``) counts as a source. The drivers stream it:
a thread reads block b + 1 on the host while the device summarizes block b,
and a fit holds no copy of the data, only a block or two and a sample of at
most ``SAMPLE_ROWS`` rows for initialization.
"""

from __future__ import annotations

import concurrent.futures

import jax
import jax.numpy as jnp
import numpy as np

from jaxmix import _validation as v

DEFAULT_BLOCK_ROWS = 2**16  # rows read and summarized per call; benchmarks/README.md, "Streaming"
SAMPLE_ROWS = 2**16  # the most rows a fit on a source loads at once (initialization, tolerance scale)


def is_source(x) -> bool:
    """True for data the drivers stream instead of loading: a memmap, or an array-like that is not an array."""
    if isinstance(x, np.memmap):
        return True
    if isinstance(x, (np.ndarray, jax.Array, jax.core.Tracer, list, tuple)):
        return False
    return all(hasattr(x, name) for name in ("shape", "dtype", "__getitem__"))


class RowSource:
    """Blocks of rows of a source as NumPy arrays of the working dtype, checked as they are read."""

    def __init__(self, data, name: str = "x"):
        self.data, self.name = data, name
        self.kind = type(data).__name__
        try:
            dtype = np.dtype(data.dtype)
        except TypeError as err:
            raise TypeError(f"{name} (a {self.kind} source) has dtype {data.dtype!r}, not a NumPy dtype; "
                            "give a source of real numbers.") from err
        if not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer) or dtype == np.bool_):
            raise TypeError(f"{name} (a {self.kind} source) must have a real numeric dtype, got {dtype}.")
        self.shape = tuple(int(n) for n in data.shape)
        if len(self.shape) not in (1, 2):
            raise ValueError(f"{name} (a {self.kind} source) must have shape (n_samples, n_features) or "
                             f"(n_samples,), got {self.shape}.")
        if self.shape[0] < 1:
            raise ValueError(f"{name} (a {self.kind} source) has no rows (shape {self.shape}); give a "
                             "non-empty source.")
        self.dtype = v.working_dtype(dtype)
        self.n_rows = self.shape[0]

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows start:stop, as a NumPy array of the working dtype."""
        return self._checked(self.data[start:stop], f"rows {start}:{stop}", stop - start)

    def take(self, indices) -> np.ndarray:
        """The rows at sorted, distinct ``indices`` (what h5py and zarr accept)."""
        indices = np.asarray(indices)
        reader = getattr(self.data, "oindex", self.data)  # zarr reads scattered rows through .oindex
        return self._checked(reader[indices], f"{indices.size} rows from {indices[0]}", indices.size)

    def _checked(self, block, where: str, n: int) -> np.ndarray:
        block = np.asarray(block)
        if block.shape != (n, *self.shape[1:]):
            raise ValueError(f"{self.name} (a {self.kind} source of shape {self.shape}) returned {where} with "
                             f"shape {block.shape}, expected {(n, *self.shape[1:])}: its rows change width.")
        return block.astype(self.dtype, copy=False)

    def blocks(self, block_rows: int, check=None):
        """``(start, rows)`` for consecutive blocks, the next one read in a thread while this one is used.

        ``check(start, rows)``, when given, runs on each block as it is read
        (``check_rows``): the data is validated on its first pass, not read twice.
        """
        def read(start):
            rows = self.read(start, min(start + block_rows, self.n_rows))
            if check is not None:
                check(start, rows)
            return rows

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pending = pool.submit(read, 0)
            for start in range(0, self.n_rows, block_rows):
                rows = pending.result()
                if start + block_rows < self.n_rows:
                    pending = pool.submit(read, start + block_rows)
                yield start, rows

    def sample(self, key=None, n: int = SAMPLE_ROWS) -> tuple[np.ndarray, np.ndarray]:
        """At most n rows and their indices: all rows (in order) when N <= n; else n evenly spaced rows,
        or, with a key, n distinct rows drawn uniformly (sorted; always n, so that the programs that use
        the sample compile once for every N)."""
        if self.n_rows <= n:
            return self.read(0, self.n_rows), np.arange(self.n_rows)
        if key is None:
            indices = np.unique(np.linspace(0, self.n_rows - 1, n).astype(np.int64))
        elif self.n_rows <= 4 * n:
            indices = np.sort(np.asarray(jax.random.permutation(key, self.n_rows))[:n])
        else:  # 2n draws hold >= 1.57 n distinct rows on average for N > 4n (a loop guards the rare fewer)
            draws, chosen = np.zeros(0, np.int64), jax.random.split(key)[1]
            while draws.size < n:
                key, draw_key = jax.random.split(key)
                draws = np.union1d(draws, np.asarray(jax.random.randint(draw_key, (2 * n,), 0, self.n_rows)))
            indices = np.sort(draws[np.asarray(jax.random.permutation(chosen, draws.size))[:n]])
        return self.take(indices), indices


def check_rows(model, params, name: str = "x"):
    """A ``blocks`` check, ``check(start, rows, indices=None)``: the family's own checks (``model.check``)
    of rows start, start + 1, ... (or of the rows at ``indices``), and NaN or inf reported by the index
    of the first bad row in the whole source."""

    def check(start, rows, indices=None):
        where = (f"rows {start}:{start + rows.shape[0]}" if indices is None
                 else f"the {rows.shape[0]} rows {indices[0]}, ..., {indices[-1]}")
        bad = ~np.all(np.isfinite(rows.reshape(rows.shape[0], -1)), axis=1)
        if np.any(bad):
            first = start + int(np.argmax(bad)) if indices is None else int(indices[np.argmax(bad)])
            more = int(np.sum(bad)) - 1
            also = f" and {more} more in {where}" if more else ""
            raise ValueError(f"{name} has NaN or inf in row {first}{also}; remove or impute them before "
                             "fitting.")
        try:
            model.check(params, rows)
        except (ValueError, TypeError) as err:
            raise type(err)(f"in {where} of {name}: {err}") from err

    return check


def padded(rows: np.ndarray, weights: np.ndarray | None, block_rows: int) -> tuple[jax.Array, jax.Array]:
    """A block and its weights (None: ones) padded to ``block_rows`` rows (copies of its first, weight
    zero), on the device, so that every block runs one compiled program."""
    weights = np.ones(rows.shape[0], rows.dtype) if weights is None else weights.astype(rows.dtype)
    pad = block_rows - rows.shape[0]
    if pad:
        rows = np.concatenate([rows, np.broadcast_to(rows[:1], (pad, *rows.shape[1:]))])
        weights = np.concatenate([weights, np.zeros(pad, weights.dtype)])
    return jnp.asarray(rows), jnp.asarray(weights)


def source_weights(sample_weight, source: RowSource) -> np.ndarray | None:
    """Checked per-row weights (N,) of a source, scaled to mean one, on the host (None: all ones)."""
    weights = v.check_sample_weight(sample_weight, source.n_rows, normalize=True)
    return None if weights is None else np.asarray(weights)

