"""The ``jaxmix`` command line: parses arguments and calls the library.

``jaxmix demo --out DIR --seed INT`` writes a Markdown report with figures
(see ``jaxmix.demo``; matplotlib is imported only when it runs), keeping its
compiled programs in JAX's persistent cache (``--compilation-cache DIR|none``),
its sections in a process per core (``--workers N``), compiled for compile time
(``DEMO_XLA_FLAGS``). Also run as
``python -m jaxmix``. Bad arguments end in one line on stderr and exit status 2,
before any of the demo's work.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys

import jax

from jaxmix import demo
from jaxmix._compilation_cache import default_cache_dir, enable_compilation_cache
from jaxmix.inference.threads import usable_cores

MAX_SEED = 2**32 - 1  # jax.random.key keeps the low 32 bits of a seed (64 with jax_enable_x64)
MAX_DEMO_WORKERS = 4  # the demo's longest section takes about a quarter of it
# The demo compiles far more than it computes (small data): XLA's CPU backend without its MLIR fusion
# emitters and with LLVM's cheapest optimization compiles it about 40 % faster (benchmarks/README.md,
# "Measurements the code relies on"). Put before the caller's XLA_FLAGS, which win where they differ.
DEMO_XLA_FLAGS = "--xla_cpu_use_fusion_emitters=false --xla_backend_optimization_level=0"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jaxmix", description="jaxmix: mixture models in JAX.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo_parser = commands.add_parser(
        "demo",
        help="write a Markdown report with figures of the mixture models",
        description="Write DIR/report.md and its PNG figures (needs matplotlib: "
        'pip install "jaxmix[examples]").',
    )
    demo_parser.add_argument("--out", default="report", metavar="DIR", help="output folder (default: report)")
    demo_parser.add_argument(
        "--seed", type=int, default=0, help=f"seed of the jax.random.key, 0 to {MAX_SEED} (default: 0)"
    )
    demo_parser.add_argument(
        "--compilation-cache", default=None, metavar="DIR",
        help="keep compiled programs in DIR, so that a second run compiles nothing (default: "
        f"{default_cache_dir()}; 'none' turns it off)",
    )
    demo_parser.add_argument(
        "--workers", type=int, default=None, metavar="N",
        help="run the sections in N processes at once, this one and N - 1 spawned (default: the CPU cores "
        f"this process may use, at most {MAX_DEMO_WORKERS}; 1 runs them here, one after another)",
    )
    return parser


def _seed_problem(seed: int) -> str | None:
    """Why ``seed`` is refused (None if it is not): outside 0 .. 2**32 - 1, seeds would alias or overflow."""
    if not 0 <= seed <= MAX_SEED:
        return f"--seed must be an integer from 0 to {MAX_SEED}, got {seed}"
    return None


def _workers_problem(workers: int | None) -> str | None:
    """Why ``workers`` is refused (None if it is not)."""
    if workers is not None and workers < 1:
        return f"--workers must be a positive integer, got {workers}"
    return None


def _out_problem(out: str) -> str | None:
    """Why ``out`` cannot receive the report (None if it can), found without creating anything.

    The report goes into ``out`` if it is a directory, else into the directory created there, so the
    nearest existing path at or above ``out`` must be a directory we may write into.
    """
    path = os.path.abspath(out)
    existing = path
    while not os.path.exists(existing):  # False also where a parent is a file or unreadable
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        where = "is a file" if existing == path else f"lies below the file {existing}"
        return f"--out {out} {where}; give a directory (it is created if missing)"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"--out {out}: no permission to write into {existing}; choose another directory"
    return None


def main(argv=None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "demo":
        problem = _seed_problem(args.seed) or _workers_problem(args.workers) or _out_problem(args.out)
        if problem:
            print(f"jaxmix demo: error: {problem}", file=sys.stderr)
            return 2
        if args.compilation_cache != "none":
            enable_compilation_cache(args.compilation_cache)
        flags = os.environ.get("XLA_FLAGS", "")
        if DEMO_XLA_FLAGS not in flags:  # before JAX starts its backend, here or in the section processes
            os.environ["XLA_FLAGS"] = f"{DEMO_XLA_FLAGS} {flags}".strip()
        try:
            workers = min(usable_cores(), MAX_DEMO_WORKERS) if args.workers is None else args.workers
            demo.run(args.out, jax.random.key(args.seed), workers)
        except demo.MissingExtraError as err:
            print(f"jaxmix demo: error: {err}", file=sys.stderr)
            return 1
        except OSError as err:  # e.g. a read-only file system, or a full disk while writing
            print(f"jaxmix demo: error: cannot write the report to {args.out}: {err}", file=sys.stderr)
            return 1
    return 0


def program() -> int:
    """The ``jaxmix`` program (its console script and ``python -m jaxmix``): ``main``, then every object
    left is frozen (``gc.freeze``), so that the interpreter's last collections skip them: walking
    JAX's objects at exit took a quarter of a second."""
    status = main()
    gc.freeze()
    return status


if __name__ == "__main__":
    sys.exit(program())
