"""Checkpoints of a long fit: its loop state in an ``.npz`` file, written atomically, never pickled.

A checkpoint is a file of the library's one format (``jaxmix.save``; ``jaxmix.load``
reads it as ``(model, state)``). It holds one fit's state (a pytree of arrays:
parameters, running statistics, step, history, key) and a description of the
fit that wrote it (the family, the data's shape and dtype, the driver's settings). A fit called
again with the same path resumes from the state only if the description
matches; otherwise, or for a truncated or foreign file, it raises a
ValueError naming the path and loads nothing.
"""

from __future__ import annotations

import json
import os

import jax
import numpy as np

from jaxmix import _pytree_io
from jaxmix import _validation as v

KIND = "checkpoint"


class Checkpoint:
    """Where and how often a fit saves its state, and what fit it is: the ``model`` and a ``description``
    (JSON scalars: the data's shape and dtype, the driver's settings)."""

    def __init__(self, path, every: int, model, description: dict):
        self.path, self.every = os.fspath(path), every
        self.description = json.dumps(description, sort_keys=True, default=str)
        try:  # jaxmix.load returns the model too, where its configuration is JSON scalars
            self.model = _pytree_io.encode_config(model)
        except TypeError:
            self.model = None

    def resume(self, state):
        """The saved state if ``path`` exists (checked against ``state``'s structure, dtypes and shapes and
        against this fit's description), else ``state``."""
        if not os.path.exists(self.path):
            return state
        saved, header = _pytree_io.load(self.path, _pytree_io.node_types(state), what="jaxmix checkpoint")
        if header.get("kind") != KIND or header.get("fit") != self.description:
            found = header.get("fit") if header.get("kind") == KIND else f"a saved {header.get('kind')}"
            raise ValueError(f"{self.path} is the checkpoint of another fit ({found}), not of this one "
                             f"({self.description}); give another path or delete the file.")
        if jax.tree_util.tree_structure(saved) != jax.tree_util.tree_structure(state):
            raise ValueError(f"{self.path} holds a state of another structure than this fit's; give another "
                             "path or delete the file.")
        for (path, new), old in zip(jax.tree_util.tree_flatten_with_path(state)[0], jax.tree_util.tree_leaves(saved)):
            name = jax.tree_util.keystr(path)
            if old.shape != np.shape(new) or old.dtype != new.dtype:
                raise ValueError(f"{self.path} holds {name} as {old.dtype}{list(old.shape)}, this fit needs "
                                 f"{new.dtype}{list(np.shape(new))}; give another path or delete the file.")
        return jax.tree_util.tree_map(jax.numpy.asarray, saved)

    def due(self, step: int) -> bool:
        """Whether ``save(state, step)`` writes: at every ``every``-th step."""
        return step % self.every == 0

    def save(self, state, step: int | None = None) -> None:
        """Write ``state`` (when ``due(step)`` if ``step`` is given, always otherwise)."""
        if step is None or self.due(step):
            _pytree_io.save(self.path, state, {"kind": KIND, "model": self.model, "fit": self.description})


def checkpoint_for(checkpoint, checkpoint_every, model, description: dict) -> Checkpoint | None:
    """A checked ``Checkpoint`` from a driver's ``checkpoint`` path (or None) and ``checkpoint_every``."""
    every = v.check_positive_int("checkpoint_every", checkpoint_every)
    if checkpoint is None:
        return None
    if not isinstance(checkpoint, (str, os.PathLike)):
        raise TypeError(f"checkpoint must be a path (str or os.PathLike), got {type(checkpoint).__name__}.")
    return Checkpoint(checkpoint, every, model, description)
