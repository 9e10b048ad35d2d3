"""The bare round trip of a drawing, for comparison with the Draw page: the same canvas (same size, stroke and
return settings as aelab.ui_explore.canvas), and its image shown back, nothing else."""

import streamlit as st
from streamlit_drawable_canvas import st_canvas

st.set_page_config(page_title="bare canvas", layout="wide")
pad, out = st.columns([1, 2], gap="large")
with pad:
    result = st_canvas(stroke_width=18, stroke_color="#FFFFFF", background_color="#000000", height=280, width=280,
                       drawing_mode="freedraw", return_image_data=True, update_streamlit=True, key="bare_canvas")
objects = (result.json_data or {}).get("objects") or []
with out:
    if result.image_data is not None and objects:
        st.image(result.image_data, caption="echo", width=140)
    else:
        st.info("Draw something.")
