"""The demo's report: ``SECTIONS`` in order and ``run``, which writes them to ``out_dir/report.md``."""

from __future__ import annotations

import re
import time
from pathlib import Path

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


def run(out_dir, key) -> Path:
    """Write ``out_dir/report.md`` and its figures, passing ``key`` to every section; return its path."""
    require_matplotlib()  # fail before any work when the extra is missing
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = ["# jaxmix demo\n\nThe mixture models of jaxmix; docs/maths.md is its statement of the mathematics.\n"]
    for i, (title, section) in enumerate(SECTIONS, start=1):
        start = time.perf_counter()
        markdown = section(key, out_dir)
        images = ", ".join(str(out_dir / name) for name in _IMAGE_LINK.findall(markdown)) or "(text only)"
        print(f"[{i}/{len(SECTIONS)}] {title} -> {images} ({time.perf_counter() - start:.1f} s)", flush=True)
        parts.append(markdown)
    report = out_dir / "report.md"
    report.write_text("\n".join(parts))
    print(f"Report written to {report}")
    return report
