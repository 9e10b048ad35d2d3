"""One checkpoint format: a single `.safetensors` file whose header carries our JSON metadata.

Weights are safetensors (plain tensors, nothing executable); the metadata (variant, config, dataset, seed, versions,
history, metrics, the command that made it) is JSON under the header's `__metadata__["aelab"]`. One file means one
atomic rename on save, and one thing to upload, download, rename or delete. Nothing is ever unpickled: pickled files
are refused by their first bytes before any loader sees them.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import re
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes

from . import __version__
from .errors import CheckpointError, ConfigError
from .files import why_not_written, write_atomic
from .models import Autoencoder, get_variant
from .models.base import check_size

SUFFIX = ".safetensors"
FORMAT = "aelab-checkpoint"
FORMAT_VERSION = 1
MAX_HEADER_BYTES = 4 * 1024 * 1024  # metadata + tensor index; real ones are a few kB to a few hundred kB
MAX_FILE_BYTES = 512 * 1024 * 1024
DEFAULT_FOLDER = Path(__file__).resolve().parent.parent / "checkpoints"
FLOAT_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64}
PICKLE_HINT = ("aelab never unpickles files (unpickling can run code); if you trust this model, load it in your own "
               "Python with torch.load(path, weights_only=True), build the matching aelab model and save it with "
               "aelab.checkpoints.save_checkpoint")


def checkpoint_folder() -> Path:
    return Path(os.environ.get("AELAB_CHECKPOINTS", DEFAULT_FOLDER))


def _versions() -> dict:
    return {"aelab": __version__, "torch": torch.__version__, "python": platform.python_version()}


def save_checkpoint(model: Autoencoder, path: str | os.PathLike, *, dtype: torch.dtype = torch.float32,
                    **metadata) -> Path:
    """Write model + metadata atomically (temp file in the same folder, then rename); returns the final path.

    `metadata` keys are free-form JSON values; usual ones: dataset, train_config, history, metrics, command, seed.
    float16 storage halves the size; loading casts back to float32.
    """
    path = writable_path(path)
    tensors = {}
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu()
        if tensor.is_floating_point():
            stored = tensor.to(dtype)
            # A value float16 cannot hold (over 65,504: a batch-norm variance after a wild learning rate) would be
            # saved as infinite, a file nothing loads: such a tensor is kept in float32 (loading casts all alike).
            tensor = stored if torch.isfinite(stored).all() or not torch.isfinite(tensor).all() else tensor
        tensors[name] = tensor.contiguous()
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "variant": model.variant,
            "config": model.config.to_dict(), "created": datetime.datetime.now().isoformat(timespec="seconds"),
            "versions": _versions(), **metadata}
    blob = save_safetensors_bytes(tensors, metadata={"aelab": json.dumps(meta, default=_jsonable)})
    try:  # a full disk, or a folder made at the target meanwhile: the earlier file is untouched
        write_atomic(path, blob, fsync=True)
    except OSError as err:
        raise CheckpointError(why_not_written(path, err)) from None
    return path


def writable_path(path: str | os.PathLike, suffix: str | None = SUFFIX, what: str = "a checkpoint") -> Path:
    """The file to write for `path` (`~` expanded, `suffix` added unless it ends with it, as np.savez does: "run.v2"
    -> "run.v2.npz"), its folder made, checked by creating a temp file there: the CLI calls it before loading data
    and training, so a path that cannot be written is refused at once, not after the work. `what`: the file, in the
    messages. save_checkpoint writes through it, and the CLI's other outputs (arrays, pictures, event logs) too."""
    text = os.path.expanduser(str(path)).strip()
    path = Path(text)
    if not text or path.name in ("", ".", ".."):
        raise CheckpointError(f"{text!r} is not a file name for {what}")
    # "--out checkpoints/" meant a folder, not checkpoints.safetensors; nor may the file with its suffix be one.
    if suffix and path.suffix != suffix and not (text.endswith(os.sep) or path.is_dir()):
        path = path.with_name(path.name + suffix)
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder: give a file name for {what}")
    if text.endswith(os.sep):  # (a folder that is not there yet)
        raise CheckpointError(f"{text} ends with {os.sep}, so it names a folder: give a file name for {what}")
    blocking = next((p for p in (path.parent, *path.parent.parents) if p.exists()), None)
    if blocking is not None and not blocking.is_dir():  # "notes.txt/x": mkdir's "File exists" said nothing useful
        raise CheckpointError(f"cannot write {what} in {path.parent}: {blocking} is a file, so no folder can be made "
                              "there")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as err:
        raise CheckpointError(f"cannot write {what} in {path.parent}: {err.strerror or err}") from None
    return path


def _jsonable(value):
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in checkpoint metadata")


HEAD_BYTES = 4096  # what _refuse_foreign looks at


def _refuse_foreign(head: bytes, name: str) -> None:
    """Refuse pickles and zip archives by their first bytes. `head` is the first HEAD_BYTES (or all of a shorter
    file): a safetensors file starts with its header length (8 bytes, little-endian, so its first byte can be
    anything, 0x80 or "PK" included) followed by "{", which is how it is recognised first. A PyTorch archive is a zip
    whose first entry is its pickle (".../data.pkl"); another zip (of images, say) is only not a checkpoint."""
    if head[8:9] == b"{" and int.from_bytes(head[:8], "little") <= MAX_HEADER_BYTES and \
            not name.endswith((".pt", ".pth", ".pkl", ".pickle", ".ckpt")):
        return
    if head[:2] == b"PK":
        if b".pkl" in head or name.endswith((".pt", ".pth", ".ckpt")):
            raise CheckpointError(f"{name} is a zip/PyTorch archive (a pickle inside): {PICKLE_HINT}")
        raise CheckpointError(f"{name} is a zip archive, not an aelab checkpoint ({SUFFIX} file)")
    if head[:1] == b"\x80" or name.endswith((".pt", ".pth", ".pkl", ".pickle", ".ckpt")):
        raise CheckpointError(f"{name} is a pickled file: {PICKLE_HINT}")


def parse_header(data: bytes, name: str = "checkpoint") -> tuple[dict, dict]:
    """Validate the safetensors header and our metadata from raw bytes; returns (metadata, tensor index)."""
    _refuse_foreign(data[:HEAD_BYTES], name)
    if len(data) < 8:
        raise CheckpointError(f"{name} is too short to be a checkpoint")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > MAX_HEADER_BYTES:
        raise CheckpointError(f"{name} is not an aelab checkpoint (not a safetensors file)")
    if 8 + header_len > len(data):
        raise CheckpointError(f"{name} is truncated (header runs past the end of the file)")
    try:
        header = json.loads(data[8:8 + header_len])
        meta = json.loads(header.pop("__metadata__")["aelab"])
    except (ValueError, KeyError, TypeError, AttributeError):
        raise CheckpointError(f"{name} is not an aelab checkpoint (safetensors with aelab metadata)") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{name} is not an aelab checkpoint (metadata format missing)")
    if not isinstance(meta.get("format_version", 0), int):
        raise CheckpointError(f"{name}: metadata field 'format_version' is not a whole number")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{name} was written by a newer aelab (format {meta.get('format_version')})")
    for key, kind in (("variant", str), ("config", dict)):
        if not isinstance(meta.get(key), kind):
            raise CheckpointError(f"{name}: metadata field {key!r} is missing or not a {kind.__name__}")
    # What the pages and commands read from the metadata, where present, of the kind they read it as.
    for key, kind in (("dataset", dict), ("history", list), ("metrics", dict), ("train_config", dict)):
        if meta.get(key) is not None and not isinstance(meta[key], kind):
            raise CheckpointError(f"{name}: metadata field {key!r} is not a {kind.__name__}")
    if not all(isinstance(entry, dict) for entry in meta.get("history") or []):
        raise CheckpointError(f"{name}: metadata field 'history' is not a list of epochs")
    dataset = meta.get("dataset") or {}
    for key, ok, kind in (("name", lambda v: isinstance(v, str), "a text"),
                          ("class_names", lambda v: isinstance(v, list) and all(isinstance(c, str) for c in v),
                           "a list of texts"),
                          ("input_shape", lambda v: isinstance(v, list) and all(type(d) is int or d is None for d in v),
                           "a list of sizes")):
        if dataset.get(key) is not None and not ok(dataset[key]):
            raise CheckpointError(f"{name}: metadata field 'dataset.{key}' is not {kind}")
    classes = len(dataset.get("class_names") or [])
    for key in ("without_class", "only_class"):  # a class left out of training: one of the dataset's
        k = dataset.get(key)
        if k is not None and not (type(k) is int and 0 <= k < max(classes, 1)):
            raise CheckpointError(f"{name}: metadata field 'dataset.{key}' is {k!r}, not a class of its dataset")
    for key, entry in header.items():  # the tensor index, as safetensors lays it out
        if not (isinstance(entry, dict) and isinstance(entry.get("shape"), list) and isinstance(entry.get("dtype"), str)
                and isinstance(entry.get("data_offsets"), list)):
            raise CheckpointError(f"{name}: the entry of tensor {str(key)[:40]!r} is not a safetensors tensor entry")
    return meta, header


def build_from_metadata(meta: dict, name: str = "checkpoint") -> Autoencoder:
    try:
        cls = get_variant(meta["variant"])
        config = cls.config_class.from_dict(meta["config"])
        check_size(cls, config)  # a config edited by hand must not allocate gigabytes before its tensors mismatch
        return cls(config)
    except (ConfigError, TypeError, ValueError, IndexError) as err:
        raise CheckpointError(f"{name}: its config cannot build a model ({err})") from None


def _check_tensors(model: Autoencoder, index: dict, name: str) -> None:
    expected = model.state_dict()
    missing, extra = set(expected) - set(index), set(index) - set(expected)
    if missing or extra:
        detail = f"missing {sorted(missing)[:3]}" if missing else f"unexpected {sorted(extra)[:3]}"
        raise CheckpointError(f"{name}: tensors do not match the {model.variant} config ({detail})")
    for key, tensor in expected.items():
        entry = index[key]
        if list(entry.get("shape", [])) != list(tensor.shape):
            raise CheckpointError(f"{name}: tensor {key} has shape {entry.get('shape')}, "
                                  f"the config needs {list(tensor.shape)}")
        dtype = entry.get("dtype")
        if tensor.is_floating_point() and dtype not in FLOAT_DTYPES:
            raise CheckpointError(f"{name}: tensor {key} has dtype {dtype}, expected a float type")
        if not tensor.is_floating_point() and dtype not in ("I64", "I32"):
            raise CheckpointError(f"{name}: tensor {key} has dtype {dtype}, expected an integer type")


def load_bytes(data: bytes, name: str = "checkpoint", device: str | torch.device = "cpu"
               ) -> tuple[Autoencoder, dict]:
    """Validate everything (header, metadata, config, every tensor's name/shape/dtype), then load. Never unpickles."""
    if len(data) > MAX_FILE_BYTES:
        raise CheckpointError(f"{name} is {len(data) / 2**20:.0f} MB, over the {MAX_FILE_BYTES // 2**20} MB limit")
    meta, index = parse_header(data, name)
    model = build_from_metadata(meta, name)
    _check_tensors(model, index, name)
    try:
        tensors = load_safetensors_bytes(data)
    except Exception as err:  # safetensors raises its own error types for bad offsets and lengths
        raise CheckpointError(f"{name}: tensor data is corrupt ({str(err).splitlines()[0]})") from None
    for key, tensor in tensors.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(f"{name}: tensor {key} contains NaN or infinite values")
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in tensors.items()})
    return model.place(device).eval(), meta


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[Autoencoder, dict]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no such checkpoint: {path}")
    with open(path, "rb") as f:
        _refuse_foreign(f.read(HEAD_BYTES), path.name)
    if path.stat().st_size > MAX_FILE_BYTES:
        raise CheckpointError(f"{path.name} is over the {MAX_FILE_BYTES // 2**20} MB limit")
    return load_bytes(path.read_bytes(), path.name, device)


def _process_stat(pid: int) -> list[str] | None:
    """The fields of Linux's /proc/PID/stat after the command name (state first); None where /proc is not there or
    the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _process_start(pid: int) -> str | None:
    """When process `pid` started (clock ticks since boot), to tell it from a later process given the same number."""
    fields = _process_stat(pid)
    return fields[19] if fields and len(fields) > 19 else None


def writer() -> dict:
    """Who is writing a checkpoint that is still being trained (status "training"): this machine and process."""
    return {"host": platform.node(), "pid": os.getpid(), "started": _process_start(os.getpid())}


def status_of(meta: dict) -> str:
    """A checkpoint's status, with "training" read as "interrupted" when the process that was training it on this
    machine is gone (killed, or the machine restarted): the file then holds its last completed epoch for good."""
    status = meta.get("status", "")
    by = meta.get("writer") or {}
    if status != "training":
        return status
    if by.get("host") != platform.node() or not isinstance(by.get("pid"), int):
        # Saved mid-run on another computer (an uploaded or copied file), or by an aelab that did not say who: no
        # process here is training it, so it would read "still training" for ever.
        return "interrupted"
    try:
        os.kill(by["pid"], 0)
    except ProcessLookupError:
        return "interrupted"
    except PermissionError:  # alive, another user's
        return status
    fields = _process_stat(by["pid"])
    if fields and fields[0] == "Z":  # exited (killed), not yet reaped by its parent (the app's server, for a job)
        return "interrupted"
    started = _process_start(by["pid"])
    return "interrupted" if by.get("started") and started and started != by["started"] else status


def refuse_live_writer(path: str | os.PathLike) -> None:
    """Refuse to train into `path` while another process of this machine is training into it: both would save
    there, each say it finished, and one model would be lost without a word."""
    path = Path(path)
    try:
        meta = read_metadata(path) if path.is_file() else {}
    except CheckpointError:  # not an aelab checkpoint: refused (or replaced) by the caller's own checks
        return
    by = meta.get("writer") or {}
    if status_of(meta) == "training" and by.get("pid") != os.getpid():
        raise CheckpointError(f"{path.name} is being trained by another run (process {by.get('pid')}, "
                              f"{saved_epoch(meta)} saved so far): let it end or stop it, or give another name")


def unfinished_how(meta: dict) -> str:
    """How a run of status "interrupted" (status_of's) ended, to follow "its training": a run saved mid-way on another
    computer may have been interrupted there or be going on still (into a shared folder), and this one cannot tell."""
    by = meta.get("writer") or {}
    if by.get("host") == platform.node() and isinstance(by.get("pid"), int):
        return "was interrupted"
    where = ("by a process this aelab cannot follow" if by.get("host") == platform.node() else
             f"on another computer ({by['host']})" if by.get("host") else "by an aelab that did not say where")
    return f"did not finish here: it was saved mid-run {where}, and may still be going on there or have been stopped"


def saved_epoch(meta: dict) -> str:
    """Where an unfinished run's checkpoint is (status "training" or "interrupted"): "epoch 3 of 10"."""
    trained = [h for h in meta.get("history") or [] if isinstance(h, dict) and h.get("phase") == "train"]
    epochs = (meta.get("train_config") or {}).get("epochs")
    return f"epoch {trained[-1].get('epoch')}" + (f" of {epochs}" if epochs else "") if trained else "its first epoch"


def read_metadata(path: str | os.PathLike) -> dict:
    """Only the header: cheap enough to list a folder of checkpoints."""
    path = Path(path)
    with open(path, "rb") as f:
        _refuse_foreign(f.read(HEAD_BYTES), path.name)
        f.seek(0)
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path.name} is too short to be a checkpoint")
        (header_len,) = struct.unpack("<Q", head)
        if header_len > MAX_HEADER_BYTES:
            raise CheckpointError(f"{path.name}: header of {header_len:,} bytes is over the limit")
        rest = f.read(header_len)
    meta, _ = parse_header(head + rest, path.name)
    return meta


@dataclass
class CheckpointInfo:
    path: Path
    meta: dict

    @property
    def name(self) -> str:
        return self.path.name[: -len(SUFFIX)]


def list_checkpoints(folder: str | os.PathLike | None = None) -> tuple[list[CheckpointInfo], list[tuple[Path, str]]]:
    """Every readable checkpoint in the folder, newest first, and (path, reason) for each file that is broken."""
    folder = Path(folder) if folder else checkpoint_folder()
    good, broken = [], []
    if not folder.is_dir():
        return good, broken
    for path in sorted(folder.glob(f"*{SUFFIX}")):
        if path.name.startswith("."):
            continue
        try:
            good.append(CheckpointInfo(path, read_metadata(path)))
        except (CheckpointError, OSError) as err:
            broken.append((path, str(err)))
    return good, broken


NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\- ]{0,79}$")


def safe_name(name: str) -> str:
    """A user-given model name, checked so it cannot leave the checkpoint folder or hide as a dot file."""
    name = name.strip()
    if name.endswith(SUFFIX):
        name = name[: -len(SUFFIX)]
    if not NAME_PATTERN.match(name) or ".." in name:
        raise CheckpointError(f"{name!r} is not a valid model name: use letters a-z or A-Z, digits, spaces, '-', "
                              "'_' or '.' (at most 80, no '..', no '/')")
    return name


def path_for(name: str, folder: str | os.PathLike | None = None) -> Path:
    return (Path(folder) if folder else checkpoint_folder()) / f"{safe_name(name)}{SUFFIX}"


def refuse_case_twin(target: Path, keep: Path | None = None) -> None:
    """Refuse a new checkpoint whose name differs from an existing one's only in case ('MNIST-CONV-30' next to
    'mnist-conv-30'): two models people cannot tell apart, and one file on case-insensitive disks. `keep`: the
    file being renamed, which may change its own case."""
    if not target.parent.is_dir():
        return
    for other in target.parent.glob(f"*{SUFFIX}"):
        if other.name != target.name and other.name.lower() == target.name.lower() and other != keep:
            raise CheckpointError(f"a model named {other.name[: -len(SUFFIX)]!r} exists, which differs only in "
                                  "case: pick another name")


def install_upload(data: bytes, name: str, folder=None, overwrite: bool = False, filename: str | None = None) -> Path:
    """Validate an uploaded checkpoint fully, then write it under a safe name (refusing to overwrite unless asked).
    `filename`: the uploaded file's own name, for the messages (else `name`)."""
    target = path_for(name, folder)
    load_bytes(data, filename or name)
    refuse_case_twin(target)
    if target.exists() and not overwrite:
        raise CheckpointError(f"a model named {target.stem!r} already exists: choose to replace it, or pick another "
                              "name")
    target.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(target, data)


def rename_checkpoint(path: str | os.PathLike, new_name: str, overwrite: bool = False) -> Path:
    path = Path(path)
    target = path_for(new_name, path.parent)
    refuse_case_twin(target, keep=path)
    if target.exists() and not overwrite:
        raise CheckpointError(f"a model named {target.stem!r} already exists: pick another name")
    os.replace(path, target)
    if previous_path(path).exists():  # the model a retraining replaced goes with the name
        os.replace(previous_path(path), previous_path(target))
    return target


def delete_checkpoint(path: str | os.PathLike) -> None:
    Path(path).unlink(missing_ok=True)
    previous_path(path).unlink(missing_ok=True)


# --- The model a retraining replaces ----------------------------------------------------------------------------
# Training saves after every epoch, so that the pages can show a model as it trains: a retraining under an existing
# name replaces the old model at its first epoch. The old file is kept beside it (hidden, not listed) until the run
# finishes; if the run is stopped, dies or diverges, it can be put back. A run that finishes with a worse test figure
# than the model it replaced keeps that one too (better_previous), until it is restored or let go.

# The test figure two models of one dataset are compared by, in this order: (metrics key, unit); lower is better.
COMPARED_METRICS = (("test_nats", "nats"), ("sse_per_image", "SSE/image"))
WORSE_BY = 1.01  # what counts as worse: more than 1% higher (two seeds of one recipe differ by less)


def previous_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(f".{path.name}.previous")


def keep_previous(path: str | os.PathLike) -> str | None:
    """Before a retraining's first save over `path`: keep the model there (a hard link, else a copy; the file itself
    stays in place for the pages until the save replaces it). A model kept already stays: it is the last one a run
    finished, and `path` holds only what a run that did not finish left (stopped, diverged, interrupted). Returns
    which model is kept: "replaced" (the one at `path`), "earlier" (that older one), or None (none)."""
    path, kept = Path(path), previous_path(path)
    if kept.exists():
        return "earlier"
    if not path.is_file():
        return None
    try:
        os.link(path, kept)
    except OSError:  # a file system without hard links
        write_atomic(kept, path.read_bytes())
    return "replaced"


def kept_model(meta: dict, name: str = "model") -> str:
    """The model kept beside a checkpoint (whose metadata is `meta`) in words: the one its run replaced, or, when a
    model was kept already as that run began (the run before it was stopped, died or finished worse), that one."""
    if meta.get("kept_previous") == "earlier":
        return f"an earlier {name} (kept from before the run that this one replaced)"
    return f"the {name} this run replaced"


def forget_previous(path: str | os.PathLike) -> None:
    """The retraining finished (or the user keeps what it made): the model it replaced goes."""
    previous_path(path).unlink(missing_ok=True)


def better_previous(path: str | os.PathLike, metrics: dict, dataset: dict) -> dict | None:
    """Whether the model kept for `path` beats a finished retraining's test `metrics` (`dataset`: its "dataset"
    metadata; the same dataset, image shape and number of test images, else nothing is compared): {"metric", "unit",
    "previous", "this"} when its test figure is lower by more than 1%, or the new one is not a finite number; None
    otherwise."""
    kept = previous_path(path)
    if not kept.is_file():
        return None
    try:
        meta = read_metadata(kept)
    except CheckpointError:
        return None
    theirs, same = meta.get("metrics") or {}, meta.get("dataset") or {}
    if ((same.get("name"), same.get("input_shape"), theirs.get("test_images"))
            != (dataset.get("name"), dataset.get("input_shape"), metrics.get("test_images"))):
        return None  # another dataset, shape or test set (the offline sample's 1,000 test digits, say)
    for key, unit in COMPARED_METRICS:
        if key in theirs and key in metrics:
            before, after = float(theirs[key]), float(metrics[key])
            if math.isfinite(before) and not after <= before * WORSE_BY:
                return {"metric": key, "unit": unit, "previous": before, "this": after}
            return None
    return None


def finished_worse(worse: dict, meta: dict, name: str = "model") -> str:
    """What a finished retraining did, with its test figure against that of the model kept (better_previous's dict;
    `meta`: the retraining's metadata, which says which model that is), for the sentences of the CLI, the job card
    and the Models page."""
    this = f"{worse['this']:.2f}" if math.isfinite(worse["this"]) else "not a number"
    return (f"finished with a higher test error than {kept_model(meta, name)} ({this} against "
            f"{worse['previous']:.2f} {worse['unit']})")


def previous_text(meta: dict, name: str) -> str:
    """Why the model a run replaced is kept, for a checkpoint's metadata `meta` (the file named `name`)."""
    worse = meta.get("previous_better")
    if meta.get("status") == "finished" and worse:
        return f"This run {finished_worse(worse, meta, name)}, which is kept"
    if meta.get("kept_previous") == "earlier":
        return (f"The run that saved this model ({status_of(meta) or 'unknown'}) replaced the {name} a run before it "
                f"left; {kept_model(meta, name)} is kept")
    return f"The run that saved this model ({status_of(meta) or 'unknown'}) replaced an earlier {name}, which is kept"


def has_previous(path: str | os.PathLike) -> bool:
    return previous_path(path).is_file()


def restore_previous(path: str | os.PathLike) -> Path:
    """Put back the model a retraining replaced (whatever the run left at `path` is dropped)."""
    path, kept = Path(path), previous_path(path)
    if not kept.is_file():
        raise CheckpointError(f"no earlier model of {path.name} is kept")
    read_metadata(kept)  # an aelab checkpoint still
    os.replace(kept, path)
    return path
