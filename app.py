"""aelab: an autoencoder lab in the browser. `streamlit run app.py` (or `make app`)."""

import streamlit as st

from aelab import ui

st.set_page_config(page_title="aelab", page_icon="🧪", layout="wide")
st.html(ui.IMAGE_ROW_CSS)  # rows of images shrink to the screen instead of wrapping
# umap's numba code compiles on first use (a minute on a small CPU, never cached on disk): start that in a
# background thread at server start, so the first latent map is only the fit itself.
ui.umap_warmup()

PAGES = [st.Page(path, title=title, icon=icon, default=(i == 0)) for i, (path, title, icon, _) in enumerate(ui.PAGES)]

st.navigation(PAGES).run()
