"""``python -m jaxmix``: the ``jaxmix`` command line (``jaxmix.cli``)."""

import sys

from jaxmix.cli import program

sys.exit(program())
