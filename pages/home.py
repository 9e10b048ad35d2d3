"""Home: what the app does, the models at hand with their key metrics, and a link to every page."""

import streamlit as st

from aelab import checkpoints, ui

st.title("aelab — an autoencoder lab")
ctx = ui.sidebar(need_model=False)
st.markdown(
    "aelab trains autoencoders — PCA, linear, fully connected, sparse, denoising, convolutional, VAE and conditional "
    "VAE — on MNIST, Fashion-MNIST, KMNIST or your own images, and keeps each as one checkpoint file. "
    "It lets you see what they learned: reconstructions next to PCA, maps of the codes, interpolations, drawings "
    "read as you draw them, denoising, samples and anomaly scores. "
    "Everything here is also a Python function and a command (`python -m aelab ...`), so results can be reproduced "
    "outside the browser."
)

found, broken = checkpoints.list_checkpoints()
st.subheader("Models")
if found:
    # (the variant is on Models: with it, "status" was cut at 1024 px)
    ui.model_table(found, ["name", "latent size", "dataset", "test error (SSE/image)", "5-NN accuracy", "status"],
                   current=ctx.model_path)
    st.caption(f"{len(found)} checkpoints in {ui.model_root()}. Pick one by clicking its row or in the sidebar; the "
               "Models page has every metric and the training history.")
else:
    st.info(f"No checkpoints in {ui.model_root()} yet: train one on the Train page or upload one on Models.")
for path, reason in broken:
    st.caption(f"Skipped {path.name}: {reason}")

st.subheader("Pages")
# A row of two at a time: on a phone the columns stack, and two tall columns read Train, Compare, Interpolate, ...
# instead of the menu's order.
cards = ui.PAGES[1:]
for start in range(0, len(cards), 2):
    for column, (page, label, icon, blurb) in zip(st.columns(2), cards[start:start + 2]):
        with column:
            st.page_link(page, label=label, icon=icon)
            st.caption(blurb)
