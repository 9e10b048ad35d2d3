"""Anomalies: the reconstruction error as an anomaly score. A model trained without class k should reconstruct
class k worse than the classes it saw; this page shows how well the error tells them apart."""

import streamlit as st

from aelab import anomaly, ui, ui_explore
from aelab.errors import AelabError

st.title("Anomalies")
ctx = ui.sidebar()
model, ds = ctx.model, ctx.dataset
if model is None:
    st.stop()  # the sidebar has said why
if not ds.num_classes or (ds.y_test < 0).any():
    st.info(f"{ds.label} has no class labels, so there is no class to treat as the anomaly: pick a labelled dataset.")
    st.stop()

scores, labels = ui_explore.test_scores(ctx.model_path, ctx.model_mtime, ds.name)
trained_on = ctx.meta.get("dataset", {})
only = trained_on.get("only_class")
if only is not None:
    anomalous = set(range(ds.num_classes)) - {only}
    note, fair = anomaly.training_note(ctx.meta, only)
    title = f"every class but {ui_explore.class_label(ds, only)}"
    k = only
else:
    without = trained_on.get("without_class")
    k = st.selectbox("Anomaly class", range(ds.num_classes), index=without if without is not None else 0,
                     format_func=lambda c: ui_explore.class_label(ds, c),
                     help="test images of this class count as anomalies, all others as normal")
    anomalous = {k}
    note, fair = anomaly.training_note(ctx.meta, k)
    title = f"class {ui_explore.class_label(ds, k)}"
(st.success if fair else st.info)(note)
if not fair and only is None:  # the Train page's one-click experiment, with this class already picked
    ui.page_link("pages/train.py", label=f"Train a model without class {ui_explore.class_label(ds, k)}",
                 icon=":material/model_training:", query_params={"without_class": k})

try:
    is_anomaly = anomaly.anomaly_mask(labels, k, only)
    curve = anomaly.roc(scores, is_anomaly)
except AelabError as err:
    st.error(str(err))
    st.stop()

low, high = float(scores.min()), float(scores.max())
threshold = st.slider("Threshold: flag test images whose error is at least", low, high,
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

st.subheader("Most anomalous test images")
n = st.slider("How many", 8, 64, 16, 8)
top = anomaly.most_anomalous(scores, n)
ui.show_images(ds.x_test[top].float().div(255),
               [f"{'★ ' if labels[i] in anomalous else ''}{ui_explore.class_name(ds, int(labels[i]))} · "
                f"{scores[i]:.1f}" for i in top], columns=8, width=84)
found = int(is_anomaly[top].sum())
st.caption(f"Highest errors first; ★ marks images of {title}. {found} of these {len(top)} "
           + ("is an anomaly." if found == 1 else "are anomalies."))
