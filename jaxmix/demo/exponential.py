"""Section 4 of the demo: a mixture of two exponentials, its samples and density (docs/maths.md section 3)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxmix.demo.data import EXPONENTIAL, EXPONENTIAL_VALUES, exponential_example, log_joint_and_prob
from jaxmix.demo.plotting import COLORS, figure, save_figure


def exponential_mixture(key, out_dir: Path) -> str:
    params, x = exponential_example(key)
    grid = np.linspace(0.0, 8.0, 400)
    log_joint, log_prob = log_joint_and_prob(EXPONENTIAL, params, grid)
    parts, density = np.exp(np.asarray(log_joint)), np.exp(np.asarray(log_prob))
    u, rates = EXPONENTIAL_VALUES["weights"], EXPONENTIAL_VALUES["rates"]
    fig, axes = figure(ncols=2)
    for ax, scale in zip(axes, ["linear", "log"], strict=True):
        ax.hist(x, bins=64, range=(0.0, 8.0), density=True, color="0.75", label=f"{len(x)} samples")
        for j, (u_j, rate) in enumerate(zip(u, rates, strict=True)):
            label = f"$u_{j + 1} p_{j + 1}$: u = {u_j}, $\\lambda$ = {rate}"
            ax.plot(grid, parts[:, j], "--", color=COLORS[j], label=label)
        ax.plot(grid, density, "k", lw=2, label="mixture p(x)")
        ax.set(yscale=scale, xlabel="x", ylabel="density", title=f"Exponential mixture ({scale} y-axis)")
        ax.legend(fontsize=8)
    axes[1].set_ylim(1e-3, 2 * density.max())
    image = save_figure(fig, out_dir, "exponential_mixture.png", "exponential mixture histogram, density")
    return f"""## 4. A mixture of exponentials

p(x) = sum_j u_j lambda_j exp(-lambda_j x) on x >= 0 (docs/maths.md section 3), u = {u}, rates
lambda = {rates}. A histogram of {len(x)} samples from `ExponentialMixture.sample`
(z ~ Categorical(u), x = Exp(1) / lambda_z; {int(np.sum(x > 8.0))} lie beyond the plotted x = 8)
against the density exp(`log_prob`) (solid) and the weighted components
u_j lambda_j exp(-lambda_j x) = exp(`log_joint`) (dashed). On the log axis each component
is a line of slope -lambda_j; the mixture bends from the steep to the shallow one.

{image}
"""
