"""python -m aelab list | train | eval | reconstruct | embed | sample | zoo

Each command is a thin layer over the same functions the app calls. Errors a user can cause print one line
(`error: ...`) on stderr and exit with status 2; nothing prints a traceback for them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shlex
import sys
import typing
from pathlib import Path

from .errors import AelabError, ConfigError


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, like every other error here."""

    def error(self, message):
        self.exit(2, f"error: {message} (see: {self.prog} --help)\n")


def _int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers like 1000,500,250, not {text!r}")


def add_dataclass_options(parser: argparse.ArgumentParser, cls, skip=()) -> None:
    """One --option per dataclass field, typed from its annotation, with the field's help and choices."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip or f.metadata.get("hidden"):
            continue
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        # argparse formats help with %: a literal "1%" in a field's help must reach it as "1%%".
        kind, help_text = hints[f.name], f"{f.metadata.get('help', '')} (default: {default})".replace("%", "%%")
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


def build_parser() -> Parser:
    from .models import REGISTRY
    from .train import TrainConfig

    parser = Parser(prog="python -m aelab", description="aelab: train, inspect and use autoencoders")
    parser.add_argument("--data-root", help="folder holding mnist/ and fashion-mnist/ idx files (or AELAB_DATA)")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    commands.add_parser("list", help="list the model variants")

    train = commands.add_parser("train", help="train a model and save a checkpoint")
    variants = train.add_subparsers(dest="variant", required=True, parser_class=Parser, metavar="VARIANT")
    for name, cls in REGISTRY.items():
        sub = variants.add_parser(name, help=cls.description, description=cls.description)
        sub.add_argument("--dataset", default="mnist", help="mnist, fashion-mnist, kmnist, or a folder/zip of images")
        sub.add_argument("--image-size", type=int, default=None,
                         help="size for image-folder datasets (default: the size it was added with in the app, else 28)")
        sub.add_argument("--image-channels", type=int, default=None, choices=(1, 3),
                         help="1 = grayscale, 3 = RGB (folders; default as for --image-size, else 1)")
        sub.add_argument("--without-class", type=int, help="drop this class from training (anomaly models)")
        sub.add_argument("--only-class", type=int, help="train on this class only (one-class anomaly models)")
        sub.add_argument("--out", required=True, help="checkpoint path (.safetensors is added)")
        sub.add_argument("--float16", action="store_true", help="store weights as float16 (half the size)")
        sub.add_argument("--events", help="append progress events as JSON lines to this file")
        sub.add_argument("--stop-file", help="stop cleanly (keeping the weights so far) once this file exists")
        sub.add_argument("--quiet", action="store_true", help="no progress bar")
        add_dataclass_options(sub, cls.config_class)
        add_dataclass_options(sub, TrainConfig)

    ev = commands.add_parser("eval", help="test-set metrics of a checkpoint")
    ev.add_argument("checkpoint")
    ev.add_argument("--dataset", help="default: the dataset the model was trained on")
    ev.add_argument("--json", action="store_true", help="print one JSON object")

    rec = commands.add_parser("reconstruct", help="prepare images like MNIST and reconstruct them")
    rec.add_argument("checkpoint")
    rec.add_argument("images", nargs="+")
    rec.add_argument("--out", required=True, help="folder for NAME.input.png and NAME.recon.png")

    emb = commands.add_parser("embed", help="codes and labels of a dataset split (and a 2-D map of them), as .npz")
    emb.add_argument("checkpoint")
    emb.add_argument("--dataset")
    emb.add_argument("--split", default="test", choices=("train", "test", "all"), help="all: train then test")
    emb.add_argument("--map", default="none", choices=("none", "pca", "umap"),
                     help="also store 2-D map coordinates of the codes as `coords` (cached like the app's maps)")
    emb.add_argument("--reproducible", action="store_true",
                     help="UMAP maps of more than 20,000 codes: the seeded one-thread layout (slower) instead of the "
                          "parallel one, so the same command gives the same map")
    emb.add_argument("--out", required=True)

    smp = commands.add_parser("sample", help="a grid of samples from a generative model")
    smp.add_argument("checkpoint")
    smp.add_argument("-n", type=int, default=64)
    smp.add_argument("--temperature", type=float, default=1.0)
    smp.add_argument("--seed", type=int, default=0)
    smp.add_argument("--out", required=True)

    zoo = commands.add_parser("zoo", help="(re)train the pretrained models shipped in checkpoints/")
    zoo.add_argument("--only", nargs="*", help="names of zoo entries to train (default: all)")
    zoo.add_argument("--out-dir", help="default: checkpoints/")
    zoo.add_argument("--list", action="store_true", help="list the zoo entries and their commands")
    zoo.add_argument("--prepare", action="store_true",
                     help="compute the pages' results for the shipped checkpoints into aelab/prepared/ (full data)")
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


def dataset_for(args, name: str | None, meta: dict | None = None, model=None):
    """The dataset named (else the one in a checkpoint's metadata, else mnist), at the shape the metadata gives;
    with `model`, refused in one line unless its images have the shape the model takes."""
    from .data import load_dataset

    dataset_meta = (meta or {}).get("dataset", {})
    name = name or dataset_meta.get("name") or "mnist"
    shape = dataset_meta.get("input_shape") or (None, None, None)  # None: as the image set was added, else 28x28x1
    dataset = load_dataset(name, args.data_root, image_size=shape[-1], channels=shape[0])
    if model is not None and tuple(dataset.input_shape) != tuple(model.input_shape):
        raise ConfigError(f"the model takes {_shape(model.input_shape)} images, but {dataset.label} has "
                          f"{_shape(dataset.input_shape)} ones")
    print(f"data: {dataset.name} from {dataset.source}", file=sys.stderr)
    return dataset


def _check_train_args(args, cls, model_options: dict, train_config) -> None:
    """Everything that can be refused before the data is loaded: options, the dataset's name and shape, the
    classes to leave out, the model's size where the images' shape is known."""
    from .data import BUILTIN, MAX_SIZE, MIN_SIZE, stored_shape
    from .train import check_training

    if not args.dataset.strip():
        raise ConfigError(f"--dataset needs a name ({', '.join(BUILTIN)}) or a folder/zip of images")
    builtin = args.dataset in BUILTIN
    if builtin and (args.image_size is not None or args.image_channels is not None):
        raise ConfigError(f"{args.dataset} has 28x28 grayscale images: --image-size and --image-channels are for "
                          "your own image sets")
    if args.image_size is not None and not MIN_SIZE <= args.image_size <= MAX_SIZE:
        raise ConfigError(f"--image-size must be between {MIN_SIZE} and {MAX_SIZE}, not {args.image_size}")
    if args.without_class is not None and args.only_class is not None:
        raise ConfigError("choose at most one of --without-class and --only-class")
    if builtin:
        classes = len(BUILTIN[args.dataset][0])
        for k in (args.without_class, args.only_class):
            if k is not None and not 0 <= k < classes:
                raise ConfigError(f"class {k} does not exist in {args.dataset} (0..{classes - 1})")
        check_training(cls, model_options, train_config, (1, 28, 28), classes)
    else:  # the shape the images will have (as given, else as the set was added); train_and_save checks the rest
        stored_channels, stored_size = stored_shape(args.dataset)
        channels = stored_channels if args.image_channels is None else args.image_channels
        size = stored_size if args.image_size is None else args.image_size
        cls.config_class.from_dict({**model_options, "input_shape": (channels, size, size)}).validate()
        train_config.validate(trainable=cls.trainable, stages=2)


def cmd_train(args) -> int:
    from .checkpoints import writable_path
    from .models import get_variant
    from .progress import StopFlag, TrainingProgress
    from .train import TrainConfig, train_and_save

    cls = get_variant(args.variant)
    model_options = picked(args, cls.config_class)
    train_config = TrainConfig(**picked(args, TrainConfig))
    _check_train_args(args, cls, model_options, train_config)
    out = writable_path(args.out)  # a path that cannot be written is refused now, not after the training
    events = None if args.events is None else _output_file(args.events, "--events")
    dataset = dataset_for(args, args.dataset, {"dataset": {"input_shape": [args.image_channels, None,
                                                                       args.image_size]}})
    command = "python -m aelab " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    stop = StopFlag(args.stop_file)
    with TrainingProgress(show_bar=not args.quiet, events_path=events) as progress:
        result, path = train_and_save(
            args.variant, model_options, dataset, train_config, out,
            without_class=args.without_class, only_class=args.only_class, float16=args.float16, command=command,
            callbacks=[progress, stop.on_event], should_stop=stop)
    if path is None:
        kept = f"; {out} was left as it was" if out.exists() else ""
        print(f"{result.status}, nothing saved: {result.message}{kept}")
    else:
        print(f"{result.status}: {path}" + (f" ({result.message})" if result.message else ""))
    if stop.interrupted:
        return 130  # Ctrl-C, as a shell expects it; the weights so far are saved all the same
    return 0 if result.status in ("finished", "stopped") else 1


def _output_file(name: str, option: str, suffix: str | None = None, refuse: tuple[Path, ...] = ()) -> Path:
    """An output file's path, as checkpoints.writable_path makes and checks it, refused in one line when it is also
    a checkpoint's name or one of `refuse` (the checkpoint being read)."""
    from .checkpoints import writable_path

    if Path(name.strip()).suffix.lower() in (".safetensors", ".json"):
        raise ConfigError(f"{option} {Path(name.strip()).name} is a checkpoint's name: give a {suffix or 'file'} name")
    path = writable_path(name, suffix, what=f"the {option} file")
    if any(path.resolve() == Path(other).expanduser().resolve() for other in refuse):
        raise ConfigError(f"{option} {path} is the checkpoint itself: give another file name")
    return path


def cmd_eval(args) -> int:
    from .checkpoints import load_checkpoint
    from .metrics import evaluate

    from .train import pick_device

    model, meta = load_checkpoint(args.checkpoint, device=pick_device())
    report = evaluate(model, dataset_for(args, args.dataset, meta, model))
    if args.json:  # strict JSON: a value that is not a finite number (a broken model's error) is null
        finite = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in report.items()}
        print(json.dumps(finite, allow_nan=False))
    else:
        for key, value in report.items():
            print(f"{key:<16} {value:.4f}" if isinstance(value, float) else f"{key:<16} {value}")
    return 0


def cmd_reconstruct(args) -> int:
    import torch

    from .checkpoints import load_checkpoint
    from .images import FRAMING, load_and_prepare, save_png

    model, meta = load_checkpoint(args.checkpoint)
    # Files are framed as the model's dataset framed its images; one's own image set's were only resized (None).
    framing = FRAMING.get(meta.get("dataset", {}).get("name", "mnist"))
    out = Path(args.out).expanduser()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file: give a folder for the pictures")
    out.mkdir(parents=True, exist_ok=True)
    failures = 0
    stems = [Path(name).stem for name in args.images]
    for name in args.images:
        try:
            prepared = load_and_prepare(Path(name), model.input_shape, name=Path(name).name, framing=framing)
        except AelabError as err:
            print(f"error: {err}", file=sys.stderr)
            failures += 1
            continue
        with torch.no_grad():
            recon = model.reconstruct(torch.from_numpy(prepared)[None].float())[0].clamp(0, 1)
        # Two inputs of one stem (a.png, a.jpg) keep their suffix in their outputs' names, not overwrite each other.
        stem = Path(name).stem if stems.count(Path(name).stem) == 1 else Path(name).name
        save_png(prepared, out / f"{stem}.input.png")
        save_png(recon.numpy(), out / f"{stem}.recon.png")
        print(f"{name} -> {out / stem}.input.png, {out / stem}.recon.png")
    return 1 if failures else 0


def cmd_embed(args) -> int:
    import numpy as np

    from .checkpoints import load_checkpoint
    from .metrics import encode

    model, meta = load_checkpoint(args.checkpoint)
    out = _output_file(args.out, "--out", ".npz", refuse=(Path(args.checkpoint),))
    dataset = dataset_for(args, args.dataset, meta, model)
    x, y = dataset.split(args.split)
    codes = encode(model, x, y).numpy()
    arrays = {"codes": codes, "labels": y.numpy(), "class_names": np.array(dataset.class_names)}
    if args.map != "none":
        from .project import map_sample

        print(f"{args.map.upper()} map of {len(codes)} codes ...", file=sys.stderr, flush=True)
        params = {"reproducible": True} if args.reproducible and args.map == "umap" else {}
        arrays["coords"], seconds, cached = map_sample(codes, args.map, dataset.name, args.split, None, **params)
        print(f"map: {'from the cache' if cached else f'{seconds:.1f} s'}", file=sys.stderr)
    np.savez(out, **arrays)
    print(f"{len(codes)} codes of size {codes.shape[1]}{' with a 2-D map' if args.map != 'none' else ''} -> {out}")
    return 0


def cmd_sample(args) -> int:
    import torch

    from .checkpoints import load_checkpoint
    from .explore import sample_grid
    from .images import save_png

    model, _ = load_checkpoint(args.checkpoint)
    if args.n < 1 or args.n > 10000:
        raise ConfigError("-n must be between 1 and 10000")
    out = _output_file(args.out, "--out", ".png", refuse=(Path(args.checkpoint),))
    grid = sample_grid(model, args.n, temperature=args.temperature, seed=args.seed)
    save_png(grid.numpy() if isinstance(grid, torch.Tensor) else grid, out)
    print(f"{args.n} samples -> {out}")
    return 0


def cmd_zoo(args) -> int:
    from . import zoo

    return zoo.main(args)


COMMANDS = {"list": cmd_list, "train": cmd_train, "eval": cmd_eval, "reconstruct": cmd_reconstruct,
            "embed": cmd_embed, "sample": cmd_sample, "zoo": cmd_zoo}


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)  # (imports torch: a Ctrl-C can come here too)
        return COMMANDS[args.command](args)
    except AelabError as err:
        print(f"error: {err}", file=sys.stderr)
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
