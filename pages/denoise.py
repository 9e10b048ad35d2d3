"""Denoise: corrupt test images or your own, then compare a denoising autoencoder, a plain autoencoder and PCA on
the same noisy inputs, each scored by PSNR against the clean image."""

import numpy as np
import streamlit as st
import torch

from aelab import checkpoints, denoise, ui, ui_explore
from aelab.data import BUILTIN, to_float
from aelab.errors import AelabError, counted

UPLOAD_TYPES = ["png", "jpg", "jpeg", "bmp", "gif", "webp", "tif", "tiff"]
MAX_IMAGES = 12

st.title("Denoise")
ctx = ui.sidebar()
model, ds = ctx.model, ctx.dataset
if model is None:
    ui.stop()  # the sidebar has said why

# --- Models --------------------------------------------------------------------------------------------------
infos = ui_explore.checkpoints_for(ds.name)
denoisers = [i for i in infos if ui_explore.is_denoiser(i.meta)]
plains = [i for i in infos if not ui_explore.is_denoiser(i.meta) and i.meta["variant"] != "pca"]
models = {}
left, right = ui.wrapping_columns(2, "denoise_models")
with left:
    denoiser_info = None
    if denoisers:  # (the choices are kept per dataset across pages)
        denoiser_info = ui_explore.kept_model_picker(
            "Denoising autoencoder", denoisers, "denoise_denoiser", ds.name, denoisers[0].name,
            ui_explore.denoiser_label, follow=next((i.name for i in denoisers if str(i.path) == ctx.model_path), None))
    else:
        # The command for a built-in set (one's own is named by its place on the server, which is not shown).
        command = (f" (or `python -m aelab train conv --dataset {ds.name} --noise gaussian --noise-level 0.5 "
                   f"--out {ui.shown_path(checkpoints.path_for(ds.name + '-denoiser'))}`)" if ds.name in BUILTIN
                   else "")
        st.info(f"No denoising model for {ds.label} yet: train one on the Train page with noise gaussian{command}.")
with right:
    plain_info = None
    if plains:
        # The sidebar's model is the natural plain autoencoder, when it is one; else the one most like the denoiser.
        plain_info = ui_explore.kept_model_picker(
            "Plain autoencoder", plains, "denoise_plain", ds.name, ui_explore.like_for_like(plains, denoiser_info),
            ui.model_label, follow=next((i.name for i in plains if str(i.path) == ctx.model_path), None))
    else:
        st.info(f"No plain (non-denoising) autoencoder for {ds.label}: train one on the Train page.")
# Short titles (metric labels and column headers are narrow: "denoising AE (mnist-denoising-conv)" was cut); the
# model's name is in the help and in the caption under the figures.
explained = {}
for title, info in (("Denoising AE", denoiser_info), ("Plain AE", plain_info)):
    if info is not None:
        try:
            models[title] = ui_explore.load(info)[0]
            explained[title] = ui.model_label(info) + (
                ", a conditional VAE given no label: it decodes each noisy image with the label that explains it "
                "best" if models[title].conditional else "")
        except AelabError as err:
            st.error(ui.sentence(str(err)))
# PCA gets the code size of the plain AE (else of the denoiser, else of the sidebar's model): equal code sizes.
size_of = next(iter(reversed(models)), None)
pca_dim = (models[size_of] if size_of else model).latent_dim
models[f"PCA-{pca_dim}"] = ui.fitted_pca(ds.name, pca_dim)
explained[f"PCA-{pca_dim}"] = (f"PCA with {pca_dim} components (the code size of "
                               f"{'the ' + size_of[0].lower() + size_of[1:] if size_of else ctx.model_name}), "
                               "fitted on the training set")

# --- Noise ---------------------------------------------------------------------------------------------------
# The choices, and the images uploaded, stay when the user goes to another page and back (ui.keep_values).
KEPT, KEYS = "denoise_values", ["denoise_noise", "denoise_level", "denoise_seed", "denoise_source", "denoise_count"]
ui.give_back_values(KEYS, KEPT)

trained = (denoiser_info.meta.get("train_config") if denoiser_info else None) or {}
n1, n2, n3 = st.columns(3)
trained_noise = denoise.NOISES.index(trained.get("noise", "gaussian"))
kind = n1.selectbox("Noise", denoise.NOISES, key="denoise_noise",
                    **ui.widget_default("denoise_noise", index=trained_noise))
level = n2.slider("Level", 0.0, 1.0, step=0.05, help=denoise.NOISE_HELP[kind], key="denoise_level",
                  disabled=kind == "none",
                  **ui.widget_default("denoise_level", value=float(trained.get("noise_level", 0.5))))
level = 0.0 if kind == "none" else level
seed = ui.seed_input(n3, "Noise seed", key="denoise_seed", disabled=kind == "none",
                     **ui.widget_default("denoise_seed", value=0))

# --- Images --------------------------------------------------------------------------------------------------
source = st.radio("Images", ["Test images", "Upload"], horizontal=True, key="denoise_source")
clean, names, uploads = [], [], []
if source == "Upload":
    c, h, w = ds.input_shape
    how = (f"Photos, scans or drawings ({ds.framing.description})" if ds.framing and c == 1 and h == w else
           f"Images (resized to {w} × {h}, {'grayscale' if c == 1 else 'RGB'}, as {ds.label} was)")

    def keep_uploads() -> None:  # the uploader forgets its files once it is not drawn (Test images, another page)
        st.session_state["denoise_uploads"] = [(f.name, f.getvalue())
                                               for f in st.session_state.get("denoise_files") or []]

    files = st.file_uploader(how, type=UPLOAD_TYPES, accept_multiple_files=True, key="denoise_files",
                             on_change=keep_uploads)
    kept = st.session_state.get("denoise_uploads") or []
    if kept and not files:  # drawn again, empty: the files it had are still used
        st.caption(f"Using the {counted(len(kept), 'image')} you uploaded before ({', '.join(n for n, _ in kept[:4])}"
                   f"{', …' if len(kept) > 4 else ''}): upload others to replace them.")
        st.button("Forget them", key="denoise_forget", on_click=lambda: st.session_state.pop("denoise_uploads", None))
    for file_name, content in kept[:MAX_IMAGES]:
        try:
            prepared, thumbnail, note = ui_explore.prepared_upload(content, tuple(ds.input_shape), file_name,
                                                                   ds.name)
        except AelabError as err:
            message = str(err)
            st.error(message if file_name in message else f"{file_name}: {message}")
            continue
        if note:
            st.caption(f"{note}.")
        clean.append(prepared)
        names.append(file_name)
        uploads.append(thumbnail)
    if len(kept) > MAX_IMAGES:
        st.warning(f"Only the first {MAX_IMAGES} of {len(kept)} files are used.")
    if not kept:
        st.info("Upload one or more images, or switch to test images.")
else:
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    most = min(MAX_IMAGES, len(ds.x_test))  # (a small set of one's own may have fewer test images than that)
    ui.within("denoise_count", most)
    count = c1.slider("How many", 1, max(most, 2), key="denoise_count",
                      **ui.widget_default("denoise_count", value=min(6, most)), disabled=most < 2)
    c2.button("Other images", on_click=lambda: st.session_state.update(
        denoise_pick=st.session_state.get("denoise_pick", 0) + 1))
    rng = np.random.default_rng(st.session_state.get("denoise_pick", 0))
    picked = np.sort(rng.choice(len(ds.x_test), size=min(count, len(ds.x_test)), replace=False))
    clean = list(to_float(ds.x_test[torch.from_numpy(picked)]).numpy())
    names = [ui.image_name(ds, "test", i, short=True) + (f" ({ds.class_names[ds.y_test[i]]})" if ds.class_names
                                                        else "") for i in picked]

ui.keep_values(KEYS, KEPT)
if not clean:
    ui.stop()

# --- Results -------------------------------------------------------------------------------------------------
try:
    result = denoise.compare(torch.from_numpy(np.stack(clean)), models, kind, level, int(seed))
except AelabError as err:
    st.error(ui.sentence(str(err)))
    ui.stop()

means = result.mean_psnr()
noiseless = means["noisy"] >= 100  # level 0: every input is its clean image, and a gain over it means nothing
if noiseless:
    st.info(("No noise is added" if kind == "none" else "Level 0 adds no noise") + ": this shows how far each model "
            "changes the images as they are (PSNR against them), and how it cleans what noise they already have.")
cols = st.columns(len(means))
cols[0].metric("Noisy input", "no noise" if noiseless else denoise.db_label(means["noisy"]),
               help="mean PSNR against the clean image; higher is better")
for col, name in zip(cols[1:], models):
    gain = means[name] - means["noisy"]
    same = abs(gain) < 0.05  # would show as a red "-0.0"
    col.metric(name, denoise.db_label(means[name]),
               None if noiseless else "±0.0 dB vs noisy" if same else f"{gain:+.1f} dB vs noisy",
               delta_color="off" if same else "normal", delta_arrow="off" if same else "auto",
               help=f"{explained[name]}: mean PSNR of its outputs against the clean images")
st.caption(" · ".join(f"{name}: {what}" for name, what in explained.items()))
if "Plain AE" in means and not noiseless and means["Plain AE"] < means["noisy"]:  # students ask why: say it here
    st.caption("The plain AE comes out worse than its noisy input: it never saw noise in training, so noisy images "
               "lie away from everything it learnt to rebuild, and it rebuilds them as other shapes with the noise "
               "smeared in." + (" The denoising AE learnt from noisy copies to give back the clean image."
                                if "Denoising AE" in means else ""))

# "prepared": an upload as the model takes it (grayscale, cropped, centred, resized); short, so that no header wraps
# into a column of its own at 800 px.
headers = (["uploaded", "prepared"] if uploads else ["clean"]) + ["input" if noiseless else "noisy"] + list(models)
# In one container whose rows never stack (IMAGE_ROW_CSS): on a phone, Streamlit put each column under the other,
# 30 images in one column, only the first of each row named.
table = st.container(key="denoise_grid")
grid = table.container(key="denoise_headers").columns(len(headers))  # (smaller, and not broken mid-word)
for col, header in zip(grid, headers):
    col.markdown(f"**{header}**")
for i, name in enumerate(names):
    row = table.columns(len(headers))
    j = 0
    if uploads:
        row[0].image(uploads[i], caption=name, width=112)
        j = 1
    row[j].image(ui_explore.enlarge(result.clean[i].numpy(), 4), caption=None if uploads else name, width=112)
    row[j + 1].image(ui_explore.enlarge(result.noisy[i].numpy(), 4), caption=denoise.db_label(result.noisy_psnr[i]),
                     width=112)
    for k, model_name in enumerate(models):
        row[j + 2 + k].image(ui_explore.enlarge(result.outputs[model_name][i].numpy(), 4),
                             caption=denoise.db_label(result.output_psnr[model_name][i]), width=112)
