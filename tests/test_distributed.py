"""EM over two processes (``jax.distributed``, gloo CPU collectives) equals EM in one process.

Two processes on 127.0.0.1, two CPU devices each, each holding half of the 201 rows (101 and
100, so ``global_rows`` pads them), fit a full-covariance ``GaussianMixture`` and ``KMeans``
with ``fit`` and ``fit_em``; both return the parameters of the single-process fits of all the
rows to 1e-10 relative in float64. This file is also the processes' script. They run under one
deadline, and are killed in a ``finally`` whatever happens: a failed process does not leave its
peer waiting in a collective.
"""

import os
import socket
import subprocess
import sys
import time
import warnings

import numpy as np

N_ROWS, SETTINGS = 201, {"max_iter": 60, "tol": 1e-8}


def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(N_ROWS, 3)) + 3.0 * (np.arange(N_ROWS) % 3)[:, None]


def fits(x, sample_weight=None):
    """{name: leaves} of the fits compared: ``fit`` (k-means initialization, two restarts) and
    ``fit_em`` from a fixed start, for a full-covariance mixture and k-means."""
    import jax
    import jax.numpy as jnp

    import jaxmix

    warnings.simplefilter("ignore", jaxmix.ConvergenceWarning)
    centers = jnp.asarray(np.repeat(np.arange(3.0)[:, None], 3, axis=1))
    models = {"gaussian": (jaxmix.GaussianMixture(3, "full"),
                           jaxmix.GaussianMixtureParams(jnp.full(3, 1 / 3), centers, jnp.stack([jnp.eye(3)] * 3))),
              "kmeans": (jaxmix.KMeans(3), jaxmix.KMeansParams(centers))}
    results = {}
    for name, (model, start) in models.items():
        fit = jaxmix.fit(jax.random.key(0), model, x, n_init=2, sample_weight=sample_weight, **SETTINGS)
        em = jaxmix.fit_em(model, start, x, sample_weight=sample_weight, **SETTINGS)
        for what, result in (("fit", fit.best), ("fit_em", em)):
            leaves = jax.tree_util.tree_leaves((result.params, result.log_likelihood, result.n_iter))
            results.update({f"{name} {what} {i}": np.asarray(leaf) for i, leaf in enumerate(leaves)})
    return results


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_fit_as_one(tmp_path, x64):
    port, processes, deadline = free_port(), [], time.monotonic() + 150
    # conftest.py's compile flags, and two CPU devices
    env = {**os.environ, "XLA_FLAGS": f"{os.environ['XLA_FLAGS']} --xla_force_host_platform_device_count=2"}
    try:
        for process_id in (0, 1):
            log = open(tmp_path / f"{process_id}.log", "w")
            processes.append(subprocess.Popen([sys.executable, __file__, str(process_id), str(port), str(tmp_path)],
                                              env=env, stdout=log, stderr=subprocess.STDOUT))
            log.close()
        reference = fits(data())  # one process, one device, while the two run
        while any(p.poll() is None for p in processes) and all(p.poll() in (None, 0) for p in processes):
            assert time.monotonic() < deadline, "the processes ran past their deadline"
            time.sleep(0.2)
    finally:
        for process in processes:
            process.kill()
            process.wait()
    for process_id, process in enumerate(processes):
        assert process.returncode == 0, (tmp_path / f"{process_id}.log").read_text()[-5000:]
    for process_id in (0, 1):
        results = np.load(tmp_path / f"{process_id}.npz")
        assert sorted(results.files) == sorted(reference)
        for name, expected in reference.items():
            error = np.max(np.abs(results[name] - expected) / np.maximum(np.abs(expected), 1e-300))
            assert error < 1e-10, (process_id, name, error)


def process(process_id: int, port: int, out: str):
    """One of the two processes: its half of the rows, the fits, their results saved as NumPy."""
    import jax

    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2, process_id=process_id,
                               initialization_timeout=60)
    import jaxmix

    x, weights = jaxmix.global_rows(np.array_split(data(), 2)[process_id])
    assert x.shape[0] == 204 and not x.is_fully_addressable, x.shape  # 2 x 102 rows, over 4 devices
    np.savez(f"{out}/{process_id}.npz", **fits(x, weights))


if __name__ == "__main__":
    process(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
