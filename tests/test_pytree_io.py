"""Saved parameter files: exact paths, atomic replacement, and damaged or forged files as clear ValueErrors.

The generic tests use a small tree {"layers": (n arrays), "scale": array} whose structure is {"n": n}; the
forged-header tests also run ``vae.load``, each under a deadline so that a hang fails instead of stalling.
"""

import contextlib
import functools
import io
import json
import os
import re
import signal
import zipfile

import jax
import numpy as np
import pytest

from jaxmix import _pytree_io, vae

TAG = "test/1"
TREE = {"layers": (np.arange(6.0).reshape(2, 3), np.ones(4, np.float32)), "scale": np.float64(2.5)}
STRUCTURE = {"format": TAG, "n": 2}
ARRAYS = dict(zip(_pytree_io.leaf_names(TREE), jax.tree_util.tree_leaves(TREE)))  # the file's arrays


@functools.cache
def vae_params():
    """Parameters of test_vae's SMALL model, whose functions the suite compiles once."""
    model = vae.VAE(4, 2, hidden_sizes=(16,), n_components=3, prior_covariance="full")
    return vae.init(jax.random.key(0), model)


def template(structure):
    return {"layers": tuple(0 for _ in range(structure["n"])), "scale": 0}


def load(path):
    return _pytree_io.load(path, template, tag=TAG, what="test file")


def assert_same(tree, expected):
    """Same structure, and leaves with equal values and dtypes."""
    assert jax.tree_util.tree_structure(tree) == jax.tree_util.tree_structure(expected)
    for leaf, want in zip(jax.tree_util.tree_leaves(tree), jax.tree_util.tree_leaves(expected)):
        assert leaf.dtype == np.asarray(want).dtype
        np.testing.assert_array_equal(leaf, want)


@contextlib.contextmanager
def deadline(seconds):
    """Raise TimeoutError in the body after ``seconds`` (SIGALRM), so that a hang fails the test."""
    def fail(signum, frame):
        raise TimeoutError(f"took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, fail)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def write_npz(path, **arrays):
    with open(path, "wb") as file:  # a file object: numpy adds no suffix
        np.savez(file, **arrays)


def good_file(tmp_path):
    path = tmp_path / "good.npz"
    _pytree_io.save(path, TREE, STRUCTURE, template)
    return path


def test_round_trip_writes_exactly_the_path(tmp_path):
    path = tmp_path / "model.bin"
    _pytree_io.save(path, TREE, STRUCTURE, template)
    assert os.listdir(tmp_path) == ["model.bin"]  # no .npz added, no temporary file left
    tree, structure = load(path)
    assert structure == STRUCTURE
    assert_same(tree, TREE)


def test_vae_round_trip_with_another_suffix(tmp_path):
    params = vae_params()
    vae.save(tmp_path / "model.bin", params)
    assert os.listdir(tmp_path) == ["model.bin"]
    loaded = vae.load(tmp_path / "model.bin")
    for leaf, want in zip(jax.tree_util.tree_leaves(loaded), jax.tree_util.tree_leaves(params)):
        assert isinstance(leaf, jax.Array) and leaf.dtype == want.dtype
        np.testing.assert_array_equal(leaf, want)


def test_a_failing_save_keeps_the_previous_file(tmp_path, monkeypatch):
    path = good_file(tmp_path)
    before = path.read_bytes()
    with pytest.raises(TypeError, match=r"\['scale'\] is not a numeric array"):  # refused before writing
        _pytree_io.save(path, {**TREE, "scale": np.array(object())}, STRUCTURE, template)

    def fail_midway(file, **arrays):
        file.write(b"PK\x03\x04 half an archive")
        raise OSError("No space left on device")

    monkeypatch.setattr(np, "savez", fail_midway)
    with pytest.raises(OSError, match="No space left"):
        _pytree_io.save(path, TREE, STRUCTURE, template)
    with pytest.raises(OSError, match="No space left"):
        vae.save(path, vae_params())
    monkeypatch.undo()
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["good.npz"]
    assert_same(load(path)[0], TREE)


def test_directory_and_missing_paths(tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    with pytest.raises(ValueError, match=re.escape(f"path '{folder}' is a directory")):
        _pytree_io.save(folder, TREE, STRUCTURE, template)
    with pytest.raises(ValueError, match="is a directory"):
        vae.save(folder, vae_params())
    with pytest.raises(ValueError, match="is a directory"):
        vae.load(folder)
    assert os.listdir(tmp_path) == ["folder"] and os.listdir(folder) == []
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.npz")


def test_empty_truncated_and_corrupt_files_raise_value_errors_naming_the_path(tmp_path):
    data = good_file(tmp_path).read_bytes()
    damaged = tmp_path / "damaged.npz"
    for size in (0, 1, 4, 30, 100, len(data) // 2, len(data) - 30, len(data) - 1):
        damaged.write_bytes(data[:size])
        with pytest.raises(ValueError, match=f"{re.escape(str(damaged))} is not a test file"):
            load(damaged)
    # One flipped byte: the zip CRC or a header check catches it, unless the byte is not read (a time stamp).
    for offset in range(0, len(data), 7):
        damaged.write_bytes(data[:offset] + bytes([data[offset] ^ 0x5A]) + data[offset + 1:])
        try:
            tree, _ = load(damaged)
        except ValueError as error:
            assert str(damaged) in str(error)
        else:
            assert_same(tree, TREE)


def test_bad_headers_raise_value_errors(tmp_path):
    path = tmp_path / "bad.npz"
    for header, message in [(np.array("{not json"), "Expecting property name"),
                            (np.array(json.dumps([1, 2])), r"format \[1, 2\]"),
                            (np.array(json.dumps({**STRUCTURE, "format": "other/1"})), "'other/1'; expected"),
                            (np.arange(3.0), "not a JSON string"),
                            (np.array("[" * 100_000), "recursion"),
                            (np.array(json.dumps({**STRUCTURE, "n": [2]})), "JSON scalars"),
                            (np.array(json.dumps({**STRUCTURE, "n": -1})), r"lie in \[0, 3\]")]:
        write_npz(path, __structure__=header, **ARRAYS)
        with pytest.raises(ValueError, match=f"{re.escape(str(path))} is not a test file: .*{message}"):
            load(path)
    np.save(tmp_path / "single.npy", np.ones(3))
    with pytest.raises(ValueError, match="single array"):
        load(tmp_path / "single.npy")
    pickled = np.array([object()])
    write_npz(path, __structure__=np.array(json.dumps(STRUCTURE)), **{**ARRAYS, "['scale']": pickled})
    with pytest.raises(ValueError, match="Object arrays cannot be loaded"):  # never unpickled
        load(path)


def test_forged_counts_are_refused_before_building_anything(tmp_path):
    path = tmp_path / "forged.npz"
    write_npz(path, __structure__=np.array(json.dumps({**STRUCTURE, "n": 10**9})), **ARRAYS)
    with deadline(5), pytest.raises(ValueError, match=r"'n' is 1000000000, but counts must lie in \[0, 3\]"):
        load(path)
    good = tmp_path / "vae.npz"
    vae.save(good, vae_params())
    with np.load(good) as data:
        arrays = dict(data)
    structure = json.loads(str(arrays.pop("__structure__")))
    for key in ("encoder", "decoder"):
        write_npz(path, __structure__=np.array(json.dumps({**structure, key: 10**9})), **arrays)
        message = f"{re.escape(str(path))} is not a VAE parameter file.*'{key}' is 1000000000"
        with deadline(5), pytest.raises(ValueError, match=message):
            vae.load(path)


def test_forged_array_sizes_are_refused_before_allocating(tmp_path):
    """A member whose .npy header declares 10^12 float64 entries (8 TB) in a file of a few hundred bytes."""
    path = good_file(tmp_path)
    archive = io.BytesIO(path.read_bytes())
    with zipfile.ZipFile(archive, "a") as zip_file, zip_file.open("huge.npy", "w") as member:
        header = {"descr": "<f8", "fortran_order": False, "shape": (10**12,)}
        np.lib.format.write_array_header_1_0(member, header)
        member.write(bytes(64))
    path.write_bytes(archive.getvalue())
    with deadline(5), pytest.raises(ValueError, match=r"declare \d+ bytes, more than the file's"):
        load(path)
