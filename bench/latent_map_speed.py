"""The Latent map page's UMAP target: 5,000 test codes mapped <= 15 s cold and <= 1 s when cached.

What the page does, in one fresh process: the app's UMAP warm-up first (the server starts it in a background thread
when it starts; its time is printed separately), then for each model: encode a stratified sample of 5,000 test
images and map the codes with `aelab.project.project_codes` (UMAP, n_neighbors 15, min_dist 0.1, seed 0) into an
empty disk cache ("cold"), then the same call again ("cached": read from the disk cache, as after a server restart).

    AELAB_DATA=.data python bench/latent_map_speed.py [--models ...] [--n 5000] [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import _common  # noqa: F401
from _common import load_zoo, where, write_json

COLD_TARGET_S, CACHED_TARGET_S = 15.0, 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="*", default=["mnist-deep-30", "mnist-conv-30", "mnist-vae-20"])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--json")
    args = parser.parse_args()
    os.environ["AELAB_CACHE"] = tempfile.mkdtemp(prefix="aelab-map-speed-")
    from aelab import cache, data, metrics, project, ui

    cache.ROOT = cache.Path(os.environ["AELAB_CACHE"])  # in case aelab was imported before the variable was set
    start = time.perf_counter()
    ui._warm_umap()
    warm = time.perf_counter() - start
    print(f"UMAP warm-up (the server's background thread): {warm:.1f} s", flush=True)
    ds = data.load_dataset("mnist")
    idx = data.stratified_indices(ds.y_test, args.n)
    rows = {}
    for name in args.models:
        model, _ = load_zoo(name)
        start = time.perf_counter()
        codes = metrics.encode(model, ds.x_test[idx]).numpy()
        encoded = time.perf_counter() - start
        _, _, hit = project.project_codes(codes, "umap", key_parts=(name, args.n), n_neighbors=15, min_dist=0.1)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        _, _, hit2 = project.project_codes(codes, "umap", key_parts=(name, args.n), n_neighbors=15, min_dist=0.1)
        cached = time.perf_counter() - start
        assert not hit and hit2
        rows[name] = {"encode_s": round(encoded, 2), "cold_s": round(cold, 2), "cached_s": round(cached, 4)}
        print(f"{name:16s} {args.n} codes: cold {cold:5.1f} s (encoding {encoded:.2f} s)  cached {cached:.4f} s "
              f"{'ok' if cold <= COLD_TARGET_S and cached <= CACHED_TARGET_S else 'OVER THE TARGET'}", flush=True)
    write_json(args.json, {"where": where(), "n": args.n, "warmup_s": round(warm, 1), "models": rows,
                           "targets_s": {"cold": COLD_TARGET_S, "cached": CACHED_TARGET_S}})


if __name__ == "__main__":
    main()
