"""The zoo table of BENCHMARKS.md, read from the shipped checkpoints' metadata (metrics measured by train_and_save on
the full test split of each model's dataset, with the float32 weights before float16 storage).

    python bench/zoo_table.py
"""

from __future__ import annotations

import _common  # noqa: F401
from _common import ZOO

from aelab.checkpoints import read_metadata
from aelab.zoo import ENTRIES


def main() -> None:
    print("| name | dataset | variant | code | size | train time | SSE / test image | MSE / pixel | 1-NN | 5-NN | "
          "test nats |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    total = 0
    for entry in ENTRIES:
        path = ZOO / f"{entry.name}.safetensors"
        meta, size = read_metadata(path), path.stat().st_size
        total += size
        m = meta["metrics"]
        nats = f"{m['test_nats']:.2f}" if "test_nats" in m else ""
        secs = meta.get("train_seconds")
        print(f"| {entry.name} | {entry.dataset} | {entry.variant} | {meta['config']['latent_dim']} | "
              f"{size / 2**20:.2f} MB | {secs:.0f} s | {m['sse_per_image']:.3f} | {m['mse_per_pixel']:.5f} | "
              f"{m['knn1_accuracy']:.4f} | {m['knn5_accuracy']:.4f} | {nats} |")
    print(f"\ntotal {total / 2**20:.2f} MB ({total:,} bytes) in {len(ENTRIES)} files")


if __name__ == "__main__":
    main()
