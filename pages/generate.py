"""Generate: new images from a VAE's prior. The conditional VAE also gets a row per class and a grid where each
column keeps one latent code (one style) while the class changes down it; a 2-D code, the decoded latent plane. Any
other model (an autoencoder, PCA), and a VAE if asked, samples codes from a mixture of Gaussians fitted to its codes of
training images."""

import streamlit as st
import torch

from aelab import explore, ui, ui_explore
from aelab.data import class_text
from aelab.errors import AelabError

st.title("Generate")
ctx = ui.sidebar()
model = ctx.model
if model is None:
    ui.stop()  # the sidebar has said why
# The choices stay when the user goes to another page and back, per dataset (ui.keep_values; Streamlit drops the
# state of widgets not drawn: the seed went back to 0).
KEPT, KEYS = f"generate_values_{ctx.dataset.name}", ["generate_temperature", "generate_seed", "generate_class",
                                                     "generate_per_class", "generate_side", "generate_source",
                                                     "generate_components"]
ui.give_back_values(KEYS, KEPT)
# Where the codes come from: a VAE's prior; or, for any model that decodes (and a VAE if asked), a mixture of
# Gaussians fitted to its codes of training images (Pythae's GaussianMixtureSampler: a plain autoencoder samples too).
# What the samples are made of is said under them: at 1280x720 the grid began at the screen's bottom edge (a
# teacher's walk-through), so the controls share rows and the words come after.
notes = []
if not model.generative:
    kind = "PCA" if model.variant == "pca" else "a plain autoencoder"
    # Plain words first (a teacher's walk-through: "no prior to sample codes from" lost her class); the method below.
    st.info(f"{ctx.model_name} is {kind}: it cannot invent codes by itself. So new codes are made here that look "
            "like the codes it gives real training images, and it turns them into images.",
            icon=":material/lightbulb:")
    notes.append("How: a mixture of Gaussians (bell curves) is fitted to its codes of training images, and new codes "
                 "are drawn from it. A VAE has a prior of its own to draw from: pick one in the sidebar, or train one "
                 "on the Train page.")
    source = "mixture"
elif not model.conditional:
    source = st.radio("Codes from", ["prior", "mixture"], horizontal=True, key="generate_source",
                      format_func={"prior": "its prior (random codes)",
                                   "mixture": "codes like those of training images"}.get,
                      help="its prior: codes drawn at random from N(0, I), what a VAE is trained to decode; codes like "
                           "those of training images: drawn from a mixture of Gaussians fitted to its codes of "
                           "training images, which need not fill the prior, so they decode to images more like the "
                           "data")
else:
    source = "prior"
if source == "mixture":
    left, mix, middle, right = st.columns([2, 2, 1, 1], vertical_alignment="bottom")
    components = mix.slider("Mixture components", 1, 30, key="generate_components",
                            **ui.widget_default("generate_components", value=10),
                            help="Gaussians fitted to the codes (each with a full covariance): more follow the codes "
                                 "more closely, as classes or styles")
else:
    left, middle, right = st.columns([2, 1, 1], vertical_alignment="bottom")
temperature = left.slider("Temperature", 0.0, 2.0, step=0.05, key="generate_temperature",
                          **ui.widget_default("generate_temperature", value=1.0))
st.session_state.setdefault("generate_seed", 0)  # set here, not as the widget's default: "New samples" changes it
seed = ui.seed_input(middle, "Seed", key="generate_seed")
right.button("New samples", on_click=lambda: st.session_state.update(generate_seed=(seed + 1) % (ui.MAX_SEED + 1)))
if source == "mixture":
    try:
        mixture = ui_explore.code_mixture(ctx.model_path, ctx.model_mtime, ctx.dataset.name, components)
    except AelabError as err:
        st.error(ui.sentence(str(err)))
        ui.stop()
    fitted = len(mixture.weights)  # (a set of fewer images than components has one per image)
    notes.insert(0, f"Samples decode codes drawn from {fitted} Gaussian{'s' if fitted != 1 else ''} fitted to the "
                    f"codes of {mixture.codes:,} training images, their spread scaled by the temperature: below 1 "
                    "they are more typical and cleaner, above 1 more varied and stranger.")
else:
    notes.insert(0, "Samples decode codes z drawn from the prior N(0, I), scaled by the temperature: below 1 they are "
                    "more typical and cleaner, above 1 more varied and stranger.")
if temperature == 0:
    st.info("At temperature 0 every code is its component's mean, so there are as many images as components."
            if source == "mixture" else "At temperature 0 every code is the prior's mean, z = 0, so every sample is "
            "the same image" + (" (one per class)." if model.conditional else "."))

try:
    if model.conditional:
        classes = model.config.num_classes
        names = ctx.meta.get("dataset", {}).get("class_names") or [str(k) for k in range(classes)]
        pick, size = st.columns(2)
        only = pick.selectbox("Class", [None, *range(classes)], key="generate_class",
                              format_func=lambda k: "every class" if k is None else class_text(names, k),
                              help="one class: a grid of its samples, as `python -m aelab sample --label K` writes")
        if only is None:
            per_class = size.slider("Samples per class", 4, 16, key="generate_per_class",
                                    **ui.widget_default("generate_per_class", value=10))
            ui.keep_values(KEYS, KEPT)
            a, b = st.columns(2)
            with a:
                st.subheader("A row per class")
                st.caption("Every image has its own code; the label picks the class. Rows, top to bottom: "
                           + ", ".join(names))
                labels = torch.arange(classes).repeat_interleave(per_class)
                ui_explore.show_tile(explore.samples(model, len(labels), temperature, seed, labels), per_class)
            with b:
                st.subheader("Style per column")  # (short: "Fixed style, varying class" wrapped at 1024 px)
                st.caption(f"Each column shares one code, so it keeps one style ({ui_explore.style_words(ctx.dataset)})"
                           " while the label changes the class down the column.")
                ui_explore.show_tile(explore.class_grid(model, per_class, temperature, seed), per_class)
        else:
            side = size.slider("Grid size", 4, 16, help="the grid is size x size samples", key="generate_side",
                               **ui.widget_default("generate_side", value=10))
            ui.keep_values(KEYS, KEPT)
            st.caption(f"{side * side} samples of class {class_text(names, only)}: each its own code from the "
                       "prior, decoded with that label.")
            ui_explore.show_tile(explore.samples(model, side * side, temperature, seed,
                                                 torch.full((side * side,), only)), side, width=min(720, 64 * side))
    else:
        side = st.slider("Grid size", 4, 16, help="the grid is size x size samples", key="generate_side",
                         **ui.widget_default("generate_side", value=10))
        ui.keep_values(KEYS, KEPT)
        images = explore.mixture_samples(model, mixture, side * side, temperature, seed) if source == "mixture" \
            else explore.samples(model, side * side, temperature, seed)
        ui_explore.show_tile(images, side, width=min(720, 64 * side))
except AelabError as err:
    st.error(ui.sentence(str(err)))
for note in notes:
    st.caption(note)

if model.latent_dim == 2 and model.generative:  # a 2-D prior can be shown whole: the plane its samples come from
    ui_explore.latent_plane(model, ctx.dataset, None, key="generate_plane",
                            label=st.session_state.get("generate_class") if model.conditional else None)
