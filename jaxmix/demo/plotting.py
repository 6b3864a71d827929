"""The demo's figure helpers: matplotlib, imported lazily, on the Agg canvas (pyplot's state untouched)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

COLORS = np.array([[0.85, 0.1, 0.1], [0.1, 0.6, 0.1], [0.1, 0.25, 0.9]])  # RGB, mixed by r_ij in section 3


class MissingExtraError(ImportError):
    """matplotlib, an optional dependency of the demo, is not installed."""


def require_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError as err:
        raise MissingExtraError(
            "jaxmix demo draws its figures with matplotlib, which is not installed; "
            'install the examples extra: pip install "jaxmix[examples]"'
        ) from err


def figure(ncols=1, nrows=1):
    """A new (figure, axes) pair on matplotlib's Agg canvas."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5 * ncols, 4.5 * nrows), layout="constrained")
    return FigureCanvasAgg(fig).figure, fig.subplots(nrows, ncols)


def label_plane(ax, title):
    ax.set(title=title, xlabel="$x_1$", ylabel="$x_2$", aspect="equal")


def label_cluster_plane(ax, title):
    """``label_plane``, the equal aspect kept by widening the data limits, not by shrinking the axes.

    Shrinking the box of an equal-aspect axes happens after the constrained layout, and for data
    about as tall as wide it pushes the title and x-label outside the figure.
    """
    label_plane(ax, title)
    ax.set_adjustable("datalim")


def save_figure(fig, out_dir: Path, name: str, alt: str) -> str:
    """Save ``fig`` as ``out_dir/name`` (PNG) and return its Markdown image link."""
    fig.savefig(out_dir / name, dpi=110)
    return f"![{alt}]({name})"
