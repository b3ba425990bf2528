"""Convolution weight gradients by one GEMM (fnlib.convgrad): equal to autograd's, used only where asked."""
import pytest
import torch
import torch.nn as nn

from fnlib import convgrad, models, train

# (in, out, kernel, stride, padding, height, width): the convolutions of both ResNets (conv1 of CIFAR-10 and
# MNIST, 3×3 at 8×8 and at 1×1 where oneDNN is slowest, a strided 1×1 shortcut) and odd shapes
SHAPES = [(3, 64, 7, 2, 3, 32, 32), (1, 64, 7, 2, 3, 28, 28), (64, 64, 3, 1, 1, 8, 8), (512, 512, 3, 1, 1, 1, 1),
          (64, 128, 1, 2, 0, 8, 8), (6, 5, 3, 2, 1, 5, 7), (4, 6, (3, 1), 1, (1, 0), 5, 6), (4, 6, 3, 1, 0, 5, 5),
          (2, 3, 2, 3, 1, 7, 8), (3, 4, (3, 2), (1, 2), (1, 0), 7, 9), (3, 4, 3, (3, 1), (0, 2), 8, 6)]


def grads(conv, x, g):
    y = conv(x)
    return torch.autograd.grad(y, [x, conv.weight, conv.bias], g)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("fmt", [torch.channels_last, torch.contiguous_format], ids=["nhwc", "nchw"])
def test_gradients_equal_autograd(shape, fmt):
    c, k, ks, s, p, h, w = shape
    torch.manual_seed(0)
    conv = nn.Conv2d(c, k, ks, s, p).double().to(memory_format=fmt)
    x = torch.randn(3, c, h, w, dtype=torch.double).to(memory_format=fmt).requires_grad_()
    g = torch.randn_like(conv(x))
    ref = grads(conv, x, g)
    with convgrad.gemm_weight_grad(conv) as n:
        assert n == 1 and type(conv) is convgrad.GemmGradConv2d
        ours = grads(conv, x, g)
    assert type(conv) is nn.Conv2d                          # restored when the block ends
    for name, a, b in zip(("input", "weight", "bias"), ref, ours):
        assert a.shape == b.shape
        assert torch.allclose(a, b, rtol=0, atol=1e-11), name


def test_a_whole_resnet_gets_the_same_gradients_in_fp32():
    torch.manual_seed(0)
    model = models.build("resnet18", "mnist").train()
    x, y = torch.rand(8, 1, 28, 28), torch.arange(8) % 10

    def step():
        model.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        return [p.grad.clone() for p in model.parameters()]

    ref = step()
    with convgrad.gemm_weight_grad(model) as n:
        assert n == 20                                     # every convolution of a ResNet-18
        ours = step()
    assert all(type(m) is not convgrad.GemmGradConv2d for m in model.modules())
    for a, b in zip(ref, ours):
        assert (a - b).abs().max() <= 1e-4 * a.abs().max() + 1e-7


def test_forward_and_state_are_untouched():
    torch.manual_seed(0)
    model = models.build("resnet18", "cifar10").eval()
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        ref = model(x)
    keys = list(model.state_dict())
    with convgrad.gemm_weight_grad(model):
        with torch.no_grad():
            assert torch.equal(model(x), ref)              # without grad: PyTorch's own forward
        assert torch.equal(model(x), ref)                  # with grad: the same forward kernel
        assert list(model.state_dict()) == keys


def test_disabled_and_ineligible_convolutions_stay_plain():
    grouped = nn.Conv2d(4, 4, 3, groups=2)
    dilated = nn.Conv2d(4, 4, 3, dilation=2)
    same = nn.Conv2d(4, 4, 3, padding="same")
    reflect = nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect")   # its forward pads otherwise
    with convgrad.gemm_weight_grad(nn.Sequential(grouped, dilated, same, reflect)) as n:
        assert n == 0
    plain = nn.Conv2d(4, 4, 3)
    with convgrad.gemm_weight_grad(plain, enabled=False) as n:
        assert n == 0 and type(plain) is nn.Conv2d


def test_classes_are_restored_after_an_error():
    conv = nn.Conv2d(2, 2, 3)
    with pytest.raises(RuntimeError):
        with convgrad.gemm_weight_grad(conv):
            raise RuntimeError("boom")
    assert type(conv) is nn.Conv2d


def test_under_autocast_it_is_the_plain_convolution():
    conv = nn.Conv2d(3, 4, 3, padding=1)
    x = torch.rand(2, 3, 5, 5)
    with convgrad.gemm_weight_grad(conv):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = conv(x).float().sum()
        loss.backward()                                   # as in fit; mixed dtypes would fail in weight_grad
    assert conv.weight.grad is not None and conv.weight.grad.dtype == torch.float32


def test_only_its_own_class_is_restored():
    class Other(nn.Conv2d):
        pass

    conv = nn.Conv2d(2, 2, 3)
    with convgrad.gemm_weight_grad(conv):
        conv.__class__ = Other                            # changed inside the block by someone else
    assert type(conv) is Other


def counting(monkeypatch):
    calls = []
    real = convgrad.weight_grad

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(convgrad, "weight_grad", counted)
    return calls


def test_fit_records_its_choice_and_trains_alike(mnist_train64, tmp_path, monkeypatch):
    recipe = train.Recipe(epochs=1, batch_size=16, seed=0)
    runs = {}
    calls = counting(monkeypatch)
    for how in ("gemm", "torch"):
        torch.manual_seed(0)
        model = models.build("resnet18", "mnist")
        calls.clear()
        hist = train.fit(model, *mnist_train64, recipe=recipe, device="cpu", progress=False, weight_grad=how,
                         ckpt_dir=tmp_path / how, checkpoints=(1,))
        # four steps × 20 convolutions when asked for, none otherwise
        assert len(calls) == (4 * 20 if how == "gemm" else 0)
        state = torch.load(tmp_path / how / "last.pt", weights_only=False)
        assert state["sessions"][-1]["conv_weight_grad"] == how
        runs[how] = (model, hist)
    # one epoch of four steps: the same math, sums in another order. Four steps at lr 0.1 on batches of 16 are
    # chaotic (the loss climbs to ≈ 6), so rounding grows: on a Zen 4 EPYC with one thread the loss differed
    # by 9e-5 of itself and each tensor by ≤ 0.3 % of its norm, and a few small BatchNorm biases by more than
    # an elementwise 1e-3 allows. Compared per tensor, relative to its norm; a weight gradient 5 % too large
    # (planted in convgrad) fails the loss check here.
    loss_g, loss_t = runs["gemm"][1][0]["train_loss"], runs["torch"][1][0]["train_loss"]
    assert abs(loss_g - loss_t) <= 1e-3 * abs(loss_t)
    for (name, a), b in zip(runs["gemm"][0].named_parameters(), runs["torch"][0].parameters()):
        assert (a - b).norm() <= 2e-2 * b.norm(), name
    torch.manual_seed(0)
    train.fit(models.build("resnet18", "mnist"), *mnist_train64, recipe=recipe, device="cpu", progress=False,
              ckpt_dir=tmp_path / "auto")
    auto = torch.load(tmp_path / "auto" / "last.pt", weights_only=False)["sessions"][-1]["conv_weight_grad"]
    assert auto == "gemm"                                  # fp32 on a CPU
    torch.manual_seed(0)
    calls.clear()
    train.fit(models.build("resnet18", "mnist"), *[t[:16] for t in mnist_train64], device="cpu", progress=False,
              recipe=train.Recipe(epochs=1, batch_size=16, precision="bf16"), ckpt_dir=tmp_path / "bf16")
    bf16 = torch.load(tmp_path / "bf16" / "last.pt", weights_only=False)["sessions"][-1]["conv_weight_grad"]
    assert bf16 == "torch" and not calls                  # autocast: PyTorch's own gradients


def test_fit_refuses_an_unknown_or_impossible_choice(mnist_train64):
    model = models.build("resnet18", "mnist")
    with pytest.raises(ValueError, match="allowed: auto, gemm, torch"):
        train.fit(model, *mnist_train64, recipe=train.Recipe(epochs=1), device="cpu", weight_grad="fast")
    with pytest.raises(ValueError, match="needs fp32"):
        train.fit(model, *mnist_train64, recipe=train.Recipe(epochs=1, precision="bf16"), device="cpu",
                  weight_grad="gemm", progress=False)


def test_the_code_digest_covers_convgrad(monkeypatch, tmp_path):
    import shutil

    from fnlib import codeid
    before = train.code_digest()
    copy = tmp_path / "fnlib"
    shutil.copytree(codeid.PACKAGE, copy)
    src = (copy / "convgrad.py").read_text()
    (copy / "convgrad.py").write_text(src.replace("def ", "def _planted():\n    return 1\n\n\ndef ", 1))
    monkeypatch.setattr(codeid, "PACKAGE", copy)
    assert train.code_digest() != before          # training imports convgrad: its identity sees the edit


def test_the_summary_says_how_each_run_computed_weight_gradients(tmp_path):
    import json

    from fnlib import summary
    run = tmp_path / "paper" / "mnist" / "resnet18"
    run.mkdir(parents=True)
    sessions = [{"cpu": "A"}, {"cpu": "A", "conv_weight_grad": "gemm"}]   # a session from before convgrad, one after
    (run / "train.json").write_text(json.dumps({"epochs_done": 2, "sessions": sessions}))
    assert summary._provenance(tmp_path / "paper")["mnist/resnet18"]["weight_grads"] == ["gemm", "torch"]
