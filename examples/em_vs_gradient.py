"""EM against gradient ascent (adam, SGD with momentum, L-BFGS) from the same starts.

Generates a 2-D Gaussian mixture (4 components, full covariances) and a
mixture of 3 exponentials, runs ``jaxmix.inference.compare.compare_fits`` on each (EM
and every optimizer from the same k-means++ initializations, vmapped over
starts), prints a Markdown table per model and saves, per model, a figure of
the mean log-likelihood against iteration and against (estimated) wall time:
the median over starts and its 10-90 % band, one colour per method. The
bottom row shows the gap to the best value found, on a log scale, where the
rates of convergence can be read off.

    python examples/em_vs_gradient.py                       # writes em_vs_gradient_out/
    python examples/em_vs_gradient.py --out DIR --seed 1 --n-starts 16

Wall time per iteration is the steady time of one vmapped iteration over all
starts, after compilation; the time axis charges every iteration alike (see
``ComparisonResult.wall_time``). Needs matplotlib (``pip install "jaxmix[examples]"``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import jax.numpy as jnp

from jaxmix import ExponentialMixture, ExponentialMixtureParams, GaussianMixture, GaussianMixtureParams
from jaxmix.inference.compare import compare_fits

GAUSSIAN = GaussianMixture(4, covariance_type="full")
GAUSSIAN_TRUTH = GaussianMixtureParams(
    weights=jnp.array([0.35, 0.3, 0.2, 0.15]),
    means=jnp.array([[0.0, 0.0], [3.0, 0.5], [0.5, 3.0], [2.5, 3.0]]),
    covariances=jnp.array([[[1.0, 0.5], [0.5, 0.8]], [[0.6, -0.2], [-0.2, 0.9]],
                           [[0.8, 0.0], [0.0, 0.4]], [[0.5, 0.3], [0.3, 1.0]]]),
)
EXPONENTIAL = ExponentialMixture(3)
EXPONENTIAL_TRUTH = ExponentialMixtureParams(
    weights=jnp.array([0.3, 0.4, 0.3]), rates=jnp.array([5.0, 1.0, 0.2]))
COLORS = {"em": "black", "adam": "tab:blue", "sgd": "tab:orange", "lbfgs": "tab:green"}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="em_vs_gradient_out", help="output folder (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the jax.random.key (default: 0)")
    parser.add_argument("--n-points", type=int, default=3000, help="points per data set (default: 3000)")
    parser.add_argument("--n-starts", type=int, default=8, help="shared initializations (default: 8)")
    parser.add_argument("--max-iter", type=int, default=200, help="EM iteration limit (default: %(default)s)")
    parser.add_argument("--n-steps", type=int, default=100, help="optimizer steps (default: %(default)s)")
    return parser.parse_args(argv)


def plot(result, title: str, path: Path) -> None:
    """``ComparisonResult.plot`` on a 2 x 2 grid of panels, saved to ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 8), layout="constrained")
    FigureCanvasAgg(fig)
    result.plot(fig.subplots(2, 2), colors=COLORS)
    fig.suptitle(f"{title}: {result.n_starts} shared starts (dotted: atol {result.atol:g})")
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    key = jax.random.key(args.seed)
    data_key, gaussian_key, exponential_key = jax.random.split(key, 3)
    x_gaussian, _ = GAUSSIAN.sample(jax.random.fold_in(data_key, 0), GAUSSIAN_TRUTH, args.n_points)
    x_exponential, _ = EXPONENTIAL.sample(jax.random.fold_in(data_key, 1), EXPONENTIAL_TRUTH, args.n_points)
    cases = [
        ("Gaussian mixture (K=4, full, 2-D)", "gaussian_mixture", GAUSSIAN, x_gaussian, gaussian_key),
        ("Exponential mixture (K=3)", "exponential_mixture", EXPONENTIAL, x_exponential, exponential_key),
    ]
    heading = f"# EM versus gradient ascent ({args.n_points} points, seed {args.seed}, {jax.devices()[0].platform})"
    report = [heading]
    started = time.perf_counter()
    for title, stem, model, x, fit_key in cases:
        result = compare_fits(fit_key, model, x, n_starts=args.n_starts, max_iter=args.max_iter,
                              n_steps=args.n_steps)
        table = result.to_markdown()
        print(f"\n## {title}\n\nbest mean log-likelihood found: {result.best_log_likelihood:.6f}\n\n{table}",
              flush=True)
        plot(result, title, out / f"{stem}.png")
        report += [f"## {title}", f"best mean log-likelihood found: {result.best_log_likelihood:.6f}", table,
                   f"![{title}]({stem}.png)"]
    (out / "report.md").write_text("\n\n".join(report) + "\n")
    print(f"\nwrote {out / 'report.md'}, {out / 'gaussian_mixture.png'}, {out / 'exponential_mixture.png'} "
          f"in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
