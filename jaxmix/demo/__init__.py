"""The ``jaxmix demo`` report: a Markdown page with figures of the mixture models.

``run(out_dir, key)`` writes ``out_dir/report.md`` and its PNGs. ``SECTIONS`` lists ``(title,
function)``; ``function(key, out_dir)`` saves its figures with ``plotting.save_figure`` and returns its
Markdown: to add a section, append one. Every section gets the same key and draws with
``jax.random.fold_in(key, tag)``, so sections showing the same data share a tag. Model
computations run under ``jax.jit`` with the hashable model static, as users compose them.
Figures need matplotlib (``pip install "jaxmix[examples]"``), imported lazily; they are
``Figure`` objects on the Agg canvas, so pyplot's global state is untouched.

Modules: ``plotting`` (figure helpers, ``MissingExtraError``), ``data`` (fold_in tags, the example
models and data, section 5's fit, label matching), one per section or group of sections
(``gaussian`` 1 to 3, ``exponential`` 4, ``em_fit`` 5, ``centroids`` 6, ``model_selection`` 7,
``comparison`` 8, ``moons`` 9, ``digits`` 10, ``online`` 11) and ``report`` (``SECTIONS``, ``run``).
"""

from jaxmix.demo.centroids import kmeans_and_fuzzy
from jaxmix.demo.comparison import em_versus_gradient
from jaxmix.demo.digits import variational_autoencoder
from jaxmix.demo.em_fit import gaussian_em
from jaxmix.demo.exponential import exponential_mixture
from jaxmix.demo.gaussian import gaussian_density, gaussian_posterior, gaussian_samples
from jaxmix.demo.model_selection import choosing_k
from jaxmix.demo.moons import spectral_moons
from jaxmix.demo.online import online_em_versus_minibatch
from jaxmix.demo.plotting import MissingExtraError
from jaxmix.demo.report import SECTIONS, run

__all__ = [
    "MissingExtraError",
    "SECTIONS",
    "choosing_k",
    "em_versus_gradient",
    "exponential_mixture",
    "gaussian_density",
    "gaussian_em",
    "gaussian_posterior",
    "gaussian_samples",
    "kmeans_and_fuzzy",
    "online_em_versus_minibatch",
    "run",
    "spectral_moons",
    "variational_autoencoder",
]
