"""Section 11 of the demo: online EM against minibatch gradient ascent on the exponential mixture
(docs/maths.md sections 4 and 12)."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from jaxmix.demo.data import COMPARING, EXPONENTIAL, exponential_example
from jaxmix.demo.plotting import figure, save_figure
from jaxmix.inference.stochastic import ONLINE_EM, compare_stochastic

N_STARTS = 3
N_EPOCHS = 3
BATCH_SIZE = 150


def online_em_versus_minibatch(key, out_dir: Path) -> str:
    _, x = exponential_example(key)
    result = compare_stochastic(jax.random.fold_in(key, COMPARING), EXPONENTIAL, x, n_starts=N_STARTS,
                                n_epochs=N_EPOCHS, batch_size=BATCH_SIZE)
    fig, axes = figure(ncols=2)
    result.plot(axes, colors={ONLINE_EM: "black"})
    fig.suptitle(f"Exponential mixture, K = 2: {result.n_starts} shared starts, minibatches of {BATCH_SIZE}")
    image = save_figure(fig, out_dir, "online_em.png", "log-likelihood against epochs and seconds")
    final = result.best_log_likelihood - np.median(result.log_likelihood[:, :, -1], axis=1)
    gaps = ", ".join(f"{name} {g:.1e}" for name, g in zip(result.methods, final))
    return f"""## 11. Online EM against minibatch gradient ascent

Online (stepwise) EM (docs/maths.md section 12) keeps a running average of the
sufficient statistics, s_t = (1 - rho_t) s_(t-1) + rho_t (N / |b|) s(minibatch),
with rho_t = (t + t0)^(-kappa), and takes the M-step of it after every minibatch.
`compare_stochastic(key, ExponentialMixture(2), x, n_starts={N_STARTS}, n_epochs={N_EPOCHS},
batch_size={BATCH_SIZE})` runs it on section 4's {len(x)} points from {N_STARTS} shared
k-means++ starts beside minibatch `adam(0.05)` and `sgd(0.1, momentum=0.9)` (the loop of
`fit_gradient` with `batch_size`), {len(x) // BATCH_SIZE} minibatches per epoch for every method, and
scores the full data after each epoch. Seconds per epoch are steady times, compilation apart.

{result.to_markdown()}

After {N_EPOCHS} epochs the median gaps to the best value found are: {gaps} nats.
Online EM's steps are closed-form M-steps of the running statistics, so its only tuning is the
schedule rho_t; a gradient method's constant step size sets how far it wanders about the optimum.
`examples/online_em.py` runs the comparison on 10^6 points of a 16-D Gaussian mixture and
`benchmarks/bench_online.py` sets online EM against batch EM there.

{image}
"""
