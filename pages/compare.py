"""PCA vs autoencoder: the chosen model next to PCA with the same code size, on maps, pictures, error and kNN."""

import time
from pathlib import Path

import streamlit as st

from aelab import checkpoints, compare, metrics, project, ui
from aelab.data import to_float
from aelab.errors import AelabError

st.title("PCA vs autoencoder")
ctx = ui.sidebar()
if ctx.model is None:
    ui.stop()  # the sidebar has said why, under the title

model, ds, path, mtime = ctx.model, ctx.dataset, ctx.model_path, ctx.model_mtime
is_pca = model.variant == "pca"
found, _ = checkpoints.list_checkpoints()

if is_pca:
    st.info("This model is PCA itself: pick an autoencoder in the sidebar to compare; PCA's error curve is below.")
else:
    sizes = [n for n in project.map_sizes(len(ds.y_test)) if n <= 10000]  # a small image set: up to its own size
    # Kept when the user goes to another page and back, per dataset (ui.keep_values).
    KEPT, KEYS = f"compare_values_{ds.name}", ["compare_map_size"]
    ui.give_back_values(KEYS, KEPT)
    map_size = st.select_slider("Test images on the maps", sizes, format_func=lambda n: f"{n:,}", key="compare_map_size",
                                **ui.widget_default("compare_map_size", value=min(sizes, key=lambda n: abs(n - 2000)))
                                ) if len(sizes) > 1 else sizes[0]
    ui.keep_values(KEYS, KEPT)
    start = time.perf_counter()
    with st.spinner("Fitting PCA, encoding and scoring kNN… (once per model; cached afterwards)"):
        pca = ui.fitted_pca(ds.name, model.latent_dim)
        idx, z, y = ui.codes(path, mtime, ds.name, "test", map_size)
        _, pca_z, _ = ui.pca_codes(ds.name, max(2, model.latent_dim), "test", map_size)
        model_sse, pca_sse = ui.test_errors(path, mtime, ds.name)
        try:
            knn = ui.knn_comparison(path, mtime, ds.name)
        except AelabError as err:
            knn, knn_reason = None, str(err)
    angles = compare.pca_subspace_angles(model, pca)
    knn_values = list(knn.values()) if knn else [None, None]
    st.markdown("**Verdict:** " + compare.verdict(model.variant, model.latent_dim, model_sse, pca_sse,
                                                  knn_values[0], knn_values[1], angles,
                                                  compare.unfair_note(ctx.meta)))
    if pca.latent_dim < model.latent_dim:
        st.caption(f"PCA has at most {pca.latent_dim:,} components here (one per pixel value, and one fewer than the "
                   f"{len(ds.x_train):,} training images, which span no more directions): it keeps them all.")
    st.caption(f"PCA, codes, errors{' and kNN accuracies' if knn else ''} ready in "
               f"{time.perf_counter() - start:.1f} s (the charts below are drawn after that).")

    st.subheader("Maps of the test codes")
    model_coords, how = compare.map_2d(z)
    test_files = ds.files("test")  # one's own images: each point's file, named on hover
    files = [test_files[int(i)] for i in idx] if test_files else None
    left, right = ui.wrapping_columns(2, "compare_maps")
    with left:
        shares = project.variance_shares(pca_z[:, :2], to_float(ds.x_test[idx]))
        st.plotly_chart(ui.class_scatter(pca_z[:, :2], y, ds.class_names, idx, title="PCA",
                                         axes=ui.pc_axes(shares),
                                         legend_below=True, equal_scale=True, files=files), width="stretch",
                        key="compare_pca_map")
        st.caption("PCA: the first two principal components.")
    with right:
        st.plotly_chart(ui.class_scatter(model_coords, y, ds.class_names, idx, title=ctx.model_name,
                                         axes=ui.map_axes("pca", model.latent_dim,
                                                          project.variance_shares(model_coords, z)),
                                         legend_below=True,
                                         equal_scale=True, files=files),
                        width="stretch", key="compare_model_map")
        st.caption(f"{model.variant}: {how}.")

    st.subheader("Reconstructions of the same test images")
    pick = compare.one_per_class(ds.y_test, 10)
    x, labels = ds.x_test[pick], ds.y_test[pick]
    originals = to_float(x)
    rows = [("Original", originals, None)]
    for title, which, condition in ((f"PCA ({pca.latent_dim} components)", pca, None),
                                    (f"{model.variant} ({model.latent_dim}-D code)", model, labels)):
        # Shown clipped to [0, 1]; the errors are those of the verdict and the table (PCA's output unclipped).
        output = metrics.reconstruct(which, x, condition)
        rows.append((title, output.clamp(0, 1), ((output - originals) ** 2).flatten(1).sum(1)))
    for title, images, errors in rows:
        captions = None if errors is None else [f"{e:.1f}" for e in errors.tolist()]
        st.markdown(f"**{title}**" + ("" if captions is None else " — squared error under each image"))
        ui.show_images(images, captions, columns=10)

    st.subheader("Nearest-neighbour accuracy")
    if knn is None:
        st.info(knn_reason)
    else:
        st.dataframe(ui.as_percent([{"features": name, "5-NN accuracy": acc} for name, acc in knn.items()],
                                   "5-NN accuracy"),
                     hide_index=True, column_config={"5-NN accuracy": ui.percent_column()})
        st.caption(compare.knn_comparison_caption(ds))

    if angles is None:  # (a heading over one note looked like a section that failed to show)
        st.caption(f"Subspace angles to PCA are shown for linear autoencoders only: principal angles compare two "
                   f"linear subspaces, and the {model.variant} decoder is not linear.")
    else:
        st.subheader("Subspace angles to PCA")
        st.bar_chart({"angle (degrees)": angles}, x_label="principal angle (smallest first)",
                     y_label="degrees", height=260)
        st.caption("A linear autoencoder trained with squared error should span PCA's subspace: all angles near 0°.")

st.subheader("Reconstruction error against latent size")
points = compare.error_points(found, ds.name)
# The line reaches the widest checkpoint's code (mnist-sparse-128), at least 64 and at most 512 components.
reach = min(max([64, *(p["latent_dim"] for p in points)]), 512)
with st.spinner(f"PCA error for 1 to {reach} components…"):
    curve = ui.pca_error_curve(ds.name, reach)
st.plotly_chart(ui.error_curve_figure(curve, points, Path(path).stem), width="stretch",
                key="compare_error_curve")
noted = [f"{p['name']} ({p['note']})" for p in points if p["note"]]
st.caption(f"Line: PCA on {ds.label} with k components. Points: the {ds.label} checkpoints "
           f"({len(points)}), from the test error on every test image stored when they were trained; the chosen one "
           f"is ringed." + (f" Not like for like: {', '.join(noted)}." if noted else ""))

# What the bottleneck keeps, as a teacher shows it: drag k and watch the same digits sharpen. Each k is the leading
# components of one fit (ui.fitted_pca), so a move of the slider costs a reconstruction of ten images.
st.subheader("What k principal components keep")
KEPT_K = f"compare_k_values_{ds.name}"
ui.give_back_values(["compare_pca_k"], KEPT_K)
ui.within("compare_pca_k", len(curve))  # (kept when the line reached further: its widest model since deleted)
k = st.slider("Components (k)", 1, len(curve), key="compare_pca_k",
              **ui.widget_default("compare_pca_k", value=min(model.latent_dim, len(curve))),
              help="PCA with the k leading components of the training images: the line above at k")
ui.keep_values(["compare_pca_k"], KEPT_K)
pick = compare.one_per_class(ds.y_test, 10)
x = ds.x_test[pick]
kept = metrics.reconstruct(ui.fitted_pca(ds.name, k), x)
errors = ((kept - to_float(x)) ** 2).flatten(1).sum(1)
ui.show_images(to_float(x), None, columns=10)
ui.show_images(kept.clamp(0, 1), [f"{e:.1f}" for e in errors.tolist()], columns=10)
st.caption(f"Test images (top) and PCA with {k} component{'s' if k > 1 else ''} (bottom), with each image's squared "
           f"error; over every test image it averages {curve[k - 1]:.2f}, the line above at k = {k}.")
