"""2-D maps of codes (aelab.project): PCA against scikit-learn, the disk cache, the UMAP layout policy, a large map."""

import time

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.neighbors import KNeighborsClassifier

from aelab import project


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


def test_umap_layout_policy():
    umap_map = project.UMAPProjection(seed=3)
    small = umap_map.layout_options(project.LARGE_MAP)
    assert small == {"random_state": 3, "n_jobs": 1}  # seeded: the same map every time
    assert umap_map.layout_options(project.LARGE_MAP + 1) == {"n_jobs": -1, "n_epochs": 100, "init": "pca"}
    assert project.UMAPProjection(reproducible=True).layout_options(70000)["random_state"] == 0


def test_small_umap_maps_are_reproducible_and_keep_clusters():
    codes, labels = blobs(600)
    a = project.UMAPProjection().fit_transform(codes)
    b = project.UMAPProjection().fit_transform(codes)
    assert np.array_equal(a, b)
    assert map_knn(a, labels) > 0.95


def test_a_large_umap_map_takes_the_parallel_layout_and_keeps_clusters():
    codes, labels = blobs(project.LARGE_MAP + 1)
    start = time.perf_counter()
    projection = project.UMAPProjection().fit(codes)
    seconds = time.perf_counter() - start
    coords = projection.umap_.embedding_
    assert projection.umap_.n_epochs == 100 and projection.umap_.random_state is None
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
    project.warm_up_umap(parallel=True)  # what the app (seeded only) and the UMAP benchmarks run first
    assert project.UMAPProjection(reproducible=False).layout_options(10)["n_jobs"] == -1
