"""Draw: a digit on a canvas, read by the model after every stroke: the MNIST-style input it gets, its
reconstruction, the class its nearest training codes vote for, and where its code lands among the test codes.

Only the fragment below reruns after a stroke; the model, the kNN index and the map are fitted once per model and
process (ui_explore's caches), so a stroke costs one image preparation, one forward pass and one kNN query."""

import time

import streamlit as st

from aelab import classify, ui, ui_explore
from aelab.errors import AelabError

SMALL_DRAWING = 0.25  # of the canvas: smaller drawings are scaled up 3x and more, their strokes with them

st.title("Draw")
ctx = ui.sidebar()
model, ds = ctx.model, ctx.dataset
if model is None:
    ui.stop()  # the sidebar has said why
channels, height, width = model.input_shape
if channels != 1 or height != width:
    shape = f"{'RGB' if channels == 3 else f'{channels}-channel'} images of {height}×{width}"
    st.info(f"The canvas draws in one colour on square paper, so Draw needs a model of grayscale square images; "
            f"{ctx.model_name} takes {shape}. For a set of your own, add its zip again as grayscale on the Train page "
            "(under another name: a set is kept at the size and colour it was added at) and train a model on that.")
    ui.stop()
if not ds.num_classes or (ds.y_train < 0).any():
    st.info(f"{ds.label} has no class labels, so a drawing cannot be classified: pick a labelled dataset.")
    ui.stop()

knn = ui_explore.code_knn(ctx.model_path, ctx.model_mtime, ds.name)
latent_map, _, _ = ui_explore.latent_map(ctx.model_path, ctx.model_mtime, ds.name)
base_map = ui_explore.map_picture(ctx.model_path, ctx.model_mtime, ds.name)
if model.conditional:
    st.caption("A conditional VAE is given each image's label; a drawing has none, so the model tries every label and "
               "reads the drawing as the one that explains it best (the lowest BCE + KL), and decodes it with that "
               "label. Its code leaves the class to the label, so the nearest codes share the drawing's style more "
               "than its class.")


def clear_canvas():
    st.session_state["draw_clear"] = st.session_state.get("draw_clear", 0) + 1


@st.fragment
def board():
    start = time.perf_counter()
    # The canvas has a fixed size: its column is wide enough for it on a 1024 px screen (a third of the page cut the
    # right 45% of a 280 px canvas off there, and some of it at 1280).
    pad, out = st.container(key="draw_board").columns([1, 1.2], gap="small")  # (draw_board: ui.IMAGE_ROW_CSS)
    with pad.container(key="draw_pad"):  # (ui.IMAGE_ROW_CSS keeps its column as wide as the canvas)
        st.caption(f"Draw {ui_explore.what_to_draw(ds)}, {ui_explore.how_to_draw(ds)}. Everything updates when "
                   "you lift the mouse or your finger.")
        drawing = ui_explore.canvas(f"draw_canvas_{st.session_state.get('draw_clear', 0)}", size=240, stroke=15,
                                    keep="draw_drawing")  # (drawn again after a visit to another page)
        # A new key is a new, empty canvas: the component has no "clear" that Python can trigger.
        st.button("Clear", on_click=clear_canvas)
        # Where the results go under the canvas (a phone, an 800 px window): what it was read as, in view as the
        # finger lifts, and that the rest is below (shown only then: aelab.menu's CSS).
        quick = st.container(key="draw_quick")
    with out:
        if drawing is None:
            st.info(f"Draw {ui_explore.what_to_draw(ds)} on the canvas to see what the model makes of it.")
            st.html(ui_explore.map_html(base_map, None, "your drawing will land here"))
            return
        try:
            reading = classify.read_drawing(model, drawing, knn, latent_map, framing=ds.framing,
                                            dark_on_light=ds.dark_on_light)
        except AelabError as err:
            st.info(str(err))
            return
        if ds.framing is not None and reading.extent < SMALL_DRAWING:
            st.warning(f"Your drawing spans {reading.extent:.0%} of the canvas. It is scaled up to fill the frame "
                       f"as {ds.label}'s images were, strokes and all, so it reads as a thick blob: draw larger.")
        st.html(ui_explore.drawing_panel(reading, knn, ds))
        guess = ds.class_names[reading.label]
        quick.markdown(f"Read as **{guess}**: the model's input, its reconstruction and the nearest codes are below.")
        # (One's own classes are folder names, "squares": no article. "an Ankle boot", "an 8".)
        article = ("an " if guess[:1].lower() in "aeiou8" else "a ") if ds.framing is not None else ""
        st.html(ui_explore.map_html(base_map, reading.map_position, f"your drawing ({article}{guess}?)"))
        st.caption(f"Read from the canvas, prepared, encoded, decoded, classified, placed and drawn in "
                   f"{(time.perf_counter() - start) * 1000:.0f} ms of Python.")


board()
