"""``fit_em`` checkpoints (``jaxmix.inference.checkpoint``): saved, resumed after a kill, refused when foreign.

What is checked against what:

- A fit killed by SIGKILL mid-fit (a subprocess, on a memmap and on an in-memory array) and called
  again with the same path ends with bit-identical parameters, history and log-likelihood to an
  uninterrupted run with its checkpoint elsewhere, running only the iterations the kill lost; the
  checkpoint read while the child runs is always a complete ``.npz`` that loads without pickle.
- The checkpointed fit equals the fit without a checkpoint (bitwise on a source, where both run the
  same steps; to 1e-10 relative in memory, where the fit without one is a single compiled loop).
- Saves happen at every ``checkpoint_every``-th iteration and at the end, each through a temporary file
  beside the path and ``os.replace``; a finished checkpoint makes a second call return at once.
- A truncated, empty or foreign file and the checkpoint of another fit (another family, data shape,
  ``max_iter``, or streamed vs in memory) raise a ValueError naming the path and leave the file as it was.
"""

import os
import re
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from jaxmix import GaussianMixture, GaussianMixtureParams, fit_em
from jaxmix.inference import em

N, D, MAX_ITER, BLOCK_ROWS = 1000, 2, 30, 300  # 300 does not divide 1000: the last block is padded
MODEL = GaussianMixture(2, "full")
START = GaussianMixtureParams(np.array([0.5, 0.5]), np.array([[-1.0, 0.0], [1.0, 1.0]]), np.stack([np.eye(D)] * 2))
CASES = ("memmap", "memory")


def data(tmp_path):
    """Two overlapping 2-D clusters (N, D), saved as x.npy; its path."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, D)) + np.where(rng.uniform(size=(N, 1)) < 0.4, [2.5, 1.0], [0.0, 0.0])
    np.save(tmp_path / "x.npy", x)
    return tmp_path / "x.npy"


def run(case, data_path, path, every=1, model=MODEL, max_iter=MAX_ITER, rows=N):
    """The checkpointed fit of the data at ``data_path`` (as a memmap or loaded: ``case``) from START."""
    x = np.load(data_path, mmap_mode="r" if case == "memmap" else None)[:rows]
    return fit_em(model, START, x, max_iter=max_iter, tol=0.0, block_rows=BLOCK_ROWS, checkpoint=path,
                  checkpoint_every=every)


def saved(path):
    """The checkpoint's arrays, read without pickle."""
    with np.load(path, allow_pickle=False) as file:
        return {name: file[name] for name in file.files}


def assert_identical(a, b):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.fixture
def count_iterations(monkeypatch):
    """A list that grows by one for each EM iteration (``em_update`` call) of the step-by-step driver."""
    calls, update = [], em._em_update

    def counted(*args, **kwargs):
        calls.append(1)
        return update(*args, **kwargs)

    monkeypatch.setattr(em, "_em_update", counted)
    return calls


# The child fits as ``run`` does, sleeping briefly after each save and for good after iteration 8 (the
# parent kills it as soon as it sees iteration 2), so that it is always killed mid-fit.
CHILD = """
import sys, time
import jax
jax.config.update("jax_enable_x64", True)
from jaxmix.inference import checkpoint
save = checkpoint.Checkpoint.save
def slow_save(self, state, step=None):
    save(self, state, step)
    time.sleep(60 if int(state.iteration) >= 8 else 0.02)
checkpoint.Checkpoint.save = slow_save
sys.path.insert(0, sys.argv[1])
import test_checkpoint
test_checkpoint.run(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
"""


def kill_mid_fit(tmp_path, data_path, cases, every, timeout=120.0):
    """Run ``run(case, ...)`` for each case in a child process at once; SIGKILL each as soon as its
    checkpoint (read on every poll) holds iteration >= 2. Returns the checkpoints' paths."""
    paths = {case: tmp_path / f"{case}.ckpt" for case in cases}
    children = {}
    try:
        for case, path in paths.items():
            log = open(tmp_path / f"{case}.log", "w")
            children[case] = subprocess.Popen(
                [sys.executable, "-c", CHILD, os.path.dirname(__file__), case, str(data_path), str(path),
                 str(every)], stdout=log, stderr=subprocess.STDOUT)
            log.close()
        deadline, running = time.monotonic() + timeout, set(cases)
        while running:
            assert time.monotonic() < deadline, f"no checkpoint at iteration 2 within {timeout} s"
            for case in list(running):
                child = children[case]
                assert child.poll() is None, (tmp_path / f"{case}.log").read_text()
                if paths[case].exists() and int(saved(paths[case])[".iteration"]) >= 2:
                    child.send_signal(signal.SIGKILL)
                    assert child.wait(timeout=30) == -signal.SIGKILL
                    running.remove(case)
            time.sleep(0.005)
    finally:
        for child in children.values():
            if child.poll() is None:
                child.kill()
                child.wait(timeout=30)
    return paths


def test_a_killed_fit_resumes_to_the_uninterrupted_result(x64, tmp_path, count_iterations):
    data_path, every = data(tmp_path), 2
    paths = kill_mid_fit(tmp_path, data_path, CASES, every)
    for case, path in paths.items():
        state = saved(path)
        step = int(state[".iteration"])
        assert not state[".final"] and 2 <= step < MAX_ITER and step % every == 0
        assert np.all(np.isnan(state[".history"][step:])) and np.all(np.isfinite(state[".history"][:step]))
        count_iterations.clear()
        resumed = run(case, data_path, path, every)
        assert len(count_iterations) == MAX_ITER + 1 - step  # the iterations the kill lost, and the last E-step
        uninterrupted = run(case, data_path, tmp_path / f"{case}-whole.ckpt", every)
        assert_identical(resumed, uninterrupted)
        assert int(resumed.n_iter) == MAX_ITER
        x = np.load(data_path, mmap_mode="r" if case == "memmap" else None)
        plain = fit_em(MODEL, START, x, max_iter=MAX_ITER, tol=0.0, block_rows=BLOCK_ROWS)
        if case == "memmap":
            assert_identical(resumed, plain)
        else:
            for a, b in zip(jax.tree_util.tree_leaves(resumed), jax.tree_util.tree_leaves(plain), strict=True):
                np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", CASES)
def test_saves_every_n_iterations_atomically_and_a_finished_fit_returns_at_once(
        x64, tmp_path, monkeypatch, count_iterations, case):
    data_path, path, every = data(tmp_path), tmp_path / "fit.ckpt", 7
    writes, replace = [], os.replace

    def spied_replace(source, target):
        assert os.path.dirname(source) == str(tmp_path) and source.endswith(".tmp") and target == str(path)
        writes.append(saved(source))  # the whole new file, complete before it takes the path
        replace(source, target)

    monkeypatch.setattr(os, "replace", spied_replace)
    result = run(case, data_path, path, every)
    assert [(int(w[".iteration"]), bool(w[".final"])) for w in writes] == \
        [(7, False), (14, False), (21, False), (28, False), (MAX_ITER, True)]
    assert sorted(os.listdir(tmp_path)) == ["fit.ckpt", "x.npy"]  # no temporary file left
    final = saved(path)
    np.testing.assert_array_equal(final[".params.means"], result.params.means)
    np.testing.assert_array_equal(final[".history"], result.history)
    count_iterations.clear()
    assert_identical(run(case, data_path, path, every), result)
    assert count_iterations == [] and len(writes) == 5  # resumed at the end: nothing run, nothing written


def test_a_damaged_foreign_or_other_checkpoint_is_refused(x64, tmp_path):
    data_path = data(tmp_path)
    good = tmp_path / "good.ckpt"
    run("memmap", data_path, good, max_iter=3)
    content = good.read_bytes()
    (tmp_path / "half.ckpt").write_bytes(content[:len(content) // 2])
    (tmp_path / "empty.ckpt").write_bytes(b"")
    with open(tmp_path / "foreign.ckpt", "wb") as file:
        np.savez(file, weights=np.ones(2))
    for name in ("half.ckpt", "empty.ckpt", "foreign.ckpt"):
        path = tmp_path / name
        before = path.read_bytes()
        with pytest.raises(ValueError, match=re.escape(f"{path} cannot be read as a jaxmix checkpoint")):
            run("memmap", data_path, path, max_iter=3)
        assert path.read_bytes() == before
    others = [dict(case="memory"), dict(model=GaussianMixture(2, reg_covar=1e-5)), dict(rows=N - 1), dict(max_iter=4)]
    for other in others:
        with pytest.raises(ValueError, match=re.escape(f"{good} is the checkpoint of another fit")):
            run(other.pop("case", "memmap"), data_path, good, **{"max_iter": 3, **other})
        assert good.read_bytes() == content


def test_checkpoint_arguments_are_checked(tmp_path):
    x = np.zeros((10, D))
    with pytest.raises(ValueError, match="checkpoint_every must be >= 1"):
        fit_em(MODEL, START, x, checkpoint=tmp_path / "c", checkpoint_every=0)
    with pytest.raises(TypeError, match="checkpoint must be a path"):
        fit_em(MODEL, START, x, checkpoint=3)
