"""Section 10 of the demo: a variational autoencoder on scikit-learn's 8x8 digits (docs/maths.md section 7)."""

from __future__ import annotations

import time
from pathlib import Path

import jax
import numpy as np
import optax

from jaxmix import vae
from jaxmix.demo.data import DIGITS
from jaxmix.demo.plotting import figure, save_figure

# Section 10: a small VAE with a 2-D latent space, trained for a few epochs (the report states the time).
_VAE = vae.VAE(64, 2, hidden_sizes=(64,), decoder="bernoulli")
_VAE_EPOCHS = 20


def variational_autoencoder(key, out_dir: Path) -> str:
    from sklearn.datasets import load_digits  # bundled with scikit-learn (the examples extra): no download

    digits = load_digits()
    x, y = (digits.data / 16.0).astype(np.float32), digits.target
    init_key, fit_key = jax.random.split(jax.random.fold_in(key, DIGITS))
    start = time.perf_counter()
    result = vae.fit(fit_key, _VAE, vae.init(init_key, _VAE), x, optax.adam(3e-3),
                     n_epochs=_VAE_EPOCHS, batch_size=64, n_warmup_epochs=10, progress=False)
    params, history = result.params, result.history
    seconds = time.perf_counter() - start
    means = np.asarray(vae.encode(_VAE, params, x)[0])
    reconstructions = np.asarray(vae.decode(_VAE, params, means[:8]))

    fig, (ax_latent, ax_recon) = figure(ncols=2)
    shown = ax_latent.scatter(*means.T, c=y, cmap="tab10", s=5, alpha=0.7)
    fig.colorbar(shown, ax=ax_latent, label="digit", ticks=range(10))
    ax_latent.set(title=f"Encoder means $\\mu_\\phi(x)$ of the {len(x)} digits", xlabel="$z_1$", ylabel="$z_2$")
    tiles = np.pad(np.concatenate([x[:8], reconstructions]).reshape(2, 8, 8, 8), ((0, 0), (0, 0), (1, 1), (1, 1)))
    ax_recon.imshow(tiles.transpose(0, 2, 1, 3).reshape(20, 80), cmap="gray_r", vmin=0, vmax=1)
    ax_recon.set(title="Digits (top) and their reconstructions (bottom)", xticks=[], yticks=[])
    image = save_figure(fig, out_dir, "vae_digits.png", "VAE latent means and reconstructions")
    return f"""## 10. A variational autoencoder on the digits

The {len(x)} 8x8 digits bundled with scikit-learn, scaled to [0, 1], fitted by `jaxmix.vae.fit`:
encoder q_phi(z | x) = N(mu_phi(x), diag sigma_phi(x)^2) and a Bernoulli decoder, each one hidden
layer of {_VAE.hidden_sizes[0]} units, a {_VAE.latent_dim}-D latent space and the prior N(0, I)
(docs/maths.md section 7). The encoder replaces EM's exact E-step (intractable here) by an amortized one;
Adam maximizes ELBO = E_q[log p(x | z)] - KL(q(z | x) || N(0, I)), the expectation by
reparameterization z = mu + sigma eps and the KL in closed form, over {_VAE_EPOCHS} epochs of
minibatches of 64 ({seconds:.1f} s with compilation), the KL weight annealed up to 1 over the first
10 epochs. Mean ELBO per digit: {history.train_elbo[0]:.2f} nats in the first epoch,
{history.train_elbo[-1]:.2f} in the last. Left: mu_phi(x) of every digit, coloured by its label
(never seen in training); right: digits and the decoder's mean sigmoid(f(mu_phi(x))).
`examples/vae_digits.py` adds a Gaussian-mixture prior over z, which makes the VAE a clustering
model (`jaxmix.vae.cluster`), and compares its clusters with k-means and a Gaussian mixture.

{image}
"""
