"""Every variant trained on the GPU with its step captured in a CUDA graph (TrainConfig.cuda_graph) against eager
steps, in the same run: the final validation loss of each (the same training, within bf16 and cuBLAS rounding),
whether the capture was used (a capture that fails trains eagerly and says so in a note), and the epoch time.
Needs a CUDA device and the full MNIST in AELAB_DATA; 3 epochs of 60,000 images per run.

    AELAB_DATA=.data python bench/graph_variants.py [--epochs 3]
"""

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from aelab.data import load_dataset  # noqa: E402
from aelab.models import build_model  # noqa: E402
from aelab.train import TrainConfig, Trainer  # noqa: E402

# (variant, model options, training options)
VARIANTS = [("mlp", {"latent_dim": 32, "hidden": [256]}, {}),
            ("mlp", {"latent_dim": 32, "hidden": [256], "tied": True}, {}),
            ("mlp", {"latent_dim": 32, "hidden": [256], "code_activation": "sigmoid", "sparsity_weight": 0.1}, {}),
            ("linear", {"latent_dim": 30}, {}),
            ("conv", {"latent_dim": 16}, {}),
            ("conv", {"latent_dim": 16}, {"noise": "gaussian", "noise_level": 0.3}),
            ("conv", {"latent_dim": 16, "batchnorm": True}, {}),
            ("vae", {"latent_dim": 20}, {}),
            ("vae", {"latent_dim": 16, "arch": "conv"}, {}),
            ("cvae", {"latent_dim": 8}, {})]


def run(variant: str, options: dict, dataset, epochs: int, graph: bool, train: dict) -> tuple[float, float, list]:
    torch.manual_seed(0)
    model = build_model(variant, **options)
    config = TrainConfig(epochs=epochs, batch_size=256, device="cuda", cuda_graph=graph, preview_images=0, **train)
    result = Trainer(model, dataset, config).run()
    if result.status != "finished":
        sys.exit(f"{variant} {options}: {result.status} {result.message}")
    return result.history[-1]["val"]["total"], result.seconds / epochs, result.notes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("needs a CUDA device")
    dataset = load_dataset("mnist")
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, {dataset.source}")
    run("mlp", {"latent_dim": 8}, dataset, 1, False, {})  # (CUDA's start-up, paid once)
    worst = 0.0
    for variant, options, train in VARIANTS:
        eager, eager_s, _ = run(variant, options, dataset, args.epochs, False, train)
        graphed, graphed_s, notes = run(variant, options, dataset, args.epochs, True, train)
        gap = abs(graphed - eager) / abs(eager)
        worst = max(worst, gap)
        used = "eager (capture failed: " + "; ".join(notes) + ")" if notes else "graph"
        print(f"{variant:6} {str({**options, **train}):75} val {eager:9.3f} eager, {graphed:9.3f} {used}; "
              f"{gap:6.2%} apart; epoch {eager_s:.3f} s eager, {graphed_s:.3f} s graph ({eager_s / graphed_s:.1f}x)",
              flush=True)
    print(f"largest gap between eager and graph validation losses: {worst:.2%}")


if __name__ == "__main__":
    main()
