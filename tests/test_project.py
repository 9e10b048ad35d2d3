"""2-D maps of codes (aelab.project): PCA against scikit-learn, the disk cache, the UMAP layout policy, a large map."""

import time

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.neighbors import KNeighborsClassifier

from aelab import neighbours, project


def blobs(n: int, dim: int = 8, classes: int = 10, seed: int = 0):
    """Well separated Gaussian clusters: any map that keeps neighbourhoods keeps the labels apart."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 10, (classes, dim))
    labels = rng.integers(0, classes, n)
    return (centres[labels] + rng.normal(0, 1, (n, dim))).astype(np.float32), labels


def map_knn(coords, labels):
    return KNeighborsClassifier(5).fit(coords[::2], labels[::2]).score(coords[1::2], labels[1::2])


def test_pca_map_matches_scikit_learn_up_to_sign():
    codes, _ = blobs(500)
    ours = project.PCAProjection().fit(codes)
    theirs = PCA(2).fit(codes)
    for a, b in zip(ours.components_, theirs.components_):
        assert abs(abs(float(np.dot(a, b))) - 1) < 1e-6
    new = codes[:7] + 0.5
    assert np.allclose(np.abs(ours.transform(new)), np.abs(theirs.transform(new)), atol=1e-4)


def test_maps_are_cached_on_disk_and_2d_codes_are_their_own_map():
    codes, _ = blobs(300)
    first, _, hit = project.project_codes(codes, "pca", key_parts=("test-cache", 1))
    again, _, hit2 = project.project_codes(codes, "pca", key_parts=("test-cache", 1))
    assert not hit and hit2 and np.array_equal(first, again)
    other, _, hit3 = project.project_codes(codes, "pca", key_parts=("test-cache", 2))  # another model: refitted
    assert not hit3 and np.allclose(other, first)
    two = codes[:, :2].copy()
    same, seconds, hit4 = project.project_codes(two, "umap")
    assert np.array_equal(same, two) and seconds == 0 and not hit4


def test_a_checkpoints_map_is_found_by_what_its_codes_are_made_from(mnist, tiny_checkpoints):
    """The zoo's shipped maps of its conv models were never found on another machine: they were keyed by the codes'
    bytes, and a conv model's codes differ in their last bits from one CPU to another. A map of a checkpoint's codes
    is keyed by the checkpoint's and the images' contents."""
    from aelab.checkpoints import load_checkpoint

    path = tiny_checkpoints["tiny-conv"]
    model, _ = load_checkpoint(path)
    idx, codes, _ = project.sample_codes(model, mnist, "test", 500)
    source = project.codes_source(path, mnist, "test", idx)
    first, _, hit = project.map_sample(codes, "pca", mnist.name, "test", 500, source=source)
    nudged = codes + np.float32(1e-6) * np.sign(codes)  # another CPU's last bits
    again, _, hit2 = project.map_sample(nudged, "pca", mnist.name, "test", 500, source=source)
    assert not hit and hit2 and np.array_equal(first, again)
    assert project.codes_source(path, mnist, "test", idx) == source  # (the same files: the same key)
    other = project.codes_source(path, mnist, "test", idx[::-1])  # other images (or another checkpoint): refitted
    assert other != source and not project.map_sample(codes, "pca", mnist.name, "test", 500, source=other)[2]


def test_umap_layout_policy():
    umap_map = project.UMAPProjection(seed=3)
    assert umap_map.layout_options(5000) == {"random_state": 3, "n_jobs": 1}  # seeded: the same map every time
    # The page's largest sample (10,000) in 200 epochs, as umap-learn lays out more points: its 500 took 2.3x longer
    assert umap_map.layout_options(10_000) == {"random_state": 3, "n_jobs": 1, "n_epochs": 200}
    assert umap_map.layout_options(project.LARGE_MAP) == {"random_state": 3, "n_jobs": 1, "n_epochs": 200}
    assert umap_map.layout_options(project.LARGE_MAP + 1) == {"n_jobs": -1, "n_epochs": 100, "init": "pca"}
    assert project.UMAPProjection(reproducible=True).layout_options(70000)["random_state"] == 0


def test_umap_neighbour_graph_policy(monkeypatch):
    """Exact neighbours up to LARGE_MAP; above it, for unseeded maps, while NN-descent is not compiled in the process
    (its compilation costs more than the exact graph) and up to EXACT_LIMIT; seeded large maps always NN-descent."""
    rule = project.UMAPProjection().uses_exact_neighbours
    compiled = {"now": False}
    monkeypatch.setattr(project, "nn_descent_compiled", lambda: compiled["now"])
    assert rule(project.LARGE_MAP, seeded=True) and rule(project.LARGE_MAP, seeded=False)
    assert rule(70000, seeded=False) and not rule(70000, seeded=True)
    assert not rule(project.EXACT_LIMIT + 1, seeded=False)
    compiled["now"] = True
    assert rule(project.LARGE_MAP, seeded=False) and not rule(70000, seeded=False)
    assert not project.UMAPProjection(exact_neighbours=False).uses_exact_neighbours(100, seeded=True)
    assert project.UMAPProjection(exact_neighbours=True).uses_exact_neighbours(10 ** 6, seeded=True)


def test_small_umap_maps_are_reproducible_and_keep_clusters():
    codes, labels = blobs(600)
    a = project.UMAPProjection().fit_transform(codes)
    b = project.UMAPProjection().fit_transform(codes)
    assert np.array_equal(a, b)
    assert map_knn(a, labels) > 0.95


def test_a_large_umap_map_takes_the_parallel_layout_and_keeps_clusters(monkeypatch):
    monkeypatch.setattr(project, "LARGE_MAP", 1500)  # (the same path as for 20,001 points, in a fraction of the time)
    codes, labels = blobs(project.LARGE_MAP + 1)
    start = time.perf_counter()
    projection = project.UMAPProjection().fit(codes)
    seconds = time.perf_counter() - start
    coords = projection.umap_.embedding_
    assert projection.umap_.n_epochs == 100 and projection.umap_.random_state is None
    assert isinstance(projection.umap_._knn_search_index, neighbours.ExactNeighbours)  # NN-descent is not compiled
    assert coords.shape == (len(codes), 2) and np.isfinite(coords).all()
    assert map_knn(coords, labels) > 0.95
    print(f"UMAP of {len(codes)} codes, parallel layout: {seconds:.1f} s")


@pytest.mark.parametrize("method", ["pca", "umap"])
def test_new_codes_land_next_to_their_twins(method):
    codes, _ = blobs(400)
    coords, _, _ = project.project_codes(codes, method, use_cache=False)
    placed = project.place_on_map(codes, coords, codes[:20] + 1e-4)
    assert np.allclose(placed, coords[:20], atol=0.05 * np.ptp(coords))


def test_warm_up_compiles_both_layouts_without_error():
    project.warm_up_umap(parallel=True)  # what the app runs (seeded only) and, with NN-descent, the UMAP benchmarks
    assert not project.nn_descent_compiled()  # nor has any test before it (about 50 s of compilation)
    assert project.UMAPProjection(reproducible=False).layout_options(10)["n_jobs"] == -1


def test_exact_neighbours_match_scikit_learn():
    from sklearn.neighbors import NearestNeighbors

    codes, _ = blobs(3000, dim=12)
    codes *= 30  # large norms: the expanded form alone would lose the small distances to rounding
    index = neighbours.ExactNeighbours(codes)
    idx, dist = index.graph(15)
    assert idx.dtype == np.int32 and dist.dtype == np.float32 and idx.shape == dist.shape == (3000, 15)
    assert (idx[:, 0] == np.arange(3000)).all() and (dist[:, 0] == 0).all()  # each point first, at distance 0
    theirs_d, theirs_i = NearestNeighbors(n_neighbors=15).fit(codes).kneighbors(codes)
    assert np.allclose(dist, theirs_d, rtol=1e-5, atol=1e-4)
    assert (idx == theirs_i).mean() > 0.999  # ties aside
    new = codes[:50] + np.random.default_rng(1).normal(0, 0.5, (50, 12)).astype(np.float32)
    q_idx, q_dist = index.query(new, 5)
    theirs_d, theirs_i = NearestNeighbors(n_neighbors=5).fit(codes).kneighbors(new)
    assert (q_idx == theirs_i).all() and np.allclose(q_dist, theirs_d, rtol=1e-5, atol=1e-4)


def test_tight_clusters_far_from_the_mean_still_get_their_exact_neighbours():
    """Two clusters of spread 0.01 at +-300: float32's expanded form is off by more than the distances in a cluster,
    and its candidates were any members of it (every row wrong, neighbours 3 times too far). Such rows are searched
    again in float64."""
    rng = np.random.default_rng(0)
    codes = np.concatenate([rng.normal(300, 0.01, (100, 8)), rng.normal(-300, 0.01, (100, 8))]).astype(np.float32)
    index = neighbours.ExactNeighbours(codes)
    idx, dist = index.graph(5)
    exact = np.sqrt(((codes[:, None, :].astype(np.float64) - codes[None].astype(np.float64)) ** 2).sum(-1))
    theirs = np.sort(exact, 1)[:, :5]
    assert (idx[:, 0] == np.arange(200)).all() and np.allclose(dist, theirs, atol=1e-4)
    assert all(set(row) == set(np.argsort(e, kind="stable")[:5]) for row, e in zip(idx, exact))
    twice = neighbours.ExactNeighbours(np.concatenate([codes, codes, codes]))  # duplicates: each point still first
    idx3, dist3 = twice.graph(4)
    assert (idx3[:, 0] == np.arange(600)).all() and (dist3[:, :3] == 0).all()
    q_idx, q_dist = index.query(codes[:10] + 0.001, 3)
    assert np.allclose(q_dist, np.sort(np.sqrt(((codes[:10, None] + 0.001 - codes[None]) ** 2).sum(-1)), 1)[:, :3],
                       atol=1e-4)


def test_umap_transform_places_new_codes_on_a_map_with_exact_neighbours():
    codes, labels = blobs(600)
    projection = project.UMAPProjection().fit(codes)
    assert isinstance(projection.umap_._knn_search_index, neighbours.ExactNeighbours)
    coords = projection.umap_.embedding_
    placed = projection.transform(codes[:20] + 1e-4)
    assert np.abs(placed - coords[:20]).max() < 0.05 * np.ptp(coords)


def test_a_fresh_process_maps_10000_codes_without_compiling_nn_descent():
    """What the app's server does: warm up, then a map of 10,000 codes (the full test split). NN-descent's
    compilation (about 50 s of CPU holding the GIL) must not happen; umap's own functions are kept on disk by numba."""
    import subprocess
    import sys

    script = """
import time, numpy as np
from aelab import neighbours, project
start = time.perf_counter()
project.warm_up_umap()
warm = time.perf_counter() - start
codes = np.random.default_rng(0).random((10000, 8), dtype=np.float32)
start = time.perf_counter()
projection = project.UMAPProjection().fit(codes, n_epochs=5)
import pynndescent.pynndescent_ as nnd, umap.umap_
print(len(nnd.nn_descent.overloads), type(umap.umap_.smooth_knn_dist._cache).__name__, round(warm, 1),
      round(time.perf_counter() - start, 1))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    compiled, cache, warm, fit = out.stdout.split()
    print(f"fresh process: warm-up {warm} s, map of 10,000 codes (5 epochs) {fit} s, smooth_knn_dist cache: {cache}")
    assert compiled == "0"
    assert cache != "NullCache"


def test_a_pca_maps_axes_say_the_share_of_the_variance_they_show():
    signs = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]] * 50, dtype=float)  # uncorrelated, mean 0
    data = signs * np.array([3.0, 2.0, 1.0])  # variances 9, 4, 1 of 14
    shares = project.variance_shares(project.PCAProjection().fit_transform(data), data)
    assert shares == pytest.approx((9 / 14, 4 / 14))
    from aelab import ui

    assert ui.map_axes("pca", 3, shares) == ("principal component 1 · 64% of the codes' variance",
                                             "principal component 2 · 29% of the codes' variance")
    assert ui.pc_axes(shares)[0] == "principal component 1 · 64% of the pixels' variance"  # (PCA of the images)
    assert ui.map_axes("umap", 3, shares) == ("UMAP 1", "UMAP 2") and ui.map_axes("pca", 2)[0] == "code dimension 1"
