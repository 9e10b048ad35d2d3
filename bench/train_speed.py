"""One epoch of the classic PyTorch tutorial AE (784-32, LeakyReLU code, sigmoid output, BCE, Adam lr 0.005,
batch 256) on the 60k MNIST training images: the tutorial's torchvision MNIST + ToTensor + DataLoader loop against
aelab's trainer, alternating runs in the same process so machine noise hits both. Last line: `ratio N.Nx`.
On CUDA the trainer runs twice per repeat, eagerly and with its step captured in a CUDA graph
(TrainConfig.cuda_graph); the last line is the graph's ratio, the line before it the eager one, and the two runs'
final training losses are printed side by side (the same training, within bf16 and cuBLAS rounding).

    AELAB_DATA=../shared/data python bench/train_speed.py [--device cpu|cuda] [--repeats 3] [--no-warmup]
    [--train-images 60000]
"""

import argparse
import gc
import gzip
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from aelab.data import load_dataset  # noqa: E402
from aelab.models import build_model  # noqa: E402
from aelab.train import TrainConfig, Trainer  # noqa: E402


def torchvision_root(data_root: Path) -> Path:
    """torchvision's MNIST wants <root>/MNIST/raw/<uncompressed idx files>; make that from the data root."""
    root = Path(tempfile.mkdtemp(prefix="aelab-bench-"))
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for gz in (data_root / "mnist").glob("*.gz"):
        with gzip.open(gz) as src, open(raw / gz.stem, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return root


def tutorial_epoch(root: Path, device: torch.device) -> float:
    from torchvision import datasets, transforms

    train = datasets.MNIST(str(root), train=True, download=False, transform=transforms.ToTensor())
    loader = torch.utils.data.DataLoader(train, batch_size=256, shuffle=True)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.LeakyReLU(), nn.Linear(32, 784), nn.Sigmoid()).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=0.005)
    loss_fn = nn.BCELoss()
    start = time.perf_counter()
    for images, _ in loader:
        images = images.to(device)
        loss = loss_fn(model(images), images.flatten(1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def aelab_epoch(dataset, device: torch.device, cuda_graph: bool = False, losses: list | None = None) -> float:
    model = build_model("mlp", latent_dim=32, hidden=[], code_activation="leaky_relu")
    cfg = TrainConfig(epochs=1, batch_size=256, lr=0.005, val_fraction=0.0, preview_images=0, device=device.type,
                      cuda_graph=cuda_graph)
    result = Trainer(model, dataset, cfg).run()
    if result.notes or result.status != "finished":
        sys.exit(f"aelab trainer: {result.status} {result.message} {result.notes}")
    if losses is not None:
        losses.append(result.history[-1]["train"]["total"])
    return result.seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-warmup", action="store_true",
                        help="skip the untimed first epochs (for the tests' smoke run; figures then include warm-up)")
    parser.add_argument("--train-images", type=int, default=60000,
                        help="how many training images the data root's MNIST must hold (the tests' smoke run: fewer)")
    args = parser.parse_args()
    device = torch.device(args.device)
    dataset = load_dataset("mnist")
    if len(dataset.x_train) != args.train_images:
        sys.exit(f"needs {args.train_images:,} training images (the full MNIST: AELAB_DATA); got {dataset.source}")
    root = torchvision_root(Path(dataset.source.split(" ")[0]).parent)
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, data {dataset.source}")
    graph = device.type == "cuda"
    if not args.no_warmup:
        tutorial_epoch(root, device), aelab_epoch(dataset, device)  # warm-up: imports, allocator, cuDNN
        if graph:
            aelab_epoch(dataset, device, cuda_graph=True)
    tutorial, ours, graphed, losses, graph_losses = [], [], [], [], []
    for i in range(args.repeats):
        gc.collect()  # each loop starts without the other's garbage (the tutorial's leaves 60,000 PIL images)
        tutorial.append(tutorial_epoch(root, device))
        gc.collect()
        ours.append(aelab_epoch(dataset, device, losses=losses))
        line = f"run {i + 1}: tutorial DataLoader loop {tutorial[-1]:.2f} s, aelab trainer {ours[-1]:.3f} s"
        if graph:
            gc.collect()
            graphed.append(aelab_epoch(dataset, device, cuda_graph=True, losses=graph_losses))
            line += f", aelab trainer with CUDA graph {graphed[-1]:.3f} s"
        print(line)
    shutil.rmtree(root)
    t, o = statistics.median(tutorial), statistics.median(ours)
    print(f"median epoch: tutorial {t:.2f} s, aelab {o:.3f} s")
    if graph:
        g = statistics.median(graphed)
        print("final training loss per image, eager vs CUDA graph: "
              + ", ".join(f"{a:.2f} / {b:.2f}" for a, b in zip(losses, graph_losses)))
        print(f"median epoch with CUDA graph: {g:.3f} s")
        print(f"ratio eager {t / o:.1f}x")
        print(f"ratio {t / g:.1f}x (CUDA graph)")
    else:
        print(f"ratio {t / o:.1f}x")


if __name__ == "__main__":
    main()
