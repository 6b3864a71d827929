"""Parameter pytrees to and from plain ``.npz`` files, never pickle.

A file holds one array per leaf, named by its pytree path (``jax.tree_util.keystr``, e.g.
``.encoder[0].weights``), and a JSON entry ``__structure__``: a dict with a ``format`` tag and whatever
its owner needs to rebuild the tree's shape (layer counts, which optional parts are present). The owner
supplies ``template(structure)``, a tree of placeholder leaves of that shape; saving checks the tree
against it, and loading checks the file's arrays against its leaf names before rebuilding the tree.
Checks of the leaves' shapes are the owner's.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

STRUCTURE_KEY = "__structure__"


def leaf_names(tree) -> list[str]:
    """The pytree paths of ``tree``'s leaves, in flattening order: ``['.encoder[0].weights', ...]``."""
    return [jax.tree_util.keystr(path) for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def save(path, tree, structure: dict, template: Callable[[dict], Any]) -> None:
    """Write ``tree``'s leaves as arrays named by their paths, and ``structure`` as JSON, to ``path``.

    ``structure`` must hold a ``"format"`` tag and describe ``tree``: ``template(structure)`` must have
    ``tree``'s tree structure, else ``ValueError``.
    """
    if jax.tree_util.tree_structure(template(structure)) != jax.tree_util.tree_structure(tree):
        raise ValueError(f"the tree {jax.tree_util.tree_structure(tree)} does not have the structure "
                         f"{structure} describes.")
    arrays = dict(zip(leaf_names(tree), map(np.asarray, jax.tree_util.tree_leaves(tree))))
    np.savez(path, **{STRUCTURE_KEY: np.array(json.dumps(structure))}, **arrays)


def load(path, template: Callable[[dict], Any], *, tag: str, what: str) -> tuple[Any, dict]:
    """Read a file written by ``save`` with the format ``tag``: ``(tree, structure)``, leaves as JAX arrays.

    Raises ``ValueError`` when the file is not such a file (``what`` names the expected kind in the
    message), has another format tag, a structure ``template`` rejects, or lacks or adds arrays.
    """
    data = np.load(path, allow_pickle=False)
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError(f"{path} is not a {what}: it holds a single array, not an .npz archive.")
    with data:
        if STRUCTURE_KEY not in data.files:
            raise ValueError(f"{path} is not a {what}: it has no {STRUCTURE_KEY!r} entry.")
        structure = json.loads(str(data[STRUCTURE_KEY]))
        if not isinstance(structure, dict) or structure.get("format") != tag:
            found = structure.get("format") if isinstance(structure, dict) else structure
            raise ValueError(f"{path} has format {found!r}; expected {tag!r}.")
        try:
            placeholders = template(structure)
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{path} has a malformed {STRUCTURE_KEY!r} entry {structure}: {error}") from None
        treedef, names = jax.tree_util.tree_structure(placeholders), leaf_names(placeholders)
        found = set(data.files) - {STRUCTURE_KEY}
        if found != set(names):
            raise ValueError(f"{path} does not hold the arrays its structure describes: missing "
                             f"{sorted(set(names) - found)}, unexpected {sorted(found - set(names))}.")
        leaves = [jnp.asarray(data[name]) for name in names]
    return jax.tree_util.tree_unflatten(treedef, leaves), structure
