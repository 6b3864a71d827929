#!/usr/bin/env python
"""Benchmark jaxmix's spectral clustering against scikit-learn's SpectralClustering, in one run.

Prints a Markdown table: for each row (affinity, m points of two moons with noise 0.06), the
seconds of jaxmix (after compilation; the first call's extra time is listed apart as compile)
and of scikit-learn, their ratio, the adjusted Rand index of each against the true moons, and
the peak resident memory of each. Every measurement runs in a fresh subprocess, so peak memory
is that process's ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (native memory included, which
tracemalloc misses) minus the same process's peak just before the call (interpreter, libraries,
data). Progress goes to stderr, the report to stdout.

    python benchmarks/bench_spectral.py                 # rbf 5,000; knn 200,000; knn 1,000,000 x 3 seeds
    python benchmarks/bench_spectral.py --quick         # rbf 1,000; knn 20,000 (smoke run, ~1 min)
    python benchmarks/bench_spectral.py --sklearn-1m    # also scikit-learn at m = 1,000,000 (about 70 s each)

Both libraries get the same affinity kind: rbf with the same gamma (jaxmix's median heuristic,
handed to scikit-learn), or the k-nearest-neighbour connectivity graph, symmetrized alike, each
library with its default k: scikit-learn's 10, jaxmix's max(10, ceil(log2 m)) (18 at 200,000
points, 20 at 1,000,000; see ``spectral_clustering``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

ROWS_FULL = [("rbf", 5_000, 0), ("knn", 200_000, 0)] + [("knn", 1_000_000, seed) for seed in (0, 1, 2)]
ROWS_QUICK = [("rbf", 1_000, 0), ("knn", 20_000, 0)]
TARGETS = {"rbf": "time <= 0.5x, ARI >= 0.95", "knn": "time <= 1.0x, ARI >= 0.95, memory <= 2x"}
TARGET_1M = "ARI >= 0.95, < 120 s, < 8 GiB"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def measure(library: str, affinity: str, m: int, seed: int) -> dict:
    """Run in a fresh interpreter: one clustering (two for jaxmix, to time the compiled call)."""
    import resource

    import numpy as np
    from sklearn.datasets import make_moons
    from sklearn.metrics import adjusted_rand_score

    x, y = make_moons(m, noise=0.06, random_state=seed)
    x32 = x.astype(np.float32)
    if library == "jaxmix":
        import jax

        from jaxmix.spectral import spectral_clustering

        def run():
            return np.asarray(spectral_clustering(jax.random.key(0), x32, 2, affinity=affinity).labels)

        jax.block_until_ready(jax.numpy.zeros(1))
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        run()
        first = time.perf_counter() - start
        start = time.perf_counter()
        labels = run()
        seconds = time.perf_counter() - start
        compile_s = max(first - seconds, 0.0)
    else:
        from sklearn.cluster import SpectralClustering

        if affinity == "rbf":
            from jaxmix.spectral import default_gamma

            model = SpectralClustering(2, affinity="rbf", gamma=default_gamma(x32), random_state=0)
        else:
            model = SpectralClustering(2, affinity="nearest_neighbors", n_neighbors=10, random_state=0)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        labels = model.fit_predict(x)
        seconds = time.perf_counter() - start
        compile_s = None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"seconds": seconds, "compile": compile_s, "ari": adjusted_rand_score(y, labels),
            "memory_gib": max(peak - before, 0) / 2**20}


def in_subprocess(library, affinity, m, seed, timeout):
    code = (f"import json, sys; sys.path.insert(0, {str(__file__.rsplit('/', 1)[0])!r}); "
            f"import bench_spectral as b; print(json.dumps(b.measure({library!r}, {affinity!r}, {m}, {seed})))")
    log(f"{library} {affinity} m={m} seed={seed} ...")
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    if done.returncode != 0:
        log(done.stderr[-2000:])
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def fmt(value, spec):
    return "-" if value is None else format(value, spec)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument("--sklearn-1m", action="store_true", help="also run scikit-learn at m = 1,000,000")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per measurement (default 600)")
    args = parser.parse_args(argv)
    rows = ROWS_QUICK if args.quick else ROWS_FULL
    print("| affinity | m | seed | jaxmix s | compile s | sklearn s | time ratio | jaxmix ARI | sklearn ARI "
          "| jaxmix GiB | sklearn GiB | memory ratio | target |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for affinity, m, seed in rows:
        ours = in_subprocess("jaxmix", affinity, m, seed, args.timeout) or {}
        skip_sklearn = m >= 1_000_000 and not args.sklearn_1m
        theirs = {} if skip_sklearn else in_subprocess("sklearn", affinity, m, seed, args.timeout) or {}
        time_ratio = ours["seconds"] / theirs["seconds"] if ours and theirs else None
        memory_ratio = (ours["memory_gib"] / theirs["memory_gib"]
                        if ours and theirs and theirs["memory_gib"] > 0 else None)
        print(f"| {affinity} | {m:,} | {seed} | {fmt(ours.get('seconds'), '.2f')} | {fmt(ours.get('compile'), '.1f')} "
              f"| {fmt(theirs.get('seconds'), '.2f')} | {fmt(time_ratio, '.2f')} | {fmt(ours.get('ari'), '.3f')} "
              f"| {fmt(theirs.get('ari'), '.3f')} | {fmt(ours.get('memory_gib'), '.2f')} "
              f"| {fmt(theirs.get('memory_gib'), '.2f')} | {fmt(memory_ratio, '.2f')} "
              f"| {TARGET_1M if m >= 1_000_000 else TARGETS[affinity]} |", flush=True)
    print("\nTimes are one call after a compiling call (jaxmix) or one call (scikit-learn); memory is the rise "
          "of the process's peak RSS during the calls; '-' means not run (or failed/timed out, see stderr).")


if __name__ == "__main__":
    main()
