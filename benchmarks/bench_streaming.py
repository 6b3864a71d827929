#!/usr/bin/env python
"""Benchmark jaxmix's streamed EM (a float32 NumPy memmap source) against the same fit in memory.

Prints a Markdown table of the memory and time targets with their verdicts;
progress goes to stderr, the report to stdout.

    python benchmarks/bench_streaming.py                 # memory and time, full size (writes a 2.56 GB file)
    python benchmarks/bench_streaming.py time --repeats 5
    python benchmarks/bench_streaming.py memory --dir /scratch --keep
    python benchmarks/bench_streaming.py --quick         # every N / 10, smoke run

Method (the report's notes repeat it):

* Data: (N, 16) float32 rows of a fixed 16-component Gaussian mixture with
  random full covariances, written block by block into one ``.npy`` file
  (``--dir``, default a temporary directory; deleted at the end unless
  ``--keep``) and opened with ``np.load(path, mmap_mode="r")``; each size is
  a prefix ``mm[:n]`` of it (still a memmap).
* Memory: each fit (``GaussianMixture(16, "full")``, ``fit_em`` from a fixed
  start and ``fit(n_init=1)``, tol=0) runs in a fresh subprocess that first
  imports, compiles and runs the same fit on a small prefix (same block
  shapes), then samples ``RssAnon`` (anonymous memory, not the memmap's
  file-backed pages) of /proc/self/status every 10 ms through the measured
  fit. Growth = peak minus the level before it; the target compares the
  growth at the two sizes: less than 10 % of the extra rows' bytes.
* Time: the file is read once (page cache), then ``fit_em`` on the memmap
  and on ``jnp.asarray`` of a copy of the same rows, same start, tol=0,
  interleaved, ``--repeats`` times. In memory one iteration costs
  (T(max_iter=n) - T(max_iter=1)) / (n - 1), which cancels the fixed work;
  streamed, where each iteration is a Python-driven pass, it is the median
  time from the end of one pass to the end of the next (``PassClock``),
  which leaves out the setup and the first pass (it checks the rows). The
  small streamed fit runs large / small times as many iterations. Compile
  time: each first call minus the fastest steady call.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_em import CompileClock, header, log, timed_cpu, verdict

D, K = 16, 16
WRITE_ROWS = 2**20  # rows generated and written at a time
WARM_ROWS = 2**18  # the memory child's warm-up prefix: more than a block and than a sample
MEMORY_TARGET = 0.10  # growth(large) - growth(small) < 10 % of the extra rows' bytes
TIME_TARGET = 1.3  # streamed / in-memory per iteration
LINEAR_TOLERANCE = 0.2  # per-iteration time at r times the rows: r +- 20 %


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("what", nargs="?", default="all", choices=("all", "memory", "time"))
    p.add_argument("--dir", default=None, help="where the .npy file goes (default: a temporary directory)")
    p.add_argument("--keep", action="store_true", help="keep the data file (default: delete it at the end)")
    p.add_argument("--quick", action="store_true", help="divide every N by 10 (smoke run)")
    p.add_argument("--memory-rows", default="10_000_000,40_000_000", help="the two sizes of the memory test")
    p.add_argument("--time-rows", default="1_000_000,10_000_000",
                   help="small and large size of the time test (the in-memory fit runs at the large one)")
    p.add_argument("--memory-iter", type=int, default=3, help="max_iter of the memory fits (default 3)")
    p.add_argument("--n-iter", type=int, default=4, help="max_iter=n of the timed fits (default 4)")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats (default 3)")
    p.add_argument("--block-rows", type=int, default=None, help="fit_em's block_rows (default: jaxmix's)")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated data")
    p.add_argument("--child", nargs=4, metavar=("PATH", "ROWS", "HOW", "MAX_ITER"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child is None:
        scale = 10 if args.quick else 1
        args.memory_rows = [int(s) // scale for s in args.memory_rows.split(",")]
        args.time_rows = [int(s) // scale for s in args.time_rows.split(",")]
        if len(args.memory_rows) != 2 or len(args.time_rows) != 2:
            p.error("--memory-rows and --time-rows take two sizes each")
        if args.n_iter < 2:
            p.error("--n-iter must be >= 2 (per-iteration cost is (T(n) - T(1)) / (n - 1))")
    args.fit_kw = {} if args.block_rows is None else {"block_rows": args.block_rows}
    return args


# --------------------------------------------------------------------------- data


def write_data(path: str, n: int, seed: int) -> None:
    """n rows of a 16-component full-covariance mixture, written WRITE_ROWS at a time (never all in memory)."""
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.full(K, 5.0))
    means = rng.normal(scale=3.0, size=(K, D))
    a = rng.normal(size=(K, D, D)) / np.sqrt(D)
    chol = np.linalg.cholesky(a @ np.swapaxes(a, 1, 2) + 0.5 * np.eye(D))
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, D))
    for b, start in enumerate(range(0, n, WRITE_ROWS)):
        block = np.random.default_rng([seed, b])
        m = min(WRITE_ROWS, n - start)
        z = block.choice(K, size=m, p=weights)
        x = block.normal(size=(m, D))
        for k in range(K):
            rows = z == k
            x[rows] = means[k] + x[rows] @ chol[k].T
        out[start:start + m] = x
    out.flush()
    del out


def read_once(mm) -> None:
    """Read every row once, so the file is in the page cache."""
    for start in range(0, mm.shape[0], WRITE_ROWS):
        np.add.reduce(mm[start:start + WRITE_ROWS], axis=0)


# --------------------------------------------------------------------------- memory (child process)


def status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


class PeakSampler:
    """Peak RssAnon and RssFile (kB) sampled every ``period`` seconds on a daemon thread."""

    def __init__(self, period: float = 0.01):
        self.period, self.peak_anon, self.peak_file = period, 0, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            self.peak_anon = max(self.peak_anon, status_kb("RssAnon"))
            self.peak_file = max(self.peak_file, status_kb("RssFile"))
            self.stop.wait(self.period)

    def reset(self):
        self.peak_anon, self.peak_file = status_kb("RssAnon"), status_kb("RssFile")

    def close(self):
        self.stop.set()
        self.thread.join()


def memory_child(path: str, rows: int, how: str, max_iter: int, fit_kw: dict) -> dict:
    """One fit of ``how`` (fit_em or fit) on mm[:rows] after a warm-up on mm[:WARM_ROWS]; kB figures."""
    import gc

    import jax

    from jaxmix import GaussianMixture, fit, fit_em, initialize

    warnings.simplefilter("ignore")
    clock = CompileClock()
    sampler = PeakSampler()
    mm = np.load(path, mmap_mode="r")
    model = GaussianMixture(K, covariance_type="full")
    start = initialize(jax.random.key(0), model, mm[:WARM_ROWS], "random_from_data")

    def run(x):
        if how == "fit_em":
            return fit_em(model, start, x, max_iter=max_iter, tol=0.0, **fit_kw)
        return fit(jax.random.key(0), model, x, n_init=1, max_iter=max_iter, tol=0.0, **fit_kw).best

    jax.block_until_ready(run(mm[:WARM_ROWS]))  # compiles every block-shaped program
    gc.collect()
    time.sleep(0.1)
    sampler.reset()
    base_anon, base_file, xla = sampler.peak_anon, sampler.peak_file, clock.total
    t0 = time.perf_counter()
    result = jax.block_until_ready(run(mm[:rows]))
    seconds = time.perf_counter() - t0
    time.sleep(0.05)
    sampler.close()
    return dict(rows=rows, how=how, base_anon=base_anon, peak_anon=sampler.peak_anon, base_file=base_file,
                peak_file=sampler.peak_file, vm_hwm=status_kb("VmHWM"), seconds=seconds,
                xla_compile=clock.total - xla, n_iter=int(result.n_iter))


def bench_memory(args, path: str) -> list[dict]:
    """Every (how, rows) memory fit in a fresh subprocess; their reports."""
    out = []
    for how in ("fit_em", "fit"):
        for rows in args.memory_rows:
            log(f"[memory] {how} on {rows:,} rows (subprocess)")
            cmd = [sys.executable, os.path.abspath(__file__), "--child", path, str(rows), how, str(args.memory_iter)]
            if args.block_rows is not None:
                cmd += ["--block-rows", str(args.block_rows)]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"memory child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
            out.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return out


# --------------------------------------------------------------------------- time


class PassClock:
    """Wall and CPU clock at the end of every pass of a streamed fit: wraps ``driver.source_pass``.

    ``fit_em`` on a source runs one Python-driven iteration per pass
    (``run_em_steps``, which waits for each M-step's ``final`` flag), so the
    time from the end of one pass to the end of the next is one iteration:
    an M-step and an unchecked pass. The first pass (which checks the rows)
    and the setup before it (the source's sample) are left out.
    """

    def __init__(self):
        import jax

        from jaxmix.inference import driver

        self.stamps = []
        original = driver.source_pass

        def source_pass(*args, **kwargs):
            data_pass = original(*args, **kwargs)

            def timed_pass(params, first):
                out = jax.block_until_ready(data_pass(params, first))
                self.stamps.append((time.perf_counter(), time.process_time()))
                return out
            return timed_pass

        driver.source_pass = source_pass

    def run(self, fn):
        """fn()'s wall and CPU seconds, its iterations' (wall, CPU) seconds, seconds to its first pass's end
        (None: no pass, an in-memory fit), and its result."""
        self.stamps = []
        t0 = time.perf_counter()
        wall, cpu, out = timed_cpu(fn)
        iters = [(b[0] - a[0], b[1] - a[1]) for a, b in zip(self.stamps, self.stamps[1:])]
        return wall, cpu, iters, self.stamps[0][0] - t0 if self.stamps else None, out


def bench_time(args, path: str) -> dict:
    """Per-iteration seconds (wall and CPU) of in-memory and streamed fit_em, and their compile times."""
    import jax
    import jax.numpy as jnp

    from jaxmix import GaussianMixture, fit_em, initialize

    small, large = args.time_rows
    mm = np.load(path, mmap_mode="r")
    log(f"[time] reading {large:,} rows once (page cache), copying them into memory")
    read_once(mm[:large])
    x = jnp.asarray(np.array(mm[:large]))
    model = GaussianMixture(K, covariance_type="full")
    start = jax.block_until_ready(initialize(jax.random.key(0), model, mm[:large], "random_from_data"))
    n, clock, passes = args.n_iter, CompileClock(), PassClock()
    # The streamed fits are timed pass by pass, so one max_iter each is enough; the small one runs
    # large / small times as many iterations, so that both sizes' iterations span about the same time.
    top = {"memory": n, "stream": n, "stream_small": n * max(1, round(large / small))}
    calls = {
        ("memory", n): lambda: fit_em(model, start, x, max_iter=n, tol=0.0, **args.fit_kw),
        ("memory", 1): lambda: fit_em(model, start, x, max_iter=1, tol=0.0, **args.fit_kw),
        ("stream", n): lambda: fit_em(model, start, mm[:large], max_iter=n, tol=0.0, **args.fit_kw),
        ("stream_small", top["stream_small"]): lambda: fit_em(model, start, mm[:small], max_iter=top["stream_small"],
                                                              tol=0.0, **args.fit_kw),
    }
    first = {}
    for key, call in calls.items():
        log(f"[time] first call: {key[0]}, max_iter={key[1]}")
        first[key] = clock.first_call(call)
    runs = {key: [] for key in calls}
    for r in range(args.repeats):
        log(f"[time] repeat {r + 1}/{args.repeats}")
        for key, call in calls.items():
            runs[key].append(passes.run(call))
    med = {key: statistics.median(run[0] for run in rs) for key, rs in runs.items()}
    med_cpu = {key: statistics.median(run[1] for run in rs) for key, rs in runs.items()}
    out = {"walls": {key: [run[0] for run in rs] for key, rs in runs.items()}}
    out["memory"] = dict(wall=(med["memory", n] - med["memory", 1]) / (n - 1),
                         cpu=(med_cpu["memory", n] - med_cpu["memory", 1]) / (n - 1),
                         t_n=med["memory", n], t_1=med["memory", 1], setup=None)
    for name in ("stream", "stream_small"):
        iters = [it for run in runs[name, top[name]] for it in run[2]]
        out[name] = dict(wall=statistics.median(w for w, _ in iters), cpu=statistics.median(c for _, c in iters),
                         t_n=med[name, top[name]], t_1=None,
                         setup=statistics.median(run[3] for run in runs[name, top[name]]),
                         spread=(min(w for w, _ in iters), max(w for w, _ in iters)))
    for name in ("memory", "stream", "stream_small"):
        keys = [key for key in calls if key[0] == name]
        out[name].update(compile=[(first[key][0] - min(out["walls"][key]), first[key][2]) for key in keys],
                         iters=int(runs[name, top[name]][-1][4].n_iter))
    h_mem, h_stream = (np.asarray(runs[name, n][-1][4].history) for name in ("memory", "stream"))
    out["history_diff"] = float(np.max(np.abs(h_mem - h_stream)))
    return out


# --------------------------------------------------------------------------- report


def gb(kb: float) -> str:
    return f"{kb / 2**20:.3f} GiB" if abs(kb) >= 2**20 else f"{kb / 1024:.1f} MiB"


def memory_lines(args, reports: list[dict]) -> list[str]:
    small, large = args.memory_rows
    extra_kb = (large - small) * D * 4 / 1024
    lines = [f"Memory: `GaussianMixture({K}, \"full\")`, max_iter={args.memory_iter}, tol=0, float32 memmap "
             f"of {D} features, a fresh process per fit; growth = peak RssAnon during the fit minus RssAnon "
             "before it (after imports and a warm-up fit on a small prefix)", "",
             "| fit | rows | data | RssAnon before | peak growth | growth / data | peak RssFile | fit s "
             "| XLA compile s in fit |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    growth = {}
    for r in reports:
        data_kb = r["rows"] * D * 4 / 1024
        g = r["peak_anon"] - r["base_anon"]
        growth[r["how"], r["rows"]] = g
        lines.append(f"| `{r['how']}` | {r['rows']:,} | {gb(data_kb)} | {gb(r['base_anon'])} | {gb(g)} "
                     f"| {100 * g / data_kb:.2f} % | {gb(r['peak_file'])} | {r['seconds']:.1f} "
                     f"| {r['xla_compile']:.2f} |")
    lines += ["", f"| fit | growth({large:,}) - growth({small:,}) | extra data | share | target | meets |",
              "|---|---:|---:|---:|---|---|"]
    for how in ("fit_em", "fit"):
        diff = growth[how, large] - growth[how, small]
        share = diff / extra_kb
        lines.append(f"| `{how}` | {gb(diff)} | {gb(extra_kb)} | {100 * share:.2f} % | < {100 * MEMORY_TARGET:.0f} % "
                     f"| {verdict(share < MEMORY_TARGET)} |")
    return lines


def time_lines(args, t: dict) -> list[str]:
    small, large = args.time_rows
    mem, stream, stream_small = t["memory"], t["stream"], t["stream_small"]
    ratio, ratio_cpu = stream["wall"] / mem["wall"], stream["cpu"] / mem["cpu"]
    growth, growth_cpu = stream["wall"] / stream_small["wall"], stream["cpu"] / stream_small["cpu"]
    scale = large / small
    lo, hi = scale * (1 - LINEAR_TOLERANCE), scale * (1 + LINEAR_TOLERANCE)
    n = args.n_iter
    lines = [f"Time: `fit_em`, `GaussianMixture({K}, \"full\")`, D={D}, same start, tol=0, "
             f"{args.repeats} calls of each, interleaved", "",
             "| fit | rows | s/iter wall | s/iter CPU | call T(max_iter) s | T(max_iter=1) s "
             "| to end of 1st pass s | compile s (XLA), max_iter / 1 | max_iter |",
             "|---|---:|---:|---:|---:|---:|---:|---|---:|"]
    for name, label, rows in (("memory", "in memory (jax array)", large), ("stream", "streamed memmap", large),
                              ("stream_small", "streamed memmap", small)):
        r = t[name]
        compile_s = " / ".join(f"{c:.2f} ({x:.2f})" for c, x in r["compile"])
        t_1 = "-" if r["t_1"] is None else f"{r['t_1']:.2f}"
        setup = "-" if r["setup"] is None else f"{r['setup']:.2f}"
        lines.append(f"| {label} | {rows:,} | {r['wall']:.3f} | {r['cpu']:.3f} | {r['t_n']:.2f} | {t_1} | {setup} "
                     f"| {compile_s} | {r['iters']} |")
    ok_ratio = mem["wall"] > 0 and ratio <= TIME_TARGET
    lines += ["", "| target | measured wall (CPU) | target | meets (wall) |", "|---|---:|---|---|",
              f"| streamed / in memory at {large:,} | {ratio:.3f}x ({ratio_cpu:.3f}x) | <= {TIME_TARGET}x "
              f"| {verdict(ok_ratio)} |",
              f"| streamed {large:,} / {small:,} | {growth:.2f}x ({growth_cpu:.2f}x) "
              f"| {lo:.1f}x - {hi:.1f}x | {verdict(lo <= growth <= hi)} |",
              "", "Notes:",
              f"1. In memory: one compiled program per call; s/iter = (T(max_iter={n}) - T(max_iter=1)) / {n - 1}, "
              "which cancels the fixed work (checks, the final E-step). Streamed: `fit_em` drives one iteration "
              "per pass from Python; s/iter is the median time from the end of one pass to the end of the next "
              "(an M-step and an unchecked pass), over every iteration of every call; the setup (the source's "
              "sample) and the first pass, which checks the rows, are the 'to end of 1st pass' column; the "
              f"fit on {small:,} rows runs {large // small}x as many iterations, over about the same time. "
              "Blocks are padded to block_rows, so a pass computes ceil(N / block_rows) full blocks. "
              f"Range of the streamed iterations at {large:,}: {stream['spread'][0]:.2f} - "
              f"{stream['spread'][1]:.2f} s.",
              "2. CPU = process CPU seconds (all threads) over the same spans: less sensitive than wall time "
              "to other processes on a shared machine.",
              "3. Compile s = first call minus the fastest steady call (XLA = seconds in XLA backend compilation "
              "during the first call). The streamed programs (one block's E-step, the M-step) compile on the "
              "first streamed call; max_iter is static in the in-memory program, so both of its calls compile.",
              f"4. Largest |history difference| streamed vs in memory: {t['history_diff']:.2e} nats.",
              "5. Wall seconds per call: " + "; ".join(
                  f"{name} max_iter={m}: {', '.join(f'{w:.2f}' for w in walls)}"
                  for (name, m), walls in t["walls"].items())]
    return lines


def main(argv=None):
    args = parse_args(argv)
    if args.child is not None:
        path, rows, how, max_iter = args.child
        print(json.dumps(memory_child(path, int(rows), how, int(max_iter), args.fit_kw)))
        return
    from jaxmix.inference.sources import DEFAULT_BLOCK_ROWS

    t_start = time.perf_counter()
    folder = args.dir or tempfile.mkdtemp(prefix="jaxmix-streaming-")
    os.makedirs(folder, exist_ok=True)
    n_file = max([WARM_ROWS] + (args.memory_rows if args.what != "time" else [])
                 + (args.time_rows if args.what != "memory" else []))
    path = os.path.join(folder, f"bench_streaming_{n_file}x{D}_seed{args.seed}.npy")
    created = not os.path.exists(path)
    try:
        if created:
            log(f"writing {n_file:,} x {D} float32 rows ({n_file * D * 4 / 1e9:.2f} GB) to {path}")
            t0 = time.perf_counter()
            write_data(path, n_file, args.seed)
            log(f"  written in {time.perf_counter() - t0:.0f} s")
        lines = header()
        lines[0] = "# jaxmix streaming benchmark"
        lines += [f"- settings: {args.what}, block_rows={args.block_rows or DEFAULT_BLOCK_ROWS}, "
                  f"repeats={args.repeats}, n_iter={args.n_iter}, memory max_iter={args.memory_iter}, "
                  f"quick={args.quick}, seed={args.seed}, data file {path}", ""]
        if args.what in ("all", "memory"):
            lines += memory_lines(args, bench_memory(args, path)) + [""]
        if args.what in ("all", "time"):
            lines += time_lines(args, bench_time(args, path)) + [""]
        lines.append(f"Load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}; "
                     f"total benchmark time {time.perf_counter() - t_start:.0f} s.")
        print("\n".join(lines))
    finally:
        if created and not args.keep:
            os.remove(path)
            if args.dir is None:
                shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
