"""aelab: an autoencoder lab in the browser. `streamlit run app.py` (or `make app`)."""

import streamlit as st

from aelab.menu import IMAGE_ROW_CSS, PAGES  # (light: the menu is drawn before torch and aelab.ui are imported)

st.set_page_config(page_title="aelab", page_icon="🧪", layout="wide")
st.html(IMAGE_ROW_CSS)  # rows of images shrink to the screen instead of wrapping
# The menu first: until a run reaches st.navigation, the browser shows Streamlit's own menu of the file names in
# pages/ ("app | anomalies | compare ..."), which stayed 3 s on a first visit while aelab.ui imported torch.
page = st.navigation([st.Page(path, title=title, icon=icon, default=(i == 0))
                      for i, (path, title, icon, _) in enumerate(PAGES)])

from aelab import ui  # noqa: E402 (after the menu, above)

ui.code_changed_note()
try:
    page.run()
finally:
    # umap's numba code compiles on first use (a minute on a small CPU): start that in a background thread once the
    # server's first page has run, so the first latent map is only the fit itself. Started before that page, it
    # took the 2 cores and the GIL from it: a first Latent map took 14.7 s, 7.9 s without the warm-up.
    ui.umap_warmup()
