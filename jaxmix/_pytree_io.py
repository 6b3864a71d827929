"""The library's one file format: a tree of arrays and a JSON header in an ``.npz`` file, never pickle.

A file holds one ``.npy`` array per leaf, named by the leaf's path in the tree (``.best.params.means``,
``[0]``, ``['key']``), and the entry ``__jaxmix__``: a JSON object

    {"format": "jaxmix", "format_version": 1, "jaxmix_version": "...", "tree": <structure>, ...}

whose other entries are the owner's (the model's configuration, metadata). The structure describes every
node of the tree: ``"array"`` for a leaf (a NumPy or JAX array), ``null`` for None, ``{"scalar": v}``
for a Python bool, int, float or str, ``{"tuple": [...]}``, ``{"list": [...]}``, ``{"dict": {key: ...}}``
(string keys), ``{"namedtuple": name, "fields": {...}}`` and ``{"dataclass": name, "fields": {...}}``.

Loading trusts nothing the file declares: it rebuilds only the classes the caller names (a mapping from
class name to class; nothing is imported or unpickled), checks that the arrays are exactly the leaves
the structure names, and before reading any array that their declared sizes fit in the file (``save``
stores them uncompressed), so that a forged header cannot make it allocate more than the file holds.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import secrets
import zipfile
import zlib
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from jaxmix._version import __version__

HEADER_KEY = "__jaxmix__"
FORMAT = "jaxmix"
FORMAT_VERSION = 1
# What reading an open file raises when it is damaged: empty (EOFError), truncated or corrupt (BadZipFile,
# zlib.error, EOFError, OSError for seeks to forged offsets, NotImplementedError for forged compression
# methods), not .npz, bad .npy or JSON headers, object arrays (ValueError), JSON nested too deep
# (RecursionError).
_UNREADABLE = (EOFError, OSError, zipfile.BadZipFile, zlib.error, NotImplementedError, RecursionError,
               ValueError)
_NPY_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}
_SCALARS = (bool, int, float, str)


def _is_leaf(node) -> bool:
    return isinstance(node, (np.ndarray, np.generic, jax.Array))


def _is_namedtuple(node) -> bool:
    return isinstance(node, tuple) and hasattr(type(node), "_fields")


def _is_dataclass(node) -> bool:
    return dataclasses.is_dataclass(node) and not isinstance(node, type)


def _children(node) -> list[tuple[str, Any]]:
    """(path suffix, child) of a tuple, list, dict, NamedTuple or dataclass node."""
    if _is_namedtuple(node):
        return [(f".{name}", getattr(node, name)) for name in node._fields]
    if _is_dataclass(node):
        return [(f".{field.name}", getattr(node, field.name)) for field in dataclasses.fields(node)]
    if isinstance(node, dict):
        return [(f"[{key!r}]", child) for key, child in node.items()]
    return [(f"[{i}]", child) for i, child in enumerate(node)]


def _encode(node, path: str, arrays: dict) -> Any:
    """The JSON structure of ``node``; its leaves go into ``arrays`` under their paths."""
    if _is_leaf(node):
        if getattr(node, "dtype", None) is not None and jax.dtypes.issubdtype(node.dtype, jax.dtypes.prng_key):
            raise TypeError(f"the leaf {path or 'root'} is a typed PRNG key; save jax.random.key_data(key).")
        array = np.asarray(node)
        if array.dtype.hasobject:
            raise TypeError(f"the leaf {path or 'root'} is not a numeric array (dtype {array.dtype}); it "
                            "cannot be saved without pickle.")
        arrays[path or "root"] = array
        return "array"
    if node is None:
        return None
    if isinstance(node, _SCALARS):
        return {"scalar": node}
    if isinstance(node, dict) and not all(isinstance(key, str) for key in node):
        raise TypeError(f"the dict at {path or 'root'} has keys that are not strings: {list(node)}.")
    if isinstance(node, (dict, list, tuple)) or _is_dataclass(node):
        fields = {suffix: _encode(child, path + suffix, arrays) for suffix, child in _children(node)}
        if _is_namedtuple(node) or _is_dataclass(node):
            kind = "namedtuple" if _is_namedtuple(node) else "dataclass"
            return {kind: type(node).__name__, "fields": {name[1:]: value for name, value in fields.items()}}
        if isinstance(node, dict):
            return {"dict": dict(zip(node, fields.values()))}
        return {"list" if isinstance(node, list) else "tuple": list(fields.values())}
    raise TypeError(f"cannot save {path or 'the tree'} of type {type(node).__name__}: a file holds arrays, "
                    "Python scalars, None, and tuples, lists, dicts, NamedTuples and dataclasses of them.")


def _decode(structure, path: str, arrays, types: Mapping[str, type], used: set):
    """The tree ``structure`` describes, leaves taken from ``arrays`` by path (marked in ``used``)."""
    if structure == "array":
        name = path or "root"
        if name not in arrays:
            raise ValueError(f"it lacks the array {name}, which its structure names.")
        used.add(name)
        return arrays[name]
    if structure is None:
        return None
    if not isinstance(structure, dict) or len(structure) not in (1, 2):
        raise ValueError(f"its structure at {path or 'root'} is malformed: {structure!r:.200}.")
    if set(structure) == {"scalar"} and isinstance(structure["scalar"], _SCALARS):
        return structure["scalar"]
    if set(structure) in ({"tuple"}, {"list"}) and isinstance(next(iter(structure.values())), list):
        kind, items = next(iter(structure.items()))
        children = [_decode(item, f"{path}[{i}]", arrays, types, used) for i, item in enumerate(items)]
        return tuple(children) if kind == "tuple" else children
    if set(structure) == {"dict"} and isinstance(structure["dict"], dict):
        return {key: _decode(item, f"{path}[{key!r}]", arrays, types, used)
                for key, item in structure["dict"].items()}
    kind = "namedtuple" if "namedtuple" in structure else "dataclass"
    if set(structure) != {kind, "fields"} or not isinstance(structure["fields"], dict):
        raise ValueError(f"its structure at {path or 'root'} is malformed: {structure!r:.200}.")
    cls = _known_class(structure[kind], types)
    names = list(cls._fields) if kind == "namedtuple" else [field.name for field in dataclasses.fields(cls)]
    if list(structure["fields"]) != names:
        raise ValueError(f"its {cls.__name__} at {path or 'root'} has the fields {list(structure['fields'])}; "
                         f"this jaxmix's has {names}.")
    fields = {name: _decode(item, f"{path}.{name}", arrays, types, used)
              for name, item in structure["fields"].items()}
    try:
        return cls(**fields)
    except (TypeError, ValueError) as error:
        raise ValueError(f"its {cls.__name__} at {path or 'root'} cannot be built: {error}") from None


def _known_class(name, types: Mapping[str, type]) -> type:
    if not isinstance(name, str) or name not in types:
        raise ValueError(f"it names the class {name!r}, which is not one of the classes this file may hold "
                         f"({', '.join(sorted(types))}); classes of your own, such as a custom family and its "
                         "parameters, are read when given: jaxmix.load(path, types=(MyFamily, MyParams)).")
    return types[name]


def node_types(tree) -> dict[str, type]:
    """The NamedTuple and dataclass classes of ``tree``'s nodes, by name (what ``load`` may rebuild)."""
    if _is_leaf(tree) or tree is None or isinstance(tree, _SCALARS):
        return {}
    found = {type(tree).__name__: type(tree)} if _is_namedtuple(tree) or _is_dataclass(tree) else {}
    if isinstance(tree, (dict, list, tuple)) or _is_dataclass(tree):
        for _, child in _children(tree):
            found.update(node_types(child))
    return found


def encode_config(model) -> dict:
    """A frozen dataclass ``model`` as ``{"class": name, "fields": {...}}``; its fields must be JSON scalars,
    None or tuples of them (TypeError otherwise)."""
    if not _is_dataclass(model):
        raise TypeError(f"a model must be a dataclass of JSON scalars to be saved, got {type(model).__name__}.")
    fields = {field.name: getattr(model, field.name) for field in dataclasses.fields(model) if field.init}
    for name, value in fields.items():
        values = value if isinstance(value, tuple) else (value,)
        if not all(item is None or isinstance(item, _SCALARS) for item in values):
            raise TypeError(f"{type(model).__name__}.{name} = {value!r} is not a JSON scalar or a tuple of them.")
    return {"class": type(model).__name__, "fields": fields}


def decode_config(config, types: Mapping[str, type]):
    """The model ``encode_config`` described, of one of ``types``; ValueError if it cannot be built."""
    if not isinstance(config, dict) or set(config) != {"class", "fields"} or not isinstance(config["fields"], dict):
        raise ValueError(f"its model entry is malformed: {config!r:.200}.")
    cls = _known_class(config["class"], types)
    fields = {name: tuple(value) if isinstance(value, list) else value for name, value in config["fields"].items()}
    try:
        return cls(**fields)
    except (TypeError, ValueError) as error:
        raise ValueError(f"its model {cls.__name__}({fields}) cannot be built: {error}") from None


def _file_path(path) -> str:
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"path {path!r} is a directory; give the path of a file.")
    return path


def save(path, tree, header: dict) -> None:
    """Write ``tree``'s leaves and a JSON header (``header``'s entries, the format's and the tree's
    structure) to exactly ``path`` (no suffix is added).

    The file is written beside ``path`` and renamed onto it (``os.replace``), so ``path`` holds either its
    previous content or the complete new file, also when writing fails. A tree that cannot be saved
    (object arrays, typed PRNG keys, other Python objects) raises TypeError before anything is written.
    """
    path = _file_path(path)
    arrays = {}
    structure = _encode(tree, "", arrays)
    header = {"format": FORMAT, "format_version": FORMAT_VERSION, "jaxmix_version": __version__,
              **header, "tree": structure}
    temporary = f"{path}.{secrets.token_hex(8)}.tmp"
    file = open(temporary, "xb")
    try:
        with file:
            np.savez(file, **{HEADER_KEY: np.array(json.dumps(header))}, **arrays)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.remove(temporary)
        raise


def load(path, types: Mapping[str, type], *, what: str = "jaxmix file") -> tuple[Any, dict]:
    """Read a file written by ``save``: ``(tree, header)``, leaves as the NumPy arrays stored.

    ``types`` are the classes, by name, that the tree may hold. Raises ``ValueError`` naming ``path``
    and what is wrong (``what`` names the expected kind of file) when the file is empty, truncated or
    corrupt, not a jaxmix file, of a newer format version, holds an object array, or a structure that
    names other classes or other arrays than the file holds. A missing file raises FileNotFoundError.
    """
    path = _file_path(path)
    with open(path, "rb") as file:
        try:
            return _read(np.load(file, allow_pickle=False), os.fstat(file.fileno()).st_size, types)
        except _UNREADABLE as error:
            raise ValueError(f"{path} cannot be read as a {what}: {error}") from error


def _read(data, file_size: int, types):
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError("it holds a single array, not an .npz archive.")
    with data:
        _check_declared_sizes(data.zip, file_size)
        if HEADER_KEY not in data.files:
            raise ValueError(f"it has no {HEADER_KEY!r} entry, so it was not written by jaxmix.")
        header = data[HEADER_KEY]
        if header.dtype.kind != "U" or header.ndim != 0:
            raise ValueError(f"its {HEADER_KEY!r} entry is not a JSON string but {header.dtype} {header.shape}.")
        header = json.loads(header.item())
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            found = header.get("format") if isinstance(header, dict) else header
            raise ValueError(f"it has format {found!r:.100}; expected {FORMAT!r}.")
        version = header.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ValueError(f"its format version {version!r:.100} is not a positive integer.")
        if version > FORMAT_VERSION:
            raise ValueError(f"it has format version {version}, written by jaxmix {header.get('jaxmix_version')}; "
                             f"this jaxmix ({__version__}) reads up to version {FORMAT_VERSION}: upgrade jaxmix.")
        names, used = set(data.files) - {HEADER_KEY}, set()
        tree = _decode(header.get("tree"), "", data, types, used)
        if used != names:
            raise ValueError(f"it holds arrays its structure does not name: {sorted(names - used)[:10]}.")
    return tree, header


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
