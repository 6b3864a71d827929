"""Online (stepwise) EM, ``jaxmix.fit_online`` (docs/maths.md section 12).

What is checked against what:

- A Gaussian mixture (full and diag covariances) against a NumPy transcription of stepwise EM written
  from the equations, on raw moments (n_k, sum r x, sum r x x^T) rather than the library's statistics
  about moving reference points: the same epoch orders and minibatches, rho_0 = 1 then
  (t + t0)^-kappa, the N / |b| factor, scikit-learn's M-step; parameters after two epochs and the
  history (each minibatch's weighted mean log-likelihood before its update, by scipy) agree to 1e-9
  relative, with and without sample weights. The same for the Bernoulli mixture of
  examples/custom_family.py (plain sums, blended leaf by leaf), whose smoothed M-step, unlike a
  Gaussian mixture's, sees the N / |b| factor.
- Every family (five Gaussian covariance types, the exponential mixture on 1-D data, k-means, fuzzy
  c-means, the Bernoulli mixture of examples/custom_family.py, which blends leaf by leaf) on a memmap
  against the same data in memory: the same parameters and history to 1e-12.
- The same key gives the same fit, another key another one.
- k-means online is mini-batch k-means: on 20k blob points its inertia is within 1 % of
  scikit-learn's MiniBatchKMeans run from the same centers with the same batch size and step count.
- On a well-separated mixture, a few epochs end within 1e-2 nats of batch EM's converged
  log-likelihood from the same start.
- Bad arguments raise a ValueError naming them; a family with shared reference statistics and no
  ``blend`` a TypeError.
- Checkpoints: a fit killed (SIGKILL, in a subprocess) after its third step resumes from its
  checkpoint to exactly the parameters of an uninterrupted run; a truncated file, a foreign .npz and
  another fit's checkpoint are refused with a ValueError naming the path.
"""

import dataclasses
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.cluster import MiniBatchKMeans, kmeans_plusplus
from sklearn.datasets import make_blobs

import jaxmix
import jaxmix.inference.online as online
from jaxmix import (
    ExponentialMixture,
    ExponentialMixtureParams,
    FuzzyCMeans,
    FuzzyCMeansParams,
    GaussianMixture,
    GaussianMixtureParams,
    KMeans,
    KMeansParams,
    fit_em,
    fit_online,
)

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "examples"))
import custom_family

pytestmark = pytest.mark.usefixtures("x64")

N, D, K = 600, 3, 3
BATCH, EPOCHS = 64, 2  # 9 minibatches per epoch; the last 24 rows of each epoch's order wait
KAPPA, T0, REG = 0.7, 1.5, 1e-4


def blobs3(seed=0, n=N):
    """Three separated 3-D clusters of different shapes, (n, D)."""
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 0.0, 0.0], [5.0, 1.0, -2.0], [1.0, 6.0, 3.0]])
    scales = np.array([[1.0, 0.5, 0.8], [0.7, 1.2, 1.0], [1.1, 0.9, 0.6]])
    labels = rng.integers(0, K, n)
    return centers[labels] + rng.normal(size=(n, D)) * scales[labels]


def exponential_data(seed=0, n=N):
    """Exponential draws of means 0.5 and 4, (n,)."""
    return np.random.default_rng(seed).exponential(np.where(np.arange(n) % 3, 0.5, 4.0))


def binary_data(seed=0, n=N):
    """Bits from three prototypes of 8 Bernoulli probabilities, (n, 8) of 0/1."""
    rng = np.random.default_rng(seed)
    probs = np.array([[0.9] * 4 + [0.1] * 4, [0.1] * 4 + [0.9] * 4, [0.8, 0.2] * 4])
    return (rng.uniform(size=(n, 8)) < probs[rng.integers(0, K, n)]).astype(np.float64)


CENTERS = np.array([[1.0, 1.0, 0.0], [4.0, 0.0, -1.0], [0.0, 5.0, 2.0]])


def sample_weights(n=N):
    return np.random.default_rng(1).uniform(0.2, 3.0, n)


def gmm_start(cov_type):
    """Rough initial parameters of a 3-component mixture for ``blobs3``."""
    covariances = {"full": np.stack([np.eye(D) * 2.0] * K), "diag": np.full((K, D), 2.0),
                   "spherical": np.full(K, 2.0), "tied": np.eye(D) * 2.0, "identity": None}[cov_type]
    return GaussianMixtureParams(np.full(K, 1.0 / K), CENTERS, covariances)


def bernoulli_start():
    return custom_family.BernoulliParams(np.full(K, 1.0 / K), np.random.default_rng(2).uniform(0.3, 0.7, (K, 8)))


# ---------------------------------------------------------------------------------------------------
# 1. Against independent NumPy references


def numpy_stepwise(key, x, params, e_step, m_step, batch_size, n_epochs, kappa, t0, sample_weight=None,
                   average=True):
    """Stepwise EM in NumPy, from the equations: epoch e visits the rows in the order
    permutation(fold_in(key, e), N), in consecutive slices of batch_size (each sorted; the last N mod
    batch_size rows dropped); s <- (1 - rho_t) s + rho_t (N / |b|) s_b with rho_0 = 1, then
    rho_t = (t + t0)^-kappa; params <- m_step(s). ``e_step(params, xb, wb)`` gives the minibatch's
    statistics s_b (a tuple) and each row's log p(x_i). Returns the final params (with ``average``,
    m_step of the plain mean of the last epoch's (N / |b|) s_b) and the history."""
    n = len(x)
    w = np.ones(n) if sample_weight is None else sample_weight / np.mean(sample_weight)
    running, history, step, last_epoch = None, [], 0, []
    for epoch in range(n_epochs):
        order = np.asarray(jax.random.permutation(jax.random.fold_in(key, epoch), n))
        for b in range(n // batch_size):
            rows = np.sort(order[b * batch_size:(b + 1) * batch_size])
            new, log_px = e_step(params, x[rows], (n / batch_size) * w[rows])
            history.append(np.sum(w[rows] * log_px) / np.sum(w[rows]))
            rho = 1.0 if step == 0 else (step + t0) ** -kappa
            running = new if running is None else tuple((1 - rho) * a + rho * b for a, b in zip(running, new))
            params, step = m_step(running), step + 1
            if epoch == n_epochs - 1:
                last_epoch.append(new)
    if average:
        params = m_step(tuple(np.mean(parts, axis=0) for parts in zip(*last_epoch)))
    return params, np.array(history)


def gmm_e_step(params, xb, wb):
    """Raw moments (n_k, sum_i w r_ik x_i, sum_i w r_ik x_i x_i^T) and log p(x_i), by scipy."""
    weights, means, cov = params
    full = cov if cov.ndim == 3 else np.stack([np.diag(c) for c in cov])
    log_joint = np.stack([np.log(weights[k]) + multivariate_normal.logpdf(xb, means[k], full[k])
                          for k in range(len(weights))], axis=1)
    log_px = logsumexp(log_joint, axis=1)
    wr = wb[:, None] * np.exp(log_joint - log_px[:, None])
    return (wr.sum(axis=0), wr.T @ xb, np.einsum("ik,id,ie->kde", wr, xb, xb)), log_px


def gmm_m_step(cov_type, reg):
    """scikit-learn's M-step: n_k + 10 eps, w = n / sum n, mu = S / n, Sigma = C / n - mu mu^T + reg I."""
    def m_step(stats):
        nk = stats[0] + 10 * np.finfo(np.float64).eps
        means = stats[1] / nk[:, None]
        full = stats[2] / nk[:, None, None] - means[:, :, None] * means[:, None, :] + reg * np.eye(means.shape[1])
        return nk / nk.sum(), means, full if cov_type == "full" else np.diagonal(full, axis1=1, axis2=2).copy()
    return m_step


@pytest.mark.parametrize("weighted, average", [(False, True), (True, False)],
                         ids=["unweighted-averaged", "weighted-last-iterate"])
@pytest.mark.parametrize("cov_type", ["full", "diag"])
def test_gaussian_matches_numpy_stepwise_em(cov_type, weighted, average):
    x, key = blobs3(), jax.random.key(7)
    sw = sample_weights() if weighted else None
    start = gmm_start(cov_type)
    result = fit_online(key, GaussianMixture(K, cov_type, reg_covar=REG), start, x, batch_size=BATCH,
                        n_epochs=EPOCHS, kappa=KAPPA, t0=T0, sample_weight=sw, average_last_epoch=average)
    expected, history = numpy_stepwise(key, x, tuple(start), gmm_e_step, gmm_m_step(cov_type, REG), BATCH, EPOCHS,
                                       KAPPA, T0, sw, average)
    assert result.n_steps == EPOCHS * (N // BATCH) == len(result.history)
    for got, want in zip(result.params, expected, strict=True):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-9, atol=1e-12 * np.max(np.abs(want)))
    np.testing.assert_allclose(np.asarray(result.history), history, rtol=1e-9)
    assert result.log_likelihood is None
    # the reference's parameters are a real fit, not the start: the history rises from its first value
    assert history[-1] > history[0] + 0.5


def bernoulli_e_step(params, xb, wb):
    weights, probs = params
    log_joint = np.log(weights) + xb @ np.log(probs).T + (1 - xb) @ np.log(1 - probs).T
    log_px = logsumexp(log_joint, axis=1)
    wr = wb[:, None] * np.exp(log_joint - log_px[:, None])
    return (wr.sum(axis=0), wr.T @ xb), log_px


def test_plain_sum_family_matches_numpy_stepwise_em():
    """The Bernoulli mixture (plain sums, blended leaf by leaf): its smoothed M-step
    p_k = (s_k + alpha) / (n_k + 2 alpha) depends on the statistics' scale, so it sees the N / |b|
    factor, which a Gaussian mixture's M-step cannot (without it, probs move by 1e-2 here)."""
    x, key, alpha, sw = binary_data(), jax.random.key(2), 2.0, sample_weights()
    m_step = lambda s: (s[0] / s[0].sum(), (s[1] + alpha) / (s[0][:, None] + 2 * alpha))
    result = fit_online(key, custom_family.BernoulliMixture(K, alpha), bernoulli_start(), x, batch_size=BATCH,
                        n_epochs=EPOCHS, kappa=KAPPA, t0=T0, sample_weight=sw)
    expected, history = numpy_stepwise(key, x, tuple(bernoulli_start()), bernoulli_e_step, m_step, BATCH, EPOCHS,
                                       KAPPA, T0, sw)
    for got, want in zip(result.params, expected, strict=True):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-9)
    np.testing.assert_allclose(np.asarray(result.history), history, rtol=1e-9)


# ---------------------------------------------------------------------------------------------------
# 2. A source gives the fit of the same data in memory; 3. keys


FAMILIES = {  # (model, data, start): fixed starts, so that no initialization is compiled
    **{f"gmm-{cov}": (lambda cov=cov: GaussianMixture(K, cov, reg_covar=REG), blobs3, lambda cov=cov: gmm_start(cov))
       for cov in ("full", "tied", "diag", "spherical", "identity")},
    "exponential": (lambda: ExponentialMixture(2), exponential_data,
                    lambda: ExponentialMixtureParams(np.array([0.5, 0.5]), np.array([1.0, 0.5]))),
    "kmeans": (lambda: KMeans(K), blobs3, lambda: KMeansParams(CENTERS)),
    "fuzzy": (lambda: FuzzyCMeans(K), blobs3, lambda: FuzzyCMeansParams(CENTERS)),
    "bernoulli": (lambda: custom_family.BernoulliMixture(K), binary_data, bernoulli_start),
}
LL_CHECKED = ("gmm-full", "exponential", "bernoulli")


def assert_same_tree(a, b, rtol=1e-12):
    for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        u, v = np.asarray(u), np.asarray(v)
        assert u.dtype == v.dtype == np.float64
        np.testing.assert_allclose(u, v, rtol=rtol, atol=rtol * np.max(np.abs(v)))


@pytest.mark.parametrize("name", list(FAMILIES))
def test_memmap_fit_equals_in_memory_fit(tmp_path, name):
    model, x, start = (make() for make in FAMILIES[name])
    np.save(tmp_path / "x.npy", x)
    source = np.load(tmp_path / "x.npy", mmap_mode="r")
    key = jax.random.key(3)
    sw = sample_weights() if name in ("gmm-full", "kmeans", "bernoulli") else None
    # the final full-data pass is one code path for every family: checked on three
    kwargs = dict(batch_size=BATCH, n_epochs=EPOCHS, sample_weight=sw, log_likelihood=name in LL_CHECKED)
    in_memory = fit_online(key, model, start, x, **kwargs)
    streamed = fit_online(key, model, start, source, block_rows=250, **kwargs)
    assert_same_tree(streamed.params, in_memory.params)
    np.testing.assert_allclose(streamed.history, in_memory.history, rtol=1e-12)
    if name in LL_CHECKED:
        np.testing.assert_allclose(streamed.log_likelihood, in_memory.log_likelihood, rtol=1e-12)
    assert np.all(np.isfinite(in_memory.history)) and streamed.n_steps == in_memory.n_steps == 18


def test_same_key_same_fit_another_key_another():
    model, x = GaussianMixture(K, "diag", reg_covar=REG), blobs3()
    fit = lambda seed: fit_online(jax.random.key(seed), model, gmm_start("diag"), x, batch_size=BATCH,
                                  n_epochs=EPOCHS)
    a, b, c = fit(0), fit(0), fit(1)
    for u, v in zip(a.params, b.params, strict=True):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
    np.testing.assert_array_equal(np.asarray(a.history), np.asarray(b.history))
    assert not np.allclose(np.asarray(a.history), np.asarray(c.history), rtol=1e-6)
    assert not np.allclose(np.asarray(a.params.means), np.asarray(c.params.means), rtol=1e-8)


# ---------------------------------------------------------------------------------------------------
# 4. Mini-batch k-means; 5. batch EM


def inertia(x, centers):
    return float(np.sum(np.min(((x[:, None, :] - centers[None]) ** 2).sum(-1), axis=1)))


def test_kmeans_online_is_minibatch_kmeans():
    n, batch_size, epochs = 20_000, 1000, 3
    x, _ = make_blobs(n_samples=n, centers=8, n_features=2, cluster_std=1.0, random_state=0)
    init, _ = kmeans_plusplus(x, 8, random_state=0)
    sk = MiniBatchKMeans(8, init=init, n_init=1, batch_size=batch_size, max_iter=epochs, tol=0.0,
                         max_no_improvement=None, reassignment_ratio=0.0, random_state=0).fit(x)
    ours = fit_online(jax.random.key(0), KMeans(8), KMeansParams(init), x, batch_size=batch_size, n_epochs=epochs)
    assert sk.n_steps_ == ours.n_steps == epochs * n // batch_size
    sk_inertia, our_inertia = inertia(x, sk.cluster_centers_), inertia(x, np.asarray(ours.params.centers))
    assert abs(our_inertia - sk_inertia) <= 0.01 * sk_inertia
    assert our_inertia < 0.9 * inertia(x, init)  # it moved


def test_online_em_approaches_batch_em():
    x, start = blobs3(), gmm_start("diag")
    model = GaussianMixture(K, "diag", reg_covar=REG)
    batch = fit_em(model, start, x, max_iter=500, tol=1e-10)
    stepwise = fit_online(jax.random.key(0), model, start, x, batch_size=BATCH, n_epochs=6, log_likelihood=True)
    assert abs(float(stepwise.log_likelihood) - float(batch.log_likelihood)) < 1e-2
    np.testing.assert_allclose(np.asarray(stepwise.params.means), np.asarray(batch.params.means), atol=0.1)


# ---------------------------------------------------------------------------------------------------
# 6. Bad input


@pytest.mark.parametrize("argument, value", [
    ("batch_size", 0), ("batch_size", N + 1), ("n_epochs", 0), ("kappa", 0.5),
    ("kappa", 1.01), ("kappa", -1.0), ("t0", -0.1), ("t0", float("nan")),
])
def test_bad_arguments_raise_value_errors_naming_them(argument, value):
    kwargs = {"batch_size": BATCH, "n_epochs": 1, argument: value}
    with pytest.raises(ValueError, match=argument):
        fit_online(jax.random.key(0), GaussianMixture(K, "diag"), gmm_start("diag"), blobs3(), **kwargs)


@dataclasses.dataclass(frozen=True)
class NoBlend:
    """A Gaussian mixture through the required protocol only: statistics with a shared reference, no blend."""

    inner: GaussianMixture

    @property
    def n_components(self):
        return self.inner.n_components

    def check(self, params, x):
        return self.inner.check(params, x)

    def summarize(self, params, x, weights):
        return self.inner.summarize(params, x, weights)

    def m_step(self, stats):
        return self.inner.m_step(stats)

    def from_responsibilities(self, x, responsibilities, weights):
        return self.inner.from_responsibilities(x, responsibilities, weights)


def test_shared_reference_without_blend_is_a_type_error():
    model = NoBlend(GaussianMixture(K, "diag"))
    assert isinstance(model, jaxmix.protocol.Family) and not isinstance(model, jaxmix.protocol.Stepwise)
    with pytest.raises(TypeError, match="blend"):
        fit_online(jax.random.key(0), model, gmm_start("diag"), blobs3(), batch_size=BATCH)


# ---------------------------------------------------------------------------------------------------
# 7. Checkpoints

# the shapes and model of the tests above (compiled once); 9 steps an epoch, 360 in all
CHECKPOINTED = dict(batch_size=BATCH, n_epochs=40, kappa=0.6, t0=2.0)
CHILD = """
    import sys
    import jax
    import numpy as np
    jax.config.update("jax_enable_x64", True)
    from jaxmix import GaussianMixture, GaussianMixtureParams, fit_online
    data = np.load(sys.argv[1])
    start = GaussianMixtureParams(data["weights"], data["means"], data["covariances"])
    fit_online(jax.random.key(5), GaussianMixture(3, "diag", reg_covar={reg}), start, data["x"],
               checkpoint=sys.argv[2], checkpoint_every=1, **{kwargs})
"""


def saved_step(path):
    """The step of the checkpoint at ``path``, or -1 when there is none yet."""
    if not path.exists():
        return -1
    with np.load(path, allow_pickle=False) as saved:
        return int(saved[".step"])


def test_killed_fit_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
    x, start = blobs3(n=N), gmm_start("diag")
    model, key = GaussianMixture(K, "diag", reg_covar=REG), jax.random.key(5)
    np.savez(tmp_path / "data.npz", x=x, **start._asdict())
    (tmp_path / "child.py").write_text(textwrap.dedent(CHILD).format(kwargs=CHECKPOINTED, reg=REG))
    path = tmp_path / "fit.ckpt"
    child = subprocess.Popen([sys.executable, str(tmp_path / "child.py"), str(tmp_path / "data.npz"), str(path)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while saved_step(path) < 3:
            assert child.poll() is None, child.communicate()[0].decode()
            assert time.monotonic() < deadline, "the child wrote no checkpoint of step 3 in 120 s"
            time.sleep(0.002)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    n_steps = CHECKPOINTED["n_epochs"] * (N // CHECKPOINTED["batch_size"])
    killed_at = saved_step(path)
    assert 3 <= killed_at < n_steps  # killed mid-fit
    interrupted = tmp_path / "interrupted.ckpt"
    shutil.copy(path, interrupted)

    steps_run = []  # one entry per step a call runs: a resumed fit runs only those after its checkpoint
    step = online._online_step
    monkeypatch.setattr(online, "_online_step", lambda *args: steps_run.append(1) or step(*args))
    resumed = fit_online(key, model, start, x, checkpoint=path, checkpoint_every=10_000, **CHECKPOINTED)
    assert len(steps_run) == n_steps - killed_at
    whole = fit_online(key, model, start, x, checkpoint=tmp_path / "other.ckpt", checkpoint_every=10_000,
                       **CHECKPOINTED)
    assert saved_step(path) == saved_step(tmp_path / "other.ckpt") == n_steps
    for got, want in zip(resumed.params, whole.params, strict=True):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    np.testing.assert_array_equal(np.asarray(resumed.history), np.asarray(whole.history))
    # a finished checkpoint gives its result back, running no step
    steps_run.clear()
    again = fit_online(key, model, start, x, checkpoint=path, **CHECKPOINTED)
    assert steps_run == []
    np.testing.assert_array_equal(np.asarray(again.params.means), np.asarray(whole.params.means))

    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(interrupted.read_bytes()[: interrupted.stat().st_size // 2])
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, step=np.array(3), means=np.zeros((K, D)))
    other = dict(CHECKPOINTED, batch_size=BATCH + 1)
    for bad, kwargs in ((truncated, CHECKPOINTED), (foreign, CHECKPOINTED), (interrupted, other)):
        with pytest.raises(ValueError, match=re.escape(str(bad))):
            fit_online(key, model, start, x, checkpoint=bad, **kwargs)
