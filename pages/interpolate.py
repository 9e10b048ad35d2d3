"""Interpolate: walk between the codes of two images and decode each step; for 2-D codes, decode the whole latent
plane; for any model, sweep one latent dimension at a time (traversals), or set the coordinates by hand with sliders
and watch the decoded image change."""

import hashlib

import numpy as np
import streamlit as st
import torch

from aelab import explore, ui, ui_explore
from aelab.errors import AelabError

# Traversal rows beyond this are hard to read, and each row is `steps` decodes: let the user pick which ones.
MAX_TRAVERSAL_DIMS = 16
HAND_DIMS = 8  # sliders of "Set the code by hand": the first of the traversal's dimensions


@st.fragment
def by_hand(x: torch.Tensor, label: int | None, which: str, dims: list[int], span: float) -> None:
    """Sliders for some coordinates of an image's code (the others kept), and the decoded image, redrawn as a slider
    moves (a fragment: the page's other parts are not run again)."""
    code, condition = explore.image_code(model, x, label)
    low, high = explore.code_ranges(reference, span)
    # Keyed by the image and the model: another image (or a new drawing) starts from its own code.
    start = hashlib.sha256(x.numpy().tobytes() + ctx.model_name.encode()).hexdigest()[:12]
    keys = {d: f"hand_{start}_{d}" for d in dims}
    values = code.numpy().astype(np.float64).copy()
    # Set, not forgotten, in a callback: a slider whose state was only deleted kept its thumb where the user left it
    # in the browser (the image was decoded from the code again, the thumb said otherwise).
    st.button("Back to the image's code", key="hand_reset", on_click=st.session_state.update,
              args=({keys[d]: float(values[d]) for d in dims},))
    sliders, shown = st.columns([3, 2])
    cells = sliders.columns(2)
    for n, d in enumerate(dims):
        lo, hi = float(min(low[d], values[d])), float(max(high[d], values[d]))  # (the image's own value in range)
        values[d] = cells[n % 2].slider(f"z{d + 1}", lo, hi, **ui.widget_default(keys[d], value=float(values[d])),
                                        step=(hi - lo) / 100 or 0.01, format="%.2f", key=keys[d])
    changed = [d + 1 for d in dims if abs(values[d] - float(code[d])) > 1e-9]
    with shown:
        ui.show_images(torch.stack([x.float(), explore.decode_code(model, values, condition)]),
                       [f"image {which}", "decoded" + (f" (z{', z'.join(map(str, changed[:3]))}"
                                                       f"{'…' if len(changed) > 3 else ''} moved)" if changed else "")],
                       columns=2, width=140)

st.title("Interpolate")
ctx = ui.sidebar()
model, ds = ctx.model, ctx.dataset
if model is None:
    ui.stop()  # the sidebar has said why

# The page's choices stay when the user goes to another page and back: Streamlit drops the state of widgets not
# drawn, so the page keeps copies, per dataset (ui.keep_values). A drawing is kept by the canvas itself.
KEPT = f"interpolate_values_{ds.name}"
KEYS = [f"interp_{side}_{what}" for side in "ab" for what in ("source", "class", "index")] + [
    "interp_steps", "interp_path", f"traverse_dims_{ctx.model_name}", "traverse_span", "traverse_steps"]
ui.give_back_values(KEYS, KEPT)
for side in ("interp_a", "interp_b"):  # an image sent from the Latent map (ui_explore.link_to_pick)
    ui_explore.image_from_link(ds, side, KEPT)

# The page is long (the sliders came two screens down at 720 px, a teacher's walk-through): where each part is.
parts = ["Between two images"] + (["The latent plane"] if model.latent_dim == 2 else []) + \
    ["Traversals", "Set the code by hand"]
st.caption("On this page: " + " · ".join(f"[{part}](#{part.lower().replace(' ', '-')})" for part in parts))
st.subheader("Between two images", anchor="between-two-images")
col_a, col_b = st.columns(2)
with col_a:
    x_a, label_a, caption_a = ui_explore.pick_image(ds, "interp_a", "Image A")
with col_b:
    x_b, label_b, caption_b = ui_explore.pick_image(ds, "interp_b", "Image B", default_class=1)

left, right = st.columns(2)
steps = left.slider("Steps", 2, 20, key="interp_steps", **ui.widget_default("interp_steps", value=10))
method = right.radio("Path", ["linear", "spherical"], horizontal=True, key="interp_path",
                     help="spherical (slerp) follows an arc, so the codes between keep about the length of the two ends "
                          "instead of cutting through shorter codes, atypical for a VAE's Gaussian prior")
if x_a is None or x_b is None:
    st.info("Choose or draw both images to see the path between them.")
else:
    try:
        path = explore.interpolate(model, x_a, x_b, steps, method, label_a, label_b)
        st.caption(f"From A ({caption_a}) on the left to B ({caption_b}) on the right, in {steps} steps.")
        ui.show_images(path, columns=steps, width=64)
        if model.conditional:
            st.caption("Conditional model: each image is encoded with its class label (a drawn one with the label "
                       "that explains it best), and the label switches from A's to B's half-way along the path.")
    except AelabError as err:
        st.error(ui.sentence(str(err)))

reference = ui_explore.test_codes_sample(ctx.model_path, ctx.model_mtime, ds.name)

if model.latent_dim == 2:
    ui_explore.latent_plane(model, ds, reference, key="interpolate_plane")

st.subheader("Traversals", anchor="traversals")
st.caption("Each row keeps the image's code but sets one coordinate to values from −span to +span standard "
           "deviations around that coordinate's mean over test codes (the usual traversal of β-VAE papers), so the "
           "image itself need not appear in the row: the columns show what that one coordinate controls.")
dims_all, inactive = explore.dimensions_by_spread(model, reference)
active = [d for d in dims_all if d not in inactive] or dims_all
x_t = x_a if x_a is not None else x_b
c1, c2, c3 = ui.wrapping_columns([3, 1, 1], "traverse", narrowest=130)  # (at 800 px the chips were cut)
dims = c1.multiselect("Dimensions" + (f" (at most {MAX_TRAVERSAL_DIMS})" if len(dims_all) > MAX_TRAVERSAL_DIMS
                                      else ""), dims_all,
                      **ui.widget_default(f"traverse_dims_{ctx.model_name}", default=active[:8]),
                      format_func=lambda d: f"{d + 1} (unused)" if d in inactive else str(d + 1),  # as the plane
                      max_selections=MAX_TRAVERSAL_DIMS, key=f"traverse_dims_{ctx.model_name}",
                      help="numbered from 1, as on the latent plane; listed by how much the coordinate varies over "
                           "test codes, most first")
if inactive:
    st.caption(f"{len(inactive)} of {model.latent_dim} dimensions are unused: their mean code hardly varies over the "
               f"test images (variance under {explore.ACTIVE_VARIANCE}), so the decoder ignores them and their "
               "rows would show one image; they are not picked at first.")
span = c2.slider("Span (std)", 0.5, 5.0, step=0.5, key="traverse_span", **ui.widget_default("traverse_span", value=3.0))
t_steps = c3.slider("Steps", 3, 15, key="traverse_steps", **ui.widget_default("traverse_steps", value=9))
ui.keep_values(KEYS, KEPT)
if x_t is None:
    st.info("Choose or draw image A to traverse its code.")
elif not dims:
    st.info("Pick at least one dimension.")
else:
    rows = explore.traversals(model, x_t, dims, t_steps, span, torch.from_numpy(reference),
                              label_a if x_a is not None else label_b)
    ui_explore.show_tile(rows.flatten(0, 1), t_steps, width=min(720, 56 * t_steps),
                         caption=f"Rows, top to bottom: dimensions {', '.join(str(d + 1) for d in dims)}; from image "
                                 f"{'A' if x_a is not None else 'B'}")

st.subheader("Set the code by hand", anchor="set-the-code-by-hand")
hand_dims = sorted(dims[:HAND_DIMS])  # (z1, z3, z6: in order, not by spread as the rows above)
which_dims = (f"each of its {model.latent_dim} dimensions" if len(hand_dims) == model.latent_dim else
              f"each of the dimensions picked above ({len(hand_dims)}: the first {HAND_DIMS} of them at most; the "
              "others are kept)")
st.caption(f"Image {'A' if x_a is not None or x_t is None else 'B'}'s code, with a slider for {which_dims}: the "
           "image is decoded again as a slider moves. Each slider spans the traversal's range, −span to +span "
           "standard deviations over the test codes.")
if x_t is None:
    st.info("Choose or draw image A to set its code by hand.")
elif not dims:
    st.info("Pick at least one dimension above.")
else:
    by_hand(x_t, label_a if x_a is not None else label_b, "A" if x_a is not None else "B", hand_dims, span)
