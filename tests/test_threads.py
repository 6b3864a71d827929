"""Restarts and model selection side by side on a CPU never deadlock (jaxmix._threads)."""

import subprocess
import sys
import textwrap

import jax
import numpy as np

from jaxmix.inference.threads import run_side_by_side, runs_alongside

# Run in a child process with a timeout: a deadlocked XLA program cannot be interrupted in-process
# (its threads sit in C++ waits, and the interpreter would then hang at exit joining them).
MATRIX = textwrap.dedent("""
    import sys
    import numpy as np, jax
    import jaxmix
    fit_module, selection = sys.modules["jaxmix.inference.restarts"], sys.modules["jaxmix.inference.selection"]
    fit_module.usable_cores = selection.usable_cores = lambda: 2  # two threads even on one core
    fit_module.THREADED_RESTARTS_MIN_WORK = 0  # threads whatever the size
    rng = np.random.default_rng(0)
    for d in (8, 32, 64):
        x = rng.normal(size=(4 * d, d)).astype(np.float32)
        for cov in ("full", "tied", "diag", "spherical", "identity"):
            fit = jaxmix.fit(jax.random.key(0), jaxmix.GaussianMixture(3, cov), x, n_init=2, max_iter=3,
                               init="random")
            assert np.isfinite(float(fit.best.log_likelihood)), (d, cov)
            print(d, cov, flush=True)
    table = jaxmix.select_components(jax.random.key(0), x, [2, 3], ["full", "tied", "diag"], max_iter=3,
                                     init="random")
    assert np.all(np.isfinite(table.bic))
    print("done", flush=True)
""")


def test_restarts_and_selection_never_deadlock():
    """D in {8, 32, 64} and every covariance type, restarts on two threads; D = 32 and 64 hung before."""
    run = subprocess.run([sys.executable, "-c", MATRIX], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip().endswith("done")


def test_programs_with_library_kernels_run_alone():
    """A full covariance's program holds LAPACK custom calls, so it runs alone; a diagonal one does not."""
    x = jax.numpy.asarray(np.random.default_rng(0).normal(size=(64, 4)), jax.numpy.float32)
    assert not runs_alongside(jax.jit(jax.numpy.linalg.cholesky).lower(np.eye(3, dtype=np.float32)).compile())
    assert runs_alongside(jax.jit(lambda a: a @ a.T).lower(x).compile())
    square = jax.jit(lambda a: a * a).lower(x).compile()
    results = run_side_by_side([(square, (x,)), (square, (x + 1,)), (square, (x + 2,))], workers=2)
    np.testing.assert_array_equal(np.asarray(results[2]), np.asarray((x + 2) ** 2))
