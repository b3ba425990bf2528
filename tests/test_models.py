"""Model construction (SPEC §1): torchvision ResNets with normalization inside, MNIST conv1, checkpoints."""
import pytest
import torch
import torch.nn as nn

from fnlib import models


@pytest.mark.parametrize("arch", models.ARCHS)
@pytest.mark.parametrize("dataset", ["mnist", "cifar10"])
def test_build_takes_pixels_and_outputs_ten_logits(arch, dataset):
    torch.manual_seed(0)
    model = models.build(arch, dataset).eval()
    assert model.arch == arch and model.dataset == dataset
    c, hw = (1, 28) if dataset == "mnist" else (3, 32)
    x = torch.rand(2, c, hw, hw)
    with torch.no_grad():
        out = model(x)
        # normalization lives inside the model: forward(x) == body((x - μ)/σ)
        mean, std = (torch.tensor(v).view(1, -1, 1, 1) for v in models.STATS[dataset])
        ref = model.body((x - mean) / std)
    assert out.shape == (2, 10)
    assert torch.allclose(out, ref, atol=1e-5)
    assert isinstance(model.body, getattr(__import__("torchvision").models, "ResNet"))
    assert model.body.fc.out_features == 10
    assert model.conv1 is model.body.conv1
    assert model.conv1.out_channels == 64 and model.conv1.kernel_size == (7, 7)


def test_mnist_conv1_is_one_channel():
    conv = models.build("resnet18", "mnist").conv1
    assert isinstance(conv, nn.Conv2d)
    assert (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding) == \
        (1, 64, (7, 7), (2, 2), (3, 3))
    assert conv.bias is None
    assert models.build("resnet18", "cifar10").conv1.in_channels == 3


def test_normalize_stats():
    m = models.build("resnet18", "mnist")
    assert torch.allclose(m.normalize.mean.flatten(), torch.tensor([0.1307]))
    assert torch.allclose(m.normalize.std.flatten(), torch.tensor([0.3081]))
    c = models.build("resnet18", "cifar10")
    assert c.normalize.std.shape == (1, 3, 1, 1)
    # the normalization constants are buffers: they travel with state_dict and .to()
    assert "normalize.mean" in c.state_dict() and "normalize.std" in c.state_dict()
    assert not any(n.startswith("normalize") for n, _ in c.named_parameters())


def test_build_is_seeded():
    torch.manual_seed(3)
    a = models.build("resnet18", "cifar10")
    torch.manual_seed(3)
    b = models.build("resnet18", "cifar10")
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_stem_layers():
    torch.manual_seed(0)
    m = models.build("resnet18", "cifar10").eval()
    z = m.normalize(torch.rand(2, 3, 32, 32))
    with torch.no_grad():
        c = m.stem(z, "conv1")
        b = m.stem(z, "bn1")
        r = m.stem(z, "relu")
        assert torch.allclose(c, m.body.conv1(z))
        assert torch.allclose(b, m.body.bn1(m.body.conv1(z)))
        assert torch.allclose(r, torch.relu(b))
    assert c.shape == (2, 64, 16, 16)
    with torch.no_grad():
        assert torch.equal(m.stem(z), c)                      # conv1 is the default layer
    with pytest.raises(ValueError, match="conv1, bn1, relu"):
        m.stem(z, "maxpool")


def test_unknown_arch_or_dataset_lists_allowed():
    with pytest.raises(ValueError, match="resnet18, resnet50, resnet101"):
        models.build("resnet34", "mnist")
    with pytest.raises(ValueError, match="mnist, cifar10"):
        models.build("resnet18", "svhn")


def save_ckpt(path, model, arch, dataset):
    torch.save({"model": model.state_dict(), "meta": {"arch": arch, "dataset": dataset, "epoch": 1}}, path)


def test_load_checkpoint_roundtrip(tmp_path):
    torch.manual_seed(1)
    m = models.build("resnet18", "mnist")
    save_ckpt(tmp_path / "e1.pt", m, "resnet18", "mnist")
    loaded = models.load_checkpoint(tmp_path / "e1.pt", "resnet18", "mnist")
    assert not loaded.training
    sd = m.state_dict()
    assert all(torch.equal(v, sd[k]) for k, v in loaded.state_dict().items())


@pytest.mark.parametrize("want", [("resnet50", "mnist"), ("resnet18", "cifar10")])
def test_load_checkpoint_rejects_other_model(tmp_path, want):
    torch.manual_seed(1)
    m = models.build("resnet18", "mnist")
    save_ckpt(tmp_path / "e1.pt", m, "resnet18", "mnist")
    with pytest.raises(ValueError, match="resnet18/mnist") as err:
        models.load_checkpoint(tmp_path / "e1.pt", *want)
    assert f"{want[0]}/{want[1]}" in str(err.value) and "python -m fnlib run" in str(err.value)


def test_load_checkpoint_missing_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m fnlib run"):
        models.load_checkpoint(tmp_path / "nope.pt", "resnet18", "mnist")


def test_mnist_conv1_gets_torchvisions_init():
    """conv1 of both data sets starts with Kaiming-normal fan-out std √(2 / (64·7·7)) ≈ 0.0289."""
    torch.manual_seed(0)
    want = (2 / (64 * 7 * 7)) ** 0.5
    for dataset in ("mnist", "cifar10"):
        w = models.build("resnet18", dataset).conv1.weight
        assert abs(w.std().item() - want) < 0.1 * want, dataset


@pytest.mark.parametrize("dataset", ["mnist", "cifar10"])
def test_normalize_maps_the_mean_to_zero_and_one_std_to_one(dataset):
    m = models.build("resnet18", dataset)
    mean = m.normalize.mean.expand(1, -1, 2, 2)
    assert m.normalize(mean).abs().max() < 1e-6
    assert torch.allclose(m.normalize(mean + m.normalize.std), torch.ones_like(mean))
