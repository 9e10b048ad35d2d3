"""Train: choose a variant and its options, start a background job, watch it live.

The form is built from the variant's config dataclass and TrainConfig (aelab.jobs.form_fields), so a new option or a
new variant shows up here by itself. Training runs in a separate process (aelab.jobs): switching pages, reloading
the browser or restarting the server does not end it, and the panel at the bottom polls its files.
Link here with `?without_class=k` to preselect the leave-one-class-out experiment.
"""

import datetime
import functools
import time

import streamlit as st

from aelab import checkpoints, data, jobs, ui, ui_explore
from aelab.errors import AelabError, counted
from aelab.models import REGISTRY
from aelab.train import TOO_FEW_STEPS, TrainConfig, training_mask

# Material icons ship with Streamlit's frontend, so they render where no emoji font is installed.
STATE_LOOKS = {"queued": ":gray[:material/schedule: waiting for its turn]",
               "starting": ":blue[:material/hourglass_top: starting]", "running": ":blue[:material/sprint: running]",
               "saving": ":blue[:material/save: saving]", "finished": ":green[:material/check_circle: finished]",
               "stopped": ":gray[:material/stop_circle: stopped]", "diverged": ":orange[:material/warning: diverged]",
               "failed": ":red[:material/error: failed]", "interrupted": ":orange[:material/warning: interrupted]"}

# Plain copies of the form's values (ui.keep_values): a student who looks something up on another page, or at
# another variant, finds the form as they left it.
KEPT = "train_form_values"


def field_widget(field: jobs.FormField, key: str, off: str | None = None):
    """The widget for one config field: checkbox, selectbox, number input or comma-separated text; greyed out,
    with the reason in its help, when the other values make it do nothing (`off`). The default is given only to a
    widget without a value yet (one given back holds its own)."""
    common = {"help": field.help if off is None else f"{field.help}. Greyed out, and not sent with the job: {off}",
              "key": key, "disabled": off is not None}
    if field.kind == "bool":
        return st.checkbox(field.label, **common, **ui.widget_default(key, value=field.default))
    if field.kind == "choice":
        return st.selectbox(field.label, field.choices, **common,
                            **ui.widget_default(key, index=field.choices.index(field.default)))
    if field.kind == "int_list":
        return st.text_input(field.label, **common, **ui.widget_default(key, value=",".join(map(str, field.default))),
                             placeholder="empty: none" if field.name == "hidden" else "e.g. 32,64")
    if field.kind in ("int", "float"):
        # No min/max on the widget: the browser would turn an out-of-range value red and submit nothing, without
        # a word. The job's validation says what the range is.
        cast = int if field.kind == "int" else float
        return st.number_input(field.label, step=cast(field.step), format="%d" if field.kind == "int" else "%g",
                               **common, **ui.widget_default(key, value=cast(field.default)))
    return st.text_input(field.label, **common, **ui.widget_default(key, value=field.default))


def current(fields: list[jobs.FormField], prefix: str) -> dict:
    """The values the widgets hold now (before they are drawn in this run), defaults where not drawn yet."""
    return {f.name: st.session_state.get(f"{prefix}.{f.name}", f.default) for f in fields}


def show_form(fields: list[jobs.FormField], prefix: str, inactive: dict[str, str], columns: int = 3) -> dict:
    """The fields row by row, each row's inputs aligned at the bottom (a label that wraps does not push its input
    below its neighbours')."""
    values = {}
    for row in range(0, len(fields), columns):  # (a field under 130 px wide goes to the next row: ui.IMAGE_ROW_CSS)
        cells = ui.wrapping_columns(columns, f"{prefix}_{row}", narrowest=130, vertical_alignment="bottom")
        for cell, f in zip(cells, fields[row:row + columns]):
            with cell:
                values[f.name] = field_widget(f, f"{prefix}.{f.name}", inactive.get(f.name))
    return values


def start(fields: list[jobs.FormField], **request) -> None:
    """Start the job; what came of it is shown by show_outcome (an error until the next submission)."""
    try:
        job = jobs.start_job(**request, owner=ui.browser_id())
    except AelabError as err:
        refuse(err, fields)
        return
    st.session_state.setdefault("train_my_jobs", set()).add(job.id)  # (another browser's jobs ask before a stop)
    st.session_state["train_outcome"] = ("success", f"Started training {job.name}: follow it below. It keeps "
                                                    "running if you leave this page." + jobs.turn_note(job))


def refuse(err: AelabError, fields: list[jobs.FormField]) -> None:
    st.session_state["train_outcome"] = ("error", jobs.in_form_words(str(err), fields))


def show_outcome() -> None:
    kind, text = st.session_state.get("train_outcome", (None, ""))
    if kind == "error":
        st.error(ui.sentence(text))  # kept: the page reruns when a job ends, and the reason must not vanish with it
    elif kind == "success":
        st.success(text)
        del st.session_state["train_outcome"]  # said once


def clock(seconds: float | None) -> str:
    return "–" if seconds is None else str(datetime.timedelta(seconds=round(seconds)))


def act(action, job_id: str) -> None:
    """Stop/Remove callback: another tab may have removed the job already; say so on the next run."""
    try:
        action(job_id)
    except AelabError as err:
        st.session_state["train_job_error"] = str(err)


def class_words(dataset: str, k: int, known: dict[str, list[str]]) -> str:
    """A class as the pages name it ("9: Ankle boot"), where its name is known without loading the dataset: a
    built-in's, or one in `known` (the sidebar's dataset, already loaded: "0: circle" of one's own set)."""
    names = data.BUILTIN[dataset][0] if dataset in data.BUILTIN else known.get(dataset, [])
    return ui_explore.label_of_class(list(names), k)


def show_job(status: jobs.JobStatus, known: dict[str, list[str]], listed: dict, full: bool = True) -> None:
    """`listed`: the model folders listed so far in this tick (jobs.its_model_now). `full`: with the run's notes, loss
    chart and preview (an earlier job's card: its outcome only)."""
    job = status.job
    classes = (f", without class {class_words(job.dataset, job.without_class, known)}"
               if job.without_class is not None else "") + \
        (f", only class {class_words(job.dataset, job.only_class, known)}" if job.only_class is not None else "")
    # The button as wide as its word, beside the line (a sixth of the card cut "Remove" to "Re…" at 800 px).
    head = st.container(horizontal=True, vertical_alignment="center")
    # (Its turn, when it had to wait for one: "started 10:53:27" beside "0:00:01 elapsed" read as a contradiction.)
    turn = (f", its turn at {datetime.datetime.fromtimestamp(status.began):%H:%M:%S}"
            if (status.waited_s or 0) >= 1 else "")
    head.markdown(f"**{job.name}** · {STATE_LOOKS[status.state]} · {job.variant} on "
                  f"{data.dataset_label(job.dataset)}{classes} · "
                  f"started {datetime.datetime.fromtimestamp(job.started):%H:%M:%S}{turn}", width="stretch")
    # This browser's (in any of its tabs, after a reload), or this tab's where the browser keeps no cookies.
    mine = job.id in st.session_state.get("train_my_jobs", ()) or (job.owner and job.owner == ui.browser_id())
    if status.active and not mine and not status.stop_requested and status.state != "saving":
        # Every browser of this server lists every job: in a class, a student's Stop ended the teacher's live run. A
        # job this browser did not start is stopped after a second click that says whose it may be.
        with head.popover("Stop", help="started in another browser: stop it?", key=f"stop_ask_{job.id}"):
            st.caption("This job was started in another browser, perhaps by someone else.")
            st.button("Stop it", key=f"stop_{job.id}", on_click=act,
                      args=(functools.partial(jobs.stop_job, elsewhere=True), job.id),
                      help="stop it before it trains" if status.state == "queued" else
                      "stop after the current step, keeping the weights so far")
    elif status.active:
        # Saving: the training is over, and a stop would change nothing.
        head.button("Stop", key=f"stop_{job.id}", on_click=act, args=(jobs.stop_job, job.id),
                       disabled=status.stop_requested or status.state == "saving", width="content",
                       help="stop it before it trains" if status.state == "queued" else
                       "stop after the current step, keeping the weights so far")
    elif not mine:  # another's card (a teacher's finished run, shown to the class) goes after a second click too
        with head.popover("Remove", help="started in another browser: remove its card?",
                          key=f"remove_ask_{job.id}"):
            st.caption("This job was started in another browser, perhaps by someone else: its card is removed "
                       "in every browser. The model it saved stays.")
            st.button("Remove it", key=f"remove_{job.id}", on_click=act, args=(jobs.remove_job, job.id))
    else:
        head.button("Remove", key=f"remove_{job.id}", on_click=act, args=(jobs.remove_job, job.id),
                       width="content", help="forget this job; the model it saved stays")
    now = None if status.active else jobs.its_model_now(job, listed)  # (renamed on the Models page: found by its job)
    renamed = f", since renamed {now.stem}" if now is not None and now.stem != job.name else ""
    if status.state == "queued":
        st.progress(0.0, text=f"{jobs.queue_words(status)} · waiting for {clock(time.time() - job.started)}"
                              + (" · stopping…" if status.stop_requested else ""))
    elif status.active:
        where = f"{status.phase} · epoch {max(status.epoch, 1)}/{status.epochs} · step {status.step}/{status.steps}" \
            if status.state == "running" and status.steps else \
            f"trained · {status.phase}" if status.state == "saving" else (status.phase or "loading the data")
        running = status.state == "running"  # saving: the speed and the stop request are over
        speed = f" · {status.images_per_s:,.0f} images/s" if running and status.images_per_s else ""
        stopping = " · stopping after this step…" if running and status.stop_requested else ""
        elapsed = f" · {clock(time.time() - status.began)} elapsed"
        eta = "" if status.state == "saving" else f" · ETA {clock(status.eta_s)}"
        st.progress(status.fraction, text=f"{where}{speed}{elapsed}{eta}{stopping}")
        if running and status.terms:
            st.caption(f"Loss at step {status.step}: " + ", ".join(f"{k} {v:.4g}" for k, v in status.terms.items()))
    elif status.state == "finished":
        # (Not "pick it in the sidebar" when the model it saved is gone: the caption below says so.)
        st.success(f"Saved as {job.name}{renamed}" + (": pick it in the sidebar's model list, or open it here."
                                                      if now is not None else "."))
    elif status.state == "failed":
        st.error(ui.full_stop(ui.sentence(status.message)))
    elif status.state == "stopped":
        st.info(ui.full_stop(ui.sentence(status.message) + renamed))
    else:
        st.warning(ui.full_stop(ui.sentence(status.message) + renamed))
    # A model it saved and that is still there, finished or not (stopped, diverged: its last good weights), is
    # opened with its dataset and name picked in the sidebar; one made without (or with only) one class on the
    # Anomalies page, with that class. Under the message, as wide as it needs: beside it in a sixth of the card,
    # "Open on Models" was cut to "Open on Mode" at 1280 px and "Ope" at 800. A link, not a button (ui.open_model_link).
    if now is not None and status.state != "failed":
        page = "anomalies" if job.without_class is not None or job.only_class is not None else "models"
        ui.open_model_link(f"pages/{page}.py", f"Open on {page.title()}", job.dataset, now.stem,
                           icon=":material/arrow_forward:")
    if not status.active and status.history and now is None:
        st.caption(f"{job.name} has been replaced (restored, retrained, uploaded) or deleted since this run saved it.")
    elif now is not None and checkpoints.has_previous(now):
        st.caption(ui.previous_caption(now, now.stem))
    if not full:
        return
    for note in status.notes:  # what the run said of itself (too few steps, files left out): kept on the card
        # (The steps advice names a batch size and epochs to start again with; a note of left-out files does not.)
        again = status.active and TOO_FEW_STEPS in note
        st.warning(note + (" Stop the job to start again with those." if again else ""))
    figure = ui.history_figure(status.history, height=300, step_losses=status.step_losses)
    if figure is not None or status.originals is not None:
        curves, preview = st.columns([3, 2])
        if figure is not None:
            curves.plotly_chart(figure, key=f"loss_{job.id}")
        picture = status.preview_picture()
        if picture is not None:
            last = status.history[-1] if status.history else None
            after = "" if last is None else f" after epoch {last['epoch']}" if "fraction" not in last else \
                f" after {last['fraction']:.0%} of epoch {last['epoch']} (stopped)"
            preview.image(picture, clamp=True, width="stretch",
                          caption=f"Validation images (top) and their reconstructions (bottom){after}")


FULL_ENDED_CARDS = 5  # ended jobs shown whole, newest first; the earlier ones by their outcome only


@st.fragment(run_every=2)
def running_jobs(known: dict[str, list[str]]) -> None:
    """The jobs that have not ended, polled every 2 s without rerunning the rest of the page; `known`: class names
    of loaded datasets. Ended jobs are drawn by ended_jobs, once a page run: a class's sixty ended cards, redrawn
    every 2 s in four browsers, kept both cores busy with nothing training."""
    if "train_job_error" in st.session_state:
        st.error(ui.sentence(st.session_state.pop("train_job_error")))
    statuses = [s for s in jobs.list_jobs(unended=True) if s.active]
    active = {s.job.id for s in statuses}
    # A job that ended since the last poll: rerun the whole page, which draws it with the ended ones and whose
    # sidebar lists its checkpoint.
    ended = st.session_state.get("train_active_jobs", set()) - active
    st.session_state["train_active_jobs"] = active
    listed: dict = {}  # a folder listed once a tick, however many jobs' models were renamed or deleted
    for status in statuses:
        with st.container(border=True):
            show_job(status, known, listed)
    if ended:
        st.rerun()


def ended_jobs(known: dict[str, list[str]]) -> None:
    statuses = [s for s in jobs.list_jobs() if not s.active]
    if not statuses and not st.session_state.get("train_active_jobs"):
        st.caption("No training jobs yet.")
    listed: dict = {}
    for status in statuses[:FULL_ENDED_CARDS]:
        with st.container(border=True):
            show_job(status, known, listed)
    if len(statuses) > FULL_ENDED_CARDS:
        with st.expander(f"{len(statuses) - FULL_ENDED_CARDS} earlier jobs"):
            for status in statuses[FULL_ENDED_CARDS:]:
                with st.container(border=True):
                    show_job(status, known, listed, full=False)


def advice_back_to_defaults(ds) -> None:
    """The batch size and epochs put in by the advice button were for that set's size: on another set, while they are
    still the advised ones, they go back to the defaults, and the page says so (a student's batch 4, 84 epochs, made
    for 60 images, started a run of an hour and a half on MNIST)."""
    advised = st.session_state.get("train_advice_for")
    if advised is None or advised[0] == ds.name:
        return
    del st.session_state["train_advice_for"]
    _, batch, epochs = advised
    if (st.session_state.get("train.batch_size"), st.session_state.get("train.epochs")) != (batch, epochs):
        return  # changed by hand since: the user's own values
    defaults = TrainConfig()
    for key, value in (("train.batch_size", defaults.batch_size), ("train.epochs", defaults.epochs)):
        st.session_state[key] = st.session_state[KEPT][key] = value
    st.info(f"Batch size and epochs are back at their defaults ({defaults.batch_size} and {defaults.epochs}): "
            f"{batch} and {epochs} were the advice for {data.dataset_label(advised[0])}'s size.")


def estimate(ds, variant, model_fields, model_values, train_fields, train_values, inactive, without, only) -> None:
    """How long the form's run would take here, on request (a student's settings from another set started a run of
    an hour and a half with no word of it): timed from a few real steps, again when the settings change."""
    if not st.toggle("Estimate how long it takes", key="train_estimate",
                     help="times a few real training steps of these settings here (a second or two), again whenever "
                          "they change"):
        return
    try:
        found = ui.training_estimate(ds.name, variant, jobs.changed_options(model_fields, model_values, inactive),
                                     jobs.changed_options(train_fields, train_values, inactive), without, only)
    except AelabError as err:
        st.caption(f"No estimate: {jobs.in_form_words(str(err), model_fields + train_fields)}.")
        return
    ui.show_estimate(found, "train_estimate_again")


def training_form(ds) -> None:
    """The variant's options and TrainConfig's as one form; an error it causes stays on screen (under the button)
    until the next submission, through the reruns the jobs panel causes when a job ends."""
    st.caption(f"Training runs in the background on {ui.device_label()} (device auto picks the GPU when there is one) "
               f"and saves a checkpoint at the end of every training epoch (not during greedy pre-training).")
    # Kept under a plain key too: Streamlit drops a widget's state when another page runs.
    ui.give_back("train_variant", list(REGISTRY), st.session_state.get("train_variant"),
                 st.session_state.get("train_variant_choice"))
    variant = st.selectbox("Variant", list(REGISTRY), format_func=lambda v: f"{v} — {REGISTRY[v].description}",
                           key="train_variant")
    st.session_state["train_variant_choice"] = variant
    model_fields = jobs.form_fields(REGISTRY[variant].config_class)
    train_fields = jobs.form_fields(TrainConfig)
    kept = [f"{variant}.{f.name}" for f in model_fields] + [f"train.{f.name}" for f in train_fields] \
        + ["train_name", "train_classes", "train_overwrite", "train_estimate"]
    ui.give_back_values(kept, KEPT)
    advice_back_to_defaults(ds)
    # ("all but 2", not "all but 2: 2", where the name is the number)
    class_choices = [("all", None)] + [(f"all but {data.class_text(ds.class_names, k)}", k)
                                       for k in range(len(ds.class_names))] \
        + [(f"only {data.class_text(ds.class_names, k)}", k) for k in range(len(ds.class_names))]
    if st.session_state.get("train_classes_of") != ds.name:  # a class to leave out is a choice about one dataset
        st.session_state.pop("train_classes", None)
        st.session_state[KEPT].pop("train_classes", None)
    st.session_state["train_classes_of"] = ds.name

    # Not an st.form: a choice greys out at once the options it makes do nothing (no noise: no noise level), and
    # those are not sent. Enter in a field only commits its value; the button starts the job.
    inactive = jobs.inactive_options(variant, current(model_fields, variant), current(train_fields, "train"),
                                     ds.input_shape)
    with st.container(border=True):
        st.markdown(f"**Model options** ({variant})")
        st.caption("Greyed out: an option that the other values make do nothing (its help says why).")
        model_values = show_form(model_fields, variant, inactive)
        st.markdown("**Training options**")
        if not REGISTRY[variant].trainable:
            st.caption("PCA is fitted in closed form in one pass: the training options do not change it.")
        train_values = show_form(train_fields, "train", inactive)  # (3 a row: 4 left one alone a row at 800 px)
        left, middle, right = ui.wrapping_columns([5, 5, 3], "train_name", narrowest=130, vertical_alignment="bottom")
        # The suggestion follows the variant, the dataset, the noise and the classes until the user types a name of
        # their own. (The classes' picker is drawn below: its value is read from its state, set before this run.)
        before = st.session_state.get("train_classes") or 0 if ds.num_classes else 0
        label, k = class_choices[before if before < len(class_choices) else 0]
        noise = None if "noise" in inactive else train_values.get("noise")
        suggestion = jobs.suggest_name(ds.name, variant, noise, k if label.startswith("all but") else None,
                                       k if label.startswith("only") else None)
        # Set only when it changes: a widget's state set by the script is sent to the browser again, and a name typed
        # there while an earlier run was still on its way was replaced by that run's suggestion (under load, a name
        # typed right after another field was lost).
        typed = st.session_state.get("train_name")
        if typed in (None, "", st.session_state.get("train_name_suggested")) and typed != suggestion:
            st.session_state["train_name"] = suggestion
        st.session_state["train_name_suggested"] = suggestion
        name = left.text_input("Model name", key="train_name", placeholder=suggestion,
                               help=f"saved as NAME.safetensors in the checkpoint folder; letters, digits, - _ . and "
                                    f"spaces; left empty: {suggestion}")
        if ds.num_classes:
            picked = middle.selectbox(f"Training classes of {ds.label}", range(len(class_choices)),
                                      format_func=lambda i: class_choices[i][0], key="train_classes",
                                      help="leave a class out (or keep only one) for the Anomalies page")
        else:  # a set without labels has no class to leave out
            picked = 0
            middle.caption("Trains on all of the set's training images (it has no class labels).")
        overwrite = right.checkbox("Overwrite", key="train_overwrite",
                                   help="replace a model that already has this name (the old one is kept until the "
                                        "new one has finished, and can be restored on the Models page if the run is "
                                        "stopped, dies or diverges)")
        label, k = class_choices[picked]
        without, only = (k if label.startswith("all but") else None), (k if label.startswith("only") else None)
        advice = jobs.form_steps_advice(variant, ds, train_values, without, only)
        if advice is not None:  # said before the run (a colour set's conv AE stays grey), with the fix one click away
            # (At 4:1 the button's words were cut, and at 2:1 too at 800 px: "Use batch 8, 84 e…"; there the button
            # goes under the note.)
            note, use = ui.wrapping_columns([2, 1], "train_advice", vertical_alignment="center")
            note.warning(advice.text())
            batch = f"batch {advice.better_batch}, " if advice.better_batch != advice.batch_size else ""
            use.button(f"Use {batch}{advice.better_epochs} epochs", key="train_use_advice",
                       on_click=lambda: st.session_state.update({
                           "train.batch_size": advice.better_batch, "train.epochs": advice.better_epochs,
                           "train_advice_for": (ds.name, advice.better_batch, advice.better_epochs)}))
        if REGISTRY[variant].trainable:
            estimate(ds, variant, model_fields, model_values, train_fields, train_values, inactive, without, only)
        submitted = st.button("Start training", type="primary", key="train_start")
    ui.keep_values(kept, KEPT)

    fields = model_fields + train_fields
    if submitted:
        st.session_state.pop("train_outcome", None)
        try:
            model_options = jobs.changed_options(model_fields, model_values, inactive)
            train_options = jobs.changed_options(train_fields, train_values, inactive)
        except AelabError as err:
            refuse(err, fields)
        else:
            # The page's suggestion (left as it was, or emptied: the help says so): the next free name if another
            # tab took it meanwhile.
            suggested = name.strip() in ("", suggestion)
            start(fields, variant=variant, model_options=model_options, train_options=train_options,
                  name=suggestion if suggested else name, dataset=ds, without_class=without, only_class=only,
                  overwrite=overwrite, next_free_name=suggested)
    show_outcome()

    if ds.num_classes:  # an unlabelled image folder has no class to leave out
        asked = "without_class" in st.query_params
        with st.expander("Anomaly experiment: one click", expanded=asked, key="anomaly_experiment", on_change="rerun"):
            intro = st.empty()  # (said once the class is picked: the epochs and batch size depend on its images)
            wanted = st.query_params.get("without_class", "")
            present = ui_explore.test_classes(ds)  # (a class with no test image could never be scored)
            default_k = present.index(int(wanted)) if wanted.isdigit() and int(wanted) in present else 0
            a, b = st.columns([1, 2], vertical_alignment="bottom")
            k = a.selectbox("Class to leave out", present, default_k,
                            format_func=lambda c: ui_explore.class_label(ds, c), key="anomaly_class")
            ui_explore.unlisted_note(ds, present)
            recipe = jobs.anomaly_recipe(ds.name, k, int(training_mask(ds, k).sum()), ds.input_shape[0])
            intro.caption("The Anomalies page needs a model that never saw one class: its reconstruction error then "
                          f"flags that class. This trains a small convolutional AE (16-d code, "
                          f"{recipe['train_options']['epochs']} epochs of batches of "
                          f"{recipe['train_options']['batch_size']}) on every other class.")
            if asked or st.session_state.get("anomaly_experiment"):  # timed only when the experiment is looked at
                ui.show_estimate(ui.training_estimate(ds.name, recipe["variant"], recipe["model_options"],
                                                      recipe["train_options"], k), "anomaly_estimate_again")
            name = jobs.free_name(recipe["name"])  # a second experiment (or the shipped model's name) gets its own
            if b.button(f"Train a model without class {ui_explore.class_label(ds, k)}"):
                st.session_state.pop("train_outcome", None)
                start([], **{**recipe, "name": name, "dataset": ds})
                show_outcome()
            if name != recipe["name"]:
                st.caption(f"A model named {recipe['name']} exists already: open it on the Anomalies page, or train "
                           f"another here (saved as {name}).")
                # (A link opened the page on the sidebar's model and class 0: this picks the model, whose class the
                # page then starts on.)
                ui.open_model_link("pages/anomalies.py", f"Open {recipe['name']} on Anomalies", ds.name,
                                   recipe["name"], icon=":material/troubleshoot:")


def remove_image_set(note) -> None:
    """Forget an added image set that no model uses any more (confirmed first)."""
    added = data.user_datasets()  # without others: only the sets added here
    if not added:
        return
    st.markdown("**Added image sets**")
    a, b = st.columns([3, 2], vertical_alignment="bottom")
    name = a.selectbox("Image set", added, format_func=data.dataset_label, key="own_images_remove_pick")
    sure = b.checkbox("Yes, remove it", key=f"own_images_remove_sure_{name}")
    if st.button("Remove this image set", disabled=not sure, key="own_images_remove"):
        try:
            data.remove_image_set(name, [c.name for c in ui_explore.checkpoints_for(name)], jobs.training_on(name))
        except AelabError as err:
            note.error(str(err))
            return
        st.session_state["train_added_images"] = f"Removed {data.dataset_label(name)}."
        st.rerun()


def own_images() -> None:
    """Add a zip of one's own images as a dataset: checked, kept on the server, then picked in the sidebar."""
    # Messages go above the expander, in a container that is always there: an element appearing before the expander
    # would make it a new one, folded shut with its error inside.
    note = st.container()
    added = st.session_state.pop("train_added_images", None)
    if added:
        note.success(added)
    with st.expander("Train on your own images", expanded=False):
        st.caption("A zip of images (PNG, JPEG, ...): one folder per class inside it gives a labelled dataset, "
                   "images at the top level an unlabelled one. They are resized to squares, and a fifth is kept "
                   "aside as the test split. The set is kept on this server and listed in the sidebar's datasets.")
        # Not an st.form: the zip is read as soon as it is chosen, and the size and colour start at its images' own
        # (a 32 px colour zip was added as 28 px grayscale, the form's defaults, unless one changed them first).
        key = f"own_images_zip{st.session_state.get('own_images_added', '')}"  # new after each set: an empty one
        upload = st.file_uploader("Zip of images", type=["zip"], key=key, on_change=look_at_zip, args=(key,))
        look = st.session_state.get("own_images_look")
        if upload is not None and look is not None and look[0] == upload.file_id:
            st.caption(look[1])
        ui.give_back_values(OWN_FIELDS, OWN_KEPT)  # (kept across pages, like the training form's)
        a, b = st.columns(2)
        size = a.number_input("Image size (pixels, square)", step=4, key="own_images_size",
                              help=f"every image is resized to this ({data.MIN_SIZE} to {data.MAX_SIZE}); "
                                   "28 lets models compare with MNIST's",
                              **ui.widget_default("own_images_size", value=28))
        colour = b.radio("Colour", ["grayscale", "RGB"], horizontal=True, key="own_images_colour")
        ui.keep_values(OWN_FIELDS, OWN_KEPT)
        if st.button("Add these images", key="own_images_add"):
            add_image_set(note, upload, int(size), 1 if colour == "grayscale" else 3)
        remove_image_set(note)  # (also under an error: removing a set is how to add it again at another size)


OWN_FIELDS, OWN_KEPT = ["own_images_size", "own_images_colour"], "own_images_values"


def look_at_zip(key: str) -> None:
    """A zip just chosen: the size and colour fields start at its images' own (data.look_at_image_set)."""
    upload = st.session_state.get(key)
    st.session_state.pop("own_images_look", None)
    if upload is None:
        return
    try:  # (said now, not after the size and colour are chosen)
        data.set_name(upload.name)
    except AelabError as err:
        st.session_state["own_images_look"] = (upload.file_id, f"{err}.")
        return
    look = data.look_at_image_set(upload.getvalue())
    if look is None:  # (none that can be read: adding it says why)
        return
    st.session_state["own_images_size"] = look.image_size
    st.session_state["own_images_colour"] = "RGB" if look.colour else "grayscale"
    larger = (f" Those are larger than a model here trains quickly, so the size starts at {look.image_size} "
              f"(up to {data.MAX_SIZE} can be chosen)." if look.side > look.image_size else "")
    looked = f", all {look.note}" if look.looked_at == look.images else \
        f"; the {look.looked_at} looked at are {look.note}"
    st.session_state["own_images_look"] = (upload.file_id, (
        f"{upload.name} holds {counted(look.images, 'image file')}{looked}. The size and colour below start at "
        f"theirs.{larger}"))


def add_image_set(note, upload, size: int, channels: int) -> None:
    if upload is None:
        note.error("Choose a zip file first.")
        return
    before = set(data.user_datasets())
    try:
        with st.spinner(f"Reading the images in {upload.name}…"):
            ds = data.add_image_set(upload.name, upload.getvalue(), size, channels)
    except AelabError as err:
        note.error(str(err))
        return
    if ds.name in before:  # the same zip again, at the same size and colour: nothing new (it said "Added" again)
        st.session_state["train_added_images"] = (f"{ds.label} was added before, with these images at "
                                                  f"{data.shape_text(channels, size)}: it is the sidebar's dataset now.")
        ui.select_dataset(ds.name)
        st.rerun()
    # (A zip of one class folder is a set without labels too: all its images share that folder.)
    foldered = any("/" in f for f in ds.train_files + ds.test_files)  # (not images at the zip's top level)
    classes = (f"{ds.num_classes} classes" if ds.num_classes else
               f"no labels: {'all of them are in one folder' if foldered else 'they are in no folder'}, so they "
               "have no classes; for labels, put each class in a folder of its own")
    skipped = data.unreadable_text(ds)
    st.session_state["train_added_images"] = (
        f"Added {ds.label}: {len(ds.y_train) + len(ds.y_test):,} images at {data.shape_text(channels, size)} "
        f"({classes}).{skipped} It is the sidebar's dataset now: pick a variant below and start training.")
    st.session_state["own_images_added"] = st.session_state.get("own_images_added", 0) + 1
    ui.select_dataset(ds.name)
    st.rerun()


st.title("Train")
ctx = ui.sidebar(need_model=False)
with st.sidebar:  # (its cookie written, where it is new, out of the main area's flow)
    ui.browser_id()
own_images()
if ctx.dataset is not None:  # else the sidebar has said why; the jobs below can still be followed and stopped
    training_form(ctx.dataset)
known = {ctx.dataset.name: ctx.dataset.class_names} if ctx.dataset is not None else {}
st.subheader("Jobs")
running_jobs(known)
ended_jobs(known)
