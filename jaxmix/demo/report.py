"""The demo's report: ``SECTIONS`` in order and ``run``, which writes them to ``out_dir/report.md``."""

from __future__ import annotations

import collections
import functools
import multiprocessing
import queue
import re
import time
from pathlib import Path

import jax

from jaxmix.demo.centroids import kmeans_and_fuzzy
from jaxmix.demo.comparison import em_versus_gradient
from jaxmix.demo.digits import variational_autoencoder
from jaxmix.demo.em_fit import gaussian_em
from jaxmix.demo.exponential import exponential_mixture
from jaxmix.demo.gaussian import gaussian_density, gaussian_posterior, gaussian_samples
from jaxmix.demo.model_selection import choosing_k
from jaxmix.demo.moons import spectral_moons
from jaxmix.demo.online import online_em_versus_minibatch
from jaxmix.demo.plotting import require_matplotlib

_IMAGE_LINK = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")

SECTIONS = [
    ("Gaussian mixture samples", gaussian_samples),
    ("Gaussian mixture log-density", gaussian_density),
    ("Posterior responsibilities and ELBO", gaussian_posterior),
    ("Exponential mixture", exponential_mixture),
    ("Gaussian mixture fitted by EM", gaussian_em),
    ("k-means and fuzzy c-means", kmeans_and_fuzzy),
    ("Choosing K with BIC", choosing_k),
    ("EM against gradient ascent", em_versus_gradient),
    ("Spectral clustering of two moons", spectral_moons),
    ("Variational autoencoder", variational_autoencoder),
    ("Online EM against minibatch gradient ascent", online_em_versus_minibatch),
]


# What a section process takes from the parent's JAX configuration (precision, compilation cache).
INHERITED_CONFIG = ("jax_enable_x64", "jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
                    "jax_persistent_cache_min_entry_size_bytes")


def run(out_dir, key, workers: int = 1) -> Path:
    """Write ``out_dir/report.md`` and its figures, passing ``key`` to every section; return its path.

    With ``workers`` > 1 the sections run in that many processes at once (the last, longest sections
    first): this one and ``workers - 1`` spawned ones with its JAX configuration. The demo mostly
    compiles, one program at a time per process, so two cores finish it sooner. The report and its
    figures are the same either way.
    """
    require_matplotlib()  # fail before any work when the extra is missing
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = [""] * len(SECTIONS)
    for i, markdown, seconds in _sections(out_dir, key, workers):
        images = ", ".join(str(out_dir / name) for name in _IMAGE_LINK.findall(markdown)) or "(text only)"
        print(f"[{i + 1}/{len(SECTIONS)}] {SECTIONS[i][0]} -> {images} ({seconds:.1f} s)", flush=True)
        parts[i] = markdown
    report = out_dir / "report.md"
    header = "# jaxmix demo\n\nThe mixture models of jaxmix; docs/maths.md is its statement of the mathematics.\n"
    report.write_text("\n".join([header, *parts]))
    print(f"Report written to {report}")
    return report


def _sections(out_dir, key, workers):
    """``(index, markdown, seconds)`` of every section as each finishes.

    With ``workers`` > 1 this process is one of them: it takes the next pending section (the last,
    longest, first) whenever it is free, and ``workers - 1`` spawned processes take theirs as
    each finishes one, so no worker starts JAX twice and the spawned ones import while this one computes.
    """
    if workers <= 1:
        for i, (_, section) in enumerate(SECTIONS):
            yield i, *_run_section(section, key, out_dir)
        return
    config = {name: getattr(jax.config, name) for name in INHERITED_CONFIG}
    context = multiprocessing.get_context("spawn")  # a fork would copy JAX's threads' locks
    pending = collections.deque(reversed(range(len(SECTIONS))))  # popleft is atomic across threads
    finished = queue.Queue()  # (index, result or exception) of the spawned processes' sections
    # terminate() on leaving: the spawned processes' own exit (JAX's teardown) would add half a second.
    with context.Pool(workers - 1, initializer=_configure, initargs=(config,)) as pool:

        def start_next():  # here first, then in the pool's thread as each spawned section ends
            try:
                i = pending.popleft()
            except IndexError:
                return
            done = functools.partial(on_done, i)
            pool.apply_async(_run_section, (SECTIONS[i][1], key, out_dir), callback=done, error_callback=done)

        def on_done(i, outcome):
            finished.put((i, outcome))
            start_next()

        try:
            for _ in range(workers - 1):
                start_next()
            for _ in range(len(SECTIONS)):
                try:
                    i, outcome = finished.get_nowait()
                except queue.Empty:
                    try:
                        i = pending.popleft()
                    except IndexError:
                        i, outcome = finished.get()
                    else:
                        outcome = _run_section(SECTIONS[i][1], key, out_dir)
                if isinstance(outcome, BaseException):
                    raise outcome
                yield i, *outcome
        finally:
            pending.clear()  # after a failed section, start no other


def _configure(config):
    for name, value in config.items():
        jax.config.update(name, value)


def _run_section(section, key, out_dir):
    start = time.perf_counter()
    markdown = section(key, out_dir)
    return markdown, time.perf_counter() - start
