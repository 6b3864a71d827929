"""One progress convention for every long-running function: a ``progress=`` argument.

``progress="auto"`` (the default) shows a tqdm bar on standard error when it is
a terminal, no test is running (pytest sets ``PYTEST_CURRENT_TEST``), tqdm is
installed (``pip install "jaxmix[progress]"``) and the work has lasted two
seconds (tqdm's ``delay``: quick calls print nothing). ``True`` shows it
whenever tqdm is installed, ``False`` never. Nothing else in the library prints.
"""

from __future__ import annotations

import contextlib
import os
import sys

PROGRESS_DELAY_S = 2.0


def check_progress(progress):
    """``progress`` itself if it is "auto", True or False, else a ValueError naming it."""
    if not (progress is True or progress is False or (isinstance(progress, str) and progress == "auto")):
        raise ValueError(f'progress must be "auto", True or False, got {progress!r}.')
    return progress


def _enabled(progress) -> bool:
    if progress == "auto":
        return sys.stderr.isatty() and "PYTEST_CURRENT_TEST" not in os.environ
    return bool(progress)


class _Silent:
    """What a bar offers, doing nothing."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, text: str) -> None:
        pass


@contextlib.contextmanager
def progress_bar(total: int, description: str, progress="auto"):
    """A tqdm bar of ``total`` steps (``update(n)``, ``set_postfix_str(text)``), or a silent stand-in."""
    check_progress(progress)
    try:
        from tqdm.auto import tqdm
    except ImportError:
        tqdm = None
    if tqdm is None or not _enabled(progress):
        yield _Silent()
        return
    with tqdm(total=total, desc=description, delay=0.0 if progress is True else PROGRESS_DELAY_S,
              file=sys.stderr, leave=False) as bar:
        yield bar
