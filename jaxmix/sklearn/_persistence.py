"""``save(path)`` and ``load(path)`` of the estimators in jaxmix's one file format (``jaxmix.save``).

Pickle (and joblib) works as for every scikit-learn estimator; these write no pickle. The file holds the
jaxmix family and its parameters as ``jaxmix.save`` writes them, and in its metadata the estimator's
class name, its constructor arguments (``get_params``) and the fitted attributes the parameters do not
give (``n_iter_``, ``labels_``, ``n_features_in_``, ...).
"""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_is_fitted

from jaxmix.persistence import load, save
from jaxmix.sklearn._base import to_numpy


class Persistent:
    """``save`` / ``load`` for an estimator that defines ``_family`` (the jaxmix family class, or None when
    the saved parameters carry their configuration), ``_saved()`` -> ``(model, params)`` and
    ``_restore(params)``, which sets the fitted attributes the parameters give (NumPy leaves)."""

    _family = None

    def save(self, path) -> None:
        """Write the fitted estimator to ``path`` with ``jaxmix.save`` (no pickle). ``random_state`` must be
        an int or None, and the constructor arguments arrays, numbers, strings or None."""
        check_is_fitted(self)
        settings = self.get_params(deep=False)
        if isinstance(settings.get("random_state"), np.random.RandomState):
            raise ValueError("save needs random_state to be an int or None, not a np.random.RandomState.")
        model, params = self._saved()
        given = set(vars(type(self)._restored(settings, params)))  # the attributes the parameters restore
        attributes = {name: _plain(value) for name, value in vars(self).items()
                      if name.endswith("_") and not name.startswith("_") and name not in given}
        save(path, model, params, metadata={"estimator": type(self).__name__, "settings": settings,
                                            "attributes": attributes})

    @classmethod
    def load(cls, path):
        """The estimator that ``save`` wrote to ``path``, fitted. ``ValueError`` naming ``path`` for a file of
        another estimator or family, or for what ``jaxmix.load`` rejects."""
        _, params, metadata = load(path, cls._family, metadata=True)
        held = metadata.get("estimator") if isinstance(metadata, dict) else None
        if held != cls.__name__:
            raise ValueError(f"{path}: it holds {'no estimator' if held is None else f'a {held}'}, "
                             f"not a jaxmix.sklearn.{cls.__name__}.")
        estimator = cls._restored(metadata["settings"], params)
        for name, value in metadata["attributes"].items():
            setattr(estimator, name, np.asarray(value, dtype=object) if name == "feature_names_in_" else value)
        return estimator

    @classmethod
    def _restored(cls, settings, params):
        estimator = cls(**settings)
        estimator._restore(to_numpy(params))
        return estimator


def _plain(value):
    """A fitted attribute as ``jaxmix.save``'s metadata holds it: NumPy scalars as Python ones, feature
    names (an object array) as a list of strings."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray) and value.dtype == object:
        return [str(item) for item in value]
    return value
