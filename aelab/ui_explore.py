"""Streamlit glue for the exploring pages (Interpolate, Draw, Denoise, Generate, Anomalies): cached fits and scores
keyed by checkpoint path and mtime, model pickers, an image picker and the drawing canvas.

Fitted objects that every session can share (a kNN index, a latent map) are st.cache_resource, one per process;
arrays are st.cache_data; the training codes of the kNN vote and the test scores are also kept on disk. No model
math here: it lives in anomaly.py, classify.py, denoise.py and explore.py.
"""

from __future__ import annotations

import math

import numpy as np
import streamlit as st
import torch

from . import anomaly, checkpoints, classify, explore, metrics, ui
from .data import Dataset, class_text, short_class_name, stratified_indices, to_float
from .errors import AelabError

# The Draw page's map: enough codes to show every class's cloud, few enough to redraw quickly after each stroke.
MAP_SAMPLE = 1000


@st.cache_resource(show_spinner="Indexing training codes for the nearest-neighbour vote…", max_entries=16)
def code_knn(path: str, mtime: float, dataset_name: str) -> classify.CodeKNN:
    """The Draw page's vote; its training codes are kept on disk (classify.stored_code_knn), usually by the trainer."""
    return classify.stored_code_knn(path, ui.load_model(path, mtime)[0], ui.load_dataset(dataset_name))


@st.cache_resource(show_spinner="Mapping test codes…", max_entries=16)
def latent_map(path: str, mtime: float, dataset_name: str) -> tuple[classify.LatentMap, np.ndarray, np.ndarray]:
    """(fitted map, 2-D positions, labels) of a stratified sample of test codes, encoded without labels like a
    drawing is, so the drawing lands among comparable codes."""
    model, _ = ui.load_model(path, mtime)
    ds = ui.load_dataset(dataset_name)
    idx = stratified_indices(ds.y_test, MAP_SAMPLE)
    codes = metrics.encode(model, ds.x_test[idx]).numpy()
    fitted = classify.LatentMap().fit(codes)
    return fitted, fitted.transform(codes), ds.y_test[idx].numpy()


@st.cache_data(show_spinner="Scoring every image by its reconstruction error…", max_entries=32)
def image_scores(path: str, mtime: float, dataset_name: str, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """The Anomalies page's scores, kept on disk (anomaly.stored_scores; the test split's usually by the trainer)."""
    return anomaly.stored_scores(path, ui.load_model(path, mtime)[0], ui.load_dataset(dataset_name), split)


@st.cache_data(show_spinner="Encoding test images…", max_entries=32)
def test_codes_sample(path: str, mtime: float, dataset_name: str) -> np.ndarray:
    """Codes of a stratified sample of 1000 test images (label-free): the reference for traversal spans and the
    range of a 2-D model's manifold grid."""
    model, _ = ui.load_model(path, mtime)
    ds = ui.load_dataset(dataset_name)
    return metrics.encode(model, ds.x_test[stratified_indices(ds.y_test, 1000)]).numpy()


@st.cache_data(show_spinner="Scoring the mapped images…", max_entries=16)
def sample_errors(path: str, mtime: float, dataset_name: str, split: str, n: int | None) -> np.ndarray:
    """Each image's reconstruction error (squared error per image, the Anomalies page's score) of the Latent map's
    sample (ui.codes' images): the test images' from their stored scores, the training images' computed."""
    indices = ui.codes(path, mtime, dataset_name, split, n)[0]
    if split == "test":
        return image_scores(path, mtime, dataset_name)[0][indices]
    model, _ = ui.load_model(path, mtime)
    return metrics.squared_errors(model, ui.load_dataset(dataset_name).x_train[torch.as_tensor(indices)]).numpy()


@st.cache_resource(show_spinner="Fitting a mixture to the codes of the training images…", max_entries=16)
def code_mixture(path: str, mtime: float, dataset_name: str, components: int) -> explore.CodeMixture:
    """The Generate page's mixture of Gaussians over a model's training codes (explore.stored_code_mixture: on disk)."""
    model, meta = ui.load_model(path, mtime)
    return explore.stored_code_mixture(path, model, explore.trained_images(ui.load_dataset(dataset_name), meta),
                                       components)


@st.cache_data(show_spinner="Preparing the upload…", max_entries=64)
def prepared_upload(data: bytes, input_shape: tuple, name: str, dataset_name: str
                    ) -> tuple[np.ndarray, bytes, str | None]:
    """Decoded and prepared once per file content, not on every slider move; framed as the dataset's images were."""
    from .denoise import prepare_upload
    from .images import FRAMING

    return prepare_upload(data, input_shape, name, FRAMING.get(dataset_name))


def checkpoints_for(dataset_name: str) -> list[checkpoints.CheckpointInfo]:
    found, _ = checkpoints.list_checkpoints()
    return [c for c in found if c.meta.get("dataset", {}).get("name") == dataset_name]


def models_without_a_class(dataset_name: str, first: int | None = None) -> list[tuple[checkpoints.CheckpointInfo, int]]:
    """(model, the class it never saw) for the models of a dataset trained without one class (the Anomalies page's
    fair experiments), those without class `first` first."""
    found = [(c, c.meta["dataset"]["without_class"]) for c in checkpoints_for(dataset_name)
             if c.meta.get("dataset", {}).get("without_class") is not None]
    return sorted(found, key=lambda pair: pair[1] != first)


def is_denoiser(meta: dict) -> bool:
    return (meta.get("train_config") or {}).get("noise", "none") != "none"


def denoiser_label(info: checkpoints.CheckpointInfo) -> str:
    cfg = info.meta.get("train_config") or {}
    # Short: "… · gaussian noise 0.5" was cut at "… · gaussian" in its box at 1024 px
    return f"{ui.model_label(info)} · {cfg.get('noise')} {cfg.get('noise_level')}"


def kept_model_picker(label: str, infos: list[checkpoints.CheckpointInfo], key: str, dataset_name: str,
                      default: str | None, format_func, follow: str | None = None) -> checkpoints.CheckpointInfo:
    """A picker of one of `infos` (by name) whose choice is kept per dataset across pages (Denoise's plain AE went
    back to the first by name, a student's 1-epoch model, after a look at another page). It starts at `default`; a
    new `follow` (the sidebar's model, when it fits) takes over from the kept choice."""
    names = [i.name for i in infos]
    by_name = {i.name: i for i in infos}
    memory = st.session_state.setdefault(f"{key}_choices", {})
    kept, followed = memory.get(dataset_name, (None, None))
    wanted = [follow if follow != followed else None, st.session_state.get(key), kept, default]
    ui.give_back(key, names, *wanted)
    name = st.selectbox(label, names, key=key, format_func=lambda n: format_func(by_name[n]))
    memory[dataset_name] = (name, follow)
    return by_name[name]


def like_for_like(infos: list[checkpoints.CheckpointInfo], other: checkpoints.CheckpointInfo | None) -> str | None:
    """The name of the model of `infos` most like `other` (its variant, then the nearest code size), else the first:
    the plain AE to set beside a denoiser (mnist-conv-30 beside mnist-denoising-conv, not the first by name)."""
    if not infos:
        return None
    if other is None:
        return infos[0].name
    size = (other.meta.get("config") or {}).get("latent_dim", 0)
    return min(infos, key=lambda i: (i.meta.get("variant") != other.meta.get("variant"),
                                     abs((i.meta.get("config") or {}).get("latent_dim", 0) - size))).name


def load(info: checkpoints.CheckpointInfo):
    """(model, meta) of a listed checkpoint through the shared cache; errors are the caller's to show."""
    return ui.load_model(str(info.path), info.path.stat().st_mtime)


def class_label(ds: Dataset, k: int) -> str:
    return label_of_class(ds.class_names or [], k)


def label_of_class(names: list[str], k: int) -> str:
    """A class as the pages name it: "9: Ankle boot", or "7" where the name is the number."""
    return class_text(names, k)


def class_name(ds: Dataset, k: int) -> str:
    """The class's short name ("T-shirt", "7"): for captions under small images, where "0: T-shirt/top" wraps."""
    return short_class_name(ds.class_names or [], k)


def what_to_draw(ds: Dataset) -> str:
    """What a canvas asks for: "a digit" on a dataset of digits, something like one of a built-in dataset's classes
    (singular nouns: "a trouser"), else one of the set's classes by their folders' names (often plural: "a squares"
    read wrong)."""
    names = ds.class_names or []
    if not names or all(n.isdigit() for n in names):
        return "a digit"
    if ds.framing is not None:
        return f"something like a {names[min(1, len(names) - 1)].lower()} (or another {ds.label} class)"
    return f"something of one of its classes ({', '.join(names[:4])}{', …' if len(names) > 4 else ''})"


def style_words(ds: Dataset) -> str:
    """What a conditional VAE's code keeps when the label fixes the class: a handwritten set's strokes, else the
    look of the thing ("slant, thickness" under a grid of shoes read wrong)."""
    return "slant, thickness, width" if ds.name in ("mnist", "kmnist") else "size, shape, shading"


def how_to_draw(ds: Dataset) -> str:
    """How a canvas's drawing is read for this dataset: the canvas draws white on black."""
    how = ("white on black; it is turned dark on light, as this set's images are" if ds.dark_on_light
           else "white on black")
    return f"{how}, {ds.framing.drawing}" if ds.framing is not None and ds.framing.drawing else how


# --- Picking and drawing images ----------------------------------------------------------------------------------

IMAGE_SOURCES = ("Test image", "Random", "Draw")


def _bump(state_key: str) -> None:
    st.session_state[state_key] = st.session_state.get(state_key, 0) + 1


def canvas(key: str, size: int = 280, stroke: int = 18, keep: str | None = None):
    """A white-on-black drawing canvas; returns its RGBA array, or None before anything was drawn.

    White strokes on black need no inversion and look like MNIST already; the stroke is about 1/15 of the side,
    the thickness of an MNIST pen stroke once the digit is scaled to 20 of 28 pixels.

    `keep`: a plain session key under which the drawing is kept, so that a canvas drawn again after a visit to
    another page shows it again (Streamlit drops a widget's state when another page runs: the canvas came back
    empty). The component loads an initial drawing only when it changes, so the kept one is handed to it unchanged
    from the run that mounts the canvas on; until the canvas sends something, the kept image stands for it."""
    from streamlit_drawable_canvas import st_canvas

    kept = st.session_state.get(keep) if keep else None
    if kept is not None and kept["canvas"] != key:  # cleared since (a new key is a new, empty canvas)
        kept = st.session_state[keep] = None
    if kept is not None and key not in st.session_state:  # mounted anew: draw the kept drawing on it
        kept["restore"] = kept["json"]
    # The component draws its toolbar (undo, redo, clear) above the canvas, over whatever comes before it: a spacer.
    st.html('<div style="height:1.1rem"></div>')
    result = st_canvas(stroke_width=stroke, stroke_color="#FFFFFF", background_color="#000000", height=size,
                       width=size, drawing_mode="freedraw", return_image_data=True, update_streamlit=True, key=key,
                       initial_drawing=kept["restore"] if kept is not None else None)
    image = result.image_data
    if image is None:  # nothing sent yet (the result is the initial drawing, without its image): the kept one, if any
        return kept["image"] if kept is not None and kept["restore"] is not None else None
    objects = (result.json_data or {}).get("objects") or []
    if keep:
        st.session_state[keep] = {"canvas": key, "json": result.json_data, "image": image,
                                  "restore": kept["restore"] if kept is not None else None} if objects else None
    return image if objects else None


def test_classes(ds: Dataset) -> list[int]:
    """The classes the test split has images of, the ones a page may offer to pick: a class of one image (kept for
    training) was Interpolate's default for Image B, which opened on "no image of this class", and the Anomalies
    page's and the Train page's anomaly experiment offered it, though no test could ever score it."""
    return [k for k in torch.unique(ds.y_test).tolist() if 0 <= k < ds.num_classes]


def unlisted_note(ds: Dataset, present: list[int]) -> None:
    """A caption naming the classes a picker leaves out for want of test images (test_classes), if any."""
    absent = [class_label(ds, k) for k in range(ds.num_classes) if k not in present]
    if absent:
        st.caption(f"Not listed, with no test image: {', '.join(absent[:3])}"
                   f"{f' and {len(absent) - 3} more' if len(absent) > 3 else ''}.")


def link_to_pick(ds: Dataset, i: int, side: str, label: str) -> None:
    """A link to Interpolate with test image i picked as image A or B (`side`: "a" or "b"; image_from_link there)."""
    ui.page_link("pages/interpolate.py", label, icon=":material/swap_horiz:", query_params={side: str(i)},
                 help=f"open Interpolate with {ui.image_name(ds, 'test', i)} as image {side.upper()}")


def image_from_link(ds: Dataset, key: str, store: str) -> None:
    """Test image i asked for by link_to_pick's query parameter (?a=i or ?b=i), taken once: picked by class and
    number in the class, as pick_image's controls pick it, and kept with the page's values (`store`)."""
    side = key.rsplit("_", 1)[-1]
    raw = st.query_params.get(side)
    if raw is None:
        return
    del st.query_params[side]
    y = ds.y_test
    if not raw.isdigit() or int(raw) >= len(y):
        return
    i = int(raw)
    labelled = bool(ds.num_classes) and bool((y >= 0).all())
    values = {f"{key}_source": IMAGE_SOURCES[0],
              f"{key}_index": int((y[:i] == y[i]).sum()) if labelled else i}
    if labelled:
        values[f"{key}_class"] = int(y[i])
    st.session_state.update(values)
    st.session_state.setdefault(store, {}).update(values)


def pick_image(ds: Dataset, key: str, title: str,
               default_class: int = 0) -> tuple[torch.Tensor | None, int | None, str]:
    """An image chosen by class and index, at random, or drawn: (float (C, H, W) or None, label or None, caption).

    None means nothing usable yet (an empty canvas); the widget has already said why."""
    st.markdown(f"**{title}**")
    square_gray = ds.input_shape[0] == 1 and ds.input_shape[1] == ds.input_shape[2]
    sources = IMAGE_SOURCES if square_gray else IMAGE_SOURCES[:2]
    source = st.radio("Source", sources, horizontal=True, key=f"{key}_source", label_visibility="collapsed")
    x, y = ds.x_test, ds.y_test
    if source == "Draw":
        from .images import prepare_drawing

        # A new key is a new, empty canvas: the component has no "clear" of its own that Python can trigger.
        drawing = canvas(f"{key}_canvas_{st.session_state.get(f'{key}_clear', 0)}", size=168, stroke=11,
                         keep=f"{key}_drawing")
        st.button("Clear", key=f"{key}_clear_button", on_click=_bump, args=(f"{key}_clear",))
        if drawing is None:
            st.caption(f"Draw {what_to_draw(ds)} in the box, {how_to_draw(ds)}.")
            return None, None, ""
        try:
            drawn = prepare_drawing(drawing, ds.input_shape, framing=ds.framing, dark_on_light=ds.dark_on_light)
        except AelabError as err:
            st.error(ui.sentence(str(err)))
            return None, None, ""
        ui.show_images(drawn[None], ["the model's view"], columns=1, width=84)  # as prepared for the model
        return torch.from_numpy(drawn), None, "drawn"
    if source == "Random":
        st.button("Another one", key=f"{key}_another", on_click=_bump, args=(f"{key}_seed",))
        seed = st.session_state.get(f"{key}_seed", 0)
        # Different keys draw different images even at the same seed, so A and B start apart.
        i = int(np.random.default_rng([seed, sum(map(ord, key))]).integers(len(x)))
    else:
        members = np.arange(len(x))
        start = min(default_class, len(x) - 1)  # without classes, A and B start on different images (0 and 1)
        if ds.num_classes and (y >= 0).all():
            start = 0
            present = test_classes(ds)
            c = st.selectbox("Class", present, format_func=lambda k: class_label(ds, k), key=f"{key}_class",
                             **ui.widget_default(f"{key}_class", index=min(default_class, len(present) - 1)))
            unlisted_note(ds, present)
            members = (y == c).nonzero().flatten().numpy()
        if len(members) == 0:
            st.info("The test set has no image of this class.")
            return None, None, ""
        # Counted within the class (the caption below gives the image's number in the whole test set).
        j = st.number_input(f"Which one of this class (0–{len(members) - 1})" if len(members) < len(x) else
                            f"Test image (0–{len(members) - 1})", 0, len(members) - 1, key=f"{key}_index",
                            **ui.widget_default(f"{key}_index", value=start))
        i = int(members[int(j)])
    label = int(y[i]) if y[i] >= 0 else None
    caption = ui.image_name(ds, "test", i) + (f" ({class_label(ds, label)})" if label is not None else "")
    # Under the image, the class's short name on a line of its own ("test #19 (0: T-" / "shirt/top)" at 84 px).
    shown = ui.image_name(ds, "test", i, short=True) + (f"\n{class_name(ds, label)}" if label is not None else "")
    ui.show_images(to_float(x[i])[None], [shown], columns=1, width=84)  # which image was picked
    return to_float(x[i]), label, caption


def latent_plane(model, ds: Dataset, reference: np.ndarray | None, key: str, label: int | None = None) -> None:
    """The decoded grid over a 2-D latent plane (Interpolate and Generate): over the prior's 5%-95% quantiles for a
    VAE, over where the test codes (`reference`) lie for another model; by class for a conditional one (`label`, the
    class the page has picked already, else one picked here)."""
    from .explore import manifold_grid, plane_extent

    st.subheader("The latent plane", anchor="the-latent-plane")
    kept, keys = f"{key}_values_{ds.name}", [f"{key}_size", f"{key}_class"]  # kept across pages (ui.keep_values)
    ui.give_back_values(keys, kept)
    left, right = st.columns(2)
    n = left.slider("Points per side", 5, 25, key=f"{key}_size", help="the grid is n x n decoded codes",
                    **ui.widget_default(f"{key}_size", value=15))
    if model.conditional and label is None:
        label = right.selectbox("Class", range(model.config.num_classes), format_func=lambda k: class_label(ds, k),
                             key=f"{key}_class", help="the label every code of the grid is decoded with")
    ui.keep_values(keys, kept)
    if model.generative:
        extent = None
        where = ("the prior's Gaussian quantiles 5%–95% on each axis (81% of its mass; evenly spaced in "
                 "probability, so denser near 0)")
    else:
        extent = plane_extent(reference)
        where = (f"where the test codes lie (2nd–98th percentile): x {extent[0]:.2f}…{extent[1]:.2f}, "
                 f"y {extent[2]:.2f}…{extent[3]:.2f}")
    st.caption(f"Decoded codes on a grid over {where}. Code dimension 1 grows left to right, code dimension 2 "
               "bottom to top" + (f", and every code is decoded with class {class_label(ds, label)}."
                                  if label is not None else "."))
    show_tile(manifold_grid(model, n, extent, label), n, width=min(720, 40 * n))


def show_tile(images: torch.Tensor, columns: int, width: int | None = None, caption: str | None = None) -> None:
    """Images (N, C, H, W) in [0, 1] as one picture, `columns` per row: one element to send, not N."""
    from .explore import tile

    picture = tile(images, columns).numpy()
    # Enlarged here by a whole factor to at least its width on screen: stretched by the browser (a 300 px tile shown
    # 640 px wide), pixels are smoothed, and identical samples looked different.
    factor = max(1, math.ceil((width or ui.ROW_PX) / picture.shape[-1]))
    st.image(enlarge(picture, factor), width=width or "stretch", caption=caption, clamp=True, output_format="PNG")


# --- The Draw page's map ---------------------------------------------------------------------------------------



# The Draw page's map: its points are drawn once into a picture; after every stroke only a star moves on it.
MAP_PIXELS = (760, 400)  # the picture's size (about the plot area's, so dots stay round); drawn at 2x, then reduced
DOT_RADIUS = 3


def _scatter_picture(coords: np.ndarray, labels: np.ndarray, extent: tuple[float, float, float, float]) -> str:
    """Coloured dots on a transparent picture whose edges are `extent` (x0, x1, y0, y1), as a PNG data URI."""
    import base64
    import io

    from PIL import Image, ImageDraw

    width, height = MAP_PIXELS[0] * 2, MAP_PIXELS[1] * 2
    x0, x1, y0, y1 = extent
    picture = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(picture)
    px = (coords[:, 0] - x0) / (x1 - x0) * (width - 1)
    py = (y1 - coords[:, 1]) / (y1 - y0) * (height - 1)
    r = DOT_RADIUS * 2
    for x, y, c in zip(px, py, labels):
        colour = ui.class_colour(int(c))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour + "B0")
    # A 64-colour palette: it goes to the browser with the star after every stroke, 25 KB instead of 140 KB.
    picture = picture.resize(MAP_PIXELS, Image.Resampling.LANCZOS).quantize(64, method=Image.Quantize.FASTOCTREE)
    buffer = io.BytesIO()
    picture.save(buffer, "PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


@st.cache_data(show_spinner=False, max_entries=16)
def map_picture(path: str, mtime: float, dataset_name: str) -> dict:
    """The Draw page's latent map, built once per model: the sample of test codes drawn as a picture, its extent in
    map coordinates, the axis names and a legend. After each stroke `map_html` only places a star on it."""
    fitted, coords, labels = latent_map(path, mtime, dataset_name)
    ds = ui.load_dataset(dataset_name)
    low, high = coords.min(0), coords.max(0)
    pad = (high - low) * 0.05 + 1e-6
    extent = (float(low[0] - pad[0]), float(high[0] + pad[0]), float(low[1] - pad[1]), float(high[1] + pad[1]))
    axis = "z" if fitted.projection_ is None else "PCA"  # 2-D codes are shown as they are
    return {"source": _scatter_picture(coords, labels, extent), "extent": extent, "axis": axis, "count": len(coords),
            "legend": [(class_label(ds, int(c)), ui.class_colour(int(c))) for c in np.unique(labels)]}


def map_html(picture: dict, position=None, text: str = "") -> str:
    """The map picture with a star where the drawing's code lands (no star before there is a drawing), as one HTML
    element.

    A Plotly chart here cost the browser about 300 ms of rendering after every stroke (measured in the e2e test's
    websocket timings), as long as the whole bare canvas round trip; a picture and a positioned star cost a few ms.
    The Latent map page keeps the interactive chart."""
    import html

    title = f'{picture["count"]:,} test codes' + (" (PCA of the codes)" if picture["axis"] == "PCA" else "")
    star = ""
    if position is not None:
        x0, x1, y0, y1 = picture["extent"]
        fx, fy = (float(position[0]) - x0) / (x1 - x0), (y1 - float(position[1])) / (y1 - y0)
        outside = not (0 <= fx <= 1 and 0 <= fy <= 1)
        # Kept a star's half-width inside the frame: at the very edge half of it was cut off.
        fx, fy = min(max(fx, 0.03), 0.97), min(max(fy, 0.04), 0.96)
        title += f' · ★ {html.escape(text)}' + (" (off the map: shown at its edge)" if outside else "")
        star = (f'<span title="{html.escape(text)}" aria-label="your drawing" style="position:absolute;left:{fx:.2%};'
                f'top:{fy:.2%};transform:translate(-50%,-55%);font-size:30px;line-height:1;color:#FFD700;'
                f'-webkit-text-stroke:1.2px black">★</span>')
    elif text:
        title += f" · {html.escape(text)}"
    legend = "".join(f'<span style="white-space:nowrap"><span style="color:{colour}">●</span> {html.escape(name)}'
                     f"</span>" for name, colour in picture["legend"])
    width, height = MAP_PIXELS
    return (f'<div style="font-size:0.85rem;margin:0.6rem 0 0.2rem">{title}</div>'
            f'<div style="position:relative;width:100%;max-width:{width}px;aspect-ratio:{width}/{height};'
            f'border:1px solid rgba(128,128,128,0.35);border-radius:4px">'
            f'<img src="{picture["source"]}" alt="latent map" style="position:absolute;inset:0;width:100%;'
            f'height:100%">{star}</div>'
            f'<div style="display:flex;flex-wrap:wrap;gap:0.3rem 0.9rem;font-size:0.8rem;margin-top:0.3rem">'
            f'<span style="color:#808495">{picture["axis"]} 1 → right, {picture["axis"]} 2 ↑ up</span>{legend}</div>')


def enlarge(image, factor: int = 5) -> np.ndarray:
    """Nearest-neighbour upscaling of an (H, W) or (1, H, W) image: crisp pixels instead of the browser's blur."""
    image = np.asarray(image)
    image = image[0] if image.ndim == 3 and image.shape[0] == 1 else image
    if image.ndim == 3:
        image = image.transpose(1, 2, 0)
    return np.clip(image.repeat(factor, 0).repeat(factor, 1), 0, 1)


# --- The Anomalies page's charts -------------------------------------------------------------------------------


def histogram_figure(hist: anomaly.Histograms, ds: Dataset, anomalous_classes: set[int], threshold: float,
                     y_title: str = "test images"):
    """Per-class error histograms as step lines over shared bins: anomalous classes thick and red, the others thin,
    and the threshold as a dashed line."""
    import plotly.graph_objects as go

    fig = go.Figure()
    short = [class_name(ds, k) for k in range(len(ds.class_names or []))]  # "0: T-shirt": two a row fit
    for c, counts in hist.counts.items():
        odd = c in anomalous_classes
        alone = len(hist.counts) == 1  # one curve (a set without labels): no legend, drawn as plainly as can be
        name = class_text(short, c) if c >= 0 else "without a class"
        # Over the bins' edges, from zero and back: drawn through their centres, the first and last bins were
        # half drawn, and the highest errors (the threshold at them) lay past the end of the line.
        fig.add_trace(go.Scatter(x=np.concatenate([hist.edges[:1], hist.edges]),
                                 y=np.concatenate([[0], counts, [0]]), mode="lines", line_shape="hv",
                                 name=name + (" ★" if odd else ""), showlegend=not alone,  # ★ as under the images
                                 line={"width": 3.5 if odd or alone else 1.2,
                                       "color": "#4C78A8" if alone and c < 0 else ui.class_colour(c)},
                                 opacity=1.0 if odd or alone else 0.6))
    fig.add_vline(x=threshold, line_dash="dash", line_color="black",
                  annotation_text="threshold", annotation_position="top right")
    # The legend under the chart, two short names a row: beside it, ten class names left the plot 75 px wide on a
    # 1024 px screen; under it, one a row (in a column that narrow) squashed the plot and hid the axis title.
    fig.update_layout(height=460, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      xaxis_title="reconstruction error (SSE per image)", yaxis_title=y_title,
                      xaxis={"nticks": 8},  # (left to itself, a narrow column showed two ticks: 120, 140)
                      # counts of images: whole numbers on the axis, even when a few images make the tallest bin 2
                      yaxis={"tickformat": ",d", "dtick": 1 if max(int(c.max()) for c in hist.counts.values()) <= 8
                             else None, "rangemode": "tozero"},
                      # (At 800 px a name with "(anomaly)" after it ran into the next one, and "9: Ankle boot" was
                      # cut: the anomaly is marked ★, as under the images, and the line samples are shorter.)
                      legend={"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0, "title": "",
                              "entrywidth": 0.5, "entrywidthmode": "fraction", "itemwidth": 30,
                              "font": {"size": 11}})
    return fig


def roc_figure(curve: anomaly.ROC, at: anomaly.ThresholdReport):
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance",
                             line={"dash": "dot", "color": "gray"}))
    fig.add_trace(go.Scatter(x=curve.false_positive_rate, y=curve.true_positive_rate, mode="lines",
                             name=f"AUROC {curve.auroc:.3f}", line={"color": "#d62728", "width": 2.5}))
    fig.add_trace(go.Scatter(x=[at.false_positive_rate], y=[at.recall], mode="markers", name="threshold",
                             marker={"size": 12, "color": "black", "symbol": "x"}))
    # The legend in the lower right, under the diagonal, where a curve better than chance never goes: above the
    # plot, the chart's toolbar covered "AUROC 0.954" (a helper's screenshot).
    fig.update_layout(height=360, margin={"l": 10, "r": 10, "t": 10, "b": 10}, xaxis_title="false positive rate",
                      yaxis_title="true positive rate (recall)", xaxis_range=[0, 1], yaxis_range=[0, 1.02],
                      legend={"xanchor": "right", "x": 0.99, "yanchor": "bottom", "y": 0.02})
    return fig


def png_data_uri(image) -> str:
    """An image in [0, 1] ((H, W) or (C, H, W)) as an inline PNG: shown without a second request to the server."""
    import base64

    from .images import array_to_png_bytes

    return "data:image/png;base64," + base64.b64encode(array_to_png_bytes(image)).decode("ascii")


def _figure(image, caption: str, size: int, alt: str) -> str:
    # Pixelated upscaling in the browser: the PNG stays 28x28 (a few hundred bytes) and still looks crisp.
    # As wide as its image: a long caption (Fashion-MNIST's "Pullover · d=37.65") wraps instead of widening the
    # figure, which broke a strip of five into 4 + 1.
    return (f'<figure style="margin:0;text-align:center;width:{size}px"><img src="{png_data_uri(image)}" alt="{alt}" '
            f'width="{size}" height="{size}" style="image-rendering:pixelated;border-radius:4px;display:block">'
            f'<figcaption style="font-size:0.8rem;color:#808495;margin-top:2px;overflow-wrap:anywhere">{caption}'
            '</figcaption></figure>')


def drawing_panel(reading: classify.DrawingReading, knn: classify.CodeKNN, ds: Dataset) -> str:
    """The Draw page's per-stroke output as one HTML element with inline images: one message to the browser
    instead of an element and an image request per picture, which is most of the time a stroke takes."""
    import html

    guess, names = reading.prediction, ds.class_names
    side = reading.input.shape[-1]
    neighbours = ds.x_train[torch.from_numpy(knn.sources_[guess.neighbours])].float().div(255).numpy()
    strip = "".join(_figure(img, f"{html.escape(names[knn.labels_[i]])}<br>d={d:.2f}", 70, "neighbour")
                    for img, i, d in zip(neighbours, guess.neighbours, guess.distances))
    if reading.label_scores is None:
        title, label = "Nearest-neighbour vote", names[guess.label]
        detail = f"{guess.confidence:.0%} of {len(guess.neighbours)} nearest training codes"
        strip_title = "Nearest training images"
    else:  # a conditional VAE: its code leaves the class to the label, so the label is read by the model itself
        order = np.argsort(reading.label_scores)
        best, second = (int(c) for c in order[:2])
        title, label = "Best-fitting label", names[best]
        detail = (f"{reading.label_scores[best]:.0f} nats (BCE + KL) decoded as a {names[best]}; "
                  f"next best {names[second]}: {reading.label_scores[second]:.0f}")
        strip_title = "Training images with the nearest codes: alike in style, not always in class"
    vote = (f'<div style="min-width:11rem;max-width:16rem"><div style="font-size:0.875rem">{title}</div>'
            f'<div style="font-size:2.25rem;line-height:1.3">{html.escape(label)}</div>'
            f'<div style="font-size:0.85rem;color:#808495">{html.escape(detail)}</div></div>')
    row = 'style="display:flex;gap:1.2rem;align-items:flex-start;flex-wrap:wrap"'
    return (f'<div {row}>{_figure(reading.input, f"model input ({side}×{side})", 140, "model input")}'
            f'{_figure(reading.reconstruction, "reconstruction", 140, "reconstruction")}{vote}</div>'
            f'<div style="font-size:0.875rem;margin:0.8rem 0 0.3rem">{html.escape(strip_title)}</div>'
            f'<div style="display:flex;gap:0.5rem;flex-wrap:wrap">{strip}</div>')


SHOW_WORDS = {"highest": "highest errors", "false-alarms": "false alarms", "missed": "missed anomalies"}


def most_anomalous_images(scores: np.ndarray, ds: Dataset, split: str = "test", anomalous: set[int] | None = None,
                          model=None, is_anomaly: np.ndarray | None = None,
                          report: anomaly.ThresholdReport | None = None) -> tuple[np.ndarray, str]:
    """The Anomalies page's ranking of `split`'s images ("test", or "all": training then test) by `scores`: as many
    as the user asks for, captioned with their class (★ on an `anomalous` class) and error (training images marked
    †); for one's own images, a table of their files. With `model`, each image can be shown over its reconstruction
    and their difference (anomaly.error_pictures). With a class as the anomaly (`is_anomaly`, and the threshold's
    `report`), the false alarms or the missed anomalies at the threshold can be listed instead (anomaly.SHOWS).
    Returns the indices shown and which list they are."""
    show = "highest"
    if is_anomaly is not None and report is not None:
        st.subheader("Test images by error")
        # The words alone: with the counts in them ("false alarms (338)"), a choice changed at every threshold and
        # went back to the first after the second move of the slider (a helper, in Chromium).
        show = st.radio("Show", list(anomaly.SHOWS), horizontal=True, key="anomaly_show", format_func=SHOW_WORDS.get,
                        help="false alarms: normal images the threshold flags, the worst reconstructed first; missed "
                             "anomalies: anomalies under the threshold, the best reconstructed first")
        st.caption(f"At this threshold: {report.false_positives:,} false alarm"
                   f"{'s' if report.false_positives != 1 else ''} (normal images flagged), "
                   f"{report.false_negatives:,} missed anomal{'ies' if report.false_negatives != 1 else 'y'}.")
        order = anomaly.listed_order(scores, show, is_anomaly, report.threshold)
        if not len(order):
            st.caption("None at this threshold: " + ("no normal image is flagged." if show == "false-alarms" else
                                                     "every anomaly is flagged."))
            return np.empty(0, dtype=np.int64), show
    else:
        st.subheader("Most anomalous images" if split == "all" else "Most anomalous test images")
        order = None
    count = len(scores) if order is None else len(order)
    # Rows of 8, and all of a small set (12 images: a slider from 8 to 12 in steps of 8 could not come back to 12).
    choices = sorted({*range(8, min(64, count) + 1, 8), *([count] if count <= 64 else [])})
    if st.session_state.get("anomaly_top", choices[0]) not in choices:  # kept for a split or set of another size
        del st.session_state["anomaly_top"]  # (it starts again at its default)
    n = st.select_slider("How many", choices, key="anomaly_top", **ui.widget_default("anomaly_top", value=min(16, count))
                         ) if count > 8 else count
    pictures = model is not None and st.toggle(
        "With reconstructions", key="anomaly_pictures", **ui.widget_default("anomaly_pictures", value=True),
        help="each image over its reconstruction and their difference (black: none; red to yellow: larger), which "
             "the error sums")
    rows = anomaly.ranked(scores, ds, split, n, order)
    # Each row's image, and its place in `scores` (split "all": the training images, then the test images)
    images = torch.stack([(ds.x_train if r["split"] == "train" else ds.x_test)[r["index"]] for r in rows])
    top = np.array([r["index"] + (len(ds.y_train) if split == "all" and r["split"] == "test" else 0) for r in rows],
                   dtype=np.int64)
    labelled = anomalous is not None
    # Short captions (the images of a row shrink on a narrow screen): the class over the error (two lines: "Pullover ·
    # 63.1" wrapped at any place at 1024 px, rows of one and two lines), or in a set without labels the error alone
    # (the images come in rank order, and the table numbers them).
    captions = [(("★ " if r["label"] in anomalous else "") + class_name(ds, r["label"]) + "\n" if labelled else "")
                + f"error {r['error']:.1f}" + (" †" if r["split"] == "train" else "") for r in rows]
    if pictures:
        st.caption("Each column: the image (top), the model's rebuilt image (middle), and their difference (bottom: "
                   "black where they agree, red to yellow where they differ). The error under it adds up the squared "
                   "differences.")
    ui.show_images(anomaly.error_pictures(model, images) if pictures else images.float().div(255), captions,
                   columns=8, width=84)
    if rows and rows[0]["file"]:  # one's own images: which files they are
        shown = [{"rank": r["rank"], "file": r["file"], **({"class": r["class"]} if labelled else {}),
                  "error": round(r["error"], 2), **({"trained on": r["split"] == "train"} if split == "all" else {})}
                 for r in rows]
        st.dataframe(shown, hide_index=True, height=ui.table_height(len(shown)), key="anomaly_files",
                     column_config={"error": st.column_config.NumberColumn(format="%.2f")})  # (not "182" by "190.01")
    return top, show
