"""aelab.cache: arrays kept on disk between processes, and what the app keeps there (maps, test scores, kNN codes)."""

import hashlib
import os
import shutil

import numpy as np
import pytest

from aelab import anomaly, cache, classify, compare, project, ui, ui_explore, zoo


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "ROOT", tmp_path / "cache")
    return tmp_path / "cache"


def test_arrays_are_computed_once_then_read_back(root):
    calls = []

    def compute():
        calls.append(1)
        return {"a": np.arange(5.0), "b": np.eye(2, dtype=np.float32)}

    first, hit = cache.arrays("things", ("x", 1), compute)
    again, hit2 = cache.arrays("things", ("x", 1), compute)
    assert (hit, hit2, len(calls)) == (False, True, 1)
    assert all(np.array_equal(first[k], again[k]) and first[k].dtype == again[k].dtype for k in first)
    other, hit3 = cache.arrays("things", ("x", 2), compute)  # another key: computed
    assert not hit3 and len(calls) == 2
    assert not list(root.rglob(".*"))  # no temporary file left behind


def test_an_unreadable_file_is_computed_again_and_an_unwritable_folder_still_answers(root):
    cache.arrays("things", ("x",), lambda: {"a": np.ones(3)})
    (stored,) = (root / "things").glob("*.npz")
    stored.write_bytes(b"PK\x03\x04 cut short")
    values, hit = cache.arrays("things", ("x",), lambda: {"a": np.zeros(3)})
    assert not hit and np.array_equal(values["a"], np.zeros(3))
    assert np.array_equal(cache.arrays("things", ("x",), lambda: {"a": np.ones(3)})[0]["a"], np.zeros(3))
    (root / "blocked").write_text("a file where the folder should be")
    values, hit = cache.arrays("blocked", ("y",), lambda: {"a": np.ones(2)})
    assert not hit and np.array_equal(values["a"], np.ones(2))


def test_the_folder_is_trimmed_to_its_limit_least_recently_used_first(root, monkeypatch):
    block = {"a": np.zeros(32 * 1024, dtype=np.float64)}  # 256 KiB each
    for i in range(4):
        cache.arrays("things", (i,), lambda: block)
    files = {i: root / "things" / f"{cache.key(i)}.npz" for i in range(4)}
    size = files[0].stat().st_size
    for age, i in enumerate((1, 0, 3, 2)):  # oldest first: 1, then 0, ...
        os.utime(files[i], (1_000_000 + age, 1_000_000 + age))
    cache.arrays("things", (0,), lambda: block)  # a read: 0 becomes the most recently used
    (root / "torchvision").mkdir()
    (root / "torchvision" / "a-download.npz").write_bytes(b"x" * 4 * size)  # not the cache's: never removed
    stale = root / "things" / f".{cache.key(9)}.abc.npz"
    stale.write_bytes(b"half written")
    os.utime(stale, (1_000_000, 1_000_000))
    monkeypatch.setenv("AELAB_CACHE_LIMIT_MB", str(3.5 * size / 2 ** 20))
    cache.arrays("things", (4,), lambda: block)  # a fifth file: over the limit of three and a half
    left = sorted(p.name for p in (root / "things").iterdir())
    assert left == sorted(f"{cache.key(i)}.npz" for i in (0, 2, 4))  # 1 and 3, the least recently used, went
    assert (root / "torchvision" / "a-download.npz").exists() and not stale.exists()
    monkeypatch.setenv("AELAB_CACHE_LIMIT_MB", "0")  # no limit
    for i in range(5, 9):
        cache.arrays("things", (i,), lambda: block)
    assert len(list((root / "things").glob("*.npz"))) == 7
    assert cache.trim(limit=size) > 0 and [p.name for p in (root / "things").glob("*.npz")] == \
        [f"{cache.key(8)}.npz"]  # the most recent stays even where one file is the whole limit


def test_content_key_follows_values_shape_and_type():
    a = np.arange(12, dtype=np.uint8)
    assert cache.content_key(a) == cache.content_key(a.copy())
    assert cache.content_key(a) != cache.content_key(a.reshape(3, 4))
    assert cache.content_key(a) != cache.content_key(a.astype(np.int16))
    b = a.copy()
    b[5] += 1
    assert cache.content_key(a) != cache.content_key(b)


def test_maps_are_keyed_by_the_codes_content(root):
    codes = np.random.default_rng(0).normal(size=(200, 5)).astype(np.float32)
    first, _, hit = project.project_codes(codes, "pca", key_parts=("m",))
    _, _, hit2 = project.project_codes(codes, "pca", key_parts=("m",))
    moved = codes.copy()
    moved[-1] += 1  # the same key parts, other codes: not the stored map
    _, _, hit3 = project.project_codes(moved, "pca", key_parts=("m",))
    assert (hit, hit2, hit3) == (False, True, False)


def test_test_scores_and_knn_codes_survive_a_server_restart(root, tiny_checkpoints, monkeypatch, tmp_path):
    """After the in-memory caches are cleared (a restarted server), the Anomalies page's scores and the Draw page's
    kNN codes come from the disk, not from the model again; a copy of the checkpoint under another name is not
    scored again, a rewritten checkpoint is."""
    path = str(tiny_checkpoints["tiny-conv"])
    mtime = os.path.getmtime(path)
    ui_explore.image_scores.clear()  # a page test run earlier in this process may hold them in memory, not on disk here
    ui_explore.code_knn.clear()
    scores, labels = ui_explore.image_scores(path, mtime, "mnist")
    knn = ui_explore.code_knn(path, mtime, "mnist")
    ui_explore.image_scores.clear()
    ui_explore.code_knn.clear()
    score_calls, fit_calls = [], []
    score, fit = anomaly.score_test_set, classify.fit_on_model
    monkeypatch.setattr(anomaly, "score_test_set", lambda *a: score_calls.append(1) or score(*a))
    monkeypatch.setattr(classify, "fit_on_model", lambda *a, **k: fit_calls.append(1) or fit(*a, **k))
    again, labels2 = ui_explore.image_scores(path, mtime, "mnist")
    knn2 = ui_explore.code_knn(path, mtime, "mnist")
    assert not score_calls and not fit_calls
    assert np.array_equal(scores, again) and np.array_equal(labels, labels2)
    assert knn2.k == knn.k and np.array_equal(knn2.codes_, knn.codes_) and np.array_equal(knn2.sources_, knn.sources_)
    assert np.array_equal(knn2.predict(knn.codes_[:20]), knn.predict(knn.codes_[:20]))
    assert len(list((root / "test-scores").glob("*.npz"))) == 1

    copy = tmp_path / "renamed.safetensors"  # the same bytes under another name (a renamed or copied file): read
    shutil.copy(path, copy)
    ui_explore.image_scores.clear()
    assert np.array_equal(ui_explore.image_scores(str(copy), os.path.getmtime(copy), "mnist")[0], scores)
    assert not score_calls
    zoo.add_metadata(copy, note="other bytes")  # a rewritten checkpoint: scored anew
    ui_explore.image_scores.clear()
    ui_explore.image_scores(str(copy), os.path.getmtime(copy), "mnist")
    assert score_calls == [1] and len(list((root / "test-scores").glob("*.npz"))) == 2
    ui_explore.image_scores.clear()


def test_checkpoint_key_is_the_files_content(tmp_path):
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"x" * 3_000_000)
    b.write_bytes(b"x" * 3_000_000)
    assert cache.checkpoint_key(a) == cache.checkpoint_key(b) == hashlib.sha256(b"x" * 3_000_000).hexdigest()[:24]
    a.write_bytes(b"x" * 2_999_999 + b"y")  # a new version of the file (its size or time changes)
    os.utime(a, ns=(0, 10**9))
    assert cache.checkpoint_key(a) != cache.checkpoint_key(b)


def test_read_only_folders_are_read_after_the_cache_never_written(root, tmp_path, monkeypatch):
    shipped = tmp_path / "shipped"
    monkeypatch.setattr(cache, "READ_ONLY", [shipped])
    monkeypatch.setenv("AELAB_CACHE_LIMIT_MB", "5")
    with cache.writing_to(shipped):
        assert cache.limit_bytes() == 0  # no limit while the shipped results are made
        cache.arrays("things", ("k",), lambda: {"a": np.arange(3)})
    assert cache.limit_bytes() == 5 * 2 ** 20 and cache.ROOT == root  # restored
    found, hit = cache.arrays("things", ("k",), lambda: pytest.fail("computed again"))
    assert hit and found["a"].tolist() == [0, 1, 2] and not root.exists()
    cache.arrays("things", ("k",), lambda: {"a": np.arange(4)}, use_cache=False)
    with cache.writing_to(root):  # one of the user's own, under the same key, comes first
        cache.arrays("things", ("k",), lambda: {"a": np.arange(4)})
    assert cache.arrays("things", ("k",), lambda: pytest.fail("computed"))[0]["a"].tolist() == [0, 1, 2, 3]
    monkeypatch.setenv("AELAB_CACHE_LIMIT_MB", "0.000001")  # a tiny limit trims the cache, never the shipped folder
    cache.arrays("other", ("j",), lambda: {"a": np.arange(100)})
    assert len(list(shipped.rglob("*.npz"))) == 1


@pytest.mark.parametrize("variant, options, float16", [("conv", {"latent_dim": 4, "channels": [4, 8]}, False),
                                                       ("cvae", {"latent_dim": 2, "hidden": [32]}, False),
                                                       ("mlp", {"latent_dim": 4, "hidden": [32]}, True)])
def test_a_trained_model_arrives_with_its_page_results_already_on_disk(root, mnist, tmp_path, monkeypatch, variant,
                                                                       options, float16):
    """The trainer keeps what Anomalies, Draw and PCA vs AE would compute on their first visit (the test scores
    reuse the metrics' errors; a conditional model is scored again, without labels; a float16 checkpoint with the
    weights as saved): the pages then compute nothing, and find what they would have computed."""
    from aelab.checkpoints import load_checkpoint
    from aelab.train import TrainConfig, train_and_save

    _, path = train_and_save(variant, options, mnist, TrainConfig(epochs=1, batch_size=256), tmp_path / "m",
                             float16=float16)
    model, _ = load_checkpoint(path)
    expected_scores, expected_labels = anomaly.score_test_set(model, mnist)
    expected_knn = classify.fit_on_model(model, mnist)
    pca = ui.fitted_pca("mnist", model.latent_dim)
    expected_comparison = compare.knn_comparison(model, pca, mnist)
    monkeypatch.setattr(anomaly, "score_test_set", lambda *a: pytest.fail("scored again"))
    monkeypatch.setattr(classify, "fit_on_model", lambda *a, **k: pytest.fail("encoded again"))
    monkeypatch.setattr(compare, "knn_comparison", lambda *a, **k: pytest.fail("compared again"))
    scores, labels = ui_explore.image_scores(str(path), os.path.getmtime(path), "mnist")
    knn = ui_explore.code_knn(str(path), os.path.getmtime(path), "mnist")
    assert ui.knn_comparison(str(path), os.path.getmtime(path), "mnist") == expected_comparison
    assert np.allclose(scores, expected_scores, rtol=1e-5) and np.array_equal(labels, expected_labels)
    assert np.allclose(knn.codes_, expected_knn.codes_, atol=1e-5)
    assert np.array_equal(knn.sources_, expected_knn.sources_) and knn.k == expected_knn.k
