"""Initialization of every family through the protocol's ``from_responsibilities``.

Center-based methods pick K centers and start the family from the M-step of
the hard assignment of each point to its nearest center (scikit-learn's
scheme for mixtures; for k-means, one Lloyd step from the centers):
``"kmeans++"`` (greedy k-means++), ``"random_from_data"`` (K distinct data
points) and ``"kmeans"``, scikit-learn's ``KMeans(n_init=1)``: k-means++, then
Lloyd's iterations run to convergence (``lloyd``). ``"random"`` starts from
random responsibilities (scikit-learn's ``init_params="random"``).
docs/maths.md section 11.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

from jaxmix import _validation as v
from jaxmix._distances import squared_distances
from jaxmix.clustering.centroids import nearest_centers
from jaxmix.clustering.kmeans import KMeans, KMeansParams
from jaxmix.inference.driver import source_sample
from jaxmix.inference.em import DEFAULT_CHUNK_SIZE, EMProgram, chunked
from jaxmix.inference.sharding import fit_data, row_shards
from jaxmix.inference.sources import SAMPLE_ROWS, RowSource, is_source, source_weights
from jaxmix.protocol import Family, require, stopping_tolerance

METHODS = ("kmeans++", "random_from_data", "random", "kmeans")
LLOYD_TOL = 1e-4  # method="kmeans": scikit-learn's KMeans tol, relative to the mean feature variance
LLOYD_MAX_ITER = 300  # and its max_iter


def initialize(key, model, x, method: str = "kmeans", sample_weight=None):
    """Initial parameters of ``model`` for data x by ``method`` (see the module docstring).

    x may be a source (``jaxmix.inference.sources``): the parameters are then
    those of a sample of at most ``SAMPLE_ROWS`` rows drawn with the key (all
    rows when they fit). Works for any family on the protocol (``jaxmix.protocol.Family``): the
    parameters are ``model.from_responsibilities(x, r, w)`` of the chosen
    responsibilities r. The same key gives the same parameters.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxmix import GaussianMixture, initialize
      >>> x = jnp.array([[0.0], [0.1], [5.0], [5.2]])
      >>> params = initialize(jax.random.key(0), GaussianMixture(2), x)
      >>> [round(m, 2) for m in sorted(params.means.ravel().tolist())]
      [0.05, 5.1]
    """
    require(model, Family, "initialize")
    v.check_choice("method", method, METHODS)
    if is_source(x):
        source = RowSource(x)
        return _initial_params(model, key, *source_sample(model, source, source_weights(sample_weight, source),
                                                          sample_key(key, source)), method)
    rows = row_shards(x)
    _, x = model.check(None, x)
    return _initial_params(model, key, *fit_data(model, x, sample_weight, rows), method, rows)


def sample_key(key, source):
    """The key that draws a source's initialization sample (None when all its rows are used, so that a
    source that fits in one sample starts exactly as the same data in memory)."""
    return None if source.n_rows <= SAMPLE_ROWS else jax.random.fold_in(key, 1)


def initial_params(model, key, x, weights, method, rows=None):
    """Unchecked initial parameters for per-point weights (N,); pure in ``key``, so it vmaps over keys.

    With ``rows`` (``jaxmix.inference.sharding.RowShards``: x's rows spread over devices) the
    same parameters, replicated, from the rows each device holds.
    """
    k, n = model.n_components, x.shape[0]
    if method == "random":
        resp = jax.random.uniform(key, (n, k), dtype=x.dtype)
        resp = resp / jnp.sum(resp, axis=1, keepdims=True)
    else:
        centers = initial_centers(key, x, k, method, weights, rows)
        resp = jax.nn.one_hot(nearest_centers(x.T, centers), k, dtype=x.dtype)
    if rows is None:
        return model.from_responsibilities(x, resp, weights)
    return rows.replicated(rows.from_responsibilities(model, x, resp, weights))


_initial_params = EMProgram(initial_params, ("model", "method", "rows"))  # compiled as EM is (jaxmix.inference.em)


def initial_centers(key, x, k, method, weights, rows=None):
    """K initial centers (K, D) by ``method``, for per-point weights (N,)."""
    if method == "kmeans++":
        return kmeans_plusplus(key, x, k, weights, rows)
    if method == "random_from_data":
        p = weights / jnp.sum(weights)
        if rows is None:
            return x[jax.random.choice(key, x.shape[0], (k,), replace=False, p=p)]
        return rows.take(x, rows.choice(key, p, k))
    return lloyd(kmeans_plusplus(key, x, k, weights, rows), x, weights, rows)


def lloyd(centers, x, w, rows=None):
    """Lloyd's iterations from ``centers`` (K, D) until they settle, as scikit-learn's ``KMeans`` runs them.

    Each iteration moves every center to the w-weighted mean of the points
    nearest to it (``KMeans``'s E- and M-step, which relocates an empty
    center); the loop stops after the iteration whose move
    sum_k ||c_k' - c_k||^2 is <= tol, with tol = LLOYD_TOL * (1/D) sum_d Var_w(x_d)
    (scikit-learn's relative rule, its variance weighted by w:
    ``KMeans._tolerance_scale``), or after LLOYD_MAX_ITER iterations. Unchanged
    assignments move the centers by 0 up to rounding (scikit-learn's "strict
    convergence").
    """
    model = KMeans(centers.shape[0])
    xb, wb, summarize = chunked(x, w, DEFAULT_CHUNK_SIZE, rows)
    tol = stopping_tolerance(model, LLOYD_TOL, x, w)

    def cond(carry):
        i, _, move = carry
        return (i < LLOYD_MAX_ITER) & (move > tol)

    def body(carry):
        i, centers, _ = carry
        moved = model.m_step(summarize(model, KMeansParams(centers), xb, wb)[0]).centers
        return i + 1, moved, jnp.sum(jnp.square(moved - centers))

    return jax.lax.while_loop(cond, body, (0, centers, jnp.array(jnp.inf, x.dtype)))[1]


def kmeans_plusplus(key, x, k, w, rows=None):
    """Greedy k-means++ (Arthur and Vassilvitskii; scikit-learn's variant).

    The first center is a (weighted) random point; each next one is the best,
    by the resulting potential sum_i w_i min_j ||x_i - c_j||^2, of
    2 + floor(log K) candidates drawn with probability proportional to
    w_i D(x_i)^2. Every draw's uniform comes from one ``jax.random.uniform``
    call (K, 2 + floor(log K)) made first, so the program holds one random
    generator (less to compile). With ``rows`` (a ``RowShards``), rows are read
    from the devices that hold them and indices found from per-device sums.
    """
    n_trials = 2 + int(math.log(k))
    xt = x.T
    take = (lambda index: x[index]) if rows is None else functools.partial(rows.take, x)
    draw = sample_proportional if rows is None else rows.sample_proportional
    uniforms = jax.random.uniform(key, (k, n_trials), x.dtype)
    first = take(draw(uniforms[0, :1], w)[0])
    centers = jnp.zeros((k, x.shape[1]), x.dtype).at[0].set(first)
    closest = squared_distances(xt, first[None])[0]

    def add_center(j, carry):
        centers, closest = carry
        potential = w * closest
        candidates = draw(uniforms[j], jnp.where(jnp.sum(potential) > 0, potential, w))
        trial_closest = jnp.minimum(closest, squared_distances(xt, take(candidates)))
        best = jnp.argmin(jnp.sum(w * trial_closest, axis=1))
        return centers.at[j].set(take(candidates[best])), trial_closest[best]

    return jax.lax.fori_loop(1, k, add_center, (centers, closest))[0]


def sample_proportional(u, p):
    """Indices drawn with replacement with probability p_i / sum p (p >= 0, not all 0), one per uniform
    u in [0, 1).

    Inverse-CDF sampling: a binary search of u sum p in the cumulative sum,
    where ``jax.random.categorical`` would draw N Gumbel variates per sample
    (most of the init's time: benchmarks/README.md, "Measurements the code relies on").
    """
    cumulative = jnp.cumsum(p)
    return jnp.minimum(jnp.searchsorted(cumulative, u * cumulative[-1], side="right"), p.shape[0] - 1)
