"""Compiled programs run side by side on a CPU, a thread each, where that cannot deadlock.

XLA's CPU backend keeps about one core busy with one EM program of moderate
size and releases the GIL while it runs, so independent programs (restarts,
model-selection candidates) finish sooner on a thread per core.

Not every program may run beside another. jaxlib's LAPACK kernels (Cholesky
factorization, triangular solves: the custom calls ``lapack_*_ffi``) split a
batch of matrices over XLA's intra-op thread pool and block the pool thread
that called them until the pieces are done (``ParallelBatchMap``). Once a
batch is large enough to be split (a full or tied covariance with 32 or more
features), two such programs running at once can hold every pool thread in
that wait, with the pieces queued behind them: a deadlock, with every thread in
a futex wait and no CPU used. So a program that holds a custom call other than
XLA's own single-threaded ones (``SAFE_CUSTOM_CALLS``) runs alone, one call
after another, never beside another program. jaxmix's EM programs hold none:
their Cholesky factors are written in plain array ops (``jaxmix._covariance``).
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor

import jax

SAFE_CUSTOM_CALLS = frozenset({"TopK"})  # XLA's CPU top-k: one thread, no pool


def usable_cores() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def runs_alongside(compiled) -> bool:
    """True when ``compiled`` (a ``jax.stages.Compiled``) may run beside other programs on a CPU.

    It may when its optimized HLO holds no custom call but ``SAFE_CUSTOM_CALLS``
    (a library kernel can block an intra-op pool thread; see the module docstring).
    """
    return set(re.findall(r'custom_call_target="([^"]+)"', compiled.as_text())) <= SAFE_CUSTOM_CALLS


def run_side_by_side(calls, workers: int, done=lambda: None) -> list:
    """Run ``[(compiled, args), ...]`` and return each ``compiled(*args)``, ready, in order.

    Programs that may run alongside others run on up to ``workers`` threads;
    the rest run alone on the calling thread, one after another, before them.
    ``done()`` is called on the calling thread as each result is ready (progress).
    """
    results = [None] * len(calls)
    parallel = [i for i, (program, _) in enumerate(calls) if runs_alongside(program)] if workers > 1 else []
    for i in sorted(set(range(len(calls))) - set(parallel)):
        program, args = calls[i]
        results[i] = jax.block_until_ready(program(*args))
        done()
    if parallel:
        with ThreadPoolExecutor(min(workers, len(parallel))) as pool:
            finished = pool.map(lambda i: jax.block_until_ready(calls[i][0](*calls[i][1])), parallel)
            for i, result in zip(parallel, finished, strict=True):
                results[i] = result
                done()
    return results
