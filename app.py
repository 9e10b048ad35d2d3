"""aelab: an autoencoder lab in the browser. `streamlit run app.py` (or `make app`)."""

import streamlit as st

from aelab import ui

st.set_page_config(page_title="aelab", page_icon="🧪", layout="wide")
# umap's numba code compiles on first use (a minute on a small CPU, never cached on disk): start that in a
# background thread at server start, so the first latent map is only the fit itself.
ui.umap_warmup()

PAGES = [
    st.Page("pages/home.py", title="Home", icon="🏠", default=True),
    st.Page("pages/train.py", title="Train", icon="🏋️"),
    st.Page("pages/models.py", title="Models", icon="📦"),
    st.Page("pages/compare.py", title="PCA vs autoencoder", icon="⚖️"),
    st.Page("pages/latent_map.py", title="Latent map", icon="🗺️"),
    st.Page("pages/interpolate.py", title="Interpolate", icon="↔️"),
    st.Page("pages/draw.py", title="Draw", icon="✏️"),
    st.Page("pages/denoise.py", title="Denoise", icon="🧹"),
    st.Page("pages/generate.py", title="Generate", icon="🎲"),
    st.Page("pages/anomalies.py", title="Anomalies", icon="🚨"),
]

st.navigation(PAGES).run()
