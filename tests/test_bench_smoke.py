"""The bench/ scripts that can run on the offline sample: a smoke run on the tests' tiny checkpoints, so an API change
in aelab that breaks a benchmark is caught here rather than at the next benchmark session."""

import json
import os
import subprocess
import sys
from pathlib import Path

from idxfiles import write_idx_gz

ROOT = Path(__file__).resolve().parent.parent


def test_throughput_script_runs_on_the_tiny_checkpoints(tiny_checkpoints, tmp_path):
    out = tmp_path / "throughput.json"
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "throughput.py"), "--images", "200", "--batch", "64",
                             "--repeats", "1", "--json", str(out)], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr[-2000:]
    models = json.loads(out.read_text())["models"]
    assert set(models) >= {Path(p).name[: -len(".safetensors")] for p in tiny_checkpoints.values()}
    assert all(m["encode_images_per_s"] > 0 and m["reconstruct_images_per_s"] > 0 for m in models.values())


def test_train_speed_script_runs_on_a_data_root(mnist, tmp_path):
    """bench/train_speed.py on idx files in a data root: the offline sample's digits, 6,000 of them (the benchmark
    itself asks for MNIST's 60,000; a tenth of that takes a tenth of the time here)."""
    n = 6000
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    reps = -(-n // len(mnist.x_train))
    x = mnist.x_train.repeat(reps, 1, 1, 1)[:n, 0].numpy()
    y = mnist.y_train.repeat(reps)[:n].numpy()
    write_idx_gz(folder / "train-images-idx3-ubyte.gz", x)
    write_idx_gz(folder / "train-labels-idx1-ubyte.gz", y)
    write_idx_gz(folder / "t10k-images-idx3-ubyte.gz", mnist.x_test[:, 0].numpy())
    write_idx_gz(folder / "t10k-labels-idx1-ubyte.gz", mnist.y_test.numpy())
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AELAB_DATA": str(tmp_path / "data")}
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "train_speed.py"), "--repeats", "1",
                             "--no-warmup", "--train-images", str(n)],
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("ratio ") and float(last.split()[1].rstrip("x")) > 0, result.stdout
    assert "aelab trainer" in result.stdout


def test_cvae_labels_script_scores_a_checkpoint_and_a_recipe(tiny_checkpoints, tmp_path):
    out = tmp_path / "cvae.json"
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "cvae_labels.py"), "--checkpoint",
                             str(tiny_checkpoints["tiny-cvae"]), "--also-latent", "2", "--epochs", "1",
                             "--json", str(out)], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads(out.read_text())
    assert 0.5 < found["judge_test_accuracy"] <= 1 and len(found["models"]) == 2
    for row in found["models"].values():
        assert 0 <= row["samples"] <= 1 and 0 <= row["swapped"] <= 1 and len(row["samples_per_class"]) == 10
        assert 0.1 < row["read"] <= 1  # better than chance, even for tiny models
