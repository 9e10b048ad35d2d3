"""Models: every checkpoint with its metrics; upload, download, rename, delete; what the chosen model does."""

from pathlib import Path

import streamlit as st
import torch

from aelab import checkpoints, compare, data, jobs, metrics, ui
from aelab.data import to_float
from aelab.errors import AelabError, ConfigError

st.title("Models")
ctx = ui.sidebar(need_model=False)
# A message from the action that caused this rerun (upload, rename, delete): shown once, after the sidebar has
# been rebuilt with the new list of files.
# The slot is there on every run: a message that came and went would move the tabs below, which would then reopen
# on their first tab (a rename typed in the File tab after an upload landed on Reconstructions).
flash = st.empty()
if message := st.session_state.pop("models_flash", None):  # text, or (text, "warning")
    text, kind = message if isinstance(message, tuple) else (message, "success")
    getattr(flash, kind)(text)

found, broken = checkpoints.list_checkpoints()
if found:
    ui.model_table(found, current=ctx.model_path)
else:
    st.info(f"No checkpoints in {ui.model_root()} yet: train one on the Train page or upload one below.")
for path, reason in broken:
    st.caption(f"Skipped {path.name}: {reason}")

with st.expander("Upload a checkpoint", expanded=not found):
    with st.form("upload", clear_on_submit=False):
        upload = st.file_uploader("aelab checkpoint (.safetensors)", key="upload_file",
                                  help="Only aelab's safetensors checkpoints; pickled .pt/.pth files are refused.")
        name = st.text_input("Name", key="upload_name", placeholder="the file's name",
                             help="letters, digits, spaces, '-', '_' or '.'; at most 80 characters")
        overwrite = st.checkbox("Replace a model that already has this name", key="upload_overwrite")
        submitted = st.form_submit_button("Install")
    if submitted:
        if upload is None:
            st.warning("Choose a file first.")
        else:
            try:
                target = checkpoints.install_upload(upload.getvalue(), name.strip() or Path(upload.name).stem,
                                                    overwrite=overwrite, filename=upload.name)
            except AelabError as err:
                st.error(ui.sentence(str(err)))
            else:
                info = checkpoints.CheckpointInfo(target, checkpoints.read_metadata(target))
                data.open_for(info.meta.get("dataset") or {})  # a folder of one's own, at the model's size
                why = data.missing_set(info.meta.get("dataset") or {})
                if why:  # kept (its weights are fine), but the sidebar cannot offer it: say so now
                    st.session_state["models_flash"] = (f"Installed {target.name}, but {why}.", "warning")
                else:
                    ui.select_model(info.name)
                    st.session_state["models_flash"] = f"Installed {target.name}."
                st.rerun()

if ctx.model is None:
    ui.stop()  # the sidebar has said why, under the title

model, meta, ds = ctx.model, ctx.meta, ctx.dataset
found_metrics = meta.get("metrics") or {}
st.header(ctx.model_name)
status = checkpoints.status_of(meta) or "unknown"
note = (f"its training {checkpoints.unfinished_how(meta)}: this is its last completed epoch, without test metrics"
        if status == "interrupted" else meta.get("message"))
st.caption(f"{model.description}. Status: {status}" + (f" ({note})" if note else ""))
stem = Path(ctx.model_path).stem
if status != "training" and checkpoints.has_previous(ctx.model_path):
    # A retraining under this name died, diverged or finished worse: the model it replaced is kept, and can come back.
    st.warning(checkpoints.previous_text(meta, stem) + ": restore it to undo that run, or keep this one.")
    buttons = st.container(horizontal=True)
    if buttons.button(f"Restore the earlier {stem}", key="restore_previous"):
        try:
            checkpoints.restore_previous(ctx.model_path)
        except AelabError as err:
            st.error(ui.sentence(str(err)))
        else:
            st.session_state["models_flash"] = f"Restored the earlier {stem}."
            st.rerun()
    if buttons.button("Keep this one", key="drop_previous", help=f"delete the earlier {stem}"):
        checkpoints.forget_previous(ctx.model_path)
        st.session_state["models_flash"] = f"Kept this {stem}; the earlier one is deleted."
        st.rerun()
elif st.session_state.get("restore_previous") or st.session_state.get("drop_previous"):
    # Clicked on a page shown before the kept model went (restored or deleted in another tab, or from the CLI).
    st.info(f"The earlier {stem} is no longer kept: it was restored or deleted meanwhile. Nothing was changed.")
# Short labels and values (the help says the rest), as many columns as figures: on a 1024 px screen five columns cut
# "Parameters 442,…" and "Test error (SSE…", and at 800 px "988,…".
n = model.num_parameters()
figures = [("Parameters", f"{n / 1e6:.2f} M" if n >= 1e6 else f"{n / 1e3:.0f} k" if n >= 1e5 else f"{n:,}",
            f"{n:,} weights and biases" if model.trainable else
            f"{n:,} numbers: the components and the mean, fitted in closed form (nothing is trained)"),
           ("Latent size", model.latent_dim, "the size of the code")]
if "sse_per_image" in found_metrics:
    figures.append(("Test error", f"{found_metrics['sse_per_image']:.2f}",
                    "summed squared pixel error per test image (SSE/image), lower is better"))
if "knn5_accuracy" in found_metrics:
    figures.append(("5-NN", f"{found_metrics['knn5_accuracy']:.1%}", "5-NN accuracy: 5-nearest-neighbour "
                    "classification of the test codes against up to 20,000 training codes (a stratified sample)"
                    + (". A conditional model is given the class as its label, so its code need not tell the "
                       "class: low here by design" if model.conditional else "")))
if "test_nats" in found_metrics:
    figures.append(("Test nats", f"{found_metrics['test_nats']:.1f}", ui.NATS_HELP))
for column, (label, value, explained) in zip(st.columns(len(figures)), figures):
    column.metric(label, value, help=explained)

# After a rename the page comes back on the File tab (it would open on the first one: the model has a new name).
stay = st.session_state.get("models_tab_after_rename")
recon_tab, features_tab, history_tab, meta_tab, file_tab = st.tabs(
    ["Reconstructions", "Features", "History", "Metadata", "File"],
    default="File" if stay and stay == Path(ctx.model_path).name else None)

with recon_tab:
    seed = st.session_state.get("models_recon_seed")
    idx = compare.one_per_class(ds.y_test, 10, seed)
    x, y = ds.x_test[idx], ds.y_test[idx]
    recon = metrics.reconstruct(model, x, y)
    errors = ((recon - to_float(x)) ** 2).flatten(1).sum(1)  # of the unclipped output, as in the table (PCA)
    recon = recon.clamp(0, 1)  # as shown
    st.caption("Each test image over its reconstruction, with its class and squared error.")
    names = ds.class_names
    # One picture per pair (a grey line between), in a strip that wraps: rows of originals and of reconstructions
    # wrapped each on its own, 9 + 1 at 1280 px, which put the last reconstruction two rows under its image; shrunk
    # to fit instead, ten broke "triangles" into "triangle/s" at 800 px.
    clean = to_float(x)
    pairs = torch.cat([clean, torch.full((*clean.shape[:2], 2, clean.shape[3]), 0.5), recon], dim=2)
    ui.show_images(pairs, [f"{names[v] if 0 <= v < len(names) else ''}\n{e:.1f}"
                           for v, e in zip(y.tolist(), errors.tolist())], width=72, wrap_key="models_pairs")
    if st.button("Other test images"):
        st.session_state["models_recon_seed"] = int(torch.randint(0, 2**31 - 1, ()).item())
        st.rerun()

with features_tab:
    try:
        features, title = compare.feature_images(model, limit=64)
    except ConfigError as err:
        st.info(str(err))
    else:
        scale = ("mid grey = zero; in each of red, green and blue, brighter = positive, darker = negative"
                 if model.input_shape[0] == 3 else "grey = zero, black = negative, white = positive")
        st.caption(f"{ui.sentence(title)}, each scaled to its largest weight: {scale}; at most 64.")
        ui.show_images(features, width=56, wrap_key="models_features")  # (all one size, wrapping)

with history_tab:
    recon_loss = getattr(model.config, "recon_loss", None)
    figure = ui.history_figure(meta.get("history") or [], recon_loss=recon_loss)
    if figure is None:
        st.info("No training epochs recorded: PCA is fitted in closed form, so it has no loss curve."
                if model.variant == "pca" else "This checkpoint has no training history.")
    else:
        st.plotly_chart(figure, width="stretch")
        st.caption("Training loss (solid): the mean over each epoch's batches while the weights change, on the inputs "
                   "as trained (with noise, augmentation or dropout when the recipe has them). Validation loss "
                   f"(dashed): the held-out {(meta.get('train_config') or {}).get('val_fraction', 0.05):.0%} of the "
                   "training split after the epoch, clean, so it can lie below."
                   + (f" The reconstruction term is {ui.RECON_LOSS_NAMES[recon_loss]} summed over the pixels of an "
                      "image" + (", not the test error above (squared error per image): the two differ in scale."
                                 if recon_loss == "bce" else ".") if recon_loss in ui.RECON_LOSS_NAMES else ""))

with meta_tab:
    if meta.get("command"):  # (without a job's own progress log and stop file, which are no use to a reader)
        was = jobs.trained_as(meta["command"])  # (a model renamed here since: the command still names the old file)
        st.caption("The command that trained it:" if was in (None, stem) else
                   f"The command that trained it, as {was}: it has been renamed {stem} since.")
        st.code(jobs.command_to_rerun(meta["command"]), language="bash")
    left, right = st.columns(2)
    left.markdown("**Model config**")
    left.json(meta.get("config", {}))
    if found_metrics:  # every test metric (the tables above show the main ones)
        left.markdown("**Test metrics**")
        left.json(found_metrics)
    right.markdown("**Training config**")
    right.json(meta.get("train_config", {}), expanded=False)
    right.markdown("**Data**")
    right.json(meta.get("dataset", {}), expanded=False)
    with st.expander("All metadata"):
        st.json({key: value for key, value in meta.items() if key != "history"}, expanded=False)

with file_tab:
    path = Path(ctx.model_path)
    st.caption(f"{path} — {path.stat().st_size / 1024:,.0f} kB")
    st.download_button("Download checkpoint", data=path.read_bytes, file_name=path.name,
                       mime="application/octet-stream", on_click="ignore")
    new_name = st.text_input("New name", value=path.stem, key=f"rename_{path.stem}")
    if st.button("Rename"):
        if new_name.strip() == path.stem:
            st.info("That is already its name.")
        else:
            try:
                target = checkpoints.rename_checkpoint(path, new_name)
            except AelabError as err:
                st.error(ui.sentence(str(err)))
            else:
                ui.select_model(checkpoints.CheckpointInfo(target, meta).name)
                st.session_state["models_tab_after_rename"] = target.name
                st.session_state["models_flash"] = f"Renamed {path.name} to {target.name}."
                st.rerun()
    confirm = st.checkbox(f"Yes, delete {path.name} for good", key=f"confirm_delete_{path.stem}")
    if st.button("Delete", type="primary", disabled=not confirm):
        checkpoints.delete_checkpoint(path)
        st.session_state["models_flash"] = f"Deleted {path.name}."
        st.rerun()
