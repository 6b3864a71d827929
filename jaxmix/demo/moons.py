"""Section 9 of the demo: k-means and spectral clustering of two moons (docs/maths.md section 6)."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxmix.clustering import KMeans
from jaxmix.demo.data import FITTING, MOONS, N_INIT, n_mislabelled
from jaxmix.demo.plotting import COLORS, figure, label_cluster_plane, save_figure
from jaxmix.inference import fit
from jaxmix.spectral import rbf_affinity, spectral_clustering, spectral_embedding

_N_MOONS = 600


def _two_moons(key, n=_N_MOONS, noise=0.06):
    """Two interleaving half circles with Gaussian noise (scikit-learn's make_moons, drawn with jax.random)."""
    t = jnp.linspace(0.0, jnp.pi, n // 2)
    outer = jnp.stack([jnp.cos(t), jnp.sin(t)], axis=1)
    inner = jnp.stack([1.0 - jnp.cos(t), 0.5 - jnp.sin(t)], axis=1)
    x = jnp.concatenate([outer, inner]) + noise * jax.random.normal(key, (n, 2))
    return np.asarray(x), np.repeat([0, 1], n // 2)


def spectral_moons(key, out_dir: Path) -> str:
    x, z = _two_moons(jax.random.fold_in(key, MOONS))
    fit_key = jax.random.fold_in(key, FITTING)
    kmeans = KMeans(2)
    kmeans_labels = np.asarray(kmeans.predict(fit(fit_key, kmeans, x, n_init=N_INIT, init="kmeans++").best.params, x))
    result = spectral_clustering(fit_key, x, 2)
    labels, embedding = np.asarray(result.labels), np.asarray(result.embedding)
    values = np.asarray(spectral_embedding(fit_key, rbf_affinity(x, gamma=result.gamma), 6)[1])
    sigma = (1.0 / (2.0 * result.gamma)) ** 0.5
    fig, (ax_kmeans, ax_spectral, ax_embedding) = figure(ncols=3)
    for ax, found, title in ((ax_kmeans, kmeans_labels, "k-means"), (ax_spectral, labels, "spectral clustering")):
        ax.scatter(*x.T, s=8, color=COLORS[found])
        label_cluster_plane(ax, f"{title}: {n_mislabelled(found, z, 2)} of {len(x)} points mislabelled")
    jitter = np.random.default_rng(0).normal(scale=0.02, size=embedding.shape)  # coincident rows apart
    ax_embedding.scatter(*(embedding + jitter).T, s=8, color=COLORS[z])
    ax_embedding.set(title="embedded rows (colour: true moon)", xlabel="$u_1$",
                     ylabel="$u_2$", xlim=(-1.1, 1.1), ylim=(-1.1, 1.1), aspect="equal")
    image = save_figure(fig, out_dir, "spectral_moons.png", "k-means and spectral clustering on two moons")
    return f"""## 9. Spectral clustering: two moons

{len(x)} points on two interleaving half circles with Gaussian noise (sd 0.06). k-means
(`fit(key, KMeans(2), x, n_init={N_INIT}, init="kmeans++")`) cuts them with a straight line, the
best it can do with squared Euclidean distances to two centers. `spectral_clustering(key, x, 2)`
(docs/maths.md section 6) builds the Gaussian affinity w_il = exp(-||x_i - x_l||^2 / (2 sigma^2)), with
sigma = {sigma:.3f} the median distance to the 10th nearest neighbour, its degrees D_ii = sum_l w_il
and the normalized Laplacian L_sym = I - D^-1/2 W D^-1/2, embeds point i as row i of the
eigenvectors of the 2 smallest eigenvalues of L_sym, normalized to unit length (Ng-Jordan-Weiss),
and runs k-means on those rows. The 6 smallest eigenvalues are {np.array2string(values, precision=4)}:
two near 0, one per moon (a graph of c disconnected pieces has exactly c zero eigenvalues, and
the weights between the moons are tiny), then a gap: the eigengap suggests 2 clusters. Right: the
embedded rows gather at two points, one per moon, where k-means cannot miss.
`jaxmix.spectral.predict(result, x_new)` labels new points through the Nystrom extension of the
eigenvectors.

{image}
"""
