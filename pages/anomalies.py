"""Anomalies: the reconstruction error as an anomaly score. A model trained without class k should reconstruct
class k worse than the classes it saw; this page shows how well the error tells them apart. It also ranks the images
by error, the odd ones out first, whatever their class (the only way for a set without labels)."""

import numpy as np
import streamlit as st

from aelab import anomaly, ui, ui_explore
from aelab.errors import AelabError

st.title("Anomalies")
ctx = ui.sidebar()
model, ds = ctx.model, ctx.dataset
if model is None:
    ui.stop()  # the sidebar has said why
labelled = bool(ds.num_classes) and not bool((ds.y_test < 0).any())
# The choices stay when the user goes to another page and back, per dataset (ui.keep_values); the anomaly class per
# model, whose own left-out class it starts at.
KEPT, KEYS = f"anomaly_values_{ds.name}", ["anomaly_split", "anomaly_top", f"anomaly_class_{ctx.model_path}",
                                          "anomaly_mode", "anomaly_show", "anomaly_pictures"]
ui.give_back_values(KEYS, KEPT)
# A labelled set can be looked at both ways: a class as the anomaly (how well the error tells it apart), or every
# image ranked, whatever its class (a practitioner's odd files were found only by the CLI's --split all: the class
# view shows the test split alone).
mode = st.radio("Look for", ["class", "rank"], horizontal=True, key="anomaly_mode",
                format_func={"class": "a class as the anomaly", "rank": "the odd images, whatever their class"}.get,
                help="a class as the anomaly: how well the error tells a class apart (AUROC); the odd images: every "
                     "image ranked by its error, the worst first") if labelled else "rank"
if mode == "rank":
    # Rank the images by error, the odd ones out of one's own set first (the only way for a set without labels).
    st.info((f"{ds.label} has no class labels, so no class can be named the anomaly: the page ranks the images by "
             "reconstruction error. " if not labelled else "The images ranked by reconstruction error, whatever "
             "their class. ") + "Those the model reconstructs worst are the first to look at, but an image with "
            "more detail (edges, texture, strokes) has a larger error too: a model with a small code (2 to 8) tells "
            "odd images apart better than a roomy one, which rebuilds almost anything.")
    split = st.radio("Images to rank", ["test", "all"], horizontal=True, key="anomaly_split",
                     format_func={"test": f"Test images ({len(ds.y_test):,}, not trained on)",
                                  "all": f"All {len(ds.y_train) + len(ds.y_test):,} images"}.get,
                     help="the model trained on the others: their errors are lower, so an odd image among them "
                          "ranks lower than it would among images the model never saw")
    scores, labels = ui_explore.image_scores(ctx.model_path, ctx.model_mtime, ds.name, split)
    low, high = float(scores.min()), float(scores.max())
    threshold = ui.kept_slider("Threshold: flag images whose error is at least", low, high,
                               anomaly.share_threshold(scores, 0.05), (high - low) / 200 or 1.0, format="%.1f",
                               key=f"anomaly_threshold_{ctx.model_path}_{split}",
                               help="starts where it flags the 5% of the images with the highest errors")
    flagged = int((scores >= threshold).sum())
    m = st.columns(3)
    m[0].metric("Flagged", f"{flagged:,}", help=f"{flagged / len(scores):.1%} of the {len(scores):,} images: those "
                "whose error is at least the threshold")
    m[1].metric("Median error", f"{np.median(scores):.1f}", help="half the images have a lower error")
    m[2].metric("Highest error", f"{high:.1f}")
    st.markdown("**Reconstruction error** (" + ("test images" if split == "test" else "all images") + ")")
    st.plotly_chart(ui_explore.histogram_figure(anomaly.class_histograms(scores, labels), ds, set(), threshold,
                                                "test images" if split == "test" else "images"), key="anomaly_hist")
    top, _ = ui_explore.most_anomalous_images(scores, ds, split, model=model)
    flagged_here = int(sum(scores[i] >= threshold for i in top))
    st.caption(f"Highest errors first{'; † marks images the model trained on' if split == 'all' else ''}. "
               f"{flagged_here} of these {len(top)} {'is' if flagged_here == 1 else 'are'} flagged at this "
               "threshold.")
    ui.keep_values(KEYS, KEPT)
    ui.stop()

scores, labels = ui_explore.image_scores(ctx.model_path, ctx.model_mtime, ds.name)
trained_on = ctx.meta.get("dataset", {})
only = trained_on.get("only_class")
if only is not None:
    anomalous = set(range(ds.num_classes)) - {only}
    note, fair = anomaly.training_note(ctx.meta, only)
    title = f"every class but {ui_explore.class_label(ds, only)}"
    k = only
else:
    without = trained_on.get("without_class")
    present = ui_explore.test_classes(ds)
    k = st.selectbox("Anomaly class", present, key=f"anomaly_class_{ctx.model_path}",
                     **ui.widget_default(f"anomaly_class_{ctx.model_path}",
                                         index=present.index(without) if without in present else 0),
                     format_func=lambda c: ui_explore.class_label(ds, c),
                     help="test images of this class count as anomalies, all others as normal")
    ui_explore.unlisted_note(ds, present)
    anomalous = {k}
    note, fair = anomaly.training_note(ctx.meta, k)
    title = f"class {ui_explore.class_label(ds, k)}"
(st.success if fair else st.info)(note)
if not fair and only is None:
    # A model that never saw a class, when there is one (the shipped mnist-conv-without-2: a class's time saved),
    # then the Train page's one-click experiment, with this class already picked.
    for info, never in ui_explore.models_without_a_class(ds.name, k)[:3]:
        ui.open_model_link("pages/anomalies.py", f"Open {info.name}: it never saw class "
                           f"{ui_explore.class_label(ds, never)}", ds.name, info.name, icon=":material/arrow_forward:")
    ui.page_link("pages/train.py", label=f"Train a model without class {ui_explore.class_label(ds, k)}",
                 icon=":material/model_training:", query_params={"without_class": k})

try:
    is_anomaly = anomaly.anomaly_mask(labels, k, only)
    curve = anomaly.roc(scores, is_anomaly)
except AelabError as err:
    st.error(ui.sentence(str(err)))
    ui.stop()

low, high = float(scores.min()), float(scores.max())
threshold = ui.kept_slider("Threshold: flag test images whose error is at least", low, high,
                           anomaly.starting_threshold(scores, is_anomaly), (high - low) / 200 or 1.0, format="%.1f",
                           key=f"anomaly_threshold_{ctx.model_path}_{k}",
                           help="starts where it flags as many test images as there are anomalies")
report = anomaly.at_threshold(scores, is_anomaly, threshold)

m = st.columns(5)
m[0].metric("AUROC", f"{curve.auroc:.3f}", help=f"chance of ranking a random image of {title} above a random "
            "normal one: 1 = perfect, 0.5 = chance")
m[1].metric("Precision", f"{report.precision:.1%}", help="of the flagged images, the share that are anomalies")
m[2].metric("Recall", f"{report.recall:.1%}", help="of the anomalies, the share that are flagged")
m[3].metric("Flagged", f"{report.flagged:,}", help=f"of the {len(scores):,} test images, those whose error is at "
            f"least the threshold; {int(is_anomaly.sum()):,} are anomalies")
m[4].metric("FP rate", f"{report.false_positive_rate:.1%}",
            help="false positive rate: of the normal images, the share flagged")
hint = anomaly.auroc_hint(curve.auroc, fair, only is not None, ds.name)
if hint:
    st.info(hint)
if report.flagged == int(is_anomaly.sum()):
    st.caption("This threshold flags as many images as there are anomalies, so precision and recall are equal: "
               "raise it to trade recall for precision, lower it for the reverse.")

left, right = st.columns([3, 2])
with left:
    st.markdown(f"**Reconstruction error per class** (test set, anomaly: {title})")
    hist = anomaly.class_histograms(scores, labels)
    st.plotly_chart(ui_explore.histogram_figure(hist, ds, anomalous, threshold), key="anomaly_hist")
with right:
    st.markdown(f"**ROC: {title} as the anomaly**")
    st.plotly_chart(ui_explore.roc_figure(curve, report), key="anomaly_roc")

top, show = ui_explore.most_anomalous_images(scores, ds, "test", anomalous, model, is_anomaly, report)
found = int(is_anomaly[top].sum())
if show == "highest":
    st.caption(f"Highest errors first; ★ marks images of {title}. {found} of these {len(top)} "
               + ("is an anomaly." if found == 1 else "are anomalies."))
elif len(top) and show == "false-alarms":
    st.caption(f"Normal images at or over the threshold, highest errors first: those the model reconstructs worst. "
               f"{report.false_positives:,} in all.")
elif len(top):
    st.caption(f"Images of {title} under the threshold, lowest errors first (★): those the model reconstructs best, "
               f"as if it had learnt them. {report.false_negatives:,} in all.")
ui.keep_values(KEYS, KEPT)
