"""Checkpoints of a long fit: its loop state in an ``.npz`` file, written atomically, never pickled.

A checkpoint holds one fit's state (a pytree of arrays: parameters, running
statistics, step, history, key) and a description of the fit that wrote it
(the family, the data's shape and dtype, the driver's settings). A fit called
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

FORMAT = "jaxmix-checkpoint-1"


class Checkpoint:
    """Where and how often a fit saves its state, and what fit it is (``description``, JSON scalars)."""

    def __init__(self, path, every: int, description: dict):
        self.path, self.every = os.fspath(path), every
        self.description = json.dumps(description, sort_keys=True, default=str)

    def resume(self, state):
        """The saved state if ``path`` exists (checked against ``state``'s structure, dtypes and shapes and
        against this fit's description), else ``state``."""
        if not os.path.exists(self.path):
            return state
        saved, structure = _pytree_io.load(self.path, lambda _: state, tag=FORMAT, what="jaxmix checkpoint")
        if structure.get("fit") != self.description:
            raise ValueError(f"{self.path} is the checkpoint of another fit ({structure.get('fit')}), not of "
                             f"this one ({self.description}); give another path or delete the file.")
        for name, old, new in zip(_pytree_io.leaf_names(state), jax.tree_util.tree_leaves(saved),
                                  jax.tree_util.tree_leaves(state)):
            if old.shape != np.shape(new) or old.dtype != new.dtype:
                raise ValueError(f"{self.path} holds {name} as {old.dtype}{list(old.shape)}, this fit needs "
                                 f"{new.dtype}{list(np.shape(new))}; give another path or delete the file.")
        return jax.tree_util.tree_map(jax.numpy.asarray, saved)

    def save(self, state, step: int | None = None) -> None:
        """Write ``state`` (at every ``every``-th step when ``step`` is given, always otherwise)."""
        if step is None or step % self.every == 0:
            structure = {"format": FORMAT, "fit": self.description}
            _pytree_io.save(self.path, state, structure, lambda _: state)


def checkpoint_for(checkpoint, checkpoint_every, description: dict) -> Checkpoint | None:
    """A checked ``Checkpoint`` from a driver's ``checkpoint`` path (or None) and ``checkpoint_every``."""
    every = v.check_positive_int("checkpoint_every", checkpoint_every)
    if checkpoint is None:
        return None
    if not isinstance(checkpoint, (str, os.PathLike)):
        raise TypeError(f"checkpoint must be a path (str or os.PathLike), got {type(checkpoint).__name__}.")
    return Checkpoint(checkpoint, every, description)
