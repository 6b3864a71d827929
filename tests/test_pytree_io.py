"""The file format under ``jaxmix.save``: exact trees and paths, atomic replacement, and damaged, foreign or
forged files as ValueErrors naming the path. Forged files run under a deadline, so that a hang fails.

The tests use a small tree of every node kind the format knows (``TREE``); ``tests/test_persistence.py``
covers the models.
"""

import contextlib
import dataclasses
import io
import json
import os
import re
import signal
import zipfile
from typing import NamedTuple

import jax
import numpy as np
import pytest

from jaxmix import _pytree_io


class Pair(NamedTuple):
    left: object
    right: object


@dataclasses.dataclass(frozen=True)
class Settings:
    values: object
    name: str
    scale: float | None


TYPES = {"Pair": Pair, "Settings": Settings}
TREE = {"layers": (np.arange(6.0).reshape(2, 3), np.ones(4, np.float32)), "scale": np.float64(2.5),
        "pair": Pair(np.array([1, 2], np.int8), [None, True, 3, "text", np.zeros((0, 2), np.uint16)]),
        "settings": Settings(np.array([[1 + 2j]]), "name", None)}


def load(path):
    return _pytree_io.load(path, TYPES, what="test file")


def assert_same(tree, expected):
    """Same structure and node classes, Python scalars equal, and leaves with equal values and dtypes."""
    assert jax.tree_util.tree_structure(tree) == jax.tree_util.tree_structure(expected)
    assert _pytree_io.node_types(tree) == _pytree_io.node_types(expected)
    for leaf, want in zip(jax.tree_util.tree_leaves(tree), jax.tree_util.tree_leaves(expected)):
        assert type(leaf) is (np.ndarray if isinstance(want, (np.ndarray, np.generic)) else type(want))
        assert np.asarray(leaf).dtype == np.asarray(want).dtype
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
    _pytree_io.save(path, TREE, {"owner": "test"})
    return path


def file_parts(path):
    """(header, arrays) of a saved file, to forge variants of it."""
    with np.load(path) as data:
        arrays = dict(data)
    return json.loads(str(arrays.pop("__jaxmix__"))), arrays


def test_round_trip_writes_exactly_the_path_and_every_node_kind(tmp_path):
    path = tmp_path / "model.bin"
    _pytree_io.save(path, TREE, {"owner": "test"})
    assert os.listdir(tmp_path) == ["model.bin"]  # no .npz added, no temporary file left
    tree, header = load(path)
    assert_same(tree, TREE)
    assert header["owner"] == "test" and header["format"] == "jaxmix" and header["format_version"] == 1
    assert header["jaxmix_version"] == __import__("jaxmix").__version__
    with np.load(path, allow_pickle=False) as data:  # one plain array per leaf, named by its path
        assert sorted(data.files) == sorted(["__jaxmix__", "['layers'][0]", "['layers'][1]", "['scale']",
                                             "['pair'].left", "['pair'].right[4]", "['settings'].values"])
    assert_same(_pytree_io.load(_save(tmp_path, np.arange(3)), {})[0], np.arange(3))  # a bare array


def _save(tmp_path, tree):
    path = tmp_path / "tree.npz"
    _pytree_io.save(path, tree, {})
    return path


def test_what_cannot_be_saved_is_refused_before_writing(tmp_path):
    for tree, message in [({"a": np.array(object())}, r"\['a'\] is not a numeric array"),
                          ({1: np.ones(2)}, "keys that are not strings"),
                          ({"f": len}, r"cannot save \['f'\] of type builtin_function_or_method"),
                          ({"key": jax.random.key(0)}, "typed PRNG key; save jax.random.key_data")]:
        with pytest.raises(TypeError, match=message):
            _save(tmp_path, tree)
    assert os.listdir(tmp_path) == []


def test_a_failing_save_keeps_the_previous_file(tmp_path, monkeypatch):
    path = good_file(tmp_path)
    before = path.read_bytes()

    def fail_midway(file, **arrays):
        file.write(b"PK\x03\x04 half an archive")
        raise OSError("No space left on device")

    monkeypatch.setattr(np, "savez", fail_midway)
    with pytest.raises(OSError, match="No space left"):
        _pytree_io.save(path, TREE, {})
    monkeypatch.undo()
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["good.npz"]
    assert_same(load(path)[0], TREE)


def test_directory_and_missing_paths(tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    with pytest.raises(ValueError, match=re.escape(f"path '{folder}' is a directory")):
        _pytree_io.save(folder, TREE, {})
    with pytest.raises(ValueError, match="is a directory"):
        load(folder)
    assert os.listdir(tmp_path) == ["folder"] and os.listdir(folder) == []
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.npz")


def test_empty_truncated_and_corrupt_files_raise_value_errors_naming_the_path(tmp_path):
    data = good_file(tmp_path).read_bytes()
    damaged = tmp_path / "damaged.npz"
    for size in (0, 1, 4, 30, 100, len(data) // 2, len(data) - 30, len(data) - 1):
        damaged.write_bytes(data[:size])
        with pytest.raises(ValueError, match=f"{re.escape(str(damaged))} cannot be read as a test file"):
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
    header, arrays = file_parts(good_file(tmp_path))
    path = tmp_path / "bad.npz"
    for entry, message in [(np.array("{not json"), "Expecting property name"),
                           (np.array(json.dumps([1, 2])), r"format \[1, 2\]"),
                           (np.array(json.dumps({**header, "format": "other"})), "'other'; expected 'jaxmix'"),
                           (np.arange(3.0), "not a JSON string"),
                           (np.array("[" * 100_000), "recursion"),
                           (np.array(json.dumps({**header, "format_version": "1"})), "'1' is not a positive"),
                           (np.array(json.dumps({**header, "format_version": 2, "jaxmix_version": "9.0"})),
                            r"format version 2, written by jaxmix 9.0; .* reads up to version 1: upgrade")]:
        write_npz(path, __jaxmix__=entry, **arrays)
        with pytest.raises(ValueError, match=f"{re.escape(str(path))} cannot be read as a test file: .*{message}"):
            load(path)
    write_npz(path, **arrays)
    with pytest.raises(ValueError, match="no '__jaxmix__' entry, so it was not written by jaxmix"):
        load(path)
    np.save(tmp_path / "single.npy", np.ones(3))
    with pytest.raises(ValueError, match="single array"):
        load(tmp_path / "single.npy")
    write_npz(path, __jaxmix__=np.array(json.dumps(header)), **{**arrays, "['scale']": np.array([object()])})
    with pytest.raises(ValueError, match="Object arrays cannot be loaded"):  # never unpickled
        load(path)


def test_forged_structures_are_refused(tmp_path):
    header, arrays = file_parts(good_file(tmp_path))
    tree = header["tree"]["dict"]
    path = tmp_path / "forged.npz"
    pair = tree["pair"]
    for forged, message in [
            ({**tree, "pair": {**pair, "namedtuple": "os.system"}}, "names the class 'os.system', which is not"),
            ({**tree, "pair": {**pair, "fields": {"right": pair["fields"]["right"], "left": "array"}}},
             r"Pair at \['pair'\] has the fields \['right', 'left'\]; this jaxmix's has \['left', 'right'\]"),
            ({**tree, "extra": "array"}, r"lacks the array \['extra'\]"),
            ({key: value for key, value in tree.items() if key != "scale"},
             r"arrays its structure does not name: \[\"\['scale'\]\"\]"),
            ({**tree, "scale": {"scalar": [1]}}, r"structure at \['scale'\] is malformed"),
            ({**tree, "scale": 7}, r"structure at \['scale'\] is malformed")]:
        write_npz(path, __jaxmix__=np.array(json.dumps({**header, "tree": {"dict": forged}})), **arrays)
        refused = f"{re.escape(str(path))} cannot be read as a test file: .*{message}"
        with deadline(5), pytest.raises(ValueError, match=refused):
            load(path)


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


def test_model_configurations_round_trip_and_forged_ones_are_refused():
    config = _pytree_io.encode_config(Settings((1, 2.5), "a", None))
    assert json.loads(json.dumps(config)) == {"class": "Settings", "fields": {"values": [1, 2.5], "name": "a",
                                                                              "scale": None}}
    assert _pytree_io.decode_config(json.loads(json.dumps(config)), TYPES) == Settings((1, 2.5), "a", None)
    with pytest.raises(TypeError, match="is not a JSON scalar"):
        _pytree_io.encode_config(Settings(np.ones(2), "a", None))
    with pytest.raises(TypeError, match="must be a dataclass"):
        _pytree_io.encode_config(Pair(1, 2))
    with pytest.raises(ValueError, match="cannot be built"):
        _pytree_io.decode_config({"class": "Settings", "fields": {"value": 1}}, TYPES)
    with pytest.raises(ValueError, match="not one of the classes"):
        _pytree_io.decode_config({"class": "Other", "fields": {}}, TYPES)
