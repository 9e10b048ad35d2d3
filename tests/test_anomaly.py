"""aelab.anomaly: scores, thresholds, ROC and histograms on hand-made cases, and a real held-out-class experiment."""

import numpy as np
import pytest

from aelab import anomaly
from aelab.checkpoints import load_checkpoint
from aelab.data import to_float
from aelab.errors import ConfigError
from aelab.models.pca import PCA, PCAConfig


def test_perfect_reversed_and_random_scores():
    is_anomaly = np.array([0, 0, 0, 1, 1], dtype=bool)
    assert anomaly.roc([1, 2, 3, 4, 5], is_anomaly).auroc == 1.0
    assert anomaly.roc([5, 4, 3, 2, 1], is_anomaly).auroc == 0.0
    rng = np.random.default_rng(0)
    assert abs(anomaly.roc(rng.random(4000), rng.random(4000) < 0.1).auroc - 0.5) < 0.05
    curve = anomaly.roc([1, 2, 3, 4, 5], is_anomaly)
    assert curve.false_positive_rate[0] == 0 and curve.true_positive_rate[-1] == 1
    assert np.all(np.diff(curve.false_positive_rate) >= 0)


def test_precision_recall_at_a_threshold():
    scores = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    is_anomaly = np.array([0, 0, 1, 0, 1, 1], dtype=bool)
    report = anomaly.at_threshold(scores, is_anomaly, 3.5)  # flags 4, 5, 6: one of them normal
    assert (report.flagged, report.true_positives, report.false_positives, report.false_negatives) == (3, 2, 1, 1)
    assert report.precision == pytest.approx(2 / 3) and report.recall == pytest.approx(2 / 3)
    assert report.false_positive_rate == pytest.approx(1 / 3) and report.f1 == pytest.approx(2 / 3)
    nothing = anomaly.at_threshold(scores, is_anomaly, 100)
    assert nothing.flagged == 0 and nothing.precision == 1.0 and nothing.recall == 0.0
    everything = anomaly.at_threshold(scores, is_anomaly, 0)
    assert everything.recall == 1.0 and everything.precision == 0.5


def test_the_starting_threshold_flags_as_many_images_as_there_are_anomalies():
    scores = np.array([0.1, 0.2, 0.3, 0.9, 1.0])
    is_anomaly = np.array([0, 0, 0, 1, 1], dtype=bool)
    report = anomaly.at_threshold(scores, is_anomaly, anomaly.starting_threshold(scores, is_anomaly))
    assert report.precision == 1.0 and report.recall == 1.0  # separable: exactly the anomalies
    rng = np.random.default_rng(0)  # scores that hardly tell the classes apart: 10% flagged, not everything
    scores, is_anomaly = rng.normal(size=10_000), rng.random(10_000) < 0.1
    report = anomaly.at_threshold(scores, is_anomaly, anomaly.starting_threshold(scores, is_anomaly))
    assert report.flagged == is_anomaly.sum() and report.precision == pytest.approx(report.recall)
    assert report.precision < 0.2


def test_class_histograms_share_bins_and_count_every_image():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 500)
    scores = rng.gamma(2.0, 1.0 + labels)
    hist = anomaly.class_histograms(scores, labels, bins=25)
    assert len(hist.edges) == 26 and len(hist.centres) == 25
    assert set(hist.counts) == {0, 1, 2}
    for c, counts in hist.counts.items():
        assert counts.sum() == (labels == c).sum()
    with pytest.raises(ConfigError):
        anomaly.class_histograms([], [])


def test_the_histogram_lines_reach_the_lowest_and_the_highest_error(mnist):
    """Drawn through the bins' centres, a histogram ended half a bin short of the highest error, where the threshold
    line and the top-ranked images are."""
    from aelab import ui_explore

    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 300)
    scores = rng.gamma(2.0, 10.0, 300)
    figure = ui_explore.histogram_figure(anomaly.class_histograms(scores, labels), mnist, {1}, float(scores.max()))
    for trace in figure.data:
        assert trace.x[0] == trace.x[1] == scores.min() and trace.x[-1] == scores.max()
        assert trace.y[0] == trace.y[-1] == 0 and sum(trace.y) == (labels == int(trace.name[0])).sum()


def test_most_anomalous_and_masks():
    scores = np.array([3.0, 9.0, 1.0, 9.0, 5.0])
    assert anomaly.most_anomalous(scores, 3).tolist() == [1, 3, 4]
    assert anomaly.most_anomalous(scores, 0).tolist() == []
    labels = np.array([0, 1, 2, 1])
    assert anomaly.anomaly_mask(labels, 1).tolist() == [False, True, False, True]
    assert anomaly.anomaly_mask(labels, 1, only_class=2).tolist() == [True, True, False, True]
    with pytest.raises(ConfigError):
        anomaly.anomaly_mask(labels, 7)  # no image of class 7: nothing to detect


def test_training_notes():
    meta = {"dataset": {"class_names": [str(d) for d in range(10)], "without_class": 7, "only_class": None}}
    note, fair = anomaly.training_note(meta, 7)
    assert fair and "never saw class 7" in note
    note, fair = anomaly.training_note(meta, 3)
    assert not fair and "pick class 7" in note
    note, fair = anomaly.training_note({"dataset": {"without_class": None}}, 3)
    assert not fair and "Train page" in note
    note, fair = anomaly.training_note({"dataset": {"only_class": 4}}, 4)
    assert fair and "class 4 only" in note
    # Named classes as the class picker names them ("0: T-shirt/top"), or the command line ("0 (T-shirt/top)")
    fashion = {"dataset": {"class_names": ["T-shirt/top", "Trouser"], "without_class": None}}
    assert anomaly.training_note(fashion, 0)[0].startswith("This model saw class 0: T-shirt/top in training")
    assert "without class 1 (Trouser)" in anomaly.training_note(fashion, 1, around="()")[0]


def test_a_model_that_never_saw_a_class_flags_it(tiny_checkpoints, mnist):
    """PCA (aelab's closed-form model) fitted without the 7s: the 7s become the worst-reconstructed images, much
    more so than for tiny-pca, the same 8-component PCA fitted on every class."""
    def auroc(model):
        scores, labels = anomaly.score_test_set(model, mnist)
        return anomaly.roc(scores, anomaly.anomaly_mask(labels, 7)).auroc

    held_out = auroc(PCA(PCAConfig(latent_dim=8)).fit(to_float(mnist.without_class(7).x_train)))
    saw_all = auroc(load_checkpoint(tiny_checkpoints["tiny-pca"])[0])
    assert held_out > 0.65
    assert held_out > saw_all + 0.2


def test_scores_of_a_trained_model(tiny_checkpoints, mnist):
    model, _ = load_checkpoint(tiny_checkpoints["tiny-mlp"])
    scores, labels = anomaly.score_test_set(model, mnist)
    assert scores.shape == (len(mnist.x_test),) and (scores >= 0).all()
    np.testing.assert_array_equal(labels, mnist.y_test.numpy())
    worst = anomaly.most_anomalous(scores, 10)
    assert scores[worst].min() >= np.median(scores)


def test_a_weak_fair_result_says_what_it_means():
    assert anomaly.auroc_hint(0.95, True, False) is None  # good
    assert anomaly.auroc_hint(0.6, False, False) is None  # unfair: the page says the model saw the class
    assert anomaly.auroc_hint(0.35, True, False).startswith("An AUROC of 0.35 is below chance: this class is "
                                                            "reconstructed *better*")
    assert "leaving one out gives 0.35 to 0.95" in anomaly.auroc_hint(0.69, True, False)
    assert "More epochs, or a smaller code" in anomaly.auroc_hint(0.7, True, True)
    assert "MNIST's" in anomaly.auroc_hint(0.3, True, False, "mnist")  # examples only where they are the data's
    assert "MNIST's" not in anomaly.auroc_hint(0.3, True, False, "fashion-mnist")
    assert "ink" not in anomaly.auroc_hint(0.3, True, False, "my photos")  # (colour photos have no ink)
    assert "MNIST's 7s" not in anomaly.auroc_hint(0.6, True, False, "fashion-mnist")


def test_share_threshold_flags_that_share_of_the_highest_scores():
    """Where the slider starts for a set without labels: the top 5% flagged (at least one image)."""
    scores = np.arange(44, dtype=float)[::-1]  # 43 .. 0
    assert anomaly.share_threshold(scores) == 42.0  # 5% of 44 is 2.2: the top 2 flagged
    assert anomaly.at_threshold(scores, scores > 41, anomaly.share_threshold(scores)).flagged == 2
    assert anomaly.share_threshold(np.array([3.0, 1.0, 2.0])) == 3.0  # a few images: still one flagged
    assert anomaly.share_threshold(scores, share=0.5) == 22.0
    with pytest.raises(ConfigError, match="no scores"):
        anomaly.share_threshold(np.array([]))
