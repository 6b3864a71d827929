"""Parameter pytrees to and from plain ``.npz`` files, never pickle.

A file holds one array per leaf, named by its pytree path (``jax.tree_util.keystr``, e.g.
``.encoder[0].weights``), and a JSON entry ``__structure__``: a flat dict of JSON scalars with a
``format`` tag and whatever its owner needs to rebuild the tree's shape (layer counts, which optional
parts are present). The owner supplies ``template(structure)``, a tree of placeholder leaves of that
shape; saving checks the tree against it, and loading checks the file's arrays against its leaf names
before rebuilding the tree. Checks of the leaves' dtypes, shapes and values are the owner's.

Loading trusts nothing a file declares beyond what the file holds: every integer in the structure counts
parts of the tree that each hold at least one leaf, so it must lie in [0, number of arrays], and the
arrays' declared sizes must fit in the file (``save`` stores them uncompressed); both are checked
before anything is built or allocated.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import zipfile
import zlib
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

STRUCTURE_KEY = "__structure__"
# What reading an open file raises when it is damaged: empty (EOFError), truncated or corrupt (BadZipFile,
# zlib.error, EOFError, OSError for seeks to forged offsets, NotImplementedError for forged compression
# methods), not .npz, bad .npy or JSON headers (ValueError), JSON nested too deep (RecursionError).
_UNREADABLE = (EOFError, OSError, zipfile.BadZipFile, zlib.error, NotImplementedError, RecursionError,
               ValueError)
_NPY_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}


def leaf_names(tree) -> list[str]:
    """The pytree paths of ``tree``'s leaves, in flattening order: ``['.encoder[0].weights', ...]``."""
    return [jax.tree_util.keystr(path) for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def _file_path(path) -> str:
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"path {path!r} is a directory; give the path of a file.")
    return path


def save(path, tree, structure: dict, template: Callable[[dict], Any]) -> None:
    """Write ``tree``'s leaves as arrays named by their paths, and ``structure`` as JSON, to ``path``.

    The file is exactly ``path`` (no suffix is added). It is written to a new file beside ``path`` and
    renamed onto it (``os.replace``), so ``path`` holds either its previous content or the complete new
    file, also when writing fails. ``structure`` must hold a ``"format"`` tag and describe ``tree``:
    ``template(structure)`` must have ``tree``'s tree structure, else ``ValueError``.
    """
    path = _file_path(path)
    if jax.tree_util.tree_structure(template(structure)) != jax.tree_util.tree_structure(tree):
        raise ValueError(f"the tree {jax.tree_util.tree_structure(tree)} does not have the structure "
                         f"{structure} describes.")
    arrays = dict(zip(leaf_names(tree), map(np.asarray, jax.tree_util.tree_leaves(tree))))
    for name, array in arrays.items():
        if array.dtype.hasobject:
            raise TypeError(f"the leaf {name} is not a numeric array (dtype {array.dtype}); it cannot be "
                            "saved without pickle.")
    temporary = f"{path}.{secrets.token_hex(8)}.tmp"
    file = open(temporary, "xb")
    try:
        with file:
            np.savez(file, **{STRUCTURE_KEY: np.array(json.dumps(structure))}, **arrays)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.remove(temporary)
        raise


def load(path, template: Callable[[dict], Any], *, tag: str, what: str) -> tuple[Any, dict]:
    """Read a file written by ``save`` with the format ``tag``: ``(tree, structure)``, leaves as the NumPy
    arrays stored (the owner checks and converts them).

    Raises ``ValueError`` naming ``path`` when the file is not such a file (``what`` names the expected
    kind in the message): empty, truncated or corrupt, another format tag, a structure ``template``
    rejects or that declares more than the file holds, or arrays missing or added.
    """
    path = _file_path(path)
    with open(path, "rb") as file:
        try:
            return _read(np.load(file, allow_pickle=False), os.fstat(file.fileno()).st_size, template, tag)
        except _UNREADABLE as error:
            raise ValueError(f"{path} is not a {what}: {error}") from error


def _read(data, file_size: int, template, tag: str):
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError("it holds a single array, not an .npz archive.")
    with data:
        _check_declared_sizes(data.zip, file_size)
        if STRUCTURE_KEY not in data.files:
            raise ValueError(f"it has no {STRUCTURE_KEY!r} entry.")
        header = data[STRUCTURE_KEY]
        if header.dtype.kind != "U" or header.ndim != 0:
            raise ValueError(f"its {STRUCTURE_KEY!r} entry is not a JSON string but {header.dtype} "
                             f"{header.shape}.")
        structure = json.loads(header.item())
        if not isinstance(structure, dict) or structure.get("format") != tag:
            found = structure.get("format") if isinstance(structure, dict) else structure
            raise ValueError(f"it has format {found!r}; expected {tag!r}.")
        n_arrays = len(data.files) - 1
        for key, value in structure.items():
            if isinstance(value, (dict, list)) or (
                    isinstance(value, int) and not isinstance(value, bool) and not 0 <= value <= n_arrays):
                raise ValueError(f"its {STRUCTURE_KEY!r} entry is malformed: {key!r} is {value!r}, but "
                                 f"counts must lie in [0, {n_arrays}] (the file's arrays) and values be JSON "
                                 "scalars.")
        try:
            placeholders = template(structure)
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"its {STRUCTURE_KEY!r} entry {structure} is malformed: {error}") from None
        treedef, names = jax.tree_util.tree_structure(placeholders), leaf_names(placeholders)
        found = set(data.files) - {STRUCTURE_KEY}
        if found != set(names):
            raise ValueError(f"it does not hold the arrays its structure describes: missing "
                             f"{sorted(set(names) - found)}, unexpected {sorted(found - set(names))}.")
        leaves = [data[name] for name in names]
    return jax.tree_util.tree_unflatten(treedef, leaves), structure


def _check_declared_sizes(archive: zipfile.ZipFile, file_size: int) -> None:
    """Every member is an ``.npy`` array, and their declared sizes together fit in the file's bytes
    (zero-size elements counted as one byte), so that reading them allocates no more than the file holds."""
    declared = 0
    for info in archive.infolist():
        if info.flag_bits & 0x1:  # zipfile would raise RuntimeError, asking for a password
            raise ValueError(f"its member {info.filename!r} is encrypted.")
        with archive.open(info) as member:
            version = np.lib.format.read_magic(member)
            if version not in _NPY_HEADER_READERS:
                raise ValueError(f"its member {info.filename!r} has .npy format version {version}.")
            shape, _, dtype = _NPY_HEADER_READERS[version](member)
        declared += math.prod(shape) * max(dtype.itemsize, 1)
    if declared > file_size:
        raise ValueError(f"its arrays declare {declared} bytes, more than the file's {file_size}: the file "
                         "is truncated, compressed or forged.")
