"""The ``jaxmix demo`` report: a Markdown page with figures of the mixture models.

``run(out_dir, key)`` writes ``out_dir/report.md`` and its PNGs. ``SECTIONS`` lists ``(title,
function)``; ``function(key, out_dir)`` saves its figures with ``_save_figure`` and returns its
Markdown: to add a section, append one. Every section gets the same key and draws with
``jax.random.fold_in(key, tag)``, so sections showing the same data share a tag. Model
computations run under ``jax.jit`` with the hashable model static, as users compose them.
Figures need matplotlib (``pip install "jaxmix[examples]"``), imported lazily; they are
``Figure`` objects on the Agg canvas, so pyplot's global state is untouched.
"""

from __future__ import annotations

import functools
import re
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxmix import ExponentialMixture, ExponentialMixtureParams, GaussianMixture, GaussianMixtureParams, elbo

_GAUSSIAN_DATA, _EXPONENTIAL_DATA = 0, 1  # fold_in tags, one per data set
_COLORS = np.array([[0.85, 0.1, 0.1], [0.1, 0.6, 0.1], [0.1, 0.25, 0.9]])  # RGB, mixed by r_ij in section 3
_IMAGE_LINK = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")


class MissingExtraError(ImportError):
    """matplotlib, an optional dependency of the demo, is not installed."""


def _require_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError as err:
        raise MissingExtraError(
            "jaxmix demo draws its figures with matplotlib, which is not installed; "
            'install the examples extra: pip install "jaxmix[examples]"'
        ) from err


def _figure(ncols=1):
    """A new (figure, axes) pair on matplotlib's Agg canvas."""
    _require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5 * ncols, 4.5), layout="constrained")
    return FigureCanvasAgg(fig).figure, fig.subplots(1, ncols)


def _label_plane(ax, title):
    ax.set(title=title, xlabel="$x_1$", ylabel="$x_2$", aspect="equal")


def _save_figure(fig, out_dir: Path, name: str, alt: str) -> str:
    """Save ``fig`` as ``out_dir/name`` (PNG) and return its Markdown image link."""
    fig.savefig(out_dir / name, dpi=110)
    return f"![{alt}]({name})"


# -- the examples ---------------------------------------------------------------
_GAUSSIAN = GaussianMixture(3, covariance_type="full")
_GAUSSIAN_VALUES = {
    "weights": [0.5, 0.3, 0.2],
    "means": [[-2.0, 0.0], [2.0, 1.5], [0.5, -2.5]],
    "covariances": [[[1.2, 0.7], [0.7, 1.0]], [[0.6, -0.3], [-0.3, 0.8]], [[1.5, 0.0], [0.0, 0.3]]],
}
_EXPONENTIAL = ExponentialMixture(2)
_EXPONENTIAL_VALUES = {"weights": [0.6, 0.4], "rates": [4.0, 0.5]}


@functools.partial(jax.jit, static_argnames=("model", "n"))
def _sample(model, key, params, n):
    return model.sample(key, params, n)


@functools.partial(jax.jit, static_argnames="model")
def _log_joint_and_prob(model, params, x):
    return model.log_joint(params, x), model.log_prob(params, x)


@functools.partial(jax.jit, static_argnames="model")
def _posterior_and_bounds(model, params, x):
    """Responsibilities, score, ELBO at q = posterior and ELBO at a uniform q."""
    q = model.posterior(params, x)
    uniform = jnp.full_like(q, 1.0 / model.n_components)
    return q, model.score(params, x), elbo(model, params, x, q), elbo(model, params, x, uniform)


def _params(cls, values):
    return cls(**{name: jnp.array(value) for name, value in values.items()})


def _gaussian_example(key, n=600):
    """The Gaussian mixture's parameters and n samples (x, z) from it."""
    params = _params(GaussianMixtureParams, _GAUSSIAN_VALUES)
    x, z = _sample(_GAUSSIAN, jax.random.fold_in(key, _GAUSSIAN_DATA), params, n)
    return params, np.asarray(x), np.asarray(z)


# -- sections: (key, out_dir) -> Markdown ----------------------------------------
def gaussian_samples(key, out_dir: Path) -> str:
    params, x, z = _gaussian_example(key)
    fig, ax = _figure()
    for k, w in enumerate(_GAUSSIAN_VALUES["weights"]):
        ax.scatter(*x[z == k].T, s=8, color=_COLORS[k], alpha=0.7, label=f"component {k + 1} ($\\pi$ = {w})")
    ax.scatter(*np.asarray(params.means).T, marker="X", s=120, c="k", label="means $\\mu_j$")
    _label_plane(ax, f"{len(x)} samples from a 3-component Gaussian mixture")
    ax.legend(loc="upper left", fontsize=8)
    image = _save_figure(fig, out_dir, "gmm_samples.png", "Gaussian mixture samples")
    return f"""## 1. A Gaussian mixture in 2-D: samples

p(x) = sum_j pi_j N(x; mu_j, Sigma_j) with K = 3 components and full covariances
(MATH.md section 5), parameters chosen by hand: pi = {_GAUSSIAN_VALUES["weights"]},
mu = {_GAUSSIAN_VALUES["means"]}, Sigma = {_GAUSSIAN_VALUES["covariances"]}.
`GaussianMixture.sample` draws z_i ~ Categorical(pi), then x_i = mu_z + L_z eps (L_z the
Cholesky factor of Sigma_z, eps ~ N(0, I)). Colours show the component z_i of each point.

{image}
"""


def gaussian_density(key, out_dir: Path) -> str:
    params, x, _ = _gaussian_example(key)
    lo, hi = x.min(axis=0) - 1.0, x.max(axis=0) + 1.0
    g1, g2 = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
    grid = np.stack([g1.ravel(), g2.ravel()], axis=1)
    log_p = np.asarray(_log_joint_and_prob(_GAUSSIAN, params, grid)[1]).reshape(g1.shape)
    top = np.ceil(log_p.max())
    fig, ax = _figure()
    filled = ax.contourf(g1, g2, log_p, levels=np.arange(top - 12, top + 0.5), cmap="viridis", extend="min")
    ax.scatter(*x.T, s=3, c="white", edgecolors="none", alpha=0.6, label="samples")
    fig.colorbar(filled, ax=ax, label="log p(x)")
    _label_plane(ax, "Mixture log-density with the samples")
    ax.legend(loc="upper left", fontsize=8, facecolor="0.7")
    image = _save_figure(fig, out_dir, "gmm_log_density.png", "Gaussian mixture log-density")
    return f"""## 2. Its log-density

Filled contours of log p(x) = logsumexp_j [log pi_j + log N(x; mu_j, Sigma_j)] from
`GaussianMixture.log_prob` on a 200 x 200 grid, in log space (MATH.md sections 4 and 5),
one nat apart from {top - 12:.0f} to {top:.0f} (maximum {log_p.max():.2f}); lower values
are left dark. The samples of section 1 are drawn on top.

{image}
"""


def gaussian_posterior(key, out_dir: Path) -> str:
    params, x, z = _gaussian_example(key)
    q, *bounds = _posterior_and_bounds(_GAUSSIAN, params, x)
    r, (score, elbo_posterior, elbo_uniform) = np.asarray(q), map(float, bounds)
    fig, (ax_mix, ax_max) = _figure(ncols=2)
    ax_mix.scatter(*x.T, s=9, c=np.clip(r @ _COLORS, 0.0, 1.0))
    for k, color in enumerate(_COLORS):  # legend entries only
        ax_mix.scatter([], [], s=20, color=color, label=f"$r_{{i{k + 1}}} = 1$")
    _label_plane(ax_mix, "Responsibilities $r_{ij}$ as a colour mix")
    ax_mix.legend(loc="upper left", fontsize=8)
    certainty = r.max(axis=1)
    order = np.argsort(-certainty)  # least certain points drawn last, on top
    shown = ax_max.scatter(
        *x[order].T, s=12, c=certainty[order], cmap="viridis_r", vmin=1 / 3, vmax=1, lw=0.2, ec="k"
    )
    fig.colorbar(shown, ax=ax_max, label="largest responsibility $\\max\\,_j\\, r_{ij}$")
    _label_plane(ax_max, "Certainty of the most probable component")
    image = _save_figure(fig, out_dir, "gmm_responsibilities.png", "posterior responsibilities")
    n_disagree = int(np.sum(r.argmax(axis=1) != z))
    return f"""## 3. Posterior responsibilities and the ELBO

Responsibilities r_ij = p(z_i = j | x_i) = pi_j N(x_i; mu_j, Sigma_j) / sum_l pi_l N(x_i; mu_l, Sigma_l),
the E-step of MATH.md section 5, from `GaussianMixture.posterior`. Left: each point is coloured
by the mix sum_j r_ij c_j of the component colours of section 1, so points between clusters
blend. Right: max_j r_ij, which drops towards 1/3 where components overlap. The most probable
component differs from the one that generated the point for {n_disagree} of the {len(x)} samples.

{image}

The ELBO of MATH.md section 4, averaged over points (`jaxmix.elbo`), is
ELBO(q) = (1/N) sum_i sum_j q_ij log(p(x_i, z_i = j) / q_ij) = score - (1/N) sum_i KL(q_i || p(z_i | x_i)):

| quantity | nats per point |
|---|---|
| score = (1/N) sum_i log p(x_i) | {score:.6f} |
| ELBO at q = posterior | {elbo_posterior:.6f} |
| ELBO at q = uniform (1/3 each) | {elbo_uniform:.6f} |

At the posterior the bound is tight: it equals the score up to float32 round-off
(difference {abs(elbo_posterior - score):.1e}). The uniform q is lower by {score - elbo_uniform:.4f},
its mean KL divergence from the posterior; hence the E-step sets q to the posterior.
"""


def exponential_mixture(key, out_dir: Path) -> str:
    params = _params(ExponentialMixtureParams, _EXPONENTIAL_VALUES)
    x = np.asarray(_sample(_EXPONENTIAL, jax.random.fold_in(key, _EXPONENTIAL_DATA), params, 3000)[0])
    grid = np.linspace(0.0, 8.0, 400)
    log_joint, log_prob = _log_joint_and_prob(_EXPONENTIAL, params, grid)
    parts, density = np.exp(np.asarray(log_joint)), np.exp(np.asarray(log_prob))
    u, rates = _EXPONENTIAL_VALUES["weights"], _EXPONENTIAL_VALUES["rates"]
    fig, axes = _figure(ncols=2)
    for ax, scale in zip(axes, ["linear", "log"], strict=True):
        ax.hist(x, bins=64, range=(0.0, 8.0), density=True, color="0.75", label=f"{len(x)} samples")
        for j, (u_j, rate) in enumerate(zip(u, rates, strict=True)):
            label = f"$u_{j + 1} p_{j + 1}$: u = {u_j}, $\\lambda$ = {rate}"
            ax.plot(grid, parts[:, j], "--", color=_COLORS[j], label=label)
        ax.plot(grid, density, "k", lw=2, label="mixture p(x)")
        ax.set(yscale=scale, xlabel="x", ylabel="density", title=f"Exponential mixture ({scale} y-axis)")
        ax.legend(fontsize=8)
    axes[1].set_ylim(1e-3, 2 * density.max())
    image = _save_figure(fig, out_dir, "exponential_mixture.png", "exponential mixture histogram, density")
    return f"""## 4. A mixture of exponentials

p(x) = sum_j u_j lambda_j exp(-lambda_j x) on x >= 0 (MATH.md section 3), u = {u}, rates
lambda = {rates}. A histogram of {len(x)} samples from `ExponentialMixture.sample`
(z ~ Categorical(u), x = Exp(1) / lambda_z; {int(np.sum(x > 8.0))} lie beyond the plotted x = 8)
against the density exp(`log_prob`) (solid) and the weighted components
u_j lambda_j exp(-lambda_j x) = exp(`log_joint`) (dashed). On the log axis each component
is a line of slope -lambda_j; the mixture bends from the steep to the shallow one.

{image}
"""


SECTIONS = [
    ("Gaussian mixture samples", gaussian_samples),
    ("Gaussian mixture log-density", gaussian_density),
    ("Posterior responsibilities and ELBO", gaussian_posterior),
    ("Exponential mixture", exponential_mixture),
]


def run(out_dir, key) -> Path:
    """Write ``out_dir/report.md`` and its figures, passing ``key`` to every section; return its path."""
    _require_matplotlib()  # fail before any work when the extra is missing
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = ["# jaxmix demo\n\nThe mixture models of jaxmix; MATH.md is its statement of the mathematics.\n"]
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
