"""Latent map: a UMAP or PCA map of the codes of a sample; selected points show their images, reconstructions and
nearest neighbours in code space; the codes export as CSV or as Embedding Projector files."""

import time
from collections import Counter
from pathlib import Path

import numpy as np
import streamlit as st

from aelab import cache, compare, explore, export, metrics, project, ui, ui_explore
from aelab.data import short_class_name, to_float
from aelab.errors import AelabError

SHOWN = 32  # selected images drawn at most; the rest are counted

st.title("Latent map")
ctx = ui.sidebar()
if ctx.model is None:
    ui.stop()  # the sidebar has said why, under the title

model, ds, path, mtime = ctx.model, ctx.dataset, ctx.model_path, ctx.model_mtime
names = ds.class_names


def name_of(label: int) -> str:
    return names[label] if 0 <= label < len(names) else "unlabelled"


# The map's settings stay when the user goes to another page and back (a 60,000-image map was back to 5,000 test
# images): Streamlit drops the state of widgets not drawn, so the page keeps copies, per dataset (ui.keep_values).
KEPT = f"map_values_{ds.name}"
KEYS = ["map_split", "map_size_test", "map_size_train", "map_method", "map_neighbors", "map_min_dist",
        "map_neighbours_k", "map_neighbours_metric", "map_colour"]
ui.give_back_values(KEYS, KEPT)
left, middle, right = st.columns([1, 2, 1])
split = left.radio("Images", ["test", "train"], horizontal=True, key="map_split")
x_all, y_all = ds.split(split)
total = len(x_all)
sizes = project.map_sizes(total)
if len(sizes) > 1:
    size = middle.select_slider("Sample size" + (" (stratified by class)" if names else ""), sizes,
                                **ui.widget_default(f"map_size_{split}", value=project.default_map_size(total)),
                                format_func=lambda n: f"{n:,}" + (" (all)" if n == total else ""),
                                key=f"map_size_{split}",
                                help="UMAP of 20,000 to 60,000 codes takes 40 s to a minute on 2 CPU cores the first "
                                     "time; every map is kept on disk and comes back at once afterwards")
else:  # a split small enough for one map: all of it (a slider of one value was a lone dot)
    size = total
    middle.caption(f"All {total:,} {split} images.")
n_neighbors, min_dist = project.PAGE_UMAP["n_neighbors"], project.PAGE_UMAP["min_dist"]
if model.latent_dim == 2:
    right.caption("Map: the 2-D code itself, no projection.")
    method = "PCA"  # project_codes hands 2-D codes back untouched, whatever the method
else:
    method = right.radio("Map", ["UMAP", "PCA"], horizontal=True, key="map_method")
if method == "UMAP":
    with st.expander("UMAP settings"):
        n_neighbors = st.slider("Neighbours (local ↔ global structure)", 5, 100, key="map_neighbors",
                                **ui.widget_default("map_neighbors", value=n_neighbors))
        min_dist = st.slider("Minimum distance (how tightly points pack)", 0.0, 0.99, step=0.01, key="map_min_dist",
                             **ui.widget_default("map_min_dist", value=min_dist))
ui.keep_values(KEYS, KEPT)
waiting = f"Encoding {size:,} images" + ("…" if model.latent_dim == 2 else f" and mapping the codes with {method}…")
if method == "UMAP" and model.latent_dim != 2 and size > 10000:
    waiting += " A large sample: up to a minute on a small CPU the first time (kept on disk afterwards)."
compiling = method == "UMAP" and ui.umap_warming_up()
if compiling:
    waiting += " UMAP is still compiling in the background (once per server start), so this first map takes longer."

start, started_at = time.perf_counter(), time.time()
with st.spinner(waiting):
    try:
        result = ui.latent_map(path, mtime, ds.name, split, None if size == total else size, method.lower(),
                               n_neighbors, min_dist)
    except AelabError as err:
        st.error(ui.sentence(str(err)))
        ui.stop()
elapsed = time.perf_counter() - start
indices, codes, labels, coords = result["indices"], result["codes"], result["labels"], result["coords"]
how = "read from the disk cache" if result["from_disk"] else f"computed in {result['seconds']:.1f} s"
if model.latent_dim == 2:
    st.caption(f"Map of {len(codes):,} codes in {elapsed:.2f} s.")
elif result["computed_at"] < started_at:
    st.caption(f"Map of {len(codes):,} codes from the cache in {elapsed:.2f} s (its {method} coordinates were {how}).")
else:
    st.caption(f"Map of {len(codes):,} codes in {elapsed:.1f} s: encoding, then {method} coordinates {how}."
               + (" UMAP was still compiling in the background (once per server start): later maps are faster."
                  if compiling and not result["from_disk"] else ""))

if model.conditional:  # a map with every class mixed looks broken, and is not
    st.info(f"{ctx.model_name} is a conditional VAE: it is given each image's class as a label, so its code need not "
            "carry the class, and the classes are mixed on this map. The code holds what the label does not: "
            f"style ({ui_explore.style_words(ds)}). Points close together share a style, whatever their class.")
# One's own images: each mapped point's file (its path in the folder or zip), named on hover and under its image
split_files = ds.files(split)
files = [split_files[int(i)] for i in indices] if split_files else None
sample = None if size == total else size
colour = st.radio("Colour", ["class", "error"], horizontal=True, key="map_colour",
                  format_func={"class": "by class", "error": "by reconstruction error"}.get,
                  help="reconstruction error: squared error per image, as on the Anomalies page; the worst "
                       "reconstructed images stand out, and where on the map they lie")
errors = ui_explore.sample_errors(path, mtime, ds.name, split, sample) if colour == "error" else None
map_key = "latent_map_" + cache.key(path, mtime, split, size, method, n_neighbors, min_dist)
# The Projector's search: an image by its number (or, one's own, part of its file's name), marked on the map
query = st.text_input("Find an image", key="map_find", placeholder=f"its number, as {split} #123"
                      + (", or part of its file's name" if files else ""),
                      help="marks it on the map with a star; a click on the star selects it. To see one class alone, "
                           "double-click it in the legend")
found, found_words = explore.find_on_map(query, indices, split, total, files)
if found_words:
    (st.caption if found else st.warning)(found_words)
shares = project.variance_shares(coords, codes) if method.lower() == "pca" and model.latent_dim > 2 else None
event = st.plotly_chart(ui.class_scatter(coords, labels, names, indices,
                                         axes=ui.map_axes(method, model.latent_dim, shares),
                                        equal_scale=method.lower() != "umap" or model.latent_dim == 2,
                                        files=files, errors=errors, found=found),
                        key=map_key, on_select="rerun",
                        selection_mode=("points", "box", "lasso"), width="stretch")
if errors is not None:
    low, high = np.percentile(errors, [2, 98])
    st.caption(f"Colours run from the 2nd to the 98th percentile of the errors ({low:.1f} to {high:.1f}; the highest "
               f"is {errors.max():.1f}): an error above {high:.1f} takes the top colour.")
rows = sorted({int(p["customdata"][0]) for p in event.selection.points if p.get("customdata")})
rows = [r for r in rows if r < len(codes)]

if not rows:
    st.caption("Click a point, or drag a box or lasso (toolbar, top right of the map), to see those images, their "
               "reconstructions and their nearest neighbours in code space. On a touch screen, tap a point twice: "
               "the first tap names it.")
else:
    counts = Counter(name_of(v) for v in labels[rows])
    # Every class of the selection, in proportion and at least one each, the rarer first: in a lasso round a cluster
    # the few that do not belong are seen, and so is the cluster.
    shown = explore.shown_of_selection(rows, {r: name_of(labels[r]) for r in rows}, SHOWN)
    st.subheader(f"{len(rows):,} selected" + (f", {SHOWN} shown (each class in proportion, the rarer first)"
                                               if len(rows) > SHOWN else ""))
    st.caption("Classes (images): " + ", ".join(f"{name}: {n:,}" for name, n in counts.most_common()))
    x, y = x_all[indices[shown]], y_all[indices[shown]]
    # As the other pages name an image ("test #3"), its class under it (two lines: a row of 8 stays even at 1024 px)
    captions = [f"{ui.image_name(ds, split, int(indices[r]), short=True)}\n{short_class_name(names, v)}"
                + (f"\nerror {errors[r]:.1f}" if errors is not None else "") for v, r in zip(y.tolist(), shown)]
    st.markdown("**Images**")
    ui.show_images(to_float(x), captions, columns=8, width=72)  # 8 a row: captions stay legible at 1024 px
    st.markdown("**Reconstructions**")
    ui.show_images(metrics.reconstruct(model, x, y).clamp(0, 1), columns=8, width=72)

    ask, many, metric = ui.wrapping_columns([3, 2, 2], "map_neighbours_ask", narrowest=130,
                                            vertical_alignment="bottom")
    query = ask.selectbox("Nearest neighbours in code space of", shown,
                          format_func=lambda r: f"{ui.image_name(ds, split, int(indices[r]))} ({name_of(labels[r])})",
                          key=f"{map_key}_query")
    k = many.slider("How many", 5, 30, key="map_neighbours_k", **ui.widget_default("map_neighbours_k", value=10))
    metric = metric.radio("Distance", ["euclidean", "cosine"], horizontal=True, key="map_neighbours_metric",
                          format_func=str.title,
                          help="Euclidean: how far apart the codes are; cosine: only the angle between them (1 − cos), "
                               "whatever their lengths")
    near, dist = compare.code_neighbours(codes, [query], k=k, metric=metric)
    near, dist = near[0], dist[0]
    same = sum(labels[r] == labels[query] for r in near)
    ui.show_images(to_float(x_all[indices[[query, *near]]]),
                   ["query"] + [f"{short_class_name(names, int(labels[r]))}\nd={d:.2f}" for r, d in zip(near, dist)],
                   columns=k + 1, width=64, wrap_key="map_neighbours")
    st.caption(f"{same} of the {len(near)} nearest codes ({metric.title()}, among the {len(codes):,} mapped) share "
               "its class. Where they lie on the map:")
    # (near in code space need not be near on a 2-D map: UMAP keeps neighbourhoods, PCA's two axes may not)
    st.plotly_chart(ui.neighbours_figure(coords, query, near, axes=ui.map_axes(method, model.latent_dim, shares),
                                         equal_scale=method.lower() != "umap" or model.latent_dim == 2),
                    key=f"{map_key}_neighbours_map", config={"displayModeBar": False})
    if split == "test":  # (Interpolate picks test images)
        a, b = st.columns(2)
        with a:
            ui_explore.link_to_pick(ds, int(indices[query]), "a", "Interpolate from it (as image A)")
        with b:
            ui_explore.link_to_pick(ds, int(indices[query]), "b", "Interpolate to it (as image B)")

st.subheader("Export")
stem = f"{Path(path).stem}-{split}-{len(codes)}"
a, b = st.columns(2)
a.download_button("Codes as CSV", on_click="ignore", mime="text/csv", file_name=f"{stem}-codes.csv",
                  data=lambda: export.codes_csv(codes, labels, names, indices, coords, files,
                                                ui_explore.sample_errors(path, mtime, ds.name, split, sample)))
b.download_button("Embedding Projector files (zip)", on_click="ignore", mime="application/zip",
                  file_name=f"{stem}-projector.zip",
                  data=lambda: export.projector_zip(codes, labels, x_all[indices], names, indices, Path(path).stem,
                                                    files, ui_explore.sample_errors(path, mtime, ds.name, split,
                                                                                    sample)))
st.caption("The CSV has one row per image: index in the split, label, class, "
           + ("its file, " if files is not None else "") + "reconstruction error, map coordinates, then the code. "
           "The zip "
           "holds vectors.tsv, metadata.tsv, sprite.png and projector_config.pbtxt: unzip it into a folder and run "
           "`tensorboard --logdir <folder>`, or load the two TSV files at projector.tensorflow.org.")
