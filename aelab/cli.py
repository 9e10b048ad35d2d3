"""python -m aelab list | train | eval | reconstruct | embed | sample | zoo

Each command is a thin layer over the same functions the app calls. Errors a user can cause print one line
(`error: ...`) on stderr and exit with status 2 (a training that diverged before saving anything: 1); nothing prints
a traceback for them.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import math
import mimetypes
import os
import re
import shlex
import sys
import typing
from pathlib import Path

from .errors import AelabError, CheckpointError, ConfigError, DataError

# Extensions of other kinds of file: an --out ending in one of them is refused rather than suffixed ("seven.jpg.png"),
# while a dot elsewhere in a name ("run.v2", "codes-lr0.001") stays part of the name.
OTHER_FILE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".svg", ".pdf", ".npz",
                       ".npy", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin", ".h5", ".hdf5", ".onnx", ".pb",
                       ".safetensors", ".json", ".jsonl", ".csv", ".txt", ".zip", ".gz", ".tar"}


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, like every other error here."""

    variant_options: dict[str, set[str]]  # train's variants -> their option strings (build_parser fills it)

    def error(self, message):
        self.exit(2, f"error: {message} (see: {self.prog} --help)\n")

    def parse_args(self, args=None, namespace=None):
        """As argparse, but an unknown option names the command whose help lists the right ones, and for `train`
        the variants that have it (`train mlp --beta 2`: --beta is an option of vae and cvae)."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            command, variant = getattr(parsed, "command", None), getattr(parsed, "variant", None)
            flags = [e.split("=")[0] for e in extras if e.startswith("--")]
            if command == "train" and variant and flags:
                owners = [name for name, options in self.variant_options.items() if flags[0] in options]
                where = f": it is an option of {', '.join(owners)}" if owners else ""
                message = f"{variant} has no option {flags[0]}{where} (see: {self.prog} train {variant} --help)"
            else:
                message = (f"unrecognized arguments: {' '.join(extras)} "
                           f"(see: {self.prog}{' ' + command if command else ''} --help)")
            self.exit(2, f"error: {message}\n")
        return parsed


def _int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers like 1000,500,250, not {text!r}")


def in_flag_words(text: str, names) -> str:
    """A message or help of the core, which names options as Python does ("greedy_epochs does not apply", "device:
    no CUDA GPU", "needs code_activation sigmoid", "when noise is gaussian"), with the command line's flags for
    `names` (the options' names, underscored) instead: "--greedy-epochs does not apply"."""
    flag = lambda name: "--" + name.replace("_", "-")  # noqa: E731
    start = re.match(r"([a-z][a-z0-9_]*)(?= must | needs |: | does not apply)", text)
    if start and start.group(1) in names:
        text = flag(start.group(1)) + text[start.end():]
    # Not inside a path or a quoted field ("runs/batch_size/", "'dataset.without_class'").
    text = re.sub(r"(?<![\w\-/.'\\])([a-z][a-z0-9]*(?:_[a-z0-9]+)+)(?![\w\-/'\\]|\.\w)",
                  lambda m: flag(m.group(1)) if m.group(1) in names else m.group(0), text)
    return re.sub(r"(?<=when )([a-z][a-z0-9_]*)(?= is )",
                  lambda m: flag(m.group(1)) if m.group(1) in names else m.group(0), text)


def option_names(parser: argparse.ArgumentParser) -> set[str]:
    """Every long option of `parser` and its subcommands, underscored ("greedy_epochs")."""
    names = set()
    for action in parser._actions:
        names |= {o[2:].replace("-", "_") for o in action.option_strings if o.startswith("--")}
        for sub in (action.choices or {}).values() if isinstance(action, argparse._SubParsersAction) else ():
            names |= option_names(sub)
    return names - {"help"}


def add_dataclass_options(parser: argparse.ArgumentParser, cls, skip=()) -> None:
    """One --option per dataclass field, typed from its annotation, with the field's help and choices."""
    from .models.base import field_default

    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)} - set(skip)
    for f in dataclasses.fields(cls):
        if f.name in skip or f.metadata.get("hidden"):
            continue
        flag = "--" + f.name.replace("_", "-")
        default = field_default(f)
        # argparse formats help with %: a literal "1%" in a field's help must reach it as "1%%".
        kind = hints[f.name]
        help_text = f"{in_flag_words(f.metadata.get('help', ''), names)} (default: {default})".replace("%", "%%")
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif typing.get_origin(kind) is list:
            parser.add_argument(flag, type=_int_list, default=None, help=help_text)
        else:
            parser.add_argument(flag, type=kind, default=None, choices=f.metadata.get("choices"), help=help_text)


def picked(args: argparse.Namespace, cls) -> dict:
    """The options of `cls` that the user actually gave."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)
            if getattr(args, f.name, None) is not None}


DATA_ROOT_HELP = "folder holding mnist/ and fashion-mnist/ idx files (or AELAB_DATA)"
CHECKPOINT_HELP = "a .safetensors file (the suffix may be left out), or the name of a model in the checkpoint folder"


def build_parser() -> Parser:
    from .models import REGISTRY
    from .train import TrainConfig

    parser = Parser(prog="python -m aelab", description="aelab: train, inspect and use autoencoders")
    parser.variant_options = {}
    parser.add_argument("--data-root", help=DATA_ROOT_HELP)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    commands.add_parser("list", help="list the model variants")

    train = commands.add_parser("train", help="train a model and save a checkpoint")
    variants = train.add_subparsers(dest="variant", required=True, parser_class=Parser, metavar="VARIANT")
    for name, cls in REGISTRY.items():
        sub = variants.add_parser(name, help=cls.description, description=cls.description)
        sub.add_argument("--dataset", default="mnist", help="mnist, fashion-mnist, kmnist, or a folder/zip of images")
        sub.add_argument("--image-size", type=int, default=None,
                         help="size for image-folder datasets (default: the size the app opens it at: as added there, "
                              "or as last trained on, else its images' own, at most 64)")
        sub.add_argument("--image-channels", type=int, default=None, choices=(1, 3),
                         help="1 = grayscale, 3 = RGB (folders; default as for --image-size, else 3 for images in "
                              "colour, 1 for gray ones)")
        sub.add_argument("--without-class", metavar="CLASS",
                         help="drop this class (a number or a name) from training (anomaly models)")
        sub.add_argument("--only-class", metavar="CLASS",
                         help="train on this class (a number or a name) only (one-class anomaly models)")
        sub.add_argument("--out", required=True,
                         help="checkpoint path (.safetensors is added; an existing aelab checkpoint there is replaced, "
                              "and kept until the run ends well: see `restore`; any other file is refused)")
        sub.add_argument("--float16", action="store_true", help="store weights as float16 (half the size)")
        sub.add_argument("--events", help="append progress events as JSON lines to this file (an epoch's preview "
                                          "images: {\"png\": base64 PNG of them stacked, \"shape\": [N, C, H, W]})")
        sub.add_argument("--stop-file", help="stop cleanly (keeping the weights so far) once this file exists")
        sub.add_argument("--quiet", action="store_true", help="no progress bar (each epoch's line and the notes are "
                                                              "still printed)")
        add_dataclass_options(sub, cls.config_class)
        add_dataclass_options(sub, TrainConfig)
        parser.variant_options[name] = {flag for action in sub._actions for flag in action.option_strings}

    ev = commands.add_parser("eval", help="test-set metrics of a checkpoint")
    ev.add_argument("checkpoint", help=CHECKPOINT_HELP)
    ev.add_argument("--dataset", help="default: the dataset the model was trained on")
    ev.add_argument("--json", action="store_true", help="print one JSON object")

    rec = commands.add_parser("reconstruct", help="prepare images as the model's were (framed like MNIST for the "
                              "built-in sets, resized for your own) and reconstruct them")
    rec.add_argument("checkpoint", help=CHECKPOINT_HELP)
    rec.add_argument("images", nargs="+")
    rec.add_argument("--out", required=True, help="folder for NAME.input.png and NAME.recon.png (made when the first "
                                                  "image is written)")
    rec.add_argument("--label", help="conditional models (cvae): reconstruct every image as this class, by number or "
                                     "name (default: the class that explains each image best, printed)")

    emb = commands.add_parser("embed", help="codes and labels of a dataset split (and a 2-D map of them; for your "
                              "own images each code's file), as .npz")
    emb.add_argument("checkpoint", help=CHECKPOINT_HELP)
    emb.add_argument("--dataset")
    emb.add_argument("--split", default="test", choices=("train", "test", "all"),
                     help="all: train then test (the .npz then has a `split` array: which split each code is from)")
    emb.add_argument("--map", default="none", choices=("none", "pca", "umap"),
                     help="also store 2-D map coordinates of the codes as `coords` (cached like the app's maps)")
    emb.add_argument("--reproducible", action="store_true",
                     help="UMAP maps of more than 20,000 codes: the seeded one-thread layout (slower) instead of the "
                          "parallel one, so the same command gives the same map")
    emb.add_argument("--out", required=True, help="the .npz file to write (.npz is added)")

    smp = commands.add_parser("sample", help="a grid of samples from a generative model, or from any model's codes "
                                             "(--mixture)")
    smp.add_argument("checkpoint", help=CHECKPOINT_HELP)
    smp.add_argument("-n", type=int, default=64, help="how many samples, 1 to 10000 (default: 64)")
    smp.add_argument("--temperature", type=float, default=1.0,
                     help="scale of the prior's noise, 0 to 100: below 1 gives typical images, above 1 odd ones "
                          "(default: 1.0)")
    smp.add_argument("--seed", type=int, default=0, help="random seed, 0 to 2^63-1; the same seed gives the same "
                                                         "picture (default: 0)")
    smp.add_argument("--label",
                     help="conditional models (cvae): every sample of this class, by number (0 to classes-1) or name "
                          "(default: a grid with one class per column)")
    smp.add_argument("--mixture", type=int, metavar="K",
                     help="draw the codes from a mixture of K Gaussians (1 to 100) fitted to the model's codes of its "
                          "training images instead of a prior: any model that decodes samples so (an autoencoder, "
                          "PCA; a VAE where its codes lie); not conditional models")
    smp.add_argument("--out", required=True, help="the PNG to write (.png is added)")

    ano = commands.add_parser("anomalies", help="rank images by reconstruction error, the most anomalous first",
                              description="Rank a dataset's images by their reconstruction error, the highest (the "
                                          "most anomalous) first, as the app's Anomalies page does; on a labelled "
                                          "dataset also how well the error tells one class from the others.")
    ano.add_argument("checkpoint", help=CHECKPOINT_HELP)
    ano.add_argument("--dataset", help="default: the dataset the model was trained on")
    ano.add_argument("--split", default="test", choices=("test", "all"),
                     help="all: the training images too, to find the odd ones out of one's own images (default: test)")
    ano.add_argument("--class", dest="anomaly_class",
                     help="labelled datasets: the class that counts as the anomaly, by number or name, for AUROC, "
                          "precision and recall (default: the class the model was trained without, else 0)")
    ano.add_argument("--top", type=int, default=20, help="how many images to list, 0 or more (default: 20)")
    ano.add_argument("--threshold", type=float,
                     help="flag images whose error is at least this, for precision and recall (default: where as "
                          "many are flagged as there are anomalies)")
    ano.add_argument("--show", default="highest", choices=("highest", "false-alarms", "missed"),
                     help="the images listed: the highest errors first; the normal images flagged at the threshold, "
                          "highest first; or the anomalies under it, lowest first (default: highest)")
    ano.add_argument("--csv", help="also write every image's rank, split, index, file, class and error to this CSV")

    res = commands.add_parser("restore", help="put back the model a retraining replaced, after the run was "
                                              "stopped, died, diverged or finished with a higher test error")
    res.add_argument("checkpoint", help=CHECKPOINT_HELP)
    res.add_argument("--drop", action="store_true", help="keep the new model instead: the earlier one is deleted")

    zoo = commands.add_parser("zoo", help="(re)train the pretrained models shipped in checkpoints/")
    zoo.add_argument("--only", nargs="*", help="names of zoo entries to train (default: all)")
    zoo.add_argument("--out-dir", help="default: checkpoints/")
    zoo.add_argument("--list", action="store_true", help="list the zoo entries and their commands")
    zoo.add_argument("--prepare", action="store_true",
                     help="compute the pages' results for the shipped checkpoints into aelab/prepared/ (full data)")
    # --data-root is also taken after the command (`eval CHECKPOINT --data-root PATH`), where people put options;
    # given there it wins over one given before the command.
    for sub in [*commands.choices.values(), *variants.choices.values()]:
        if sub is not train:
            sub.add_argument("--data-root", default=argparse.SUPPRESS, help=DATA_ROOT_HELP)
    return parser


def cmd_list(args) -> int:
    from .models import REGISTRY

    width = max(map(len, REGISTRY))
    for name, cls in REGISTRY.items():
        print(f"{name:<{width}}  {cls.description}")
    return 0


def _shape(shape) -> str:
    channels, height, width = shape
    return f"{height}x{width} {'RGB' if channels == 3 else 'grayscale' if channels == 1 else f'{channels}-channel'}"


def _check_data_root(text: str | None) -> None:
    """An explicit --data-root must be a folder: a typo would otherwise fall through to the next source (the 5,000
    digit offline sample) and train or score on it without a word."""
    if text is None:
        return
    if not text.strip():
        raise ConfigError("--data-root needs a folder (the one holding mnist/, fashion-mnist/, kmnist/)")
    root = Path(text.strip()).expanduser()
    if not root.exists():
        raise ConfigError(f"--data-root {text}: no such folder")
    if not root.is_dir():
        raise ConfigError(f"--data-root {text} is a file, not a folder")


def _unused_root(args, dataset) -> str:
    """Why a data root in effect gave nothing for a built-in dataset, for the `data:` line: AELAB_DATA is a standing
    default, so one that names no folder (or a folder without this dataset) is not refused, but said."""
    from .data import BUILTIN, data_root

    root = data_root(args.data_root)
    if root is None or dataset.name not in BUILTIN or "(data root)" in dataset.source:
        return ""
    where = f"--data-root {root}" if args.data_root else f"AELAB_DATA={root}"
    return f" ({where}: {f'no {dataset.name}/ with its four idx files' if root.is_dir() else 'no such folder'})"


def _class_list(names: list[str], most: int = 4) -> str:
    """'0, 1, 2, 3 ... (10 classes)', 'a, b, c'."""
    shown = ", ".join(str(n) for n in names[:most])
    return f"{shown} ... ({len(names)} classes)" if len(names) > most else shown or "none"


def dataset_for(args, name: str | None, meta: dict | None = None, model=None, labels_given: bool = True):
    """The dataset named (else the one in a checkpoint's metadata, else mnist), at the shape the metadata gives;
    with `model`, refused in one line unless its images have the shape the model takes, and, when the command gives
    a conditional model each image's label (`labels_given`: eval, embed), unless they are of the classes it learnt."""
    from .data import BUILTIN, load_dataset, missing_set

    if name is not None and not name.strip():  # --dataset '' is a mistake, not "the model's own dataset"
        raise ConfigError(f"--dataset needs a name ({', '.join(BUILTIN)}) or a folder/zip of images")
    dataset_meta, given = (meta or {}).get("dataset", {}), name is not None
    name = name or dataset_meta.get("name") or "mnist"
    shape = dataset_meta.get("input_shape") or (None, None, None)  # None: as the image set was added, else 28x28x1
    try:
        dataset = load_dataset(name, args.data_root, image_size=shape[-1], channels=shape[0])
    except DataError as err:
        if meta and not given and missing_set({"name": name}):
            raise DataError(f"{err}, where this model's images were: it was moved or deleted; give --dataset the "
                            "folder or zip where they are now") from None
        raise
    if model is not None and tuple(dataset.input_shape) != tuple(model.input_shape):
        raise ConfigError(f"the model takes {_shape(model.input_shape)} images, but {dataset.label} has "
                          f"{_shape(dataset.input_shape)} ones")
    own = list(dataset_meta.get("class_names") or [])
    if labels_given and model is not None and model.conditional and own and list(dataset.class_names) != own:
        # Its codes and reconstructions are given each image's label: another set's labels would mean other classes
        # to it (and one past its own would be clamped to its last class).
        raise ConfigError(f"a conditional model is given each image's class, and this one learnt other classes "
                          f"({_class_list(own)}) than {dataset.label} has ({_class_list(dataset.class_names)}): give "
                          f"--dataset its own images")
    print(f"data: {dataset.name} from {dataset.source}{_unused_root(args, dataset)}", file=sys.stderr)
    if dataset.unreadable:  # which files, and why: "1 unreadable skipped" alone sent people through the zip
        from .data import unreadable_text

        print(f"note:{unreadable_text(dataset)}", file=sys.stderr)
    return dataset


def _own_shape(args) -> str:
    """A folder or zip of one's own never opened before (not added in the app, not trained on): the size and colour
    not given are its images' own (data.look_at_image_set), as the app offers. A folder of 64 px colour photos was
    trained at 28x28 grayscale without a word. Returns a note saying so, when that is not 28x28 grayscale."""
    from .data import SUGGESTED_MAX, look_at_image_set, stored_shape

    path = Path(args.dataset).expanduser()
    if (args.image_size is not None and args.image_channels is not None) or not path.exists() \
            or stored_shape(path, default=None) is not None:
        return ""
    look = look_at_image_set(path)
    if look is None:
        return ""  # loading it says what is wrong
    chosen = []
    if args.image_size is None:
        args.image_size = look.image_size
        chosen.append("--image-size")
    if args.image_channels is None:
        args.image_channels = look.channels
        chosen.append("--image-channels")
    capped = f"at most {SUGGESTED_MAX} px unless --image-size says more; " if look.side > SUGGESTED_MAX and \
        "--image-size" in chosen else ""
    if (args.image_channels, args.image_size) == (1, 28):
        return ""
    read_at = _shape((args.image_channels, args.image_size, args.image_size))
    return (f"the images of {path.name} are {look.note.replace('×', 'x')}: read at {read_at} ({capped}give "
            f"{' or '.join(chosen)} for another)")


def _check_train_args(args, cls, model_options: dict, train_options: dict, train_config) -> str:
    """Everything that can be refused before the data is loaded: options, options that do not apply, the device,
    the dataset's name and shape, the classes to leave out (of a built-in dataset: an image set's classes are known
    once it is read), the model's size where the images' shape is known. Returns _own_shape's note ("" if none)."""
    from .data import BUILTIN, MAX_SIZE, MIN_SIZE, stored_shape
    from .train import check_training, pick_device, refuse_inapplicable

    if not args.dataset.strip():
        raise ConfigError(f"--dataset needs a name ({', '.join(BUILTIN)}) or a folder/zip of images")
    refuse_inapplicable(cls, model_options, train_options)
    builtin = args.dataset in BUILTIN
    if builtin and (args.image_size is not None or args.image_channels is not None):
        raise ConfigError(f"{args.dataset} has 28x28 grayscale images: --image-size and --image-channels are for "
                          "your own image sets")
    if args.image_size is not None and not MIN_SIZE <= args.image_size <= MAX_SIZE:
        raise ConfigError(f"--image-size must be between {MIN_SIZE} and {MAX_SIZE}, not {args.image_size}")
    if args.without_class is not None and args.only_class is not None:
        raise ConfigError("choose at most one of --without-class and --only-class")
    if builtin:
        names = list(BUILTIN[args.dataset][0])
        classes = len(names)
        _class_choices(args, names, args.dataset)
        check_training(cls, model_options, train_config, (1, 28, 28), classes)
        note = ""
    else:  # the shape the images will have (as given, else as the set was added); train_and_save checks the rest
        note = _own_shape(args)
        stored_channels, stored_size = stored_shape(args.dataset)
        channels = stored_channels if args.image_channels is None else args.image_channels
        size = stored_size if args.image_size is None else args.image_size
        # One class: the fewest a set can have, so the size counted is a lower bound; the model's greedy stages and
        # its batch normalisation do not depend on it.
        check_training(cls, model_options, train_config, (channels, size, size), 1)
    pick_device(train_config.device)  # a GPU asked for by name must exist before minutes go into loading data
    return note


def _out_name(name: str, suffix: str, what: str, option: str = "--out") -> str:
    """An output's name with its extension checked: the right one in any case is written in lower case (np.savez,
    writable_path and the app's list of checkpoints match it exactly, and would add a second one); another kind of
    file's extension is refused rather than suffixed ("seven.jpg.png")."""
    text = name.strip()
    found = "" if text.endswith(("/", os.sep)) else Path(text).suffix  # Path drops a trailing slash
    if found.lower() == suffix:
        return text[: -len(found)] + suffix
    if found.lower() in OTHER_FILE_SUFFIXES or mimetypes.guess_type("x" + found.lower())[0]:  # README.md, notes.odt
        raise ConfigError(f"{what}: give {option} a {suffix} name (or none: {suffix} is added), not {Path(text).name}")
    return name


@contextlib.contextmanager
def _no_new_empty_folders(folder: Path):
    """Remove, on the way out, the folders up to `folder` that this command made and left empty: an output's folder
    is made while checking it can be written (writable_path), before the data are known to be there, and a run that
    is refused later, or writes nothing, leaves nothing behind."""
    new = []
    for path in (folder, *folder.parents):
        if os.path.lexists(path):
            break
        new.append(path)
    try:
        yield
    finally:
        for path in new:  # deepest first; one that holds anything now stays, and so do those above it
            try:
                path.rmdir()
            except OSError:
                break


def _check_name_in_app_folder(out: Path) -> None:
    """A model written into the folder the app lists follows the app's rules for a model's name: the app hides a dot
    file, and refuses names it cannot show or that differ from another's only in case (one file on some disks)."""
    from .checkpoints import checkpoint_folder, refuse_case_twin, safe_name

    if out.parent.resolve() != checkpoint_folder().resolve():
        return
    try:
        safe_name(out.name)
        refuse_case_twin(out)
    except CheckpointError as err:
        raise CheckpointError(f"--out {out.name}: {err} (in {out.parent}, the app's model folder)") from None


def _class_choices(args, names: list[str], dataset_name: str) -> None:
    """--without-class and --only-class by name (any case: "sandal", an image set's folder name) or number, turned
    into the class numbers training takes; a class the set does not have is refused with what can be given."""
    from .data import dataset_label

    for flag in ("without_class", "only_class"):
        given = getattr(args, flag)
        if given is not None and not isinstance(given, int):
            setattr(args, flag, _class_or_refuse(f"--{flag.replace('_', '-')}", str(given), names,
                                                 dataset_label(dataset_name)))


def _class_or_refuse(flag: str, given: str, names: list[str], label: str) -> int:
    """A class given on the command line as a class of these names (by name, any case, else by number), or one
    line that says what can be given: "--class star is not a class of shapes (your folder) (0..2, or a name: ...)"."""
    number = _class_index(given, names, len(names))
    if number is None:
        said = _class_names_said(names)
        words = f" (0..{len(names) - 1}{', or a name: ' + said if said else ''})" if names else ": it has no labels"
        raise ConfigError(f"{flag} {given.strip()} is not a class of {label}{words}")
    return number


def _refuse_foreign_out(out: Path) -> None:
    """Retraining replaces the aelab checkpoint at --out (saves are atomic, so it survives a failed run); any other
    file there (notes, another library's weights) is refused before anything is loaded or trained."""
    if os.path.lexists(out) and not _is_checkpoint(out):
        raise ConfigError(f"{out} exists and is not an aelab checkpoint: pick another --out")


def cmd_train(args) -> int:
    from .checkpoints import SUFFIX, has_previous, writable_path
    from .models import get_variant
    from .progress import StopFlag, TrainingProgress
    from .train import TrainConfig, steps_note, train_and_save

    cls = get_variant(args.variant)
    model_options = picked(args, cls.config_class)
    train_options = picked(args, TrainConfig)
    train_config = TrainConfig(**train_options)  # ("lr must be ..." reads "--lr must be ...": main, in_flag_words)
    shape_note = _check_train_args(args, cls, model_options, train_options, train_config)
    name = _out_name(args.out, SUFFIX, f"checkpoints are {SUFFIX} files")
    with _no_new_empty_folders(Path(os.path.expanduser(name.strip())).parent):
        out = writable_path(name)  # a path that cannot be written is refused now, not after the training
        _refuse_foreign_out(out)
        _check_name_in_app_folder(out)
        events = None if args.events is None else _events_file(args.events)
        _check_stop_file(args.stop_file)
        dataset = dataset_for(args, args.dataset, {"dataset": {"input_shape": [args.image_channels, None,
                                                                           args.image_size]}})
        _class_choices(args, dataset.class_names, dataset.name)  # (an image set's classes are known from here)
        for note in (shape_note,
                     steps_note(args.variant, dataset, train_config, args.without_class, args.only_class)):
            if note:
                print(f"note: {note}", file=sys.stderr)
        command = "python -m aelab " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        stop = StopFlag(args.stop_file)
        before = out.stat().st_mtime_ns if out.exists() else None
        try:
            with TrainingProgress(show_bar=not args.quiet, events_path=events) as progress:
                result, path = train_and_save(
                    args.variant, model_options, dataset, train_config, out,
                    without_class=args.without_class, only_class=args.only_class, float16=args.float16,
                    command=command, callbacks=[progress, stop.on_event], should_stop=stop)
        except KeyboardInterrupt:  # Ctrl-C twice: out holds the last completed epoch, if any; say where the rest is
            if has_previous(out) and out.exists() and out.stat().st_mtime_ns != before:  # (this run saved there)
                from .checkpoints import kept_model, read_metadata

                where = shlex.quote(str(out))
                print(f"{out} holds the run's last completed epoch; {kept_model(read_metadata(out))} is kept: "
                      f"`python -m aelab restore {where}` puts it back", file=sys.stderr)
            raise
    if path is None:
        kept = f"; {out} was left as it was" if out.exists() else ""
        if result.status != "stopped":  # diverged or out of memory before one epoch was trained: a failure
            print(f"error: {result.status}, nothing saved: {result.message}{kept}", file=sys.stderr)
            return 1
        print(f"{result.status}, nothing saved: {result.message}{kept}")
    else:
        print(f"{result.status}: {path}" + (f" ({result.message})" if result.message else ""))
        _open_in_app(dataset)
        _outside_the_app(path)
        if has_previous(path):
            from .checkpoints import finished_worse, kept_model, read_metadata

            meta = read_metadata(path)
            why = (f"it {finished_worse(meta['previous_better'], meta)}, which" if meta.get("previous_better") else
                   kept_model(meta))
            where = shlex.quote(str(path))
            print(f"{why} is kept: `python -m aelab restore {where}` puts it back, "
                  f"`python -m aelab restore --drop {where}` deletes it")
    if stop.interrupted:
        return 130  # Ctrl-C, as a shell expects it; the weights so far are saved all the same
    return 0 if result.status in ("finished", "stopped") else 1


def _outside_the_app(path: Path) -> None:
    """A model saved outside the folder the app lists (`--out NAME` is a path: it lands in the current folder) is said
    to be so, with where the app looks: a bare name wrote into the working folder, and the app never listed it, while
    `eval NAME` looks a bare name up in that folder."""
    from .checkpoints import checkpoint_folder

    folder = checkpoint_folder()
    if Path(path).resolve().parent != folder.resolve():
        print(f"note: the app lists the models in {folder} (AELAB_CHECKPOINTS), not this one: to see it there, move "
              f"it into that folder, or give --out {shlex.quote(str(folder / Path(path).stem))}", file=sys.stderr)


def _open_in_app(dataset) -> None:
    """A folder or zip of one's own trained on at another size than the app opens it at: the app opens it at this
    one from now on (data.open_for), so that its pages show the new model; said in a note. A set added in the app
    keeps the size it was added at: the note says that the app cannot show the model."""
    from .data import added_in_app, open_for, opened_shape

    shape, name = tuple(dataset.input_shape), dataset.name
    if open_for({"name": name, "input_shape": list(shape)}):
        print(f"note: the app opens {dataset.label} at {_shape(shape)} from now on, the size of this model; its "
              "sidebar can open it at another size again", file=sys.stderr)
    elif added_in_app(name) and opened_shape(name) != shape:
        print(f"note: {dataset.label} was added in the app at {_shape(opened_shape(name))}, so the app's pages do not "
              f"show this {_shape(shape)} model", file=sys.stderr)


def _check_stop_file(name: str | None) -> None:
    """--stop-file: a name, of a file not there before this run began (a stale one would stop the run at its first
    step). One made since is a stop asked for already: the app's Stop pressed while its job was still starting."""
    from .progress import process_started

    if name is None:
        return
    if not name.strip():
        raise ConfigError("--stop-file needs a file name")
    try:
        made = os.lstat(os.path.expanduser(name)).st_mtime
    except FileNotFoundError:
        return
    started = process_started()
    if started is not None and made < started:  # (where the start is unknown, a file there may be a stop asked for)
        raise ConfigError(f"--stop-file {name} exists already, so the run would stop at its first step: remove it "
                          "or name another file")


def _events_file(name: str) -> Path:
    """--events: a JSON-lines log, appended to; a file there already must be one (not a picture or notes)."""
    path = _output_file(name, "--events")
    if path.is_file() and path.stat().st_size:
        with open(path, "rb") as f:
            first = f.readline(1 << 20)
        try:
            if not isinstance(json.loads(first), dict):
                raise ValueError
        except ValueError:
            raise ConfigError(f"--events {path} exists and is not an events log (JSON lines): give another file "
                              "name") from None
    return path


def _output_file(name: str, option: str, suffix: str | None = None, refuse: tuple[Path, ...] = (),
                 what: str | None = None) -> Path:
    """An output file's path, as checkpoints.writable_path makes and checks it, refused in one line when it is also
    a checkpoint's name or one of `refuse` (the checkpoint being read), or ends with another kind of file's extension
    than `suffix` (`what`: the command's output, in that message)."""
    from .checkpoints import writable_path

    if Path(name.strip()).suffix.lower() in (".safetensors", ".json"):
        raise ConfigError(f"{option} {Path(name.strip()).name} is a checkpoint's name: give a {suffix or 'file'} name")
    if suffix:
        name = _out_name(name, suffix, what or f"{option} is a {suffix} file", option)
    path = writable_path(name, suffix, what=f"the {option} file")
    if any(path.resolve() == Path(other).expanduser().resolve() for other in refuse):
        raise ConfigError(f"{option} {path} is the checkpoint itself: give another file name")
    return path


def _write_output(path: Path, content) -> None:
    """An output of a command written whole or not at all (files.write_atomic), its failure told in one line that
    names it."""
    from .files import why_not_written, write_atomic

    try:
        write_atomic(path, content)
    except OSError as err:
        raise ConfigError(why_not_written(path, err)) from None


def _checkpoint_path(name: str) -> Path:
    """The file a command's CHECKPOINT names: a path as given, else with .safetensors added (as `train --out` adds
    it), else a model of that name in the checkpoint folder (`eval mnist-conv-30`)."""
    from .checkpoints import SUFFIX, checkpoint_folder

    path = Path(name).expanduser()
    candidates = [path, path.with_name(path.name + SUFFIX)] if path.name else [path]
    if path.name and path.parent == Path("."):
        candidates += [checkpoint_folder() / path.name, checkpoint_folder() / (path.name + SUFFIX)]
    # A checkpoint first, however it is named: a folder or an events log named like one (`--out seven` beside
    # seven.safetensors) does not hide it; when none is found, the first thing there, to be named for what it is.
    # Then a .safetensors file that does not read (to be told what is wrong with it), then anything there.
    return next((c for c in candidates if _is_checkpoint(c)),
                next((c for c in candidates if c.is_file() and c.name.endswith(SUFFIX)),
                     next((c for c in candidates if c.exists()), path)))


def _is_checkpoint(path: Path) -> bool:
    from .checkpoints import read_metadata

    if not path.is_file():
        return False
    try:
        read_metadata(path)
    except (AelabError, OSError):
        return False
    return True


def _load(name: str, device="cpu"):
    """load_checkpoint of _checkpoint_path(name), with a folder named as a folder (not "no such checkpoint") and
    what it holds."""
    from .checkpoints import SUFFIX, load_checkpoint, saved_epoch, status_of, unfinished_how

    if not name.strip():
        raise CheckpointError(f"the checkpoint's name is empty: give a {SUFFIX} file or a model's name")
    path = _checkpoint_path(name)
    if path.is_dir():
        inside = sorted(path.glob(f"*{SUFFIX}"))
        hint = f" (it holds {len(inside)}, e.g. {inside[0]})" if inside else ""
        raise CheckpointError(f"{name} is a folder, not a checkpoint: give a {SUFFIX} file{hint}")
    model, meta = load_checkpoint(path, device=device)
    status = status_of(meta)
    if status in ("training", "interrupted"):  # a run's last saved epoch, not what it was to end with
        how = "is still going" if status == "training" else unfinished_how(meta)
        print(f"note: {path.name} is not a finished model: its training {how}, and this is {saved_epoch(meta)}",
              file=sys.stderr)
    return model, meta


def _check_label(model, label: str | None, meta: dict) -> int | None:
    """--label: a class of a conditional model, by name (any case: "ankle boot"; one's own set's folder "1" is its
    class named 1, whatever its number) or else by number; refused in one line with what can be given."""
    if label is None:
        return None
    if not model.conditional:
        raise ConfigError(f"--label picks the class of a conditional model (cvae): this {model.variant} model takes "
                          "no class")
    classes = model.config.num_classes
    names = list((meta.get("dataset") or {}).get("class_names") or [])
    k = _class_index(label, names, classes)
    if k is None:
        named = f" or a name: {_class_names_said(names)}" if _class_names_said(names) else ""
        raise ConfigError(f"--label {label.strip()} is not a class of this model: give a number 0..{classes - 1}"
                          f"{named}")
    return k


def _class_index(text: str, names: list[str], classes: int) -> int | None:
    """A class given on the command line (--label, --class): by name, in any case ("ankle boot"; one's own set's
    folder "1" is its class named 1, whatever its number), else by number; None when it is neither."""
    given, text = text, text.strip()
    by_name = [k for k, name in enumerate(names) if name == given] or \
        [k for k, name in enumerate(names) if name.strip().casefold() == text.casefold()]
    if by_name:  # (MNIST's names are its numbers: "3" is class 3 either way)
        return by_name[0]
    try:
        k = int(text)
    except ValueError:
        return None
    return k if 0 <= k < classes else None


def _class_names_said(names: list[str]) -> str:
    """The names a class can be given by, for a refusal: "" when they are only its numbers (MNIST's)."""
    if names == [str(i) for i in range(len(names))]:
        return ""
    return ", ".join(names[:12]) + (", …" if len(names) > 12 else "")


def _class_text(meta: dict, k: int) -> str:
    """A class as people read it: its number, and its name where that says more (Fashion-MNIST's "3 (Dress)")."""
    from .data import class_text

    return class_text((meta.get("dataset") or {}).get("class_names") or [], k, "()")


SEEN_NOTE = ("note: this model was trained on the full MNIST, whose training set holds every image of the offline "
             "sample: these are training scores, not test scores")


def cmd_eval(args) -> int:
    from .metrics import evaluate, seen_in_training
    from .train import pick_device

    model, meta = _load(args.checkpoint, device=pick_device())
    dataset = dataset_for(args, args.dataset, meta, model)
    if seen_in_training(meta, dataset):
        print(SEEN_NOTE, file=sys.stderr)
    report = evaluate(model, dataset)
    if args.json:  # strict JSON: a value that is not a finite number (a broken model's error) is null
        finite = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in report.items()}
        print(json.dumps(finite, allow_nan=False))
    else:
        for key, value in report.items():
            print(f"{key:<16} {value:.4f}" if isinstance(value, float) else f"{key:<16} {value}")
    return 0


def _check_picture_folder(out: Path) -> None:
    """--out of reconstruct: a folder, or one that can be made (it is made only when the first picture is)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file: give a folder for the pictures")
    existing = next(path for path in (out, *out.parents) if path.exists())
    if not existing.is_dir():
        raise ConfigError(f"--out {out}: {existing} is a file, so no folder can be made there")
    if not os.access(existing, os.W_OK | os.X_OK):
        read_only = hasattr(os, "statvfs") and os.statvfs(existing).f_flag & os.ST_RDONLY
        raise ConfigError(f"cannot write the pictures in {existing}: "
                          f"{'read-only file system' if read_only else 'permission denied'}")


def _output_stems(names: list[str]) -> list[str]:
    """The start of each input's output names, one per input: its stem (a.png -> a); inputs of one stem (a.png,
    a.jpg) keep their suffix; of one file name from different folders (d1/a.png, d2/a.png), their folder's name too
    (d1-a.png), then a number where even that repeats. The same file named twice is written once. Only files that
    are there count: a missing d1/a.png (reported, not written) leaves d2/a.png its plain "a"."""
    paths = [Path(name).expanduser() for name in names]
    there = [p for p in paths if p.is_file()]

    def unique(key):
        keys = [key(p) for p in there]
        return [key(p) not in keys or keys.count(key(p)) == 1 or
                len({q.resolve() for q in there if key(q) == key(p)}) == 1 for p in paths]

    by_stem, by_name = unique(lambda p: p.stem), unique(lambda p: p.name)
    stems = [p.stem if s else p.name if n else f"{p.resolve().parent.name}-{p.name}"
             for p, s, n in zip(paths, by_stem, by_name)]
    seen: dict[str, Path] = {}
    for i, (stem, path) in enumerate(zip(stems, paths)):
        if path not in there:
            continue  # (not written: takes no name from the others)
        candidate, k = stem, 1
        while candidate in seen and seen[candidate] != path.resolve():
            k += 1
            candidate = f"{stem}-{k}"
        seen[candidate], stems[i] = path.resolve(), candidate
    return stems


def cmd_reconstruct(args) -> int:
    import torch

    from .errors import ImageError
    from .images import FRAMING, open_and_prepare, save_png

    model, meta = _load(args.checkpoint)
    label = _check_label(model, args.label, meta)
    # Files are framed as the model's dataset framed its images; one's own image set's were only resized (None).
    framing = FRAMING.get(meta.get("dataset", {}).get("name", "mnist"))
    out = Path(args.out).expanduser()
    _check_picture_folder(out)
    stems = _output_stems(args.images)
    # An output that is one of the images given would be written over before it is read (x.png and x.input.png).
    given = [Path(name).expanduser() for name in args.images if name.strip()]
    resolved = {g.resolve() for g in given}

    def is_given(path: Path) -> bool:  # (samefile: X.png is x.png on a disk that ignores case)
        return path.resolve() in resolved or (
            path.exists() and any(g.exists() and os.path.samefile(path, g) for g in given))

    clash = next((out / f"{stem}{kind}" for stem in stems for kind in (".input.png", ".recon.png")
                  if is_given(out / f"{stem}{kind}")), None)
    if clash is not None:
        raise ConfigError(f"--out {args.out} would write {clash.name} over one of the images given: give another "
                          "--out folder")
    failures = 0
    for name, stem in zip(args.images, stems):
        try:
            if not name.strip():
                raise ImageError("an empty name is not an image file")
            _, prepared, note = open_and_prepare(Path(name).expanduser(), model.input_shape, Path(name).name,
                                                 framing)
        except AelabError as err:
            print(f"error: {err}", file=sys.stderr)
            failures += 1
            continue
        x = torch.from_numpy(prepared)[None].float()
        labels = None
        with torch.no_grad():
            if model.conditional:  # the class asked for, else the one under which the image is most probable
                labels = torch.tensor([label]) if label is not None else model.best_labels(x)[0]
            raw = model.reconstruct(x, labels)[0]
        # The error as `eval` and `anomalies` measure it (metrics.squared_errors: summed over pixels, of the
        # reconstruction as the model gives it, before the clamp to [0, 1] of the picture): which files it finds odd.
        error = float(((raw - x[0]) ** 2).sum())
        recon = raw.clamp(0, 1)
        if model.conditional and label is None:
            print(f"{Path(name).name}: read as {_class_text(meta, int(labels[0]))}")
        out.mkdir(parents=True, exist_ok=True)  # only now: a run whose every image failed leaves no empty folder
        save_png(prepared, out / f"{stem}.input.png")
        save_png(recon.numpy(), out / f"{stem}.recon.png")
        print(f"{name} -> {out / stem}.input.png, {out / stem}.recon.png (squared error {error:.2f})")
        if note:
            print(f"note: {note}")
    return 1 if failures else 0


def cmd_embed(args) -> int:
    import numpy as np

    from .metrics import encode

    if args.reproducible and args.map != "umap":
        raise ConfigError("--reproducible is about the UMAP layout: give it with --map umap")
    model, meta = _load(args.checkpoint)
    with _no_new_empty_folders(Path(os.path.expanduser(args.out.strip())).parent):
        out = _output_file(args.out, "--out", ".npz", refuse=(_checkpoint_path(args.checkpoint),),
                           what="embed writes a .npz file")
        dataset = dataset_for(args, args.dataset, meta, model)
        x, y = dataset.split(args.split)
        codes = encode(model, x, y).numpy()
        arrays = {"codes": codes, "labels": y.numpy(), "class_names": np.array(dataset.class_names)}
        if args.split == "all":  # which codes are the training images' and which the test images'
            arrays["split"] = np.array(["train"] * len(dataset.y_train) + ["test"] * len(dataset.y_test))
        files = dataset.files(args.split)
        if files:  # one's own images: each code's file, to trace it back (not the built-in sets)
            arrays["files"] = np.array(files)
        if args.map != "none":
            from .project import PAGE_UMAP, codes_source, map_sample

            if codes.shape[1] == 2:  # project_codes keeps them as they are
                print(f"note: the codes are 2-D, so they are their own map: coords holds them as they are, no "
                      f"{args.map.upper()} is fitted", file=sys.stderr)
            else:
                print(f"{args.map.upper()} map of {len(codes):,} codes ...", file=sys.stderr, flush=True)
            # The Latent map page's settings, so that the page and embed share a map where they map the same codes
            params = {**(PAGE_UMAP if args.map == "umap" else {}), **({"reproducible": True} if args.reproducible
                                                                      else {})}
            source = codes_source(_checkpoint_path(args.checkpoint), dataset, args.split)
            arrays["coords"], seconds, cached = map_sample(codes, args.map, dataset.name, args.split, None,
                                                           source=source, **params)
            if codes.shape[1] != 2:
                print(f"map: {'from the cache' if cached else f'{seconds:.1f} s'}", file=sys.stderr)
        _write_output(out, lambda f: np.savez(f, **arrays))
    print(f"{len(codes):,} codes of size {codes.shape[1]}{' with a 2-D map' if args.map != 'none' else ''} -> {out}")
    return 0


def cmd_sample(args) -> int:
    import torch

    from .explore import mixture_samples, sample_grid, samples, stored_code_mixture, tile, trained_images
    from .images import save_png

    model, meta = _load(args.checkpoint)
    if args.n < 1 or args.n > 10000:
        raise ConfigError(f"-n must be between 1 and 10000, not {args.n}")
    if args.mixture is not None:
        if model.conditional:
            raise ConfigError("--mixture: a conditional VAE's codes go with a class: sample it from its prior "
                              "(--label for one class)")
        if not 1 <= args.mixture <= 100:
            raise ConfigError(f"--mixture needs 1 to 100 components, not {args.mixture}")
    elif not model.generative:
        kind = "PCA" if model.variant == "pca" else "an autoencoder"
        raise ConfigError(f"{_checkpoint_path(args.checkpoint).stem} is {kind}, with no prior to sample codes from: "
                          "give --mixture 10 to draw them from a mixture fitted to its codes of its training images")
    label = _check_label(model, args.label, meta)  # (a model that takes no class is refused one, --mixture or not)
    with _no_new_empty_folders(Path(os.path.expanduser(args.out.strip())).parent):
        out = _output_file(args.out, "--out", ".png", refuse=(_checkpoint_path(args.checkpoint),),
                           what="sample writes a PNG")
        if args.mixture is not None:
            dataset = dataset_for(args, None, meta, model)
            mixture = stored_code_mixture(_checkpoint_path(args.checkpoint), model, trained_images(dataset, meta),
                                          args.mixture)
            print(f"mixture of {len(mixture.weights)} Gaussians fitted to the codes of {mixture.codes:,} training "
                  "images", file=sys.stderr)
            grid = tile(mixture_samples(model, mixture, args.n, args.temperature, args.seed),
                        int(max(1, round(args.n ** 0.5))))
        elif label is None:  # a conditional model's grid: one class per column
            grid = sample_grid(model, args.n, temperature=args.temperature, seed=args.seed)
        else:
            images = samples(model, args.n, args.temperature, args.seed, labels=torch.full((args.n,), label))
            grid = tile(images, int(max(1, round(args.n ** 0.5))))
        save_png(grid.numpy() if isinstance(grid, torch.Tensor) else grid, out)
    of_class = "" if label is None else f" of class {_class_text(meta, label)}"
    print(f"{args.n} samples{of_class} -> {out}")
    return 0


def cmd_anomalies(args) -> int:
    import csv

    import numpy as np

    from . import anomaly
    from .data import class_text, dataset_label
    from .metrics import seen_in_training

    if args.top < 0:
        raise ConfigError(f"--top {args.top}: give 0 or more images to list")
    if args.threshold is not None and not math.isfinite(args.threshold):
        raise ConfigError(f"--threshold must be a finite number, not {args.threshold}")
    model, meta = _load(args.checkpoint)
    path = _checkpoint_path(args.checkpoint)
    with _no_new_empty_folders(Path(os.path.expanduser((args.csv or ".").strip())).parent):
        out = _output_file(args.csv, "--csv", ".csv", refuse=(path,), what="--csv writes a .csv file") \
            if args.csv is not None else None  # (--csv '' is refused there, not taken as no table)
        trained_on = meta.get("dataset") or {}
        only = trained_on.get("only_class")
        k = trained_on.get("without_class") or 0

        def check_class(names: list[str], label: str) -> int:
            """--class as a class of these names: by name (any case), else by number."""
            if args.anomaly_class is None:
                return k
            return _class_or_refuse("--class", args.anomaly_class, names, label)

        if args.dataset in (None, trained_on.get("name")):  # refused before the data are loaded
            check_class(list(trained_on.get("class_names") or []), dataset_label(trained_on.get("name") or "mnist"))
        dataset = dataset_for(args, args.dataset, meta, model, labels_given=False)  # (scored as it reads them)
        k = check_class(list(dataset.class_names), dataset.label)
        if seen_in_training(meta, dataset):
            print(SEEN_NOTE, file=sys.stderr)
        scores, labels = anomaly.stored_scores(path, model, dataset, args.split)
        print(f"{len(scores):,} {'test ' if args.split == 'test' else ''}image{'s' if len(scores) != 1 else ''} "
              "scored by reconstruction error "
              f"(squared error per image): median {np.median(scores):.2f}, highest {scores.max():.2f}")
        is_anomaly = anomaly.anomalous(labels, k, only) if dataset.num_classes and (labels >= 0).all() else None
        # One kind of image only (a tiny set's test split): no AUROC, the ranking still.
        if is_anomaly is not None and is_anomaly.all() == is_anomaly.any():
            print(f"note: the images scored are all {'anomalies' if is_anomaly.all() else 'normal'} for this class, "
                  "so no AUROC is measured" + ("; they are ranked all the same" if args.top or out is not None else ""),
                  file=sys.stderr)
            is_anomaly = None
        if args.show != "highest" and is_anomaly is None:
            raise ConfigError(f"--show {args.show} needs a class as the anomaly, in a set of labelled images of more "
                              "than one kind: give --show highest")
        threshold = args.threshold
        if is_anomaly is not None:
            curve = anomaly.roc(scores, is_anomaly)
            at = anomaly.at_threshold(scores, is_anomaly, anomaly.starting_threshold(scores, is_anomaly)
                                      if threshold is None else threshold)
            # Named as the scored data names them (--dataset may differ from the model's)
            what = (f"every class but {class_text(dataset.class_names, only, '()')}" if only is not None
                    else f"class {class_text(dataset.class_names, k, '()')}")
            if trained_on.get("name", dataset.name) != dataset.name:
                note, fair = (f"This model was trained on {dataset_label(trained_on['name'])}, not on {dataset.label}: "
                              "every image here is new to it, so this says little about the class.", False)
            else:
                note, fair = anomaly.training_note(meta, only if only is not None else k,
                                                   f"(train ... --without-class {k})", around="()")
            print(f"anomaly: {what}. {note}")
            which = "which flags as many images as there are anomalies" if threshold is None else "given"
            print(f"AUROC {curve.auroc:.3f}; at threshold {at.threshold:.2f}, {which} ({at.flagged:,} flagged): "
                  f"precision {at.precision:.1%}, recall {at.recall:.1%}; {at.false_positives:,} false alarms, "
                  f"{at.false_negatives:,} missed anomalies")
            hint = anomaly.auroc_hint(curve.auroc, fair, only is not None, dataset.name,
                                      "the command line: --only-class")
            if hint:
                print(hint.replace("*", ""))
        if is_anomaly is None and threshold is not None:
            flagged = int((scores >= threshold).sum())
            print(f"at threshold {threshold:.2f}: {flagged:,} of {len(scores):,} images flagged")
        rows = anomaly.ranked(scores, dataset, args.split)
        if args.show != "highest":
            order = anomaly.listed_order(scores, args.show, is_anomaly, at.threshold)
            listed = anomaly.ranked(scores, dataset, args.split, args.top, order)
            print(f"{args.show}: {anomaly.SHOWS[args.show]} (rank: by error among all)")
            if not len(order):
                print("none at this threshold")
        else:
            listed = rows[: args.top]
        if args.top and listed:
            columns = ["rank", "split", "index"] + [c for c in ("file", "class") if any(r[c] for r in rows)]
            shown = [[str(r[c]) for c in columns] + [f"{r['error']:.2f}"] for r in listed]
            widths = [max(len(h), *(len(row[i]) for row in shown)) for i, h in enumerate(columns + ["error"])]
            numbers = [c in ("rank", "index") for c in columns] + [True]  # right-aligned, the text columns left
            for row in [columns + ["error"], *shown]:
                print("  ".join(cell.rjust(w) if right else cell.ljust(w)
                                for cell, w, right in zip(row, widths, numbers)).rstrip())
        if out is not None:
            table = io.StringIO(newline="")
            writer = csv.DictWriter(table, ["rank", "split", "index", "file", "label", "class", "error"])
            writer.writeheader()
            writer.writerows(rows)
            _write_output(out, table.getvalue().encode())
            print(f"{len(rows):,} images ranked -> {out}")
    return 0


def cmd_restore(args) -> int:
    from .checkpoints import forget_previous, has_previous, restore_previous

    path = _checkpoint_path(args.checkpoint)
    if not path.exists() and not has_previous(path):
        raise CheckpointError(f"no such checkpoint: {args.checkpoint}")
    if args.drop:
        if not has_previous(path):
            raise CheckpointError(f"no earlier model of {path.name} is kept")
        forget_previous(path)
        print(f"deleted the earlier model of {path}; {path.name} stays as it is")
        return 0
    path = restore_previous(path)
    print(f"restored the earlier model of {path}")
    return 0


def cmd_zoo(args) -> int:
    from . import zoo

    if args.out_dir is None or args.list or args.prepare:
        return zoo.main(args)
    # zoo.main makes --out-dir while checking it can be written, before it knows the full data are there.
    with _no_new_empty_folders(Path(args.out_dir).expanduser()):
        return zoo.main(args)


COMMANDS = {"list": cmd_list, "train": cmd_train, "eval": cmd_eval, "reconstruct": cmd_reconstruct,
            "embed": cmd_embed, "sample": cmd_sample, "anomalies": cmd_anomalies, "restore": cmd_restore,
            "zoo": cmd_zoo}


def main(argv: list[str] | None = None) -> int:
    parser = None
    try:
        parser = build_parser()  # (imports torch: a Ctrl-C can come here too)
        args = parser.parse_args(argv)
        _check_data_root(args.data_root)
        return COMMANDS[args.command](args)
    except AelabError as err:  # an option's value refused by the core (ConfigError) is named by its flag
        flags = parser is not None and isinstance(err, ConfigError)
        print(f"error: {in_flag_words(str(err), option_names(parser)) if flags else err}", file=sys.stderr)
        return 2
    except FileNotFoundError as err:
        print(f"error: no such file: {err.filename}", file=sys.stderr)
        return 2
    except OSError as err:  # an output that cannot be written: a read-only folder, a full disk
        where = f": {err.filename}" if err.filename else ""
        print(f"error: {err.strerror or err}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
