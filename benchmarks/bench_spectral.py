#!/usr/bin/env python
"""Benchmark jaxmix's spectral clustering against scikit-learn's SpectralClustering, in one run.

Prints a Markdown table: for each row (affinity, m points of two moons with noise 0.06), the
seconds of jaxmix (a call after a first one, so compiled; the first call's extra time is listed
apart as compile) and of scikit-learn (one call), their ratio, the adjusted Rand index of each
against the true moons, each side's peak memory and their ratio, then each target with its
verdict (met / missed). Progress goes to stderr, the report to stdout.

    python benchmarks/bench_spectral.py                 # rbf 5,000; knn 200,000; knn 1,000,000 x 3 seeds
    python benchmarks/bench_spectral.py --rows knn-200k # the 200,000-point kNN row alone
    python benchmarks/bench_spectral.py --quick         # rbf 1,000; knn 20,000 (smoke run, ~1 min)
    python benchmarks/bench_spectral.py --sklearn-1m    # also scikit-learn at m = 1,000,000 (about 70 s each)

Memory, the same way for both sides: every measurement runs in a fresh subprocess, which makes
the data and imports everything (and, for jaxmix, starts JAX's CPU client) before a baseline is
read; a thread samples the resident set size (/proc/self/statm) every millisecond. A side's
memory is the largest sample during its timed call minus the resident set at the baseline, so
whatever jaxmix's first call left behind counts against it. The first call's own peak (for
jaxmix: compiling, or loading its programs from the persistent compilation cache, which the
benchmark processes enable with ``jaxmix.enable_compilation_cache()``) is the process's
``ru_maxrss`` minus the same at the baseline, listed apart.

Both libraries get the same affinity kind: rbf with the same gamma (jaxmix's median heuristic,
handed to scikit-learn), or the k-nearest-neighbour connectivity graph, symmetrized alike, each
library with its default k: scikit-learn's 10, jaxmix's max(10, ceil(log2 m)) (18 at 200,000
points, 20 at 1,000,000; see ``spectral_clustering``). jaxmix runs on float32 data, scikit-learn
on the float64 data that ``make_moons`` returns.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time

ROWS = {"rbf-5k": [("rbf", 5_000, 0)], "knn-200k": [("knn", 200_000, 0)],
        "knn-1m": [("knn", 1_000_000, seed) for seed in (0, 1, 2)]}
ROWS_QUICK = [("rbf", 1_000, 0), ("knn", 20_000, 0)]
# (quantity, bound, "<=" or ">="): time and memory are jaxmix / scikit-learn ratios, seconds and GiB jaxmix's own.
TARGETS = {
    "rbf": [("time", 0.5, "<="), ("ARI", 0.95, ">=")],
    "knn": [("time", 0.7, "<="), ("memory", 1.2, "<="), ("ARI", 0.95, ">=")],
    "knn-1m": [("ARI", 0.95, ">="), ("seconds", 120.0, "<="), ("GiB", 8.0, "<=")],
}
GIB = 2**30


class RssSampler:
    """The largest resident set size (bytes) seen since ``reset``, sampled every millisecond on a thread."""

    def __init__(self):
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.peak = self.now()
        threading.Thread(target=self._run, daemon=True).start()

    def now(self):
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * self.page

    def reset(self):
        self.peak = self.now()

    def _run(self):
        while True:
            self.peak = max(self.peak, self.now())
            time.sleep(0.001)


def max_rss():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def measure(library: str, affinity: str, m: int, seed: int) -> dict:
    """Run in a fresh interpreter: one clustering (two for jaxmix, the second timed)."""
    import numpy as np
    from sklearn.datasets import make_moons
    from sklearn.metrics import adjusted_rand_score

    x, y = make_moons(m, noise=0.06, random_state=seed)
    x32 = x.astype(np.float32)
    if library == "jaxmix":
        import jax

        import jaxmix
        from jaxmix.spectral import spectral_clustering

        jaxmix.enable_compilation_cache()
        jax.block_until_ready(jax.numpy.zeros(1))

        def run():
            return np.asarray(spectral_clustering(jax.random.key(0), x32, 2, affinity=affinity).labels)

        calls = 2
    else:
        from sklearn.cluster import SpectralClustering

        if affinity == "rbf":
            from jaxmix.spectral import default_gamma

            model = SpectralClustering(2, affinity="rbf", gamma=default_gamma(x32), random_state=0)
        else:
            model = SpectralClustering(2, affinity="nearest_neighbors", n_neighbors=10, random_state=0)

        def run():
            return model.fit_predict(x)

        calls = 1
    sampler = RssSampler()
    base_rss, base_max = sampler.now(), max_rss()
    seconds = []
    for call in range(calls):
        if call == calls - 1:
            sampler.reset()
        start = time.perf_counter()
        labels = run()
        seconds.append(time.perf_counter() - start)
        if call == 0:
            first_peak = max_rss() - base_max
    return {"seconds": seconds[-1], "compile": max(seconds[0] - seconds[-1], 0.0) if calls > 1 else None,
            "ari": adjusted_rand_score(y, labels), "memory_gib": (sampler.peak - base_rss) / GIB,
            "first_gib": first_peak / GIB}


def in_subprocess(library, affinity, m, seed, timeout):
    code = (f"import json, sys; sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r}); "
            f"import bench_spectral as b; print(json.dumps(b.measure({library!r}, {affinity!r}, {m}, {seed})))")
    log(f"{library} {affinity} m={m} seed={seed} ...")
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        log(f"  timed out after {timeout:.0f} s")
        return {}
    if done.returncode != 0:
        log(done.stderr[-2000:])
        return {}
    return json.loads(done.stdout.strip().splitlines()[-1])


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def fmt(value, spec):
    return "-" if value is None else format(value, spec)


def gib(side):
    """'timed-call peak / first-call peak' in GiB."""
    return f"{fmt(side.get('memory_gib'), '.3f')} / {fmt(side.get('first_gib'), '.3f')}"


def verdicts(targets, values):
    """'quantity value <= bound: met' for each target; 'not measured' where the value is missing."""
    out = []
    for quantity, bound, sense in targets:
        value = values.get(quantity)
        if value is None:
            out.append(f"{quantity} {sense} {bound:g}: not measured")
            continue
        met = value <= bound if sense == "<=" else value >= bound
        shown = f"{value:.2f}x" if quantity in ("time", "memory") else f"{value:.3g}"
        out.append(f"{quantity} {shown} {sense} {bound:g}{'x' if quantity in ('time', 'memory') else ''}: "
                   f"{'met' if met else 'missed'}")
    return "; ".join(out)


def row(affinity, m, seed, ours, theirs):
    time_ratio = ours["seconds"] / theirs["seconds"] if ours and theirs else None
    memory_ratio = (ours["memory_gib"] / theirs["memory_gib"]
                    if ours and theirs and theirs["memory_gib"] > 0 else None)
    targets = TARGETS["knn-1m" if m >= 1_000_000 else affinity]
    values = {"time": time_ratio, "memory": memory_ratio, "ARI": ours.get("ari"), "seconds": ours.get("seconds"),
              "GiB": ours.get("memory_gib")}
    cells = [affinity, f"{m:,}", seed, fmt(ours.get("seconds"), ".2f"), fmt(ours.get("compile"), ".1f"),
             fmt(theirs.get("seconds"), ".2f"), fmt(time_ratio, ".2f"), fmt(ours.get("ari"), ".3f"),
             fmt(theirs.get("ari"), ".3f"), gib(ours), gib(theirs), fmt(memory_ratio, ".2f"), verdicts(targets, values)]
    return "| " + " | ".join(map(str, cells)) + " |"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated rows among {', '.join(ROWS)}")
    parser.add_argument("--sklearn-1m", action="store_true", help="also run scikit-learn at m = 1,000,000")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per measurement (default 600)")
    args = parser.parse_args(argv)
    rows = ROWS_QUICK if args.quick else [r for name in args.rows.split(",") for r in ROWS[name]]
    print(f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())} ({os.cpu_count()} cores)")
    print("\n| affinity | m | seed | jaxmix s | compile s | sklearn s | time ratio | jaxmix ARI | sklearn ARI "
          "| jaxmix GiB (timed / 1st call) | sklearn GiB (sampled / ru_maxrss) | memory ratio | targets |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for affinity, m, seed in rows:
        ours = in_subprocess("jaxmix", affinity, m, seed, args.timeout)
        skip_sklearn = m >= 1_000_000 and not args.sklearn_1m
        theirs = {} if skip_sklearn else in_subprocess("sklearn", affinity, m, seed, args.timeout)
        print(row(affinity, m, seed, ours, theirs), flush=True)
    print(f"\nload average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}. Times: jaxmix's second call "
          "(the first compiles or loads its programs), scikit-learn's one call. GiB: the peak resident set during "
          "the timed call (sampled every ms) minus the resident set after the imports and the data, each side in a "
          "fresh process; after the slash, the peak of the first call by ru_maxrss (for scikit-learn its only call). "
          "Memory ratio: the sampled peaks. '-': not run (or failed/timed out, see stderr).")


if __name__ == "__main__":
    main()
