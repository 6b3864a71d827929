"""Section 5 of the demo: a Gaussian mixture fitted by EM to elongated clusters (docs/maths.md section 5)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxmix.demo.data import (
    CLUSTER_SHAPES,
    CLUSTER_VALUES,
    N_INIT,
    K,
    by_first_coordinate,
    cluster_example,
    fit_gaussian,
    n_mislabelled,
    predict_gaussian,
)
from jaxmix.demo.plotting import COLORS, figure, label_cluster_plane, save_figure


def _draw_ellipses(ax, mean, covariance, color):
    """1- and 2-sigma ellipses {x : (x - mu)^T Sigma^-1 (x - mu) = n^2} from Sigma's eigen-decomposition."""
    from matplotlib.patches import Ellipse

    variances, axes = np.linalg.eigh(covariance)  # ascending: the last axis is the long one
    angle = np.degrees(np.arctan2(axes[1, -1], axes[0, -1]))
    for n_sigma, style in ((1, "-"), (2, "--")):
        width, height = 2 * n_sigma * np.sqrt(variances[::-1])
        ax.add_patch(Ellipse(mean, width, height, angle=angle, fill=False, ec=color, lw=1.8, ls=style))
        ax.add_patch(Ellipse(mean, width, height, angle=angle, fill=False, ec="k", lw=0.4, ls=style))


def gaussian_em(key, out_dir: Path) -> str:
    x, z, fit_key = cluster_example(key)
    result = fit_gaussian(x, fit_key)
    best = result.best
    order, rank = by_first_coordinate(best.params.means)
    weights, means, covariances = (np.asarray(a)[order] for a in best.params)
    labels = rank[predict_gaussian(best.params, x)]
    history = np.asarray(best.history)
    history = history[~np.isnan(history)]
    n_iter, converged = int(best.n_iter), bool(best.converged)
    final = float(best.log_likelihood)
    restarts = ", ".join(f"{value:.4f}" for value in np.asarray(result.restart_log_likelihoods))

    fig, (ax_fit, ax_history) = figure(ncols=2)
    for j in range(K):
        ax_fit.scatter(*x[labels == j].T, s=5, color=COLORS[j], alpha=0.45, edgecolors="none")
        _draw_ellipses(ax_fit, means[j], covariances[j], COLORS[j])
        ax_fit.scatter([], [], s=20, color=COLORS[j], label=f"component {j + 1}, $\\pi$ = {weights[j]:.3f}")
    ax_fit.plot([], [], "k-", lw=1, label="1 sigma")
    ax_fit.plot([], [], "k--", lw=1, label="2 sigma")
    ax_fit.scatter(*means.T, marker="X", s=90, c="k", zorder=3, label="fitted means")
    label_cluster_plane(ax_fit, "EM fit: predicted components, covariance ellipses")
    ax_fit.legend(loc="lower right", fontsize=7)
    iterations = np.arange(1, len(history) + 1)
    ax_history.plot(iterations, history, "o-", ms=4, color="C0", label="$L_t$ before M-step $t$")
    ax_history.axhline(final, color="0.4", ls=":", label=f"final L = {final:.4f}")
    ax_history.set(
        title=f"Mean log-likelihood per iteration (n_iter = {n_iter}, converged = {converged})",
        xlabel="iteration t",
        ylabel="mean log-likelihood (nats per point)",
    )
    ax_history.title.set_fontsize(9)
    ax_history.xaxis.get_major_locator().set_params(integer=True)
    ax_history.legend(loc="lower right", fontsize=8)
    alt = "Gaussian mixture fitted by EM, log-likelihood history"
    image = save_figure(fig, out_dir, "gmm_em_fit.png", alt)

    steps = np.diff(history)
    if steps.size == 0 or steps.min() >= 0:
        monotone = "never decreases, as docs/maths.md section 4 promises"
    else:
        monotone = (f"never decreases by more than float32 round-off (largest drop {-steps.min():.1e}), "
                    "as docs/maths.md section 4 promises")
    rows = "\n".join(
        f"| {j + 1} | {weights[j]:.3f} | ({means[j][0]:.2f}, {means[j][1]:.2f}) | "
        f"{np.array2string(covariances[j].ravel(), precision=2, separator=', ')} |"
        for j in range(K)
    )
    shapes = "; ".join(f"({long}, {short}) at {angle:g} degrees" for long, short, angle in CLUSTER_SHAPES)
    return f"""## 5. Fitting a Gaussian mixture by EM

{len(x)} points from three elongated Gaussian clusters: weights {CLUSTER_VALUES["weights"]},
means {CLUSTER_VALUES["means"]}, standard deviations along and across the long axis, and its
angle to the x_1 axis: {shapes}. They are fitted with
`jaxmix.fit(key, GaussianMixture(3, "full"), x, n_init={N_INIT})`: {N_INIT} restarts, each
initialized by k-means (k-means++ seeding, then Lloyd steps) and run by EM (docs/maths.md section 5)
until the mean log-likelihood changes by less than tol = 1e-3; the restarts run from one
compiled program (on a CPU, data this small runs them one after another in one call; larger data
runs them a core each; an accelerator vmaps them) and the best is kept.
Their final mean log-likelihoods: {restarts}.

Left: each point coloured by its most probable fitted component (`predict`), with the ellipses
(x - mu_j)^T Sigma_j^-1 (x - mu_j) = 1 and 4 of the fitted covariances (1 and 2 sigma; in 2-D
they hold 39% and 86% of a component's mass), drawn from the eigen-decomposition
Sigma_j = V diag(lambda) V^T (semi-axes n sqrt(lambda), turned to the eigenvectors).
{n_mislabelled(labels, z)} of the {len(x)} points are predicted in a component other than the
one that drew them, under the best matching of labels. Right: `EMResult.history`, the mean
log-likelihood L_t of the parameters entering iteration t (NaN after the last iteration, trimmed
here). EM ran n_iter = {n_iter} iterations and converged = {converged}; the curve {monotone}.

| component | weight | mean | covariance (row-major) |
|---|---|---|---|
{rows}

{image}
"""
