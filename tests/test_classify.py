"""aelab.classify: the kNN on codes behind the Draw page, checked against scikit-learn and on real MNIST codes."""

import numpy as np
import pytest
import torch

from aelab import classify, metrics
from aelab.checkpoints import load_checkpoint
from aelab.errors import ConfigError, ImageError
from aelab.models import build_model


def blobs(seed=0, per_class=40, classes=4, dim=6):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 10, (classes, dim))
    labels = np.repeat(np.arange(classes), per_class)
    return centres[labels] + rng.normal(0, 1, (len(labels), dim)), labels


def test_knn_matches_scikit_learn_neighbours():
    from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors

    codes, labels = blobs()
    queries = np.random.default_rng(1).normal(0, 10, (25, codes.shape[1]))
    knn = classify.CodeKNN(k=7).fit(codes, labels)
    dist, pos = knn.kneighbors(queries)
    ref_dist, ref_pos = NearestNeighbors(n_neighbors=7).fit(codes).kneighbors(queries)
    np.testing.assert_allclose(dist, ref_dist, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(pos, ref_pos)
    sk = KNeighborsClassifier(n_neighbors=7).fit(codes, labels).predict(queries)
    # Same votes; only ties may differ (scikit-learn breaks them by class number, we by nearest neighbour).
    votes = np.array([p.votes.max() for p in knn.explain(queries)])
    decisive = votes > 0.5
    np.testing.assert_array_equal(knn.predict(queries)[decisive], sk[decisive])


def test_training_codes_predict_their_own_class():
    codes, labels = blobs()
    knn = classify.CodeKNN(k=1).fit(codes, labels)
    assert knn.score(codes, labels) == 1.0
    assert (classify.CodeKNN(k=5).fit(codes, labels).predict(codes) == labels).mean() > 0.95


def test_votes_neighbours_and_ties():
    codes = np.array([[0.0], [1.0], [3.0], [10.0]])
    labels = np.array([2, 0, 0, 1])
    knn = classify.CodeKNN(k=2).fit(codes, labels, sources=np.array([40, 41, 42, 43]))
    pred = knn.explain([[0.4]])[0]
    np.testing.assert_array_equal(pred.neighbours, [0, 1])
    np.testing.assert_allclose(pred.distances, [0.4, 0.6], atol=1e-6)
    np.testing.assert_allclose(pred.votes, [0.5, 0, 0.5])
    assert pred.label == 2 and pred.confidence == 0.5  # a 1-1 tie goes to the nearest neighbour's class
    assert knn.sources_[pred.neighbours].tolist() == [40, 41]
    assert classify.CodeKNN(k=10).fit(codes, labels).k_ == 4  # k larger than the data: use all


def test_misuse_is_a_config_error():
    with pytest.raises(ConfigError):
        classify.CodeKNN(k=0)
    with pytest.raises(ConfigError):
        classify.CodeKNN().predict([[0.0, 1.0]])
    with pytest.raises(ConfigError):
        classify.CodeKNN().fit(np.zeros((3, 2)), np.zeros(4))


def test_knn_on_a_tiny_models_codes_beats_chance_by_far(tiny_checkpoints, mnist):
    model, _ = load_checkpoint(tiny_checkpoints["tiny-mlp"])
    knn = classify.fit_on_model(model, mnist, n=2000)
    assert len(knn.codes_) == 2000 and knn.codes_.shape[1] == model.latent_dim
    # Sources point back at the training images the codes came from.
    again = metrics.encode(model, mnist.x_train[torch.from_numpy(knn.sources_[:5])]).numpy()
    np.testing.assert_allclose(again, knn.codes_[:5], atol=1e-5)
    assert classify.CodeKNN(k=1).fit(knn.codes_, knn.labels_).score(knn.codes_, knn.labels_) > 0.99
    test_codes = metrics.encode(model, mnist.x_test[:500]).numpy()
    # tiny-mlp had two epochs with 64 hidden units; its codes still group digits far better than chance (0.1).
    assert knn.score(test_codes, mnist.y_test[:500].numpy()) > 0.3


def test_latent_map_places_new_codes_where_fitted_ones_go():
    codes, _ = blobs(dim=5)
    fitted = classify.LatentMap().fit(codes)
    coords = fitted.transform(codes)
    assert coords.shape == (len(codes), 2)
    np.testing.assert_allclose(fitted.transform(codes[3:4])[0], coords[3], atol=1e-5)
    flat = np.random.default_rng(0).normal(size=(10, 2))
    np.testing.assert_allclose(classify.LatentMap().fit_transform(flat), flat, atol=1e-6)  # 2-D codes as they are


def as_canvas(digit_uint8: np.ndarray, side: int = 280) -> np.ndarray:
    """A 28x28 MNIST digit as the canvas sends it: side x side RGBA, white strokes, opaque black background."""
    from PIL import Image

    big = np.asarray(Image.fromarray(digit_uint8).resize((side, side), Image.Resampling.BILINEAR))
    return np.dstack([big, big, big, np.full_like(big, 255)])


def test_reading_a_drawing_end_to_end(tiny_checkpoints, mnist):
    # PCA with 8 components: the tiny model whose codes classify best (a kNN on them is ~85% right).
    model, _ = load_checkpoint(tiny_checkpoints["tiny-pca"])
    knn = classify.fit_on_model(model, mnist, n=2000)
    latent_map = classify.LatentMap().fit(metrics.encode(model, mnist.x_test[:300]).numpy())
    picks = range(0, 300, 15)
    readings = [classify.read_drawing(model, as_canvas(mnist.x_test[i, 0].numpy()), knn, latent_map) for i in picks]
    # An enlarged test digit, re-prepared like a drawing, is still recognised most of the time.
    hits = sum(r.prediction.label == int(mnist.y_test[i]) for r, i in zip(readings, picks))
    assert hits >= 0.6 * len(readings)
    # Its map position is where its code puts it, on the same map as the test codes.
    first = readings[0]
    np.testing.assert_allclose(first.map_position, latent_map.transform(first.code[None])[0], atol=1e-5)


def test_reading_a_drawing_with_a_conv_model(tiny_checkpoints, mnist):
    model, _ = load_checkpoint(tiny_checkpoints["tiny-conv"])
    knn = classify.fit_on_model(model, mnist, n=500)
    latent_map = classify.LatentMap().fit(knn.codes_)
    reading = classify.read_drawing(model, as_canvas(mnist.x_test[0, 0].numpy()), knn, latent_map)
    assert reading.input.shape == (28, 28) and reading.input.max() == pytest.approx(1.0)
    assert reading.reconstruction.shape == (1, 28, 28)
    assert 0 <= reading.reconstruction.min() <= reading.reconstruction.max() <= 1
    assert reading.code.shape == (model.latent_dim,) and reading.map_position.shape == (2,)
    assert len(reading.prediction.neighbours) == 5 and reading.prediction.votes.sum() == pytest.approx(1.0)


def test_blank_canvas_and_wrong_shapes_are_one_line_errors(tiny_checkpoints, mnist):
    model, _ = load_checkpoint(tiny_checkpoints["tiny-mlp"])
    knn = classify.CodeKNN().fit(np.zeros((3, model.latent_dim)), [0, 1, 2])
    latent_map = classify.LatentMap().fit(np.random.default_rng(0).normal(size=(5, model.latent_dim)))
    blank = np.zeros((280, 280, 4), dtype=np.uint8)
    blank[..., 3] = 255
    with pytest.raises(ImageError, match="blank"):
        classify.read_drawing(model, blank, knn, latent_map)
    rgb_model = build_model("mlp", latent_dim=4, hidden=[8], input_shape=(3, 32, 32))
    with pytest.raises(ConfigError, match="single-channel square"):
        classify.read_drawing(rgb_model, blank, knn, latent_map)


def test_knn_accuracy_votes_like_scikit_learn_ties_included():
    """metrics.knn_accuracy (exact neighbours, neighbours.vote) against KNeighborsClassifier: random labels and an
    even k, so that many votes are ties, which both give to the lowest class."""
    from sklearn.neighbors import KNeighborsClassifier

    from aelab.neighbours import ExactNeighbours, vote

    rng = np.random.default_rng(0)
    train, train_labels = rng.normal(size=(600, 4)).astype(np.float32), rng.integers(0, 6, 600)
    test, test_labels = rng.normal(size=(300, 4)).astype(np.float32), rng.integers(0, 6, 300)
    clf = KNeighborsClassifier(n_neighbors=4).fit(train, train_labels)
    neighbours, _ = ExactNeighbours(train).query(test, 4)
    np.testing.assert_array_equal(vote(train_labels, neighbours), clf.predict(test))
    assert metrics.knn_accuracy(train, train_labels, test, test_labels, 4) == clf.score(test, test_labels)
    assert metrics.knn_accuracy(torch.from_numpy(train), torch.from_numpy(train_labels), torch.from_numpy(test),
                                torch.from_numpy(test_labels), 4) == clf.score(test, test_labels)
