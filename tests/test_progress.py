"""The progress convention (jaxmix._progress): one ``progress=`` argument, silent unless asked."""

import jax
import numpy as np
import optax
import pytest

from jaxmix import ExponentialMixture, ExponentialMixtureParams, compare_fits, select_components
from jaxmix._progress import progress_bar

pytest.importorskip("tqdm")

X = np.random.default_rng(0).normal(size=(300, 2))


def test_auto_is_silent_in_tests_and_true_shows_a_bar(capsys):
    with progress_bar(3, "work", "auto") as bar:
        bar.update()
    assert capsys.readouterr() == ("", "")
    with progress_bar(3, "work", True) as bar:
        bar.update(3)
    printed = capsys.readouterr()
    assert printed.out == "" and "work:" in printed.err and "/3" in printed.err
    with progress_bar(3, "work", False) as bar:
        bar.update(3)
    assert capsys.readouterr() == ("", "")


def test_long_running_functions_take_progress(capsys):
    table = select_components(jax.random.key(0), X, [1], ["spherical"], progress=True)
    assert "select_components" in capsys.readouterr().err and table.best == 0
    model = ExponentialMixture(2)
    x, _ = model.sample(jax.random.key(0), ExponentialMixtureParams(np.array([0.5, 0.5]), np.array([1.0, 9.0])), 500)
    compare_fits(jax.random.key(1), model, x, optimizers={"sgd": optax.sgd(1e-2)}, n_starts=2, max_iter=20,
                 n_steps=20, progress=True)
    assert "compare_fits" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["yes", None, 1])
def test_bad_progress_is_refused(bad):
    with pytest.raises(ValueError, match="progress"):
        select_components(jax.random.key(0), X, [1], ["spherical"], progress=bad)
