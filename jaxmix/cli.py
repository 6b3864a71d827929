"""The ``jaxmix`` command line: parses arguments and calls the library.

``jaxmix demo --out DIR --seed INT`` writes a Markdown report with figures
(see ``jaxmix.demo``; matplotlib is imported only when it runs).
"""

from __future__ import annotations

import argparse
import sys

import jax

from jaxmix import demo


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
    demo_parser.add_argument("--seed", type=int, default=0, help="seed of the jax.random.key (default: 0)")
    return parser


def main(argv=None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "demo":
        try:
            demo.run(args.out, jax.random.key(args.seed))
        except demo.MissingExtraError as err:
            print(f"jaxmix demo: error: {err}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
