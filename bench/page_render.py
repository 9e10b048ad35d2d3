"""First render of every page with a shipped model already loaded (the app issue's target: <= 3 s), and the second
render (caches warm), measured with Streamlit's AppTest in one process, the way one server process serves a user.

For each model: Home is run first (it loads the dataset and the model, as the sidebar does on any page); then every
page is run once ("first": the page's own fits and scores are computed) and again ("cached"). The projection cache on
disk is pointed at an empty temporary folder, so "first" is really first. UMAP's warm-up thread is started by
app.py only, not here, so the Latent map page is measured with PCA (its UMAP cold time is in the e2e test).

--as-trained: first keep on disk what the trainer keeps when it saves a model (`train._prepare_pages`: the Anomalies
page's test scores, the Draw page's kNN codes), so the first renders are those of a model just trained (the time it
took is printed); without it, those of a model that arrived some other way (a shipped or uploaded checkpoint).
The results shipped for the zoo (aelab/prepared/, `python -m aelab zoo --prepare`) are read as the app reads them;
--without-shipped ignores them (a shipped model before they existed, or an uploaded one). --map-method UMAP renders
the Latent map page with its default UMAP map instead of PCA.

    AELAB_DATA=.data python bench/page_render.py [--models mnist-deep-30 mnist-conv-30] [--as-trained]
        [--without-shipped] [--map-method UMAP] [--pages pages/anomalies.py ...] [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401
from _common import where, write_json

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 3.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="*", default=["mnist-deep-30", "mnist-conv-30", "mnist-vae-20"])
    parser.add_argument("--as-trained", action="store_true")
    parser.add_argument("--pages", nargs="*", help="page files to render after Home (default: all)")
    parser.add_argument("--without-shipped", action="store_true")
    parser.add_argument("--map-method", choices=["PCA", "UMAP"], default="PCA")
    parser.add_argument("--json")
    args = parser.parse_args()
    os.environ["AELAB_CACHE"] = tempfile.mkdtemp(prefix="aelab-page-render-")
    os.environ.setdefault("AELAB_CHECKPOINTS", str(ROOT / "checkpoints"))
    os.environ["AELAB_UMAP_WARMUP"] = "0"
    from streamlit.testing.v1 import AppTest

    from aelab import cache, checkpoints, ui

    if args.without_shipped:
        cache.READ_ONLY.clear()

    found, _ = checkpoints.list_checkpoints()
    labels = {c.name: ui.model_label(c) for c in found}
    pages = [path for path, *_ in ui.PAGES if not args.pages or path in args.pages or path.endswith("home.py")]
    results = {"where": where(), "target_s": TARGET_S, "as_trained": args.as_trained,
               "shipped_results": not args.without_shipped, "map_method": args.map_method, "models": {}}
    for name in args.models:
        rows = {}
        state = {"model_choice": labels[name], "map_method": args.map_method}
        if args.as_trained:
            from aelab.data import load_dataset
            from aelab.train import _prepare_pages

            info = next(c for c in found if c.name == name)
            model, meta = checkpoints.load_checkpoint(info.path)
            start = time.perf_counter()
            _prepare_pages(info.path, model, load_dataset(meta["dataset"]["name"]), None)
            print(f"{name}: what the trainer keeps for the pages, computed in {time.perf_counter() - start:.1f} s "
                  f"(a trainer reuses its metrics' test errors for part of it)", flush=True)
        for path in pages:
            times = []
            for _ in range(2):
                # Home links to the other pages, which needs app.py's navigation around it.
                at = AppTest.from_file(str(ROOT / ("app.py" if path.endswith("home.py") else path)),
                                       default_timeout=600)
                for key, value in state.items():
                    at.session_state[key] = value
                start = time.perf_counter()
                at.run()
                times.append(time.perf_counter() - start)
                if at.exception:
                    raise SystemExit(f"{path} with {name}: {at.exception[0].message}")
            rows[path] = {"first_s": round(times[0], 2), "cached_s": round(times[1], 2)}
            flag = "" if times[0] <= TARGET_S else "  (over the target)"
            print(f"{name:18s} {path:22s} first {times[0]:5.2f} s  cached {times[1]:5.2f} s{flag}", flush=True)
        results["models"][name] = rows
    worst = max(r["first_s"] for rows in results["models"].values() for p, r in rows.items()
                if not p.endswith("home.py"))
    results["worst_first_s"] = worst
    print(f"worst first render (pages after Home): {worst:.2f} s, target {TARGET_S} s")
    if args.json:
        write_json(args.json, results)


if __name__ == "__main__":
    main()
