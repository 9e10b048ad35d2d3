"""The bench/ scripts that can run on the offline sample: a smoke run on the tests' tiny checkpoints, so an API change
in aelab that breaks a benchmark is caught here rather than at the next benchmark session."""

import json
import os
import subprocess
import sys
from pathlib import Path

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
