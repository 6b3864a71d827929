"""k-means against spectral clustering on two moons, concentric circles and Gaussian blobs.

For each data set (scikit-learn's generators, 600 points) it runs jaxmix's ``KMeans`` on the raw
points and ``spectral_clustering`` (rbf affinity, symmetric Laplacian; docs/maths.md section 6), and
saves three figures:

* ``clusters.png``: the labels of both methods, with their adjusted Rand index;
* ``embedding.png``: each point as its row of the spectral embedding (the rows k-means clusters);
* ``eigenvalues.png``: the smallest eigenvalues of L_sym: as many near 0 as there are clusters,
  then a gap (the eigengap heuristic for the number of clusters).

    python examples/spectral_moons.py                 # writes spectral_moons_out/
    python examples/spectral_moons.py --out DIR --seed 1

Needs matplotlib and scikit-learn (``pip install "jaxmix[examples]"``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.datasets import make_blobs, make_circles, make_moons
from sklearn.metrics import adjusted_rand_score

from jaxmix.clustering.kmeans import KMeans
from jaxmix.inference.restarts import fit
from jaxmix.spectral import rbf_affinity, spectral_clustering, spectral_embedding

N_EIGENVALUES = 8


def datasets(n, seed):
    """(name, x, true labels, number of clusters) for each data set."""
    return [
        ("two moons", *make_moons(n, noise=0.06, random_state=seed), 2),
        ("circles", *make_circles(n, noise=0.05, factor=0.5, random_state=seed), 2),
        ("blobs", *make_blobs(n, centers=3, cluster_std=0.7, random_state=seed), 3),
    ]


def figure(nrows, ncols):
    fig = Figure(figsize=(4.2 * ncols, 3.8 * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="spectral_moons_out", help="output folder (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="data seed and jax.random.key (default: 0)")
    parser.add_argument("--n-points", type=int, default=600, help="points per data set (default: 600)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    key = jax.random.key(args.seed)
    data = datasets(args.n_points, args.seed)
    clusters, cluster_axes = figure(2, len(data))
    embedded, embedding_axes = figure(1, len(data))
    spectrum, spectrum_axes = figure(1, len(data))
    for column, (name, x, y, k) in enumerate(data):
        x = x.astype(np.float32)
        kmeans = KMeans(k).predict(fit(key, KMeans(k), x, n_init=10, init="kmeans++").best.params, x)
        result = spectral_clustering(key, x, k)
        values = spectral_embedding(key, rbf_affinity(x, gamma=result.gamma), N_EIGENVALUES)[1]
        for row, (method, labels) in enumerate([("k-means", kmeans), ("spectral", result.labels)]):
            ax = cluster_axes[row, column]
            ax.scatter(*x.T, c=np.asarray(labels), s=6, cmap="viridis")
            ax.set(title=f"{name}: {method} (ARI {adjusted_rand_score(y, np.asarray(labels)):.2f})", aspect="equal")
        embedding = np.asarray(result.embedding)
        jitter = np.random.default_rng(0).normal(scale=0.01, size=embedding.shape)  # coincident rows apart
        ax = embedding_axes[0, column]
        ax.scatter(*(embedding + jitter)[:, :2].T, c=y, s=6, cmap="coolwarm")
        ax.set(title=f"{name}: rows of the embedding (coloured by truth)", xlabel="$u_1$", ylabel="$u_2$")
        ax = spectrum_axes[0, column]
        ax.plot(np.arange(1, N_EIGENVALUES + 1), np.asarray(values), "o-")
        ax.axvline(k + 0.5, color="0.6", ls="--", label=f"{k} clusters")
        ax.set(title=f"{name}: smallest eigenvalues of $L_{{sym}}$", xlabel="index j", ylabel="$\\lambda_j$")
        ax.legend()
        print(f"{name}: k-means ARI {adjusted_rand_score(y, np.asarray(kmeans)):.3f}, spectral ARI "
              f"{adjusted_rand_score(y, np.asarray(result.labels)):.3f}, eigenvalues "
              f"{np.array2string(np.asarray(values)[: k + 2], precision=4)}")
    for fig, name in [(clusters, "clusters.png"), (embedded, "embedding.png"), (spectrum, "eigenvalues.png")]:
        fig.savefig(out / name, dpi=100)
        print(f"wrote {out / name}")


if __name__ == "__main__":
    main()
