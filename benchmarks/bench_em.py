#!/usr/bin/env python
"""Benchmark jaxmix's EM against scikit-learn and faiss-cpu, from the same start, in one run.

Prints a Markdown table, one row per target of issue 17 with its verdict (met / missed):
milliseconds per EM iteration of jaxmix (float32, after compilation) beside scikit-learn
(float64, its default; for k-means also float32) and, for k-means, faiss-cpu (float32,
``faiss.Kmeans``), their ratio and the target; the first ``fit(key, GaussianMixture(8), x,
n_init=8)`` of a fresh process, compile included. Compile times are a table of their own.
A third table compares ``fit(n_init=8)`` (on a CPU its restarts run side by side, one per
core; on an accelerator vmapped in one call) with eight single fits one after another.
Progress goes to stderr, the report to stdout.

    python benchmarks/bench_em.py              # full run, n_iter=10 (scikit-learn's GMM dominates)
    python benchmarks/bench_em.py --quick      # N / 10, smoke run
    python benchmarks/bench_em.py --cases gmm-full,kmeans --n-iter 10
    python benchmarks/bench_em.py --cases demo,tests   # the demo command twice, the test command once

faiss-cpu is optional (``pip install jaxmix[bench]``); without it its row says so.

Method (see the footnotes the script prints):

* Same start: the GMM starts from ``initialize(key(0), model, x, "random_from_data")``,
  handed to scikit-learn as weights_init / means_init / precisions_init; k-means
  starts the three libraries from the same K data points (faiss: ``init_centroids``,
  every point used, no subsampling). The float64 data is the float32 data widened,
  so all see identical values.
* Per iteration: every library runs with tol=0 (exactly max_iter iterations),
  once with max_iter=n and once with max_iter=1; the cost of one iteration is
  (T(n) - T(1)) / (n - 1). This cancels each library's fixed costs (input
  checks, scikit-learn's initialization M-step, the final E-step both do).
* Compile time: first call at max_iter=n minus the fastest steady-state call;
  beside it, the seconds XLA itself spent compiling (jax.monitoring events).
  max_iter is a static argument, so max_iter=n and max_iter=1 are compiled
  separately, both before timing. The benchmark process keeps its programs in
  jaxmix's persistent compilation cache (``jaxmix.enable_compilation_cache``;
  ``--compilation-cache none`` to compile everything), so a second run loads
  them: its compile column is then mostly loading.
* First fit: a fresh Python process with no persistent compilation cache times
  ``fit(key(0), GaussianMixture(8), x, n_init=8)`` at (20,000, 8, 8) from before
  the call to ``block_until_ready``, compilation included (--repeats processes).
* Demo and tests: ``python -m jaxmix demo`` twice in a row (the first with an empty
  compilation cache, the second with the one the first filled) and the README's test
  command ``python -m pytest`` with an empty test compilation cache, as on a fresh CI
  machine: wall seconds, and the peak of the resident memory summed over the test
  processes (pytest-xdist's workers included).
* Each timing is the median (--stat) of --repeats runs; the runs of the
  libraries are interleaved so that drifting machine load hits all alike.
  On a shared machine, oversubscribed BLAS/OpenMP threads slow scikit-learn
  and faiss badly; --sk-threads 1 (threadpoolctl, faiss.omp_set_num_threads) shows how much.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import warnings

import numpy as np

CASES = ("gmm-full", "gmm-diag", "kmeans", "first-fit", "fit-ninit", "demo", "tests")
SIZES = {  # (N, D, K) at full size; --quick divides N by 10
    "gmm-full": (100_000, 16, 16),
    "gmm-diag": (100_000, 16, 16),
    "kmeans": (1_000_000, 16, 64),
    "first-fit": (20_000, 8, 8),
    "fit-ninit": (20_000, 8, 8),
}
# Issue 17's targets: jaxmix's ms per iteration / the reference's (GMM diag: the EM issue's, kept).
TARGET_RATIO = {
    ("gmm-full", "sklearn f64"): 0.05,
    ("gmm-diag", "sklearn f64"): 0.15,
    ("kmeans", "sklearn f32"): 0.7,
    ("kmeans", "faiss-cpu"): 0.5,
}
LABELS = {"gmm-full": "GMM full", "gmm-diag": "GMM diag", "kmeans": "k-means"}
FIRST_FIT_TARGET_S = 1.5  # the first fit(n_init=8) of a fresh process, compile included
DEMO_TARGET_S = (15.0, 8.0)  # `jaxmix demo`, whole command: first run (empty cache), second run
TESTS_TARGET = (240.0, 2.5)  # the README's test command: seconds, peak resident GiB (all its processes)
COMPILE_TARGET_S = 2.0
N_RESTARTS = 8


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="divide every N by 10 (smoke run)")
    p.add_argument("--cases", default=",".join(CASES),
                   help=f"comma-separated subset of {','.join(CASES)} (default: all)")
    p.add_argument("--n-iter", type=int, default=10, help="EM iterations per timed fit (default 10)")
    p.add_argument("--sk-threads", type=int, default=None,
                   help="limit scikit-learn's BLAS/OpenMP threads (threadpoolctl); default: library default")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats (default 3)")
    p.add_argument("--seed", type=int, default=0, help="numpy seed of the generated data")
    p.add_argument("--stat", choices=sorted(STATS), default="median",
                   help="statistic over the repeats (default median; min resists a loaded machine)")
    p.add_argument("--chunk-size", type=int, default=None,
                   help="pass chunk_size to jaxmix's fit_em/fit (default: jaxmix's default)")
    p.add_argument("--compilation-cache", default=None, metavar="DIR|none",
                   help="persistent compilation cache of the benchmark process (default: jaxmix's folder; "
                        "'none': compile every program); never used by the first-fit processes")
    p.add_argument("--first-fit-child", default=None, help=argparse.SUPPRESS)  # "N,D,K": one first fit
    args = p.parse_args(argv)
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    bad = [c for c in args.cases if c not in CASES]
    if bad:
        p.error(f"unknown case(s) {bad}; choose from {list(CASES)}")
    if args.n_iter < 2:
        p.error("--n-iter must be >= 2 (per-iteration cost is (T(n) - T(1)) / (n - 1))")
    if args.repeats < 1:
        p.error("--repeats must be >= 1")
    args.jaxmix_kw = {} if args.chunk_size is None else {"chunk_size": args.chunk_size}
    return args


# --------------------------------------------------------------------------- timing


def now() -> float:
    return time.perf_counter()


def timed_cpu(fn):
    """Wall and process CPU seconds (all threads) of fn() with its result ready, and the result."""
    c0 = time.process_time()
    wall, out = timed(fn)
    return wall, time.process_time() - c0, out


def timed(fn):
    """Wall time of fn() with its (JAX) result ready, and the result."""
    import jax

    t0 = now()
    out = fn()
    jax.block_until_ready(out)
    return now() - t0, out


STATS = {"median": statistics.median, "min": min}


class CompileClock:
    """Seconds spent in XLA backend compilation, summed from ``jax.monitoring`` events.

    Unlike "first call minus steady call" this does not subtract two noisy
    wall times; it leaves out tracing and lowering to StableHLO.
    """

    EVENT = "/jax/core/compile/backend_compile_duration"

    def __init__(self):
        import jax.monitoring

        self.total = 0.0
        jax.monitoring.register_event_duration_secs_listener(self._on_event)

    def _on_event(self, event, duration, **kwargs):
        if event == self.EVENT:
            self.total += duration

    def first_call(self, fn):
        """(wall seconds, process CPU seconds, XLA compile seconds, result) of a first call."""
        before = self.total
        wall, cpu, out = timed_cpu(fn)
        return wall, cpu, self.total - before, out


CLOCK = None  # a CompileClock, created in main() once jax is imported


def per_iter(t_n: float, t_1: float, n: int) -> float:
    return (t_n - t_1) / (n - 1)


# --------------------------------------------------------------------------- data


def gmm_data(rng, n, d, k, spread=3.0):
    """A K-component Gaussian mixture with random full covariances, float32 (and widened float64)."""
    weights = rng.dirichlet(np.full(k, 5.0))
    means = rng.normal(scale=spread, size=(k, d))
    z = rng.choice(k, size=n, p=weights)
    a = rng.normal(size=(k, d, d)) / np.sqrt(d)
    chol = np.linalg.cholesky(a @ np.swapaxes(a, 1, 2) + 0.5 * np.eye(d))
    eps = rng.normal(size=(n, d))
    x = means[z] + np.einsum("nde,ne->nd", chol[z], eps)
    x32 = np.ascontiguousarray(x, dtype=np.float32)
    return x32, x32.astype(np.float64)


# --------------------------------------------------------------------------- cases


def bench_gmm(args, cov_type, n, d, k):
    import jax
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture as SkGMM

    from jaxmix import GaussianMixture, fit_em, initialize

    rng = np.random.default_rng(args.seed)
    x32_np, x64 = gmm_data(rng, n, d, k)
    x32 = jax.device_put(x32_np)
    model = GaussianMixture(k, covariance_type=cov_type)
    start = jax.block_until_ready(initialize(jax.random.key(0), model, x32, "random_from_data"))

    w0 = np.asarray(start.weights, np.float64)
    w0 /= w0.sum()
    means0 = np.asarray(start.means, np.float64)
    cov0 = np.asarray(start.covariances, np.float64)
    if cov_type == "full":
        prec0 = np.linalg.inv(cov0)
        prec0 = 0.5 * (prec0 + np.swapaxes(prec0, 1, 2))
    else:
        prec0 = 1.0 / cov0

    def run_jax(m):
        return fit_em(model, start, x32, max_iter=m, tol=0.0, **args.jaxmix_kw)

    def run_sk(m):
        g = SkGMM(k, covariance_type=cov_type, tol=0.0, max_iter=m, n_init=1, reg_covar=model.reg_covar,
                  init_params="random_from_data", weights_init=w0, means_init=means0, precisions_init=prec0,
                  random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            g.fit(x64)
        return g

    nit = args.n_iter
    res = _interleaved(args, run_jax, {"sklearn f64": run_sk}, nit)
    jres, sk = res["jax_out"], res["refs"]["sklearn f64"]["out"]
    if int(jres.n_iter) != nit or sk.n_iter_ != nit:
        log(f"  WARNING: iterations ran: jaxmix {int(jres.n_iter)}, sklearn {sk.n_iter_}, wanted {nit}")
    # sklearn's lower_bound_ is the mean log-likelihood at its last E-step: jaxmix's history[n - 1].
    dl = abs(float(jres.history[nit - 1]) - float(sk.lower_bound_))
    row = dict(res, iters=f"{int(jres.n_iter)}/{sk.n_iter_}", check=f"abs dL={dl:.1e}")
    if cov_type == "full":
        flops = 4.0 * n * k * d * d  # 2NDKD Mahalanobis GEMM + 2NKDD second moments
        row["gflops"] = (flops / res["jax_it"] / 1e9, flops / res["refs"]["sklearn f64"]["it"] / 1e9)
    return row


def bench_kmeans(args, n, d, k):
    import jax
    from sklearn.cluster import KMeans as SkKMeans

    from jaxmix import KMeans, KMeansParams, fit_em

    rng = np.random.default_rng(args.seed + 1)
    # Heavily overlapping blobs: Lloyd keeps moving labels for many iterations,
    # so scikit-learn's strict-convergence stop does not trigger within n.
    x32_np, x64 = gmm_data(rng, n, d, k, spread=1.0)
    idx = rng.choice(n, size=k, replace=False)
    x32 = jax.device_put(x32_np)
    model = KMeans(k)
    start = KMeansParams(jax.device_put(x32_np[idx]))

    def run_jax(m):
        return fit_em(model, start, x32, max_iter=m, tol=0.0, **args.jaxmix_kw)

    def make_sk(x):
        def run_sk(m):
            km = SkKMeans(k, init=x[idx], n_init=1, algorithm="lloyd", max_iter=m, tol=0.0)
            return km.fit(x)
        return run_sk

    refs = {"sklearn f32": make_sk(x32_np), "sklearn f64": make_sk(x64)}
    faiss = _faiss(args)
    if faiss is not None:
        def run_faiss(m):
            # Every point used (faiss subsamples to 256 per centroid by default), no restarts.
            km = faiss.Kmeans(d, k, niter=m, nredo=1, seed=0, max_points_per_centroid=n, min_points_per_centroid=1)
            km.train(x32_np, init_centroids=x32_np[idx])
            return km
        refs["faiss-cpu"] = run_faiss

    nit = args.n_iter
    res = _interleaved(args, run_jax, refs, nit)
    jres = res["jax_out"]
    sk, sk32 = res["refs"]["sklearn f64"]["out"], res["refs"]["sklearn f32"]["out"]
    iters = f"{int(jres.n_iter)}/{sk.n_iter_}/{sk32.n_iter_}"
    if sk.n_iter_ != nit or sk32.n_iter_ != nit:
        log(f"  WARNING: sklearn stopped early (n_iter_ f64 {sk.n_iter_}, f32 {sk32.n_iter_} < {nit}); "
            "its per-iteration times are normalized by n_iter_")
    # jaxmix's final log_likelihood is -inertia / N at the final centers, as is sklearn's inertia_.
    rel = abs(-float(jres.log_likelihood) * n - sk.inertia_) / sk.inertia_
    check = [f"rel d_inertia vs sklearn f64 {rel:.1e}"]
    if faiss is not None:
        # faiss's last objective is the inertia of its last assignment: jaxmix's history[n - 1].
        obj = res["refs"]["faiss-cpu"]["out"].obj[-1]
        check.append(f"vs faiss {abs(-float(jres.history[nit - 1]) * n - obj) / obj:.1e} (iterate n - 1)")
    return dict(res, iters=iters, check="; ".join(check))


def _faiss(args):
    """The faiss module with its OpenMP threads limited as --sk-threads asks, or None if not installed."""
    try:
        import faiss
    except ImportError:
        log("  faiss-cpu not installed (pip install jaxmix[bench]): its row is left out")
        return None
    if args.sk_threads is not None:
        faiss.omp_set_num_threads(args.sk_threads)
    return faiss


def _interleaved(args, run_jax, refs, nit):
    """Compile jaxmix at max_iter=n and 1, then time it and every reference (name -> run(max_iter)),
    interleaved, --repeats times.

    A reference that stopped early (scikit-learn's k-means strict convergence) has its
    per-iteration cost normalized by the iterations it actually ran.
    """
    if args.sk_threads is not None:
        refs = {name: _limited(run, args.sk_threads) for name, run in refs.items()}
    log("  compiling jaxmix (max_iter=n, then 1)")
    first_n, cpu_n, xla_n, jax_out = CLOCK.first_call(lambda: run_jax(nit))
    first_1, cpu_1, xla_1, _ = CLOCK.first_call(lambda: run_jax(1))
    log(f"  warming up {', '.join(refs)} (max_iter=1)")
    for run in refs.values():
        run(1)
    t = {key: [] for key in ("jn", "j1")}
    t.update({(name, m): [] for name in refs for m in (nit, 1)})
    cpu = {"jn": [], "j1": []}
    outs = {}
    for r in range(args.repeats):
        log(f"  repeat {r + 1}/{args.repeats}")
        for key, m in (("jn", nit), ("j1", 1)):
            wall, c, _ = timed_cpu(lambda: run_jax(m))
            t[key].append(wall)
            cpu[key].append(c)
        for name, run in refs.items():
            dt, outs[name] = timed(lambda: run(nit))
            t[name, nit].append(dt)
            t[name, 1].append(timed(lambda: run(1))[0])
    stat = STATS[args.stat]
    m = {key: stat(v) for key, v in t.items()}
    return dict(
        jax_it=per_iter(m["jn"], m["j1"], nit),
        compile_n=first_n - min(t["jn"]),
        compile_1=first_1 - min(t["j1"]),
        xla_n=xla_n,
        xla_1=xla_1,
        cpu_n=cpu_n - min(cpu["jn"]),
        cpu_1=cpu_1 - min(cpu["j1"]),
        jax_fit=m["jn"],
        jax_out=jax_out,
        refs={name: dict(it=(m[name, nit] - m[name, 1]) / max(getattr(outs[name], "n_iter_", nit) - 1, 1),
                         fit=m[name, nit], out=outs[name]) for name in refs},
    )


def _limited(run, n_threads):
    from threadpoolctl import threadpool_limits

    def limited(m):
        with threadpool_limits(limits=n_threads):
            return run(m)
    return limited


def bench_fit_restarts(args, n, d, k, tol, max_iter):
    import jax

    from jaxmix import GaussianMixture, fit

    rng = np.random.default_rng(args.seed + 2)
    x = jax.device_put(gmm_data(rng, n, d, k)[0])
    model = GaussianMixture(k, covariance_type="full")
    key = jax.random.key(0)
    keys = jax.random.split(key, N_RESTARTS)
    options = dict(max_iter=max_iter, tol=tol, **args.jaxmix_kw)

    def many():
        return fit(key, model, x, n_init=N_RESTARTS, **options)

    def singles():
        return [fit(kk, model, x, n_init=1, **options) for kk in keys]

    log(f"  compiling fit(n_init={N_RESTARTS}) and fit(n_init=1), tol={tol}")
    first_many, cpu_many, xla_many, _ = CLOCK.first_call(many)
    first_one, cpu_one, xla_one, _ = CLOCK.first_call(lambda: fit(keys[0], model, x, n_init=1, **options))
    t_many, t_singles, c_many, c_singles = [], [], [], []
    for r in range(args.repeats):
        log(f"  repeat {r + 1}/{args.repeats}")
        for walls, cpus, fn in ((t_many, c_many, many), (t_singles, c_singles, singles)):
            wall, c, _ = timed_cpu(fn)
            walls.append(wall)
            cpus.append(c)
    stat = STATS[args.stat]
    iters = [int(fit(kk, model, x, n_init=1, **options).best.n_iter) for kk in keys]
    return dict(tol=tol, max_iter=max_iter, iters=iters, many=stat(t_many), singles=stat(t_singles),
                compile_many=first_many - min(t_many), compile_one=first_one - min(t_singles) / N_RESTARTS,
                xla_many=xla_many, xla_one=xla_one, cpu_many=cpu_many - min(c_many),
                cpu_one=cpu_one - min(c_singles) / N_RESTARTS)


def bench_first_fit(args, n, d, k):
    """The first ``fit(key(0), GaussianMixture(k), x, n_init=8)`` of --repeats fresh processes with no
    persistent compilation cache: a list of {"wall", "cpu", "xla"} seconds."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("JAX_COMPILATION_CACHE")}
    env["JAX_ENABLE_COMPILATION_CACHE"] = "false"
    command = [sys.executable, os.path.abspath(__file__), "--first-fit-child", f"{n},{d},{k}", "--seed",
               str(args.seed)]
    runs = []
    for r in range(args.repeats):
        log(f"  fresh process {r + 1}/{args.repeats}")
        out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return runs


def first_fit_child(args, n, d, k):
    """Time one first fit in this (fresh) process and print its seconds as JSON."""
    import jax

    from jaxmix import GaussianMixture, fit

    global CLOCK
    CLOCK = CompileClock()
    rng = np.random.default_rng(args.seed + 2)  # the data of the restarts case
    x = jax.block_until_ready(jax.device_put(gmm_data(rng, n, d, k)[0]))
    wall, cpu, xla, _ = CLOCK.first_call(lambda: fit(jax.random.key(0), GaussianMixture(k), x, n_init=N_RESTARTS))
    print(json.dumps({"wall": wall, "cpu": cpu, "xla": xla}))


def bench_demo():
    """Seconds of two ``jaxmix demo`` commands in a row, the first with an empty compilation cache."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "jaxmix", "demo", "--out", os.path.join(tmp, "report"),
                   "--compilation-cache", os.path.join(tmp, "cache")]
        seconds = []
        for run in ("first", "second"):
            log(f"  {run} run: {' '.join(command[1:])}")
            start = now()
            subprocess.run(command, capture_output=True, text=True, timeout=900, check=True)
            seconds.append(now() - start)
    return seconds


def bench_tests():
    """The README's test command (``python -m pytest`` in the repository) with an empty compilation
    cache: its seconds, the peak of the summed resident memory of it and its child processes (GiB,
    sampled every 0.2 s), and its summary line."""
    import tempfile

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "JAXMIX_TEST_COMPILATION_CACHE": tmp}
        log(f"  python -m pytest in {root} (a few minutes)")
        start, peak = now(), 0
        process = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider"], cwd=root, env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        output = []
        reader = threading.Thread(target=lambda: output.extend(process.stdout), daemon=True)
        reader.start()
        try:
            while process.poll() is None:
                peak = max(peak, tree_resident_bytes(process.pid))
                time.sleep(0.2)
                if now() - start > 1800:
                    raise TimeoutError("the test command ran over 30 minutes")
        finally:
            process.kill()
            process.wait()
        reader.join(10)
    seconds = now() - start
    summary = next((line.strip(" =\n") for line in reversed(output) if " passed" in line), "no summary line")
    return seconds, peak / 2**30, summary, process.returncode


def tree_resident_bytes(pid):
    """The resident memory of ``pid`` and all its descendants (Linux /proc), bytes."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parent = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        stack.extend(children.get(current, []))
        try:
            with open(f"/proc/{current}/statm") as f:
                total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            continue
    return total


# --------------------------------------------------------------------------- report


def header():
    import jax
    import jaxlib
    import scipy
    import sklearn

    import jaxmix

    lines = ["# jaxmix EM benchmark", ""]
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = "?"
    lines.append(f"- machine: {platform.platform()}; CPU: {cpu}; os.cpu_count()={os.cpu_count()} "
                 f"(usable {affinity})")
    try:
        lines.append("- load average at start: " + " ".join(f"{v:.2f}" for v in os.getloadavg()))
    except OSError:
        pass
    lines.append(f"- jax.devices(): {jax.devices()}")
    lines.append("- jaxmix: " + jaxmix_identity())
    lines.append(f"- versions: python {platform.python_version()}, jax {jax.__version__}, "
                 f"jaxlib {jaxlib.__version__}, jaxmix {jaxmix.__version__}, numpy {np.__version__}, "
                 f"scipy {scipy.__version__}, scikit-learn {sklearn.__version__}")
    env = {k: v for k, v in os.environ.items()
           if k.startswith(("OPENBLAS", "OMP_", "MKL_", "XLA_", "JAX_"))}
    lines.append(f"- environment: {env if env else 'no OPENBLAS_*/OMP_*/MKL_*/XLA_*/JAX_* variables set'}")
    try:
        import sklearn.cluster
        from threadpoolctl import threadpool_info

        pools = [f"{p.get('internal_api')} {p.get('version')} ({p.get('architecture', '-')} kernel, "
                 f"{p.get('num_threads')} threads, {os.path.basename(p.get('filepath', ''))})"
                 for p in threadpool_info()]
        lines.append("- native thread pools (threadpoolctl): " + "; ".join(pools))
    except ImportError:
        lines.append("- threadpoolctl not installed: BLAS kernel unknown")
    return lines


def jaxmix_identity():
    """Where jaxmix is, a digest of its sources and their newest mtime (results change as it does)."""
    import hashlib
    import inspect
    from datetime import datetime, timezone

    import jaxmix
    from jaxmix import fit_em

    root = os.path.dirname(jaxmix.__file__)
    digest, newest = hashlib.sha256(), 0.0
    paths = sorted(os.path.join(folder, name) for folder, _, names in os.walk(root) for name in names
                   if name.endswith(".py"))
    for path in paths:  # every module, subpackages included
        with open(path, "rb") as f:
            digest.update(os.path.relpath(path, root).encode() + b"\0" + f.read())
        newest = max(newest, os.path.getmtime(path))
    stamp = datetime.fromtimestamp(newest, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    chunk = inspect.signature(fit_em).parameters.get("chunk_size")
    chunk = f"; fit_em chunk_size default {chunk.default}" if chunk is not None else ""
    return f"{root}, sources sha256 {digest.hexdigest()[:12]}, newest file {stamp}{chunk}"


def fmt_ms(seconds):
    return f"{seconds * 1e3:.1f}"


def safe_ratio(a, b):
    """a / b, or None when a per-iteration time came out <= 0 (T(n) <= T(1): timing noise)."""
    return a / b if a > 0 and b > 0 else None


def fmt_ratio(ratio):
    return "n/a (noise: T(n) <= T(1))" if ratio is None else f"{ratio:.3f}x"


def meets(ratio, target):
    return "?" if ratio is None else verdict(ratio <= target)


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def target_rows(rows, first_fit, demo=None, tests=None):
    """The issue's table: one row per target with the measured figures and the verdict."""
    lines = ["| what (N, D, K) | jaxmix | reference | ratio | target | verdict | notes |",
             "|---|---:|---:|---:|---|---|---|"]
    for case, (n, d, k), r in rows:
        label = f"{LABELS[case]} ({n:,}, {d}, {k}), ms/iter vs"
        notes = [r["check"], f"iters run {r['iters']}"]
        if "gflops" in r:
            notes.append(f"E+M GFLOP/s: jaxmix {r['gflops'][0]:.1f}, sklearn {r['gflops'][1]:.1f}")
        for name, ref in r["refs"].items():
            ratio = safe_ratio(r["jax_it"], ref["it"])
            target = TARGET_RATIO.get((case, name))
            lines.append(
                f"| {label} {name} | {fmt_ms(r['jax_it'])} | {fmt_ms(ref['it'])} | {fmt_ratio(ratio)} "
                f"| {'(info)' if target is None else f'<= {target}x'} "
                f"| {'-' if target is None else meets(ratio, target)} "
                f"| fit(n): {fmt_ms(r['jax_fit'])} vs {fmt_ms(ref['fit'])} ms; {'; '.join(notes)} |")
        if case == "kmeans" and "faiss-cpu" not in r["refs"]:
            lines.append(f"| {label} faiss-cpu | - | - | - | <= {TARGET_RATIO[case, 'faiss-cpu']}x | not measured "
                         "| faiss-cpu not installed (`pip install jaxmix[bench]`) |")
    if demo is not None:
        first, second = demo
        lines.append(
            f"| `jaxmix demo` (whole command, installed), first / second run, s | {first:.1f} / {second:.1f} | - | - "
            f"| <= {DEMO_TARGET_S[0]:g} / <= {DEMO_TARGET_S[1]:g} s "
            f"| {verdict(first <= DEMO_TARGET_S[0])} / {verdict(second <= DEMO_TARGET_S[1])} "
            "| first run with an empty compilation cache, the second with the one it filled |")
    if tests is not None:
        seconds, gib, summary, code = tests
        lines.append(
            f"| the README's test command, s / peak GiB | {seconds:.0f} / {gib:.2f} | - | - "
            f"| <= {TESTS_TARGET[0]:g} s / <= {TESTS_TARGET[1]:g} GiB "
            f"| {verdict(seconds <= TESTS_TARGET[0])} / {verdict(gib <= TESTS_TARGET[1])} "
            f"| {summary}{'' if code == 0 else f'; exit status {code}'}; empty compilation cache; "
            "memory summed over its processes |")
    if first_fit is not None:
        (n, d, k), runs = first_fit
        seconds = {key: ", ".join(f"{run[key]:.2f}" for run in runs) for key in ("wall", "xla", "cpu")}
        wall = statistics.median(run["wall"] for run in runs)
        lines.append(
            f"| first `fit(key, GaussianMixture({k}), x, n_init={N_RESTARTS})` ({n:,}, {d}, {k}), compile "
            f"included, fresh process, s | {wall:.2f} | - | - | <= {FIRST_FIT_TARGET_S} s "
            f"| {verdict(wall <= FIRST_FIT_TARGET_S)} | median of {len(runs)} processes ({seconds['wall']} s); "
            f"XLA compile {seconds['xla']} s; CPU {seconds['cpu']} s |")
    return lines


def compile_rows(rows):
    lines = ["| case | jaxmix compile s, max_iter=n (target <= 2) | meets | max_iter=1 |", "|---|---:|---|---:|"]
    for case, _, r in rows:
        lines.append(f"| {case} | {r['compile_n']:.2f} (XLA {r['xla_n']:.2f}, CPU {r['cpu_n']:.2f}) "
                     f"| {verdict(r['compile_n'] <= COMPILE_TARGET_S)} "
                     f"| {r['compile_1']:.2f} (XLA {r['xla_1']:.2f}, CPU {r['cpu_1']:.2f}) |")
    return lines


def restart_rows(fit_row):
    from jaxmix.inference.restarts import usable_cores

    (n, d, k), fit_rows = fit_row
    cores = usable_cores()
    lines = [
        f"| jaxmix restarts, GMM full ({n:,}, {d}, {k}), init=kmeans, {cores} cores "
        f"| fit(n_init={N_RESTARTS}) ms | {N_RESTARTS} x fit(n_init=1) ms | ratio | target | meets "
        f"| iterations per restart | compile s n_init={N_RESTARTS} / n_init=1 |",
        "|---|---:|---:|---:|---|---|---|---:|",
    ]
    for r in fit_rows:
        ratio = r["many"] / r["singles"]
        lines.append(
            f"| tol={r['tol']:g}, max_iter={r['max_iter']} "
            f"| {fmt_ms(r['many'])} | {fmt_ms(r['singles'])} "
            f"| {ratio:.3f}x | well under 1x | {verdict(ratio <= 2 / 3)} "
            f"(taken as <= 0.67x; floor {1 / cores:.2f}x) "
            f"| {', '.join(map(str, r['iters']))} "
            f"| {r['compile_many']:.2f} (XLA {r['xla_many']:.2f}, CPU {r['cpu_many']:.2f}) / "
            f"{r['compile_one']:.2f} (XLA {r['xla_one']:.2f}, CPU {r['cpu_one']:.2f}) |")
    return lines + [
        "",
        "Both sides include `fit`'s default init=\"kmeans\" (k-means++ and Lloyd to convergence) and the "
        "final E-step. On a CPU `fit` runs the restarts of one compiled single-start program side by "
        "side, a thread per core, from N*D*K = 2^18 up (smaller problems, as with --quick, one after "
        "another in one call; `jaxmix.inference.restarts.restart_plan`); the 8 single fits run one after another. "
        "n_init=1 reuses the program n_init=8 compiled. Independent restarts that each keep a core "
        f"busy cost at least 1/cores = {1 / cores:.2f}x of running them one after another.",
    ]


def main(argv=None):
    args = parse_args(argv)
    if args.first_fit_child:
        return first_fit_child(args, *map(int, args.first_fit_child.split(",")))
    import jax

    import jaxmix

    if jax.config.jax_enable_x64:
        log("note: jax_enable_x64 is on; the data is still float32, so jaxmix computes in float32")
    cache = None if args.compilation_cache == "none" else jaxmix.enable_compilation_cache(args.compilation_cache)

    global CLOCK
    CLOCK = CompileClock()
    scale = 10 if args.quick else 1
    sizes = {c: (n // scale, d, k) for c, (n, d, k) in SIZES.items()}
    lines = header()
    lines.append(f"- settings: n_iter={args.n_iter}, repeats={args.repeats} ({args.stat}), "
                 f"jaxmix kwargs={args.jaxmix_kw or 'defaults'}, "
                 f"quick={args.quick}, seed={args.seed}, sklearn/faiss threads="
                 f"{args.sk_threads if args.sk_threads is not None else 'library default'}, "
                 f"persistent compilation cache: {cache or 'off'}")
    lines.append("")

    t_start = now()
    rows, fit_row, first_fit, demo, tests = [], None, None, None, None
    for case in args.cases:
        n, d, k = sizes.get(case, (0, 0, 0))
        log(f"[{case}]" + (f" N={n:,} D={d} K={k}" if n else ""))
        if case in ("gmm-full", "gmm-diag"):
            rows.append((case, (n, d, k), bench_gmm(args, case.split("-")[1], n, d, k)))
        elif case == "kmeans":
            rows.append((case, (n, d, k), bench_kmeans(args, n, d, k)))
        elif case == "first-fit":
            first_fit = ((n, d, k), bench_first_fit(args, n, d, k))
        elif case == "demo":
            demo = bench_demo()
        elif case == "tests":
            tests = bench_tests()
        else:
            fit_rows = [bench_fit_restarts(args, n, d, k, 0.0, args.n_iter),
                        bench_fit_restarts(args, n, d, k, 1e-3, 100)]
            fit_row = ((n, d, k), fit_rows)

    if rows or first_fit or demo or tests:
        lines += target_rows(rows, first_fit, demo, tests)
    if rows:
        lines += ["", "Compile time, in the benchmark process:", ""] + compile_rows(rows)
    if fit_row is not None:
        lines += [""] + restart_rows(fit_row)

    lines += [
        "",
        "Notes:",
        f"1. ms/iter = (T(max_iter=n) - T(max_iter=1)) / (n - 1), {args.stat} of {args.repeats}, "
        "tol=0 for every library. "
        "Both fits also do fixed work this cancels: scikit-learn's `fit` runs an initialization "
        "(one M-step from `init_params`, then overwritten by the *_init arguments) and a final E-step "
        "after the loop; jaxmix's `fit_em` validates its inputs and runs a final E-step too. "
        "scikit-learn's KMeans also centers a copy of X and runs a last label assignment; faiss checks "
        "the data for NaNs and builds its index.",
        "2. jaxmix runs in float32 (JAX's default), scikit-learn in float64 (its default for float64 "
        "input) unless marked f32, faiss in float32. Same start: GMM from jaxmix `initialize(key(0), model, x, "
        "\"random_from_data\")` passed as weights_init/means_init/precisions_init (full: inverse "
        "covariance; diag: 1/var); k-means from the same K data points (faiss: `init_centroids`, "
        "`max_points_per_centroid=N` so that it uses every point). 'abs dL' compares jaxmix's "
        "history[n-1] with sklearn's lower_bound_ (same iterate); 'rel d_inertia' compares final objectives.",
        "3. Compile s = first call minus the fastest steady-state call (includes tracing and the "
        "first-call eager checks); XLA = seconds in XLA backend compilation during that first call "
        "(jax.monitoring); CPU = the same difference in process CPU time (all threads), which a loaded "
        "machine inflates less than wall time (compilation is mostly one thread). max_iter is static, "
        "so max_iter=n and max_iter=1 compile separately (both shown). With the persistent compilation "
        "cache on, a program compiled by an earlier run is loaded instead (XLA near 0).",
        "4. GFLOP/s counts 2*N*D*K*D (Mahalanobis GEMM) + 2*N*K*D*D (second moments) per E+M iteration.",
        "5. Timings are wall-clock on a possibly shared machine: check the load average above "
        "(oversubscribed BLAS/OpenMP threads slow scikit-learn and faiss far more than their share).",
        "6. First fit: each a fresh `python bench_em.py --first-fit-child` process with no persistent "
        "compilation cache, timed from before `fit` to `block_until_ready` of its result (data generated "
        "and placed on the device before); XLA = its backend compile seconds.",
    ]
    try:
        lines.append(f"\nLoad average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}; "
                     f"total benchmark time {now() - t_start:.0f} s.")
    except OSError:
        pass
    print("\n".join(lines))


if __name__ == "__main__":
    main()
