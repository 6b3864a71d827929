"""Online EM against minibatch Adam and SGD on 10^6 points of a 16-D, 16-component Gaussian mixture.

Draws the data from a known mixture (full covariances), runs
``jaxmix.inference.stochastic.compare_stochastic`` (online EM and the minibatch
optimizers from the same k-means++ starts, the same minibatch size and
floor(N / batch_size) steps per epoch), prints its Markdown table and saves a
figure of the gap to the best full-data mean log-likelihood found, against
epochs and against seconds.

    python examples/online_em.py                            # N = 10^6, writes online_em.png
    python examples/online_em.py --n 100000 --n-epochs 5 --out small.png

Seconds are steady times per epoch, compilation apart (``StochasticComparison``).
Needs matplotlib (``pip install "jaxmix[examples]"``).
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxmix import GaussianMixture, GaussianMixtureParams
from jaxmix.inference.stochastic import ONLINE_EM, compare_stochastic

COLORS = {ONLINE_EM: "black", "adam": "tab:blue", "sgd": "tab:orange"}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="points (default: %(default)s)")
    parser.add_argument("--d", type=int, default=16, help="features (default: %(default)s)")
    parser.add_argument("--k", type=int, default=16, help="components (default: %(default)s)")
    parser.add_argument("--n-starts", type=int, default=3, help="shared starts (default: %(default)s)")
    parser.add_argument("--n-epochs", type=int, default=3, help="passes over the data (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=None, help="minibatch rows (default: fit_online's)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the jax.random.key (default: 0)")
    parser.add_argument("--out", default="online_em.png", help="figure path (default: %(default)s)")
    return parser.parse_args(argv)


def mixture_data(key, n, d, k):
    """n points from a K-component mixture: weights ~ Dirichlet(5), means ~ N(0, I), covariances
    0.5 A A^T + 0.5 I with A ~ N(0, 1/d) (benchmarks/bench_online.py's data)."""
    model = GaussianMixture(k, covariance_type="full")
    key_w, key_mu, key_a, key_x = jax.random.split(key, 4)
    a = jax.random.normal(key_a, (k, d, d)) / np.sqrt(d)
    truth = GaussianMixtureParams(jax.random.dirichlet(key_w, jnp.full(k, 5.0)), jax.random.normal(key_mu, (k, d)),
                                  0.5 * a @ jnp.swapaxes(a, 1, 2) + 0.5 * jnp.eye(d))
    return model, model.sample(key_x, truth, n)[0]


def main(argv=None) -> int:
    args = parse_args(argv)
    data_key, fit_key = jax.random.split(jax.random.key(args.seed))
    model, x = mixture_data(data_key, args.n, args.d, args.k)
    started = time.perf_counter()
    result = compare_stochastic(fit_key, model, x, n_starts=args.n_starts, n_epochs=args.n_epochs,
                                batch_size=args.batch_size, progress=True)
    title = (f"Gaussian mixture ({args.n:,} x {args.d}, K = {args.k}, full): {result.n_starts} shared starts, "
             f"minibatches of {result.batch_size}")
    print(f"# {title}\n\nbest mean log-likelihood found: {result.best_log_likelihood:.6f}\n")
    print(result.to_markdown())

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    result.plot(fig.subplots(1, 2), colors=COLORS)
    fig.suptitle(title)
    fig.savefig(args.out, dpi=110)
    print(f"\nwrote {args.out} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
