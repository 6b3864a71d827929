"""Sections 1 to 3 of the demo: a hand-set 2-D Gaussian mixture, its samples, log-density, posterior
responsibilities and ELBO (docs/maths.md sections 4 and 5)."""

from __future__ import annotations

import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxmix.demo.data import GAUSSIAN, GAUSSIAN_VALUES, gaussian_example, log_joint_and_prob
from jaxmix.demo.plotting import COLORS, figure, label_plane, save_figure
from jaxmix.inference import elbo


@functools.partial(jax.jit, static_argnames="model")
def _posterior_and_bounds(model, params, x):
    """Responsibilities, score, ELBO at q = posterior and ELBO at a uniform q."""
    q = model.posterior(params, x)
    uniform = jnp.full_like(q, 1.0 / model.n_components)
    return q, model.score(params, x), elbo(model, params, x, q), elbo(model, params, x, uniform)


def gaussian_samples(key, out_dir: Path) -> str:
    params, x, z = gaussian_example(key)
    fig, ax = figure()
    for k, w in enumerate(GAUSSIAN_VALUES["weights"]):
        ax.scatter(*x[z == k].T, s=8, color=COLORS[k], alpha=0.7, label=f"component {k + 1} ($\\pi$ = {w})")
    ax.scatter(*np.asarray(params.means).T, marker="X", s=120, c="k", label="means $\\mu_j$")
    label_plane(ax, f"{len(x)} samples from a 3-component Gaussian mixture")
    ax.legend(loc="upper left", fontsize=8)
    image = save_figure(fig, out_dir, "gmm_samples.png", "Gaussian mixture samples")
    return f"""## 1. A Gaussian mixture in 2-D: samples

p(x) = sum_j pi_j N(x; mu_j, Sigma_j) with K = 3 components and full covariances
(docs/maths.md section 5), parameters chosen by hand: pi = {GAUSSIAN_VALUES["weights"]},
mu = {GAUSSIAN_VALUES["means"]}, Sigma = {GAUSSIAN_VALUES["covariances"]}.
`GaussianMixture.sample` draws z_i ~ Categorical(pi), then x_i = mu_z + L_z eps (L_z the
Cholesky factor of Sigma_z, eps ~ N(0, I)). Colours show the component z_i of each point.

{image}
"""


def gaussian_density(key, out_dir: Path) -> str:
    params, x, _ = gaussian_example(key)
    lo, hi = x.min(axis=0) - 1.0, x.max(axis=0) + 1.0
    g1, g2 = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
    grid = np.stack([g1.ravel(), g2.ravel()], axis=1)
    log_p = np.asarray(log_joint_and_prob(GAUSSIAN, params, grid)[1]).reshape(g1.shape)
    top = np.ceil(log_p.max())
    fig, ax = figure()
    filled = ax.contourf(g1, g2, log_p, levels=np.arange(top - 12, top + 0.5), cmap="viridis", extend="min")
    ax.scatter(*x.T, s=3, c="white", edgecolors="none", alpha=0.6, label="samples")
    fig.colorbar(filled, ax=ax, label="log p(x)")
    label_plane(ax, "Mixture log-density with the samples")
    ax.legend(loc="upper left", fontsize=8, facecolor="0.7")
    image = save_figure(fig, out_dir, "gmm_log_density.png", "Gaussian mixture log-density")
    return f"""## 2. Its log-density

Filled contours of log p(x) = logsumexp_j [log pi_j + log N(x; mu_j, Sigma_j)] from
`GaussianMixture.log_prob` on a 200 x 200 grid, in log space (docs/maths.md sections 4 and 5),
one nat apart from {top - 12:.0f} to {top:.0f} (maximum {log_p.max():.2f}); lower values
are left dark. The samples of section 1 are drawn on top.

{image}
"""


def gaussian_posterior(key, out_dir: Path) -> str:
    params, x, z = gaussian_example(key)
    q, *bounds = _posterior_and_bounds(GAUSSIAN, params, x)
    r, (score, elbo_posterior, elbo_uniform) = np.asarray(q), map(float, bounds)
    fig, (ax_mix, ax_max) = figure(ncols=2)
    ax_mix.scatter(*x.T, s=9, c=np.clip(r @ COLORS, 0.0, 1.0))
    for k, color in enumerate(COLORS):  # legend entries only
        ax_mix.scatter([], [], s=20, color=color, label=f"$r_{{i{k + 1}}} = 1$")
    label_plane(ax_mix, "Responsibilities $r_{ij}$ as a colour mix")
    ax_mix.legend(loc="upper left", fontsize=8)
    certainty = r.max(axis=1)
    order = np.argsort(-certainty)  # least certain points drawn last, on top
    shown = ax_max.scatter(
        *x[order].T, s=12, c=certainty[order], cmap="viridis_r", vmin=1 / 3, vmax=1, lw=0.2, ec="k"
    )
    fig.colorbar(shown, ax=ax_max, label="largest responsibility $\\max\\,_j\\, r_{ij}$")
    label_plane(ax_max, "Certainty of the most probable component")
    image = save_figure(fig, out_dir, "gmm_responsibilities.png", "posterior responsibilities")
    n_disagree = int(np.sum(r.argmax(axis=1) != z))
    return f"""## 3. Posterior responsibilities and the ELBO

Responsibilities r_ij = p(z_i = j | x_i) = pi_j N(x_i; mu_j, Sigma_j) / sum_l pi_l N(x_i; mu_l, Sigma_l),
the E-step of docs/maths.md section 5, from `GaussianMixture.posterior`. Left: each point is coloured
by the mix sum_j r_ij c_j of the component colours of section 1, so points between clusters
blend. Right: max_j r_ij, which drops towards 1/3 where components overlap. The most probable
component differs from the one that generated the point for {n_disagree} of the {len(x)} samples.

{image}

The ELBO of docs/maths.md section 4, averaged over points (`jaxmix.elbo`), is
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
