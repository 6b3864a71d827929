"""Section 6 of the demo: k-means and fuzzy c-means on section 5's data (docs/maths.md sections 1 and 2)."""

from __future__ import annotations

import functools
from pathlib import Path

import jax
import numpy as np

from jaxmix.clustering import FuzzyCMeans, KMeans
from jaxmix.demo.data import (
    N_INIT,
    K,
    by_first_coordinate,
    cluster_example,
    fit_gaussian,
    n_mislabelled,
    predict_gaussian,
)
from jaxmix.demo.plotting import COLORS, figure, label_cluster_plane, save_figure
from jaxmix.inference import fit


@functools.partial(jax.jit, static_argnames="model")
def _posterior(model, params, x):
    return model.posterior(params, x)


def kmeans_and_fuzzy(key, out_dir: Path) -> str:
    x, z, fit_key = cluster_example(key)
    kmeans, fuzzy = KMeans(K), FuzzyCMeans(K)
    kmeans_fit = fit(fit_key, kmeans, x, n_init=N_INIT, init="kmeans++").best
    fuzzy_fit = fit(fit_key, fuzzy, x, n_init=N_INIT, init="kmeans++").best
    gmm_labels = predict_gaussian(fit_gaussian(x, fit_key).best.params, x)
    order, rank = by_first_coordinate(kmeans_fit.params.centers)
    kmeans_centers = np.asarray(kmeans_fit.params.centers)[order]
    labels = rank[np.asarray(_posterior(kmeans, kmeans_fit.params, x)).argmax(axis=1)]
    order, _ = by_first_coordinate(fuzzy_fit.params.centers)
    fuzzy_centers = np.asarray(fuzzy_fit.params.centers)[order]
    memberships = np.asarray(_posterior(fuzzy, fuzzy_fit.params, x))[:, order]

    fig, (ax_hard, ax_soft) = figure(ncols=2)
    for j in range(K):
        ax_hard.scatter(*x[labels == j].T, s=5, color=COLORS[j], alpha=0.6, edgecolors="none")
        ax_hard.scatter([], [], s=20, color=COLORS[j], label=f"cluster {j + 1}")  # legend entry
    ax_hard.scatter(*kmeans_centers.T, marker="X", s=110, c="k", ec="w", label="centers $\\mu_j$")
    label_cluster_plane(ax_hard, "k-means: hard labels")
    ax_hard.legend(loc="lower right", fontsize=8)
    certainty = memberships.max(axis=1)
    order = np.argsort(-certainty)  # the most uncertain points drawn last, on top
    ax_soft.scatter(*x[order].T, s=7, c=np.clip(memberships[order] @ COLORS, 0.0, 1.0), edgecolors="none")
    for j, color in enumerate(COLORS):  # legend entries only
        ax_soft.scatter([], [], s=20, color=color, label=f"$r_{{i{j + 1}}} = 1$")
    ax_soft.scatter(*fuzzy_centers.T, marker="X", s=110, c="k", ec="w", label="centers $\\mu_j$")
    label_cluster_plane(ax_soft, "Fuzzy c-means (m = 2): memberships as a colour mix")
    ax_soft.legend(loc="lower right", fontsize=8)
    image = save_figure(fig, out_dir, "kmeans_fuzzy.png", "k-means labels and fuzzy c-means memberships")

    return f"""## 6. k-means and fuzzy c-means

The same {len(x)} points, clustered by `KMeans(3)` and `FuzzyCMeans(3)`, each fitted with
`jaxmix.fit(key, model, x, n_init={N_INIT}, init="kmeans++")` ({N_INIT} restarts from k-means++
seeds). Both are families of the EM protocol whose "log-likelihood" is minus the mean
objective, so the same driver fits them.

- k-means (Lloyd, docs/maths.md section 1) minimizes J = sum_i min_j ||x_i - mu_j||^2: assign each
  point to its nearest center, move each center to the mean of its points, repeat.
  Final J / N = {-float(kmeans_fit.log_likelihood):.4f} after {int(kmeans_fit.n_iter)} iterations
  (converged = {bool(kmeans_fit.converged)}).
- Fuzzy c-means (docs/maths.md section 2; fuzzifier m = 2 is the homework's soft k-means) minimizes
  J_m = sum_i sum_j r_ij^m ||x_i - mu_j||^2 with each row of r on the simplex. It alternates
  r_ij = d_ij^(-2/(m-1)) / sum_l d_il^(-2/(m-1)) (d_ij = ||x_i - mu_j||) and the r^m-weighted
  center update mu_j = sum_i r_ij^m x_i / sum_i r_ij^m, each the exact minimizer of J_m with the
  other held fixed: a coordinate descent, so J_m never increases. The homework writes the center
  update with weights r_ij; that is a typo (it is not a descent step on J_m), kept only as
  `FuzzyCMeans(3, center_update="homework")`. Final J_m / N = {-float(fuzzy_fit.log_likelihood):.4f}
  after {int(fuzzy_fit.n_iter)} iterations (converged = {bool(fuzzy_fit.converged)}).

Left: k-means labels and centers; {n_mislabelled(labels, z)} of the {len(x)} points get a cluster
other than the one that drew them (best matching of labels; Gaussian mixture EM in section 5:
{n_mislabelled(gmm_labels, z)}): the squared Euclidean distance favours round clusters, so the
tips of the elongated ones go to a neighbour. Right: each point coloured by the mix
sum_j r_ij c_j of its memberships; {int(np.sum(certainty < 0.6))} points have no membership above
0.6. Memberships fall off only as a power of the distance, so even points deep inside a cluster
keep some membership in the others.

{image}
"""
