"""Section 8 of the demo: EM against gradient ascent on the exponential mixture (docs/maths.md sections
4 and 10)."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from jaxmix.demo.data import COMPARING, EXPONENTIAL, exponential_example
from jaxmix.demo.plotting import figure, save_figure
from jaxmix.inference import compare_fits, default_optimizers

# Section 8 compares EM with gradient ascent on section 4's exponential mixture, a model that compiles
# quickly. L-BFGS is left to examples/em_vs_gradient.py: its vmapped line search is slow to compile
# and evaluates the objective several times per iteration.
OPTIMIZERS = ("adam", "sgd")
N_STARTS = 8
_COMPARISON_ITERATIONS = 100


def em_versus_gradient(key, out_dir: Path) -> str:
    _, x = exponential_example(key)
    optimizers = {name: opt for name, opt in default_optimizers().items() if name in OPTIMIZERS}
    result = compare_fits(jax.random.fold_in(key, COMPARING), EXPONENTIAL, x, optimizers=optimizers,
                          n_starts=N_STARTS, max_iter=_COMPARISON_ITERATIONS, n_steps=_COMPARISON_ITERATIONS)
    fig, axes = figure(ncols=2, nrows=2)
    result.plot(axes, colors={"em": "black"})
    fig.suptitle(f"Exponential mixture, K = 2: {result.n_starts} shared starts (dotted: atol {result.atol:g})")
    image = save_figure(fig, out_dir, "em_vs_gradient.png", "log-likelihood against iteration and time")
    em = result.methods.index("em")
    return f"""## 8. EM against gradient ascent on the ELBO

By Fisher's identity (docs/maths.md section 4) the gradient of the mean log-likelihood equals the
gradient of the ELBO at q = posterior, so EM and gradient ascent share their fixed points.
`compare_fits(key, ExponentialMixture(2), x, n_starts={N_STARTS})` fits section 4's {len(x)}
points from the same {N_STARTS} k-means++ initializations by EM and by optax optimizers on the
unconstrained parameters (weight logits, log-rates), `adam(0.05)` and `sgd(0.1, momentum=0.9)`,
each for up to {_COMPARISON_ITERATIONS} iterations, every method vmapped over the starts in one
compiled call. "Iterations to best" counts until a start is within {result.atol:g} of the best
mean log-likelihood any method found ({result.best_log_likelihood:.6f}); time per iteration is
the steady time of one vmapped iteration of all starts, compilation apart.

{result.to_markdown()}

EM needs no step size and never lowers the likelihood; here it comes within {result.atol:g} of the
optimum in a median of {np.median(result.iterations_to_best[em]):g} iterations. How fast a gradient
method gets there rests on its step size; the bottom panels show the gap to the optimum on a log
scale, where the rates of convergence can be read off. `examples/em_vs_gradient.py` runs the same
comparison with L-BFGS as well, and on a 2-D Gaussian mixture.

{image}
"""
