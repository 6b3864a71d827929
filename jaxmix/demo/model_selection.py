"""Section 7 of the demo: choosing the number of components and the covariance type by BIC
(docs/maths.md section 9)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxmix.demo.data import K, cluster_example
from jaxmix.demo.plotting import figure, save_figure
from jaxmix.inference import select_components
from jaxmix.mixtures import GaussianMixture

# Section 7's candidates. Every (K, covariance type) pair is a separate static model, so
# select_components compiles one EM program for each: most of the demo's run time (its progress
# line for section 7 shows it), hence a small grid rather than the default K = 1..6 by four types.
SELECTION_K = (2, 3, 4)
SELECTION_COVARIANCES = ("full", "spherical")
_SELECTION_INIT = "kmeans++"  # compiles faster than the default "kmeans" (k-means++, then Lloyd steps)


def choosing_k(key, out_dir: Path) -> str:
    x, _, fit_key = cluster_example(key)
    table = select_components(
        fit_key, x, SELECTION_K, SELECTION_COVARIANCES, n_init=1, init=_SELECTION_INIT
    )
    fig, ax = figure()
    per_type = []
    for i, cov in enumerate(SELECTION_COVARIANCES):
        rows = np.flatnonzero(np.array(table.covariance_types) == cov)
        ax.plot(table.n_components[rows], table.bic[rows], "o-", color=f"C{i}", label=cov)
        lowest = rows[np.argmin(table.bic[rows])]
        per_type.append(f"{cov} K = {table.n_components[lowest]} (BIC {table.bic[lowest]:.1f})")
    best_k, best_cov = int(table.n_components[table.best]), table.covariance_types[table.best]
    ax.scatter([best_k], [table.bic[table.best]], marker="*", s=300, c="gold", ec="k", zorder=3,
               label=f"lowest BIC: K = {best_k}, {best_cov}")
    ax.set(title="BIC of Gaussian mixtures (lower is better)", xlabel="number of components K", ylabel="BIC",
           xticks=list(SELECTION_K))
    ax.legend(title="covariance type", fontsize=8)
    image = save_figure(fig, out_dir, "bic_selection.png", "BIC against the number of components")
    n, d = x.shape
    parameters = ", ".join(
        f"{cov} {GaussianMixture(K, cov).n_parameters(d)}" for cov in SELECTION_COVARIANCES
    )
    return f"""## 7. Choosing K with BIC

`select_components(key, x, n_components={list(SELECTION_K)},
covariance_types={list(SELECTION_COVARIANCES)}, n_init=1, init="{_SELECTION_INIT}")` fits a
`GaussianMixture` to the {n} points of sections 5 and 6 for every pair (K, covariance type)
and scores it with BIC = -2 N L + p log N and AIC = -2 N L + 2 p, as scikit-learn does (L the
mean log-likelihood, p the free parameters: K - 1 weights, K D means and the covariances; for
K = 3 in D = {d}, p is {parameters}). Lower is better: a parameter must buy more than
(log N) / 2 = {np.log(n) / 2:.2f} nats of total log-likelihood. The lowest BIC is K = {best_k}
with {best_cov} covariances; the lowest per covariance type: {"; ".join(per_type)}. Covariances
too stiff for the elongated clusters buy likelihood with extra components instead, and still
score worse. (Each pair is a separate compiled EM program, so the grid is kept small.)

{table.to_markdown()}

{image}
"""
