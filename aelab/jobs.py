"""Background training jobs: what the Train page starts, lists, polls and stops.

Streamlit ends a script run whenever the user touches a widget, so training never runs inside the app: each job is a
separate `python -m aelab train ...` process in its own session (a page switch, a reload or a server restart does not
end it), writing its progress as JSON lines to `<checkpoints>/.jobs/<id>/events.jsonl`, its output to `log.txt`, and
its checkpoint to `<checkpoints>/<name>.safetensors` at the end of every epoch. Everything about a job lives in files,
so any session of any server process can show it, and a status is read back from those files alone:

    queued       process alive, waiting for its turn (aelab.turns: MAX_JOBS train at a time, in order of arrival)
    starting     process alive, no event yet (importing torch, loading the data)
    running      process alive, training
    finished / stopped / diverged   the trainer said so and the process exited after its final save
    failed       the process exited with an error (the reason is the `error: ...` line of its log)
    interrupted  the process is gone without a final save (killed, machine or server restarted)

Once a job has ended, its status is frozen in `result.json`, so it stays true even if the checkpoint is later
overwritten. Job files are POSIX-only (process groups, fcntl lock, /proc), like the rest of the app's deployment.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import fcntl
import json
import os
import re
import shutil
import shlex
import subprocess
import sys
import threading
import time
import typing
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import checkpoints, turns
from .data import BUILTIN, Dataset, load_dataset
from .errors import AelabError, CheckpointError, ConfigError, DataError
from .files import write_atomic
from .models import get_variant
from .models.base import field_default, type_matches
from .progress import images_from_text
from .train import (StepsAdvice, TrainConfig, check_training, few_steps_advice, inapplicable, no_such_class,
                    pick_device, refuse_inapplicable, steps_advice)

JOBS_FOLDER = ".jobs"
ACTIVE = ("queued", "starting", "running", "saving")
TURNS_FOLDER = ".turns"  # (under .jobs, hidden from list_jobs: the slots and the line of aelab.turns)


def cores() -> int:
    """The CPU cores this process may use (its affinity, as a container pins it), not the machine's."""
    with contextlib.suppress(AttributeError, OSError):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def max_jobs() -> int:
    """How many jobs train at once; the others wait their turn. AELAB_MAX_JOBS, else a quarter of the CPU cores (at
    least one: one on 2 to 7 cores, four on 16): on CPU, jobs at once share the cores, so together they end no sooner
    than one after the other would while the first result comes later, and each holds torch and its data in memory.
    Each job's torch gets its share of the cores (job_threads). A GPU server may set it higher."""
    given = os.environ.get("AELAB_MAX_JOBS", "").strip()
    if given:
        try:
            return max(1, int(given))
        except ValueError:
            pass
    return max(1, cores() // 4)


def job_threads(slots: int | None = None) -> int:
    """Torch threads for a job: the cores shared by the jobs that may train at once (a thread pool each as large as
    all of them fought); all of them for one job at a time."""
    return max(1, cores() // (slots or max_jobs()))


# Popen objects of the jobs this server process started: poll() reaps them (no zombies) and gives the exit code.
_PROCESSES: dict[str, subprocess.Popen] = {}
# Incremental parse of each events file (file offset, state so far), so polling reads only the new lines.
_PARSED: dict[str, tuple[int, "_Progress"]] = {}
_PARSE_LOCK = threading.Lock()  # Streamlit serves sessions from threads


def jobs_folder() -> Path:
    return checkpoints.checkpoint_folder().resolve() / JOBS_FOLDER


@dataclass
class Job:
    """What was asked for: written once to job.json when the process starts."""

    id: str
    name: str
    variant: str
    model_options: dict
    train_options: dict
    dataset: str
    without_class: int | None
    only_class: int | None
    pid: int
    started: float
    command: list[str]
    checkpoint: str
    owner: str = ""  # the browser that started it (ui.browser_id), "" where unknown

    @property
    def folder(self) -> Path:
        return jobs_folder() / self.id

    @property
    def events_path(self) -> Path:
        return self.folder / "events.jsonl"

    @property
    def log_path(self) -> Path:
        return self.folder / "log.txt"

    @property
    def stop_path(self) -> Path:
        return self.folder / "stop"

    @property
    def epochs(self) -> int:
        return int(self.train_options.get("epochs", TrainConfig.epochs))


MAX_STEP_LOSSES = 2000  # points of a job's step-by-step loss curve (a long run's are thinned)


@dataclass
class _Progress:
    """What the events so far say."""

    phase: str = ""
    epoch: int = 0
    epochs: int = 0
    step: int = 0
    steps: int = 0
    terms: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    images_per_s: float | None = None
    epoch_eta_s: float | None = None
    last_event: str = ""
    preview: dict | None = None
    done: dict | None = None
    ahead: int = 0  # while queued: jobs that wait before it
    slots: int = 0
    waited_s: float | None = None  # how long it waited for its turn, once it had it
    step_losses: list[tuple[float, float]] = field(default_factory=list)  # (epochs done, a logged step's total loss)

    def update(self, event: dict) -> None:
        kind = event.get("event")
        self.last_event = kind
        if kind == "queued":
            self.ahead, self.slots = int(event["ahead"]), int(event["slots"])
        elif kind == "turn":
            self.waited_s = float(event["waited_s"])
        elif kind == "phase":
            self.phase, self.epochs = event["phase"], event.get("epochs", 0)
            self.epoch, self.step, self.steps = 0, 0, event.get("steps_per_epoch", 0)
        elif kind == "step":
            self.epoch, self.epochs = event["epoch"], event["epochs"]
            self.step, self.steps = event["step"], event["steps"]
            self.terms, self.images_per_s = event["terms"], event["images_per_s"]
            # Where it is on the loss chart's axis (epochs counted across phases, as loss_curves counts them): the
            # first epoch's curve, before any epoch has ended.
            if "total" in self.terms:
                self.step_losses.append((len(self.history) + self.step / max(self.steps, 1), float(self.terms["total"])))
                if len(self.step_losses) > MAX_STEP_LOSSES:  # a long run: every other one kept
                    self.step_losses = self.step_losses[::2]
        elif kind == "epoch":
            # "fraction": a stopped epoch's share of its steps (the preview then says "after 93% of epoch 23").
            self.history.append({k: event[k] for k in ("phase", "epoch", "train", "val", "images_per_s", "seconds",
                                                       "fraction") if k in event})
            self.epoch, self.epochs, self.step = event["epoch"], event["epochs"], self.steps
            self.images_per_s, self.epoch_eta_s = event["images_per_s"], event.get("eta_s")
            if event.get("preview"):
                self.preview = event["preview"]
        elif kind == "done":
            self.done = event


@dataclass
class JobStatus:
    job: Job
    state: str  # queued | starting | running | saving (ACTIVE), or finished | stopped | diverged | failed | interrupted
    phase: str = ""
    epoch: int = 0
    epochs: int = 0
    step: int = 0
    steps: int = 0
    terms: dict = field(default_factory=dict)  # latest step's loss terms
    history: list[dict] = field(default_factory=list)  # per epoch: phase, epoch, train {term: v}, val {term: v}, ...
    images_per_s: float | None = None
    eta_s: float | None = None
    originals: np.ndarray | None = None  # latest preview, uint8 (N, C, H, W)
    reconstructions: np.ndarray | None = None
    message: str = ""
    stop_requested: bool = False
    notes: list[str] = field(default_factory=list)  # the run's `note: ...` lines (too few steps, ...)
    ahead: int = 0  # queued: how many jobs wait before it
    slots: int = 0  # queued: how many train at once
    waited_s: float | None = None  # how long it waited for its turn (None: it had it at once, or is waiting)
    step_losses: list[tuple[float, float]] = field(default_factory=list)  # (epochs done, a logged step's loss)

    @property
    def began(self) -> float:
        """When its training began (after its wait for a turn), for the time it has taken."""
        return self.job.started + (self.waited_s or 0.0)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def fraction(self) -> float:
        """Progress of the current phase, 0..1 (1 once the job ended)."""
        if not self.active:
            return 1.0
        if not self.epochs or not self.steps:
            return 0.0
        done_steps = (self.epoch - 1) * self.steps + self.step  # an epoch event sets step = steps
        return min(1.0, max(0.0, done_steps / (self.epochs * self.steps)))

    @property
    def checkpoint(self) -> Path:
        return Path(self.job.checkpoint)

    def preview_picture(self) -> np.ndarray | None:
        """The latest preview as one picture in [0, 1]: originals in the top row, reconstructions under them."""
        if self.originals is None:
            return None
        import torch

        from .explore import tile

        both = torch.from_numpy(np.concatenate([self.originals, self.reconstructions])).float() / 255.0
        picture = tile(both, len(self.originals)).numpy()
        return picture[0] if picture.shape[0] == 1 else picture.transpose(1, 2, 0)


# ------------------------------------------------------------------------------------------- options and forms

# Labels where the field name is an abbreviation; every other label is the field name in words.
LABELS = {"lr": "Learning rate", "latent_dim": "Latent size (code)", "recon_loss": "Reconstruction loss",
          "init": "Weight init", "tied": "Tied weights", "val_fraction": "Validation fraction",
          "greedy_epochs": "Greedy pre-training epochs", "noise": "Denoising noise", "beta": "Beta (KL weight)",
          "arch": "Architecture", "lr_schedule": "Learning-rate schedule",
          "augment": "Augmentation"}  # its help says: the fraction of each batch moved


def _label(name: str) -> str:
    return LABELS.get(name) or name.replace("_", " ").capitalize()


@dataclass
class FormField:
    """One user-facing option of a config dataclass, as a form shows it."""

    name: str
    kind: str  # bool | choice | int | float | int_list | str
    default: typing.Any
    help: str
    choices: list | None = None
    minimum: float | None = None
    maximum: float | None = None

    @property
    def label(self) -> str:
        return _label(self.name)

    @property
    def step(self) -> float:
        """A float field's +/- step: one unit of the default's leading digit (lr 0.001 steps by 0.001)."""
        if self.kind != "float":
            return 1
        return 10.0 ** np.floor(np.log10(abs(self.default))) if self.default else 0.01


def form_fields(cls) -> list[FormField]:
    """The fields of a config dataclass (a model's or TrainConfig) that users set: everything not marked hidden."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if meta.get("hidden"):
            continue
        default = field_default(f)
        kind = hints[f.name]
        if kind is bool:
            kind_name = "bool"
        elif "choices" in meta:
            kind_name = "choice"
        elif typing.get_origin(kind) is list:
            kind_name = "int_list"
        else:
            kind_name = {int: "int", float: "float"}.get(kind, "str")
        out.append(FormField(f.name, kind_name, default, meta.get("help", ""), meta.get("choices"),
                             meta.get("minimum"), meta.get("maximum")))
    # A help text that names another option ("needs code_activation sigmoid", "(arch mlp)") names it as the form
    # labels it: a name with an underscore anywhere, a plain word only where one of its choices follows it.
    named = [f.name for f in out if "_" in f.name] + [rf"{f.name}(?= (?:{'|'.join(map(re.escape, f.choices))})\b)"
                                                      for f in out if f.choices and "_" not in f.name]
    for f in out if named else ():
        f.help = re.sub(rf"\b({'|'.join(named)})\b", lambda m: f"'{_label(m.group(1))}'", f.help)
    return out


def parse_int_list(text: str, name: str) -> list[int]:
    """'1000, 500,250' -> [1000, 500, 250]; '' -> []; anything else is refused with an example."""
    parts = [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]
    try:
        return [int(part) for part in parts]
    except ValueError:
        raise ConfigError(f"{name}: expected comma-separated whole numbers like 1000,500,250, not {text!r}") from None


def in_form_words(message: str, fields: list[FormField]) -> str:
    """An error about an option, named the way the form labels it: "lr must be at least 1e-08" -> "Learning rate
    must be at least 1e-08"."""
    for f in fields:
        if message.startswith((f"{f.name} ", f"{f.name}:")):
            return f.label + message[len(f.name):]
    return message


def inactive_options(variant: str, model_values: dict, train_values: dict,
                     input_shape: tuple[int, int, int] = (1, 28, 28)) -> dict[str, str]:
    """The form's options that the other values, as they stand, make do nothing -> why (train.inapplicable, named
    as the form labels them): the Train page greys them out and does not send them. Values are the widgets' own
    (layer sizes as text); one that does not parse yet counts at its default."""
    cls = get_variant(variant)
    fields = form_fields(cls.config_class)
    model_options = {}
    for f in fields:
        value = model_values.get(f.name, f.default)
        if f.kind == "int_list" and isinstance(value, str):
            try:
                value = parse_int_list(value, f.name)
            except ConfigError:
                continue
        model_options[f.name] = value
    named = lambda name: f"'{_label(name)}'"  # noqa: E731
    inactive = inapplicable(cls, model_options, train_values, named=named)
    # A stacked MLP's greedy stages, read off a bodiless model (meta device: nothing allocated) built from the values
    # that count: a greyed-out value (a sparsity weight kept from before) must not make the model unbuildable.
    counted = {name: value for name, value in model_options.items() if name not in inactive}
    try:
        with torch.device("meta"):
            probe = cls(cls.config_class.from_dict({**counted, "input_shape": tuple(input_shape)}))
        stages = getattr(probe, "num_stages", 1)
    except (ConfigError, ValueError, RuntimeError, TypeError, IndexError):  # not a model yet: greedy stays editable
        stages = None
    if cls.trainable and stages is not None:
        inactive = inapplicable(cls, model_options, train_values, stages=stages, named=named)
    return {name: why for name, (why, _) in inactive.items()}


def changed_options(fields: list[FormField], values: dict, inactive=()) -> dict:
    """The options whose value differs from the default, list fields parsed, those in `inactive` left out (the
    other values make them do nothing): the job's command stays short."""
    options = {}
    for f in fields:
        if f.name in inactive:
            continue
        value = values[f.name]
        if f.kind == "int_list" and isinstance(value, str):
            value = parse_int_list(value, f.name)
        if f.kind == "float":
            value = float(value)
        if value != f.default:
            options[f.name] = value
    return options


JOB_ONLY = {"--events": 1, "--stop-file": 1, "--quiet": 0}  # what start_job adds for its own use: option -> values


def command_to_rerun(command: str) -> str:
    """A checkpoint's stored command as one to paste: without the options a job adds for itself (its progress
    log and stop file, in a job folder of the server, and --quiet). The stored command keeps them: they name
    the job (holds_its_model)."""
    try:
        words = shlex.split(command)
    except ValueError:  # (not one a job or the CLI wrote)
        return command
    kept, skip = [], 0
    for word in words:
        if skip:
            skip -= 1
        elif word in JOB_ONLY:
            skip = JOB_ONLY[word]
        else:
            kept.append(word)
    return " ".join(shlex.quote(w) for w in kept)


def trained_as(command: str) -> str | None:
    """The name a checkpoint's stored command saved it under (its --out's file name without .safetensors), None for
    a command without one (the zoo's)."""
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    for k, word in enumerate(words):
        out = words[k + 1] if word == "--out" and k + 1 < len(words) else word.removeprefix("--out=") \
            if word.startswith("--out=") else None
        if out:
            return Path(out).name.removesuffix(".safetensors")
    return None


def suggest_name(dataset: str, variant: str, noise: str | None = None, without_class: int | None = None,
                 only_class: int | None = None) -> str:
    """`mnist-conv`, or `mnist-conv-2`, ... (free_name). What sets a model apart from the plain one is in it:
    `mnist-conv-denoising` (trained with noise), `mnist-conv-without-3`, `mnist-mlp-only-0` (the Anomalies page's
    models)."""
    base = f"{Path(dataset).name.removesuffix('.zip')}-{variant}"
    base += "-denoising" if noise not in (None, "none") else ""
    base += f"-without-{without_class}" if without_class is not None else ""
    base += f"-only-{only_class}" if only_class is not None else ""
    return free_name(base)


# ---------------------------------------------------------------------------------------------------- validation


def _check_types(cls, options: dict, what: str) -> None:
    """Values of the right type (a form or a caller could pass '10' or 1.5 for an int), and no hidden fields."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key, value in options.items():
        if key not in fields:
            raise ConfigError(f"unknown {what} option {key!r}: choose from "
                              + ", ".join(n for n, f in fields.items() if not f.metadata.get("hidden")))
        if fields[key].metadata.get("hidden"):
            raise ConfigError(f"{what} option {key!r} is set by aelab itself, not by hand")
        kind = hints[key]
        if not type_matches(value, kind):
            raise ConfigError(f"{key} must be {getattr(kind, '__name__', str(kind))}, not {value!r}")


def _dataset_shape(dataset: str | Dataset) -> tuple[tuple[int, int, int] | None, int | None]:
    """(input shape, number of classes) where known without loading anything; folders are checked by the job."""
    # Not isinstance(dataset, Dataset): a dataset cached by the app may predate a reload of aelab.data.
    if not isinstance(dataset, str):
        return dataset.input_shape, dataset.num_classes
    if dataset in BUILTIN:
        return (1, 28, 28), len(BUILTIN[dataset][0])
    return None, None


def _class_names(dataset: str | Dataset) -> list[str]:
    """The class names where known without loading anything (a built-in set's, a loaded set's); [] otherwise."""
    if not isinstance(dataset, str):
        return list(dataset.class_names)
    return list(BUILTIN[dataset][0]) if dataset in BUILTIN else []


def form_steps_advice(variant: str, dataset: Dataset, train_values: dict, without_class: int | None = None,
                      only_class: int | None = None) -> StepsAdvice | None:
    """The Train page's warning before a run of too few steps (train.steps_advice) for the form's values as they
    stand; None where there is nothing to say, or where the values are not valid yet (starting says why)."""
    try:
        config = TrainConfig(**{k: v for k, v in train_values.items() if k in TrainConfig.__dataclass_fields__})
        config.validate()
        return steps_advice(variant, dataset, config, without_class, only_class)
    except (AelabError, TypeError, ValueError):
        return None


def validate_request(variant: str, model_options: dict, train_options: dict, name: str,
                     dataset: str | Dataset = "mnist", without_class: int | None = None,
                     only_class: int | None = None, overwrite: bool = False) -> tuple[str, TrainConfig]:
    """Refuse, with the reason, anything that would make the job fail at once; returns (safe name, TrainConfig).

    Raises ConfigError (bad variant or option) or CheckpointError (unsafe name, a model of that name exists and
    overwrite is off, or another job is writing that name right now).
    """
    cls = get_variant(variant)
    _check_types(cls.config_class, model_options, variant)
    _check_types(TrainConfig, train_options, "training")
    train_config = TrainConfig(**train_options)
    train_config.validate(trainable=cls.trainable, stages=2)  # the model's own stages are checked below, or by the job
    # Options the model would not read (a PCA's learning rate): the job's command would refuse them.
    refuse_inapplicable(cls, model_options, train_options, named=lambda name: f"'{_label(name)}'")
    pick_device(train_config.device)  # a GPU asked for by name must exist here
    if isinstance(dataset, str) and dataset not in BUILTIN and not Path(dataset).expanduser().exists():
        raise DataError(f"unknown dataset {dataset!r}: use one of {', '.join(BUILTIN)} or a folder/zip of images")
    shape, classes = _dataset_shape(dataset)
    if shape:  # the model's size is known: refuse one too large before a job starts
        check_training(cls, model_options, train_config, shape, classes)
    else:  # the job checks the rest once the images are loaded
        cls.config_class.from_dict(model_options).validate()
    if without_class is not None and only_class is not None:
        raise ConfigError("choose at most one of 'without class' and 'only class'")
    for k in (without_class, only_class):
        if k is not None and classes is not None and not 0 <= k < classes:
            raise ConfigError(no_such_class(k, getattr(dataset, 'name', dataset), classes))
    safe = checkpoints.safe_name(name)
    busy = [s for s in list_jobs(unended=True) if s.active and s.job.name == safe]
    if busy:
        doing = "waiting to train" if busy[0].state == "queued" else "training"
        raise CheckpointError(f"a job is already {doing} a model named {safe!r}: wait for it, stop it, "
                              "or pick another name")
    target = checkpoints.path_for(safe)
    checkpoints.refuse_case_twin(target)
    if target.exists() and not overwrite:
        raise CheckpointError(f"a model named {safe!r} already exists: pick another name or allow overwriting it")
    return safe, train_config


def _cli_args(options: dict) -> list[str]:
    """The options as `python -m aelab train` flags (cli.add_dataclass_options reads them back)."""
    args = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            args.append(flag if value else "--no-" + key.replace("_", "-"))
        elif isinstance(value, (list, tuple)):
            args += [flag, ",".join(str(v) for v in value)]
        else:
            args += [flag, repr(value) if isinstance(value, float) else str(value)]
    return args


@contextlib.contextmanager
def _jobs_lock():
    """One start at a time across sessions and server processes, so two tabs cannot take the same name."""
    folder = jobs_folder()
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_json(path: Path, value: dict) -> None:
    write_atomic(path, json.dumps(value, indent=1).encode())


def start_job(variant: str, model_options: dict, train_options: dict, name: str, dataset: str | Dataset = "mnist",
              without_class: int | None = None, only_class: int | None = None, overwrite: bool = False,
              next_free_name: bool = False, owner: str = "") -> Job:
    """Validate, then start `python -m aelab train` in the background; returns at once. `next_free_name`: the name
    was the page's suggestion, not the user's: if it was taken since, the next free one (free_name), picked under the
    jobs lock (a class pressing Start together: one was refused a name it never chose, "mnist-mlp-2"). `owner`: the
    browser that starts it (its cards in that browser stop it at one click)."""
    dataset_name = dataset if isinstance(dataset, str) else dataset.name
    if dataset_name not in BUILTIN and Path(dataset_name).expanduser().exists():
        dataset_name = str(Path(dataset_name).expanduser().resolve())  # the job must find it from any folder
        if isinstance(dataset, str) and (without_class is not None or only_class is not None):
            # Its classes, to name the one on the job's command line (a number there is read as a folder's name
            # first: "1" of folders "1", "2", "3" is class 0) and to check it: the set as the job will read it.
            dataset = load_dataset(dataset_name)
    with _jobs_lock():
        if next_free_name:
            name = free_name(checkpoints.safe_name(name))
        safe, _ = validate_request(variant, model_options, train_options, name, dataset, without_class, only_class,
                                   overwrite)
        job_id = f"{datetime.datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:8]}"
        folder = jobs_folder() / job_id
        folder.mkdir(parents=True)
        target = checkpoints.path_for(safe, checkpoints.checkpoint_folder().resolve())
        command = [sys.executable, "-m", "aelab", "train", variant, "--dataset", dataset_name, "--out", str(target),
                   "--events", str(folder / "events.jsonl"), "--stop-file", str(folder / "stop"), "--quiet",
                   *_cli_args(model_options),
                   *_cli_args(train_options)]
        shape, _ = _dataset_shape(dataset)
        if dataset_name not in BUILTIN and shape:  # the images at the size and colour the page loaded them
            command += ["--image-size", str(shape[-1]), "--image-channels", str(shape[0])]
        names = _class_names(dataset)
        for flag, k in (("--without-class", without_class), ("--only-class", only_class)):
            if k is not None:  # by name where known (a set whose folders are "1", "2", "3": the number 1 is "2")
                command.append(f"{flag}={names[k]}" if names else f"{flag}={k}")
        # The job must import this same aelab, whatever folder the server was started from.
        package_root = str(Path(__file__).resolve().parent.parent)
        env = {**os.environ, "PYTHONUNBUFFERED": "1",
               "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
        slots = max_jobs()
        env.setdefault("OMP_NUM_THREADS", str(job_threads(slots)))
        # Its turn first (aelab.turns, about 13 MB while it waits), then the training in the same process. Its place
        # in the line is taken here, under the jobs lock, and handed down: the jobs keep the order they were started
        # in, however fast each process starts.
        turns_folder = jobs_folder() / TURNS_FOLDER
        turns.set_slots(turns_folder, slots)
        arrived = time.time_ns()
        line_fd, line_file = turns.join_line(turns_folder, arrived)
        waits = [sys.executable, "-m", "aelab.turns", "--folder", str(turns_folder), "--slots", str(slots),
                 "--events", str(folder / "events.jsonl"), "--stop-file", str(folder / "stop"),
                 "--line-fd", str(line_fd), "--line-file", str(line_file), "--"]
        # Said at once when it will wait (its process says it again within a second; it read "starting" till then).
        ahead, busy_slots = turns.place(turns_folder, line_file)
        if ahead or busy_slots >= slots:
            (folder / "events.jsonl").write_text(json.dumps({"event": "queued", "ahead": ahead, "slots": slots}) + "\n")
        try:
            with open(folder / "log.txt", "wb") as log:
                process = subprocess.Popen(waits + command, stdin=subprocess.DEVNULL, stdout=log,
                                           stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                           pass_fds=(line_fd,))
        except BaseException:
            line_file.unlink(missing_ok=True)
            raise
        finally:
            os.close(line_fd)  # (the job's copy keeps the place)
        _PROCESSES[job_id] = process
        job = Job(job_id, safe, variant, dict(model_options), dict(train_options), dataset_name, without_class,
                  only_class, process.pid, arrived / 1e9, command, str(target), owner)
        _write_json(folder / "job.json", dataclasses.asdict(job))
    return job


# ------------------------------------------------------------------------------------------------------- status


def load_job(job_id: str) -> Job:
    if not job_id or "/" in job_id or job_id.startswith("."):
        raise ConfigError(f"no such job: {job_id!r}")
    try:
        values = json.loads((jobs_folder() / job_id / "job.json").read_text())
        # (What a newer aelab adds is left out: a server started before an update lists the new jobs too.)
        return Job(**{k: v for k, v in values.items() if k in Job.__dataclass_fields__})
    except (OSError, ValueError, TypeError):
        raise ConfigError(f"no such job: {job_id!r}") from None


def _alive(job: Job) -> bool:
    """Is the job's process still running? Robust to zombies, server restarts and pid reuse."""
    process = _PROCESSES.get(job.id)
    if process is not None:
        return process.poll() is None  # poll() reaps our own child once it exits
    try:
        os.kill(job.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else: /proc below tells whether it is ours
    proc = Path("/proc") / str(job.pid)
    if proc.is_dir():
        try:
            if (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return False  # exited, not reaped yet by its parent
            if str(job.folder).encode() not in (proc / "cmdline").read_bytes():
                return False  # the pid now belongs to another program
        except (OSError, IndexError):
            return False  # vanished while we looked
    return True


def _exit_code(job: Job) -> int | None:
    process = _PROCESSES.get(job.id)
    return process.returncode if process is not None else None


def _read_events(job: Job) -> _Progress:
    """Parse only the lines added since the last call; a half-written last line waits for the next call."""
    with _PARSE_LOCK:
        offset, progress = _PARSED.get(job.id, (0, _Progress()))
        try:
            with open(job.events_path, "rb") as f:
                f.seek(offset)
                chunk = f.read()
        except FileNotFoundError:
            chunk = b""
        end = chunk.rfind(b"\n") + 1
        for line in chunk[:end].splitlines():
            try:
                progress.update(json.loads(line))
            except (ValueError, KeyError, TypeError):
                continue  # a line the trainer did not write whole (disk full, killed mid-write): skip it
        _PARSED[job.id] = (offset + end, progress)
        return progress


def _log_notes(job: Job) -> list[str]:
    """What the run said of itself on its way (`note: ...` lines of its log: too few steps an epoch, ...)."""
    try:
        text = job.log_path.read_text(errors="replace")
    except OSError:
        return []
    return [line.strip()[len("note: "):] for line in text.splitlines() if line.strip().startswith("note: ")]


def _log_error(job: Job) -> str:
    """The reason a job failed: its `error: ...` line, else the last line of a traceback, else ''."""
    try:
        lines = [line.strip() for line in job.log_path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    errors = [line for line in lines if line.startswith("error: ")]
    if errors:
        return errors[-1][len("error: "):]
    if any(line.startswith("Traceback") for line in lines):
        return lines[-1]
    return ""


def _saved_epochs(job: Job) -> str:
    """Where the weights of an interrupted job are: the checkpoint of its last completed epoch, if any."""
    path = Path(job.checkpoint)
    try:
        meta = checkpoints.read_metadata(path)
    except (OSError, CheckpointError):
        return "no epoch was completed, so nothing was saved"
    if job.id not in meta.get("command", ""):
        return "no epoch was completed, so nothing was saved"  # the file is another job's
    return f"{job.name} holds the weights of {checkpoints.saved_epoch(meta)}"


def _remove_stale_temp_files(job: Job) -> None:
    """A process killed while saving leaves a hidden temp file; no one else can be writing this name now."""
    path = Path(job.checkpoint)
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        tmp.unlink(missing_ok=True)


def holds_its_model(job: Job) -> bool:
    """Does the checkpoint under the job's name still hold what this job saved (not restored, retrained, uploaded or
    deleted since)? The command recorded in the file names the job's folder."""
    try:
        return job.id in checkpoints.read_metadata(job.checkpoint).get("command", "")
    except (OSError, CheckpointError):
        return False


def its_model_now(job: Job, listed: dict[Path, list] | None = None) -> Path | None:
    """Where the model the job saved is now: under its name (holds_its_model), or under the name it was renamed to
    on the Models page (the file keeps the command that names the job's folder); None when it is gone (deleted,
    or replaced by a restore, a retraining or an upload). `listed`: folder listings already made, shared by the
    calls for several jobs (the jobs panel asks for every job each tick: one listing of a folder, not one per job)."""
    if holds_its_model(job):
        return Path(job.checkpoint)
    folder = Path(job.checkpoint).parent
    listed = {} if listed is None else listed
    if folder not in listed:
        listed[folder] = checkpoints.list_checkpoints(folder)[0]
    return next((c.path for c in listed[folder] if job.id in c.meta.get("command", "")), None)


def _final_save_done(job: Job) -> bool:
    """The trainer's "done" event comes before the test metrics and the final save: did that save happen?"""
    try:
        meta = checkpoints.read_metadata(job.checkpoint)
    except (OSError, CheckpointError):
        return False
    return job.id in meta.get("command", "") and meta.get("status") != "training"


def _ended(job: Job, progress: _Progress) -> tuple[str, str]:
    """(state, message) of a job whose process is gone."""
    code = _exit_code(job)
    killed = code is not None and code < 0
    if progress.done is not None and progress.done.get("before_start") and not killed:
        return "stopped", f"{progress.done.get('message', 'stopped before it trained')}: nothing was saved"
    if progress.last_event == "queued":  # (killed, or the machine restarted, before its turn came)
        how = f"killed by signal {-code}" if killed else "killed, or the machine restarted"
        return "interrupted", (f"the job ended while it waited for its turn ({how}), before it trained: nothing was "
                               "saved")
    # Before the log's error line: a run that diverged before it trained anything also says so there, as an error.
    if (progress.done is not None and not killed and not progress.history
            and progress.done.get("status") in ("diverged", "failed")):  # train_and_save saved nothing
        return progress.done["status"], f"{progress.done.get('message', '')}, so nothing was saved"
    error = "" if killed else _log_error(job)
    if error:
        return "failed", error + (f"; {_saved_epochs(job)}" if progress.history else "")
    if progress.done is not None and not killed and _final_save_done(job):
        state, message = progress.done.get("status", "finished"), progress.done.get("message", "")
        if state == "stopped":
            message = f"{message}; the weights so far are saved as {job.name}"
        elif state == "diverged":
            message = f"{message}, saved as {job.name}"
        return state, message
    how = f"killed by signal {-code}" if killed else "killed, or the machine restarted"
    return "interrupted", f"the training process ended without finishing ({how}); {_saved_epochs(job)}"


def job_status(job_id: str | Job) -> JobStatus:
    job = job_id if isinstance(job_id, Job) else load_job(job_id)
    result_path = job.folder / "result.json"
    alive = _alive(job)  # before reading events: an exited process has written all of its events
    progress = _read_events(job)
    status = JobStatus(job, "starting", progress.phase, progress.epoch, progress.epochs, progress.step,
                       progress.steps, progress.terms, progress.history, progress.images_per_s,
                       stop_requested=job.stop_path.exists(), notes=_log_notes(job), ahead=progress.ahead,
                       slots=progress.slots, waited_s=progress.waited_s, step_losses=list(progress.step_losses))
    if progress.preview:
        try:
            status.originals, status.reconstructions = (
                images_from_text(progress.preview[k]) for k in ("originals", "reconstructions"))
        except Exception:  # noqa: BLE001 (a preview written by hand or damaged: the card shows none, not a traceback)
            pass
    if alive:
        if progress.done is not None:
            # Two parts: the test metrics and the final save, then the pages' results (the model can be opened)
            status.state, status.phase = "saving", (
                "preparing the pages' results (the model is saved and can be opened)" if _final_save_done(job)
                else "measuring the test metrics, then saving")
        elif progress.phase:
            status.state = "running"
            status.eta_s = _eta(job, progress)
        elif progress.last_event == "queued":
            status.state = "queued"
        return status
    try:
        frozen = json.loads(result_path.read_text())
        status.state, status.message = frozen["state"], frozen["message"]
    except (OSError, ValueError, KeyError):
        status.state, status.message = _ended(job, progress)
        with contextlib.suppress(OSError):
            if status.state == "stopped" and job.stop_path.read_text() == STOPPED_ELSEWHERE:
                status.message += f"; it was {STOPPED_ELSEWHERE}"
        if status.state in ("failed", "interrupted"):
            _remove_stale_temp_files(job)
        _write_json(result_path, {"state": status.state, "message": status.message, "ended": time.time()})
    return status


def _eta(job: Job, progress: _Progress) -> float | None:
    """Seconds left in this phase: from the step rate within an epoch, or the trainer's estimate at an epoch end."""
    if progress.last_event == "epoch":
        return progress.epoch_eta_s
    if not progress.images_per_s or not progress.steps:
        return None
    batch = int(job.train_options.get("batch_size", TrainConfig.batch_size))
    steps_left = (progress.epochs - progress.epoch) * progress.steps + progress.steps - progress.step
    return steps_left * batch / progress.images_per_s


def loss_curves(history: list[dict]) -> dict[str, tuple[list[int], list[float]]]:
    """Every loss term of every split as (epochs, values), epochs counted across phases (pre-training first), in
    legend order: training's total and terms, validation's, then pre-training's. A split whose one term is its
    whole loss would draw the same line twice: training keeps the total (named like validation's), pre-training the
    term (which names its stage)."""
    curves: dict[str, tuple[list[int], list[float]]] = {}
    for x, entry in enumerate(history, 1):
        pre_training = entry["phase"] != "train"
        for split in ("train", "val"):
            terms = entry.get(split) or {}
            others = [term for term in terms if term != "total"]
            same = len(others) == 1 and terms[others[0]] == terms.get("total")
            for term, value in terms.items():
                if same and term == ("total" if pre_training else others[0]):
                    continue
                xs, ys = curves.setdefault(f"{term} (pre-training)" if pre_training else f"{split} {term}", ([], []))
                xs.append(x)
                ys.append(value)
    order = {"train": 0, "val": 1}
    return dict(sorted(curves.items(), key=lambda item: (item[0].endswith("(pre-training)"),
                                                         order.get(item[0].split(" ", 1)[0], 2),
                                                         not item[0].startswith(("train total", "val total")),
                                                         item[0])))


def training_on(dataset: str) -> list[str]:
    """The models that jobs still running are training on this dataset (an image set must not be removed under them:
    the model they save could then never be opened). Names compare as they are: start_job resolves an image set's
    path, as data.user_datasets does."""
    return [s.job.name for s in list_jobs(unended=True) if s.active and s.job.dataset == dataset]


def list_jobs(unended: bool = False) -> list[JobStatus]:
    """Every job with a readable job.json, newest first. `unended`: only those whose end is not on record yet (the
    active ones, and any that ended since it was last looked at): what the Train page polls every 2 s, in every open
    browser, however many ended jobs have piled up."""
    return [job_status(job) for job in sorted(_recorded_jobs(unended), key=lambda j: (j.started, j.id), reverse=True)]


def _recorded_jobs(unended: bool = False) -> list[Job]:
    """The jobs with a readable job.json (`unended`: not those whose end is on record, result.json)."""
    folder = jobs_folder()
    if not folder.is_dir():
        return []
    jobs = []
    for path in folder.iterdir():
        if path.is_dir() and not path.name.startswith("."):
            if unended and (path / "result.json").exists():
                continue
            with contextlib.suppress(ConfigError):
                jobs.append(load_job(path.name))
    return jobs


def queue_words(status: JobStatus) -> str:
    """Where a queued job is in the line, for its card."""
    at_once = f"{status.slots} train at a time here" if status.slots > 1 else "one trains at a time here"
    if status.ahead:
        return f"{status.ahead} job{'s wait' if status.ahead > 1 else ' waits'} before it ({at_once})"
    return f"next: it starts when a job training now ends ({at_once})"


def turn_note(job: Job) -> str:
    """For the page that started `job`: a word that it waits, when as many others train already (max_jobs)."""
    slots = max_jobs()
    busy = [s for s in list_jobs(unended=True) if s.active and s.job.id != job.id and s.job.started <= job.started]
    if len(busy) < slots:
        return ""
    return (f" It waits for its turn: {'one job trains' if slots == 1 else f'{slots} jobs train'} at a time here, "
            f"and {len(busy)} started before it.")


STOPPED_ELSEWHERE = "stopped from another browser"


def stop_job(job_id: str, elsewhere: bool = False) -> None:
    """Ask the job to stop after its current step; it saves the weights so far and ends as 'stopped'. `elsewhere`:
    asked from a browser that did not start it, which its card then says (in a class, a student whose job
    the teacher stopped read the same words as had she stopped it herself)."""
    job = load_job(job_id)
    job.stop_path.write_text(STOPPED_ELSEWHERE if elsewhere else "")


def remove_job(job_id: str) -> None:
    """Forget an ended job (its files under .jobs/); the checkpoint it wrote stays."""
    job = load_job(job_id)
    if _alive(job):
        raise ConfigError(f"job {job.name!r} is still running: stop it first")
    shutil.rmtree(job.folder, ignore_errors=True)
    _PROCESSES.pop(job.id, None)
    with _PARSE_LOCK:
        _PARSED.pop(job.id, None)


def free_name(name: str) -> str:
    """`name`, else "name-2", "name-3"...: the first that neither a checkpoint (in any case) nor a job on the Train
    page has, running or ended (a job stopped before it trained saved nothing, and its name was handed out again: two
    cards read "mnist-mlp-3"). (The form's suggestion and the one-click experiment's name: both said "-2" and " v2"
    before.)"""
    taken = {path.name[: -len(checkpoints.SUFFIX)].lower()
             for path in checkpoints.checkpoint_folder().glob(f"*{checkpoints.SUFFIX}")}
    taken |= {job.name.lower() for job in _recorded_jobs()}
    version = 1
    candidate = name
    while candidate.lower() in taken:
        version += 1
        candidate = f"{name}-{version}"
    return candidate


def anomaly_recipe(dataset: str, k: int, n_train: int | None = None, channels: int = 1) -> dict:
    """start_job arguments for the Anomalies page's experiment: a small conv AE (like the zoo's) without class k.
    `n_train`: the images it trains on (every class but k), when known: a small image set gets the batch size and
    epochs that make enough steps (train.few_steps_advice: 300, or 1,000 for `channels` 3; 10 epochs of MNIST make
    thousands)."""
    batch, epochs = 128, 10
    if n_train is not None:
        advice = few_steps_advice(n_train, TrainConfig(epochs=epochs, batch_size=batch), channels)
        if advice is not None:
            batch, epochs = advice.better_batch, advice.better_epochs
    return {"variant": "conv", "model_options": {"latent_dim": 16, "channels": [32, 64]},
            "train_options": {"epochs": epochs, "batch_size": batch, "lr": 1e-3},
            "name": f"{Path(dataset).name.removesuffix('.zip')}-conv-without-{k}", "dataset": dataset,
            "without_class": k}