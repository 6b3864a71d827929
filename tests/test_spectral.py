"""Spectral clustering (docs/maths.md section 6) against scipy, scikit-learn and exact identities."""

import dataclasses
import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
import scipy.sparse
from hypothesis import given
from hypothesis import strategies as st
from jax.experimental import sparse
from scipy.sparse.csgraph import connected_components
from scipy.sparse.csgraph import laplacian as scipy_laplacian
from scipy.spatial.distance import cdist
from sklearn.cluster import SpectralClustering
from sklearn.datasets import make_blobs, make_circles, make_moons
from sklearn.manifold import spectral_embedding as sklearn_spectral_embedding
from sklearn.metrics import adjusted_rand_score
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.neighbors import kneighbors_graph

from jaxmix.clustering.kmeans import KMeans
from jaxmix.inference.restarts import fit
from jaxmix.spectral import (
    SpectralResult,
    default_gamma,
    default_neighbors,
    indicator_matrix,
    knn_affinity,
    laplacian,
    normalized_cut,
    predict,
    ratio_cut,
    rbf_affinity,
    spectral_clustering,
    spectral_embedding,
)
from jaxmix.spectral.affinity import _knn_graph
from jaxmix.spectral.components import dense_components, knn_components
from jaxmix.spectral.laplacians import degrees, laplacian_times

DATA = {
    "moons": lambda n, seed: make_moons(n, noise=0.06, random_state=seed),
    "circles": lambda n, seed: make_circles(n, noise=0.05, factor=0.5, random_state=seed),
}


def max_angle(a, b):
    """The largest principal angle between the column spans of a and b (radians)."""
    return float(np.max(scipy.linalg.subspace_angles(np.asarray(a, np.float64), np.asarray(b, np.float64))))


def random_graph(seed, m, density=0.5):
    """A symmetric non-negative m x m affinity with zero diagonal and random zeros (float64)."""
    rng = np.random.default_rng(seed)
    upper = np.triu(rng.uniform(0.1, 2.0, (m, m)) * (rng.uniform(size=(m, m)) < density), 1)
    return upper + upper.T


def to_bcoo(w):
    rows, cols = np.nonzero(w)
    return sparse.BCOO((jnp.asarray(w[rows, cols]), jnp.asarray(np.stack([rows, cols], 1))), shape=w.shape)


# -- clustering -------------------------------------------------------------------------------------
@pytest.mark.parametrize("data", sorted(DATA))
@pytest.mark.parametrize("affinity", ["rbf", "knn"])
def test_clusters_what_kmeans_cannot_and_predicts_held_out_points(data, affinity):
    x, y = DATA[data](400, 0)
    x_new, y_new = DATA[data](200, 1)
    result = spectral_clustering(jax.random.key(0), x, 2, affinity=affinity)
    kmeans = fit(jax.random.key(0), KMeans(2), x, n_init=10, init="kmeans++").best.params
    assert adjusted_rand_score(y, np.asarray(result.labels)) >= 0.95
    assert adjusted_rand_score(y, np.asarray(KMeans(2).predict(kmeans, x))) < 0.5
    assert adjusted_rand_score(y_new, np.asarray(predict(result, x_new))) >= 0.95


def test_predict_reproduces_the_training_labels():
    x, _ = DATA["moons"](400, 0)
    result = spectral_clustering(jax.random.key(0), x, 2, affinity="rbf", kind="random_walk")
    assert adjusted_rand_score(np.asarray(result.labels), np.asarray(predict(result, x))) >= 0.99



@pytest.mark.parametrize("affinity", ["rbf", "knn"])
def test_result_is_a_pytree_of_arrays_that_leaves_jit_and_still_predicts(affinity):
    x, _ = DATA["moons"](300, 0)
    x_new, _ = DATA["moons"](100, 1)
    result = spectral_clustering(jax.random.key(0), x, 2, affinity=affinity, kind="random_walk")
    leaves = jax.tree_util.tree_leaves(result)
    assert len(leaves) == 6 and all(isinstance(leaf, jax.Array) for leaf in leaves)
    assert (result.n_clusters, result.kind, result.affinity) == (2, "random_walk", affinity)
    if affinity == "rbf":
        assert result.gamma == default_gamma(x.astype(np.float32))
    returned = jax.jit(lambda r: r)(result)
    assert isinstance(returned, SpectralResult)
    assert jax.tree_util.tree_structure(returned) == jax.tree_util.tree_structure(result)
    rebuilt = jax.jit(lambda r, scale: dataclasses.replace(r, centers=r.centers * scale))(result, 1.0)
    for out in (returned, rebuilt):
        np.testing.assert_array_equal(predict(out, x_new), predict(result, x_new))

def test_one_cluster_labels_every_point_zero():
    x, _ = make_blobs(60, centers=2, random_state=0)
    result = spectral_clustering(jax.random.key(0), x, 1, affinity="knn", n_neighbors=8)
    assert result.eigenvalues.shape == (1,) and abs(float(result.eigenvalues[0])) < 1e-5  # the constant mode
    np.testing.assert_array_equal(result.labels, np.zeros(60))
    np.testing.assert_array_equal(predict(result, x[:7] + 0.1), np.zeros(7))


def test_agrees_with_kmeans_on_blobs():
    x, _ = make_blobs(400, centers=3, cluster_std=0.6, random_state=0)
    result = spectral_clustering(jax.random.key(0), x, 3)
    kmeans = fit(jax.random.key(0), KMeans(3), x, n_init=10, init="kmeans++").best.params
    assert adjusted_rand_score(np.asarray(KMeans(3).predict(kmeans, x)), np.asarray(result.labels)) >= 0.95


def test_large_graph_path_landmark_start_and_lobpcg():
    """m above the dense limit: sparse kNN graph, landmark start, LOBPCG, and the same clusters.

    The kd-tree backend runs on the points in kd-tree order and returns its results in x's order: the
    same eigenvectors as the brute backend, which keeps x's order, and predict(x) gives the labels back.
    """
    x, y = DATA["moons"](2100, 0)
    result = spectral_clustering(jax.random.key(0), x, 2, affinity="knn")
    assert adjusted_rand_score(y, np.asarray(result.labels)) >= 0.95
    assert adjusted_rand_score(np.asarray(result.labels), np.asarray(predict(result, x))) >= 0.99
    in_order = spectral_clustering(jax.random.key(0), x, 2, affinity="knn", algorithm="brute")
    assert max_angle(result.basis, in_order.basis) < 0.01  # 5e-4 here; 1.57 for rows out of order


@pytest.mark.parametrize(("affinity", "remedy"), [("knn", "increase n_neighbors"), ("rbf", "decrease gamma")])
def test_more_graph_components_than_clusters_warns_and_as_many_does_not(affinity, remedy):
    """Three blobs far apart: three connected components, arbitrary with 2 clusters, the clusters with 3."""
    kwargs = {"n_neighbors": 5} if affinity == "knn" else {"gamma": 1.0}
    x, _ = make_blobs(40, centers=[[0, 0], [20, 0], [40, 0]], cluster_std=0.5, random_state=0)
    assert connected_components(kneighbors_graph(x, 5), directed=False)[0] == 3
    with pytest.warns(UserWarning, match=f"3 connected components, more than n_clusters=2.*{remedy}"):
        spectral_clustering(jax.random.key(0), x, 2, affinity=affinity, **kwargs)
    x, y = make_blobs(90, centers=[[0, 0], [20, 0], [40, 0]], cluster_std=0.5, random_state=0)
    assert connected_components(kneighbors_graph(x, 5), directed=False)[0] == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = spectral_clustering(jax.random.key(0), x, 3, affinity=affinity, **kwargs)
    assert adjusted_rand_score(y, np.asarray(result.labels)) == 1.0


@given(seed=st.integers(0, 2**31 - 1), m=st.integers(1, 30), density=st.floats(0.0, 0.2))
def test_dense_component_count_matches_scipy(seed, m, density):
    w = random_graph(seed, m, density)
    assert dense_components(jnp.asarray(w)) == connected_components(w, directed=False)[0]


@given(seed=st.integers(0, 2**31 - 1), m=st.integers(2, 40), k=st.integers(1, 3))
def test_knn_component_count_matches_scipy(seed, m, k):
    """Neighbour lists (m, k) with some zero weights (underflowed edges, not edges)."""
    rng = np.random.default_rng(seed)
    index = rng.integers(0, m, size=(m, k))
    a = rng.uniform(size=(m, k)) * (rng.uniform(size=(m, k)) < 0.7)
    keep = a.ravel() > 0
    rows, cols = np.repeat(np.arange(m), k)[keep], index.ravel()[keep]
    graph = scipy.sparse.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(m, m))
    assert knn_components(index, a) == connected_components(graph + graph.T, directed=False)[0]


# -- affinities -------------------------------------------------------------------------------------
def test_rbf_affinity_matches_sklearn_with_zero_diagonal(x64):
    x = np.random.default_rng(0).normal(size=(30, 3))
    expected = rbf_kernel(x, gamma=0.3) - np.eye(30)
    np.testing.assert_allclose(rbf_affinity(x, gamma=0.3), expected, atol=1e-12)
    np.testing.assert_allclose(rbf_affinity(x, sigma=(1 / 0.6) ** 0.5), expected, atol=1e-12)


@pytest.mark.parametrize("n_features", [2, 20])  # cKDTree, and the blockwise JAX search above 16 features
def test_knn_affinity_matches_sklearn(x64, n_features):
    x = np.random.default_rng(1).normal(size=(120, n_features))
    a = kneighbors_graph(x, 7, mode="connectivity", include_self=False)
    expected = (0.5 * (a + a.T)).toarray()
    w = knn_affinity(x, n_neighbors=7)
    assert isinstance(w, sparse.BCOO) and w.nse == 2 * 120 * 7
    np.testing.assert_allclose(w.todense(), expected, atol=1e-12)
    distances = kneighbors_graph(x, 7, mode="distance", include_self=False)
    weighted = distances.copy()
    weighted.data = np.exp(-0.2 * distances.data**2)
    np.testing.assert_allclose(knn_affinity(x, n_neighbors=7, mode="distance", gamma=0.2).todense(),
                               (0.5 * (weighted + weighted.T)).toarray(), atol=1e-12)



@pytest.mark.parametrize("algorithm", ["kdtree", "brute"])
def test_repeated_points_are_neighbours_at_distance_zero_but_never_their_own(x64, algorithm):
    """scikit-learn's rule: a point's copies are its neighbours, itself never, even past n_neighbors copies."""
    def merged(w):  # the two copies x[0] = x[1] as one vertex: which copy ties for a third point's k-th is arbitrary
        w = np.array(w)
        w[:, 0] += w[:, 1]
        w[0] += w[1]
        return np.delete(np.delete(w, 1, axis=0), 1, axis=1)

    x = np.random.default_rng(5).normal(size=(60, 2))
    x[1] = x[0]
    a = kneighbors_graph(x, 5, include_self=False)
    w = np.asarray(knn_affinity(x, n_neighbors=5, algorithm=algorithm).todense())
    assert w[0, 1] == w[1, 0] == 1.0
    np.testing.assert_allclose(merged(w), merged((0.5 * (a + a.T)).toarray()), atol=1e-12)
    x[10:18] = x[9]  # nine copies of one point: each row's 5 neighbours are 5 of its 8 other copies
    w = np.asarray(knn_affinity(x, n_neighbors=5, algorithm=algorithm).todense())
    assert np.all(np.diag(w) == 0) and np.sum(2 * w[9:18, 9:18]) == 2 * 9 * 5


@pytest.mark.parametrize("n_features", [2, 20])
def test_spectral_clusterings_compressed_knn_graph_is_sklearns(x64, n_features):
    """The BCSR graph of spectral_clustering (A + A^T merged by scipy) against scikit-learn's kneighbors_graph."""
    x = np.random.default_rng(1).normal(size=(120, n_features))
    algorithm = "kdtree" if n_features <= 16 else "brute"
    for mode, gamma in (("connectivity", None), ("distance", 0.2)):
        a = kneighbors_graph(x, 7, mode=mode, include_self=False)
        if gamma is not None:
            a.data = np.exp(-gamma * a.data**2)
        w, used, count_components = _knn_graph(x, 7, mode, gamma, algorithm)
        assert isinstance(w, sparse.BCSR) and used == gamma and w.nse == (a + a.T).nnz < 2 * 120 * 7
        np.testing.assert_allclose(w.todense(), (0.5 * (a + a.T)).toarray(), atol=1e-12)
        assert count_components() == connected_components(a, directed=False)[0]


@pytest.mark.parametrize("n_features", [3, 20])
def test_kdtree_and_brute_backends_give_the_same_affinity(x64, n_features):
    x = np.random.default_rng(3).normal(size=(80, n_features))
    for kwargs in ({}, {"mode": "distance"}, {"mode": "distance", "gamma": 0.3, "include_self": True}):
        tree, brute = (np.asarray(knn_affinity(x, n_neighbors=6, algorithm=algorithm, **kwargs).todense())
                       for algorithm in ("kdtree", "brute"))
        np.testing.assert_allclose(tree, brute, rtol=0, atol=1e-12)
    gammas = [default_gamma(x, algorithm=algorithm) for algorithm in ("kdtree", "brute")]
    assert gammas[0] == pytest.approx(gammas[1], rel=1e-12)
    x_new = np.random.default_rng(4).normal(size=(30, n_features))
    results = [spectral_clustering(jax.random.key(0), x, 2, affinity="knn", n_neighbors=6, algorithm=a)
               for a in ("kdtree", "brute")]
    assert [r.algorithm for r in results] == ["kdtree", "brute"]
    np.testing.assert_array_equal(results[0].labels, results[1].labels)
    np.testing.assert_array_equal(predict(results[0], x_new), predict(results[1], x_new))


def test_kdtree_without_scipy_raises_import_error_and_auto_falls_back_to_brute(monkeypatch):
    x = np.random.default_rng(5).normal(size=(40, 2)).astype(np.float32)
    expected = knn_affinity(x, n_neighbors=5, algorithm="brute").todense()
    monkeypatch.setitem(sys.modules, "scipy.spatial", None)  # `from scipy.spatial import cKDTree` now fails
    for call in (lambda: knn_affinity(x, n_neighbors=5, algorithm="kdtree"),
                 lambda: default_gamma(x, algorithm="kdtree"),
                 lambda: spectral_clustering(jax.random.key(0), x, 2, algorithm="kdtree")):
        with pytest.raises(ImportError, match=r"algorithm='kdtree' needs scipy: install jaxmix\[spectral\]"):
            call()
    np.testing.assert_array_equal(knn_affinity(x, n_neighbors=5).todense(), expected)
    assert spectral_clustering(jax.random.key(0), x, 2).algorithm == "brute"

EPS32 = float(np.finfo(np.float32).eps)


def far_clusters(d, offset=1e4, separation=1e4, m=60, seed=0):
    """float32 points: two unit-spread clusters ``separation`` apart, all ``offset`` from the origin."""
    z = np.random.default_rng(seed).normal(size=(m, d))
    z[m // 2:, 0] += separation
    return (z + offset).astype(np.float32)


def rbf_reference(x, gamma):
    """exp(-gamma ||x_i - x_l||^2) with a zero diagonal, in float64 from scipy's cdist."""
    w = np.exp(-gamma * cdist(x.astype(np.float64), x.astype(np.float64), "sqeuclidean"))
    np.fill_diagonal(w, 0.0)
    return w


def test_rbf_affinity_of_far_float32_clusters_matches_float64_cdist():
    """||a||^2 - 2 a.b + ||b||^2 around a shared point cancels in float32 (errors up to 0.86 before)."""
    x = far_clusters(3)
    w = rbf_affinity(x, gamma=0.5)
    assert w.dtype == jnp.float32
    np.testing.assert_allclose(w, rbf_reference(x, 0.5), rtol=0, atol=20 * EPS32)


@given(offset=st.floats(-1e4, 1e4), log_scale=st.floats(-2, 2), separation=st.floats(0, 1e4))
def test_rbf_affinity_float32_error_is_a_few_eps_at_any_offset_and_scale(offset, log_scale, separation):
    scale = 10.0**log_scale
    z = np.random.default_rng(0).normal(size=(24, 3)) * scale
    z[12:, 1] += separation
    x = (z + offset).astype(np.float32)
    gamma = 0.25 / scale**2  # within-cluster weights of order exp(-1.5)
    np.testing.assert_allclose(rbf_affinity(x, gamma=gamma), rbf_reference(x, gamma), rtol=0, atol=20 * EPS32)


@pytest.mark.parametrize("n_features", [3, 20])  # cKDTree, and the blockwise JAX search above 16 features
def test_knn_distance_weights_of_far_float32_clusters_match_float64_cdist(n_features):
    x = far_clusters(n_features)
    squared = cdist(x.astype(np.float64), x.astype(np.float64), "sqeuclidean")
    np.fill_diagonal(squared, np.inf)
    nearest = np.argsort(squared, axis=1)[:, :5]
    a = np.zeros_like(squared)
    gamma = 0.5 / n_features
    np.put_along_axis(a, nearest, np.exp(-gamma * np.take_along_axis(squared, nearest, axis=1)), axis=1)
    w = knn_affinity(x, n_neighbors=5, mode="distance", gamma=gamma).todense()
    np.testing.assert_allclose(w, 0.5 * (a + a.T), rtol=0, atol=20 * EPS32)


def test_clustering_and_predict_of_far_float32_clusters():
    """Three clusters: two 2 apart (the cut that matters), the third 2.8e4 away; float32 throughout."""
    rng = np.random.default_rng(0)
    centers = np.array([[1e4, 1e4], [1e4 + 2, 1e4], [-1e4, -1e4]])
    y, y_new = np.repeat(np.arange(3), 30), np.repeat(np.arange(3), 20)
    x = (centers[y] + 0.3 * rng.normal(size=(90, 2))).astype(np.float32)
    x_new = (centers[y_new] + 0.3 * rng.normal(size=(60, 2))).astype(np.float32)
    result = spectral_clustering(jax.random.key(0), x, 3, gamma=1.0)
    assert adjusted_rand_score(y, np.asarray(result.labels)) == 1.0  # 0.51 with the expansion
    assert adjusted_rand_score(y_new, np.asarray(predict(result, x_new))) == 1.0


@pytest.mark.parametrize("n_features", [2, 20])
def test_knn_affinity_with_self_loops_is_sklearn_spectral_clusterings_affinity_matrix(x64, n_features):
    x = np.random.default_rng(2).normal(size=(150, n_features))
    model = SpectralClustering(2, affinity="nearest_neighbors", n_neighbors=7, random_state=0)
    expected = model.fit(x).affinity_matrix_
    w = np.asarray(knn_affinity(x, n_neighbors=7, include_self=True).todense())
    np.testing.assert_array_equal(np.diag(w), 1.0)
    np.testing.assert_allclose(w, expected.toarray(), rtol=0, atol=1e-15)
    distances = kneighbors_graph(x, 7, mode="distance", include_self=True)  # the diagonal stored as 0
    distances.data = np.exp(-0.2 * distances.data**2)
    weighted = knn_affinity(x, n_neighbors=7, mode="distance", gamma=0.2, include_self=True)
    np.testing.assert_allclose(weighted.todense(), (0.5 * (distances + distances.T)).toarray(), atol=1e-12)
    np.testing.assert_array_equal(knn_affinity(x[:7], n_neighbors=7, include_self=True).todense(), 1.0)  # k=m


# -- Laplacians -------------------------------------------------------------------------------------
@pytest.mark.parametrize("as_sparse", [False, True])
def test_laplacians_match_definitions_and_scipy(x64, as_sparse):
    w = random_graph(0, 12)
    w[3, :] = w[:, 3] = 0.0  # an isolated vertex
    d = w.sum(axis=1)
    s = np.where(d > 0, 1 / np.sqrt(np.where(d > 0, d, 1)), 0.0)
    lap = np.diag(d) - w
    expected = {"unnormalized": lap, "symmetric": s[:, None] * lap * s[None, :], "random_walk": (s**2)[:, None] * lap}
    for kind, reference in expected.items():
        got = laplacian(to_bcoo(w) if as_sparse else w, kind)
        got = np.asarray(got.todense() if as_sparse else got)
        assert np.all(np.isfinite(got))
        np.testing.assert_allclose(got, reference, atol=1e-12)
    np.testing.assert_allclose(expected["unnormalized"], scipy_laplacian(w), atol=1e-12)
    normed = scipy_laplacian(w, normed=True)
    normed[3, 3] = 0.0  # scipy puts 1 on an isolated vertex's diagonal; ours is the zero row of D^+1/2 L D^+1/2
    np.testing.assert_allclose(expected["symmetric"], normed, atol=1e-12)


def test_laplacian_times_is_the_product_with_the_laplacian_for_dense_and_sparse_graphs(x64):
    """L u without forming L, for a dense, a BCOO and a BCSR w with an isolated vertex, against the definitions."""
    w = random_graph(1, 12)
    w[5, :] = w[:, 5] = 0.0
    u = np.random.default_rng(2).normal(size=(12, 3))
    d = w.sum(axis=1)
    s = np.where(d > 0, 1 / np.sqrt(np.where(d > 0, d, 1)), 0.0)
    lap = np.diag(d) - w
    expected = {"unnormalized": lap, "symmetric": s[:, None] * lap * s[None, :], "random_walk": (s**2)[:, None] * lap}
    for graph in (jnp.asarray(w), to_bcoo(w), sparse.BCSR.fromdense(jnp.asarray(w))):
        for kind, reference in expected.items():
            np.testing.assert_allclose(laplacian_times(graph, degrees(graph), kind, u), reference @ u, atol=1e-12)


@given(seed=st.integers(0, 2**31 - 1), m=st.integers(2, 9), density=st.floats(0.1, 1.0))
def test_quadratic_form_and_constant_null_vector(seed, m, density):
    with jax.enable_x64(True):
        w = random_graph(seed, m, density)
        v = np.random.default_rng(seed + 1).normal(size=m)
        lap = np.asarray(laplacian(w))
        expected = 0.5 * np.sum(w * (v[:, None] - v[None, :]) ** 2)
        np.testing.assert_allclose(v @ lap @ v, expected, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(lap @ np.ones(m), 0.0, atol=1e-10)
        assert np.linalg.eigvalsh(lap).min() > -1e-10


@given(seed=st.integers(0, 2**31 - 1), m=st.integers(3, 10), k=st.integers(2, 4))
def test_ratio_cut_is_trace_of_h_l_h(seed, m, k):
    with jax.enable_x64(True):
        rng = np.random.default_rng(seed)
        w = random_graph(seed, m)
        labels = rng.integers(0, k, size=m)
        h = np.asarray(indicator_matrix(labels, k))
        np.testing.assert_allclose(h[:, np.bincount(labels, minlength=k) > 0].T
                                   @ h[:, np.bincount(labels, minlength=k) > 0], np.eye(len(np.unique(labels))),
                                   atol=1e-12)
        direct = sum(w[np.ix_(labels == j, labels != j)].sum() / np.sum(labels == j) for j in np.unique(labels))
        got = float(ratio_cut(w, labels))
        np.testing.assert_allclose(got, direct, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(got, np.trace(h.T @ np.asarray(laplacian(w)) @ h), rtol=1e-10, atol=1e-10)
        d = w.sum(axis=1)
        volume = np.array([d[labels == j].sum() for j in range(k)])
        h_vol = np.eye(k)[labels] / np.sqrt(np.where(volume > 0, volume, 1.0))  # Ncut = Tr(H^T L H), H_ij = vol^-1/2
        np.testing.assert_allclose(float(normalized_cut(w, labels)), np.trace(h_vol.T @ (np.diag(d) - w) @ h_vol),
                                   rtol=1e-10, atol=1e-10)


# -- embeddings -------------------------------------------------------------------------------------
def gapped_graph():
    """A kNN graph of three separated blobs joined by weak rbf edges: a clear gap after 3 eigenvalues."""
    x, _ = make_blobs(150, centers=3, cluster_std=0.8, random_state=2)
    return np.asarray(knn_affinity(x, n_neighbors=8).todense()) + 1e-3 * rbf_kernel(x, gamma=0.05) * (1 - np.eye(150))


def normalize_rows(u):
    return u / np.linalg.norm(u, axis=1, keepdims=True)


@pytest.mark.parametrize("method", ["dense", "lobpcg"])
@pytest.mark.parametrize("as_sparse", [False, True])
def test_embedding_spans_scipy_and_sklearn_eigenvectors(x64, method, as_sparse):
    w = gapped_graph()
    d = w.sum(axis=1)
    graph = to_bcoo(w) if as_sparse else w
    values_l, vectors_l = scipy.linalg.eigh(np.diag(d) - w, subset_by_index=[0, 2])
    values_rw, vectors_rw = scipy.linalg.eigh(np.diag(d) - w, np.diag(d), subset_by_index=[0, 2])  # L v = lambda D v
    tol = 1e-6 if method == "dense" else 1e-3
    embed = {kind: spectral_embedding(jax.random.key(0), graph, 3, kind=kind, method=method)
             for kind in ("unnormalized", "random_walk", "symmetric")}
    assert max_angle(embed["unnormalized"][0], vectors_l) < tol
    assert max_angle(embed["random_walk"][0], vectors_rw) < tol
    assert max_angle(embed["symmetric"][0], normalize_rows(np.sqrt(d)[:, None] * vectors_rw)) < tol
    np.testing.assert_allclose(embed["unnormalized"][1], values_l, atol=1e-6 if method == "dense" else 1e-4)
    np.testing.assert_allclose(embed["symmetric"][1], values_rw, atol=1e-6 if method == "dense" else 1e-4)
    adjacency = scipy.sparse.csr_matrix(w) if as_sparse else w
    reference = sklearn_spectral_embedding(adjacency, n_components=3, drop_first=False, random_state=0)
    assert max_angle(embed["random_walk"][0], reference) < max(tol, 1e-5)


def test_embedding_signs_are_deterministic(x64):
    w = gapped_graph()
    first = spectral_embedding(jax.random.key(0), w, 3, kind="unnormalized")[0]
    second = spectral_embedding(jax.random.key(5), w, 3, kind="unnormalized", method="lobpcg")[0]
    assert np.all(np.take_along_axis(np.asarray(second), np.abs(second).argmax(axis=0)[None], 0) > 0)
    np.testing.assert_allclose(first, second, atol=1e-3)


def test_commute_time_kernel_pca_spans_laplacian_eigenmaps(x64):
    w = gapped_graph()
    kernel = np.linalg.pinv(np.diag(w.sum(axis=1)) - w)  # K = L^+, already centred: L^+ 1 = 0
    _, top = scipy.linalg.eigh(kernel, subset_by_index=[len(w) - 2, len(w) - 1])  # kernel PCA, top 2
    # drop the constant eigenvector
    eigenmaps = spectral_embedding(jax.random.key(0), w, 3, kind="unnormalized")[0][:, 1:]
    assert max_angle(eigenmaps, top) < 1e-6


# -- bad input --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda x: spectral_clustering(jax.random.key(0), x, 0), "n_clusters"),
        (lambda x: spectral_clustering(jax.random.key(0), x, 41), "n_clusters"),
        (lambda x: spectral_clustering(jax.random.key(0), x.at[3, 0].set(jnp.nan), 2), "x"),
        (lambda x: spectral_clustering(jax.random.key(0), x, 2, gamma=1e9), "non-isolated.*decrease gamma"),
        (lambda x: spectral_clustering(jax.random.key(0), x, 2, affinity="cosine"), "affinity"),
        (lambda x: laplacian(jnp.triu(rbf_affinity(x))), "symmetric"),
        (lambda x: laplacian(-rbf_affinity(x)), "non-negative"),
        (lambda x: laplacian(to_bcoo(np.triu(np.asarray(rbf_affinity(x))))), "symmetric"),
        (lambda x: spectral_embedding(None, rbf_affinity(x), 2, method="lobpcg"), "key"),
        (lambda x: spectral_clustering(jax.random.key(0), x, 2, kind="laplacian"), "kind"),
        (lambda x: knn_affinity(x, algorithm="ball_tree"), "algorithm"),
        (lambda x: predict(spectral_clustering(jax.random.key(0), x, 2), x[:, :1]), "x_new"),
        (lambda x: knn_affinity(x, n_neighbors=1, include_self=True), "n_neighbors must be >= 2 with"),
        (lambda x: knn_affinity(x, n_neighbors=41, include_self=True), "n_neighbors must be <= the"),
    ],
)
def test_bad_input_raises_value_error_naming_it(call, name):
    x = jnp.asarray(make_blobs(40, centers=2, random_state=0)[0], jnp.float32)
    with pytest.raises(ValueError, match=name):
        call(x)


def test_default_neighbours_grow_like_log2_m():
    assert [default_neighbors(m) for m in (5, 11, 1024, 1025, 200_000, 1_000_000)] == [4, 10, 10, 11, 18, 20]
    x, _ = make_moons(300, noise=0.06, random_state=0)
    result = spectral_clustering(jax.random.key(0), x, 2, affinity="knn")
    assert result.n_neighbors == 10


@pytest.mark.parametrize("labels", [[0, -1, 1, 2], [0, 1, 3, 2]])
def test_indicator_matrix_rejects_labels_outside_its_columns(labels):
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\) for n_clusters=3, got values from"):
        indicator_matrix(np.array(labels), 3)
    h = jax.jit(lambda labels: indicator_matrix(labels, 3))(jnp.array([0, 2, 2, 0]))  # traced: no value check
    np.testing.assert_allclose(h, np.eye(3)[[0, 2, 2, 0]] / np.sqrt(2.0))


@pytest.mark.parametrize("cut", [ratio_cut, normalized_cut])
@pytest.mark.parametrize("labels", [np.array(["a", "b", "a", "b"]), list("abab"), np.array([0.0, 1, 0, 1])],
                         ids=["numpy-strings", "list-of-strings", "floats"])
def test_cuts_reject_non_integer_labels_with_a_type_error(cut, labels):
    w = random_graph(0, 4, density=1.0)
    with pytest.raises(TypeError, match=r"labels must be integer cluster indices in \[0, K\)"):
        cut(w, labels)
    indices = np.unique(np.asarray(labels), return_inverse=True)[1]  # the remedy the message gives
    assert float(cut(w, indices)) == float(cut(w, np.array([0, 1, 0, 1])))


@pytest.mark.parametrize(
    "call",
    [
        lambda x: rbf_affinity(x, gamma=1.0),
        lambda x: rbf_affinity(x),
        lambda x: knn_affinity(x, n_neighbors=2),
        lambda x: spectral_clustering(jax.random.key(0), x, 2),
        lambda x: spectral_clustering(jax.random.key(0), x, 2, affinity="knn", n_neighbors=2),
        lambda x: predict(spectral_clustering(jax.random.key(0), np.arange(12.0).reshape(6, 2), 2, gamma=0.1),
                          x),
    ],
)
def test_data_without_features_raises_value_error(call):
    """rbf_affinity returned a matrix of ones (every distance 0) for 0 features."""
    with pytest.raises(ValueError, match=r"must hold at least one feature, got shape \(6, 0\)"):
        call(np.zeros((6, 0), np.float32))


@pytest.mark.parametrize("affinity", ["rbf", "knn"])
def test_int64_data_beyond_int32_is_not_wrapped(affinity):
    """Three clusters of spread 1e7 around 0, 2^31 (where int32 wraps to -2^31) and 6e9, as int64, x64 off.

    The float64 copy of the data takes the float path; the int32 wrap split the middle cluster (ARI 0.3, 0.6).
    """
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 30)
    centers = np.array([0, 2**31, 6 * 10**9], np.int64)
    x = centers[y, None] + rng.integers(-10**7, 10**7, size=(90, 2), dtype=np.int64)
    labels = np.asarray(spectral_clustering(jax.random.key(0), x, 3, affinity=affinity).labels)
    reference = spectral_clustering(jax.random.key(0), x.astype(np.float64), 3, affinity=affinity).labels
    assert adjusted_rand_score(y, labels) == 1.0
    np.testing.assert_array_equal(labels, reference)
