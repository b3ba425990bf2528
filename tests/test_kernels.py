"""Nodal dropout of conv1 kernels and the fragile / null split (Sec 3.3)."""
import pytest
import torch
import torch.nn as nn

from fnlib import kernels
from fnlib.models import Normalize
from conftest import snapshot, state_equal


def stem_outputs(model, x):
    """conv1 output and the output of body.relu (the stem's activation) for one forward pass."""
    seen = {}
    h1 = model.conv1.register_forward_hook(lambda m, i, o: seen.__setitem__("conv1", o.detach().clone()))
    h2 = model.body.relu.register_forward_hook(lambda m, i, o: seen.__setitem__("relu", o.detach().clone()))
    with torch.no_grad():
        logits = model(x)
    h1.remove()
    h2.remove()
    return seen["conv1"], seen["relu"], logits


@pytest.mark.parametrize("ds", ["mnist", "cifar10"])
def test_weight_drop_changes_only_channel_k_and_restores(resnet, mnist_small, cifar_small, ds):
    model = resnet(ds)
    x = (mnist_small if ds == "mnist" else cifar_small)[0][:4].float() / 255
    before = snapshot(model)
    conv, relu, logits = stem_outputs(model, x)
    k = 17
    with kernels.dropped(model, k, "weights") as m:
        assert m is model
        assert torch.count_nonzero(model.conv1.weight[k]) == 0
        conv_d, relu_d, logits_d = stem_outputs(model, x)
    others = [c for c in range(64) if c != k]
    assert torch.count_nonzero(conv_d[:, k]) == 0
    assert torch.count_nonzero(conv[:, k]) > 0
    assert torch.equal(conv_d[:, others], conv[:, others])
    assert not torch.equal(logits_d, logits)
    # bit-for-bit restored
    assert state_equal(model, before)
    conv_after, _, logits_after = stem_outputs(model, x)
    assert torch.equal(conv_after, conv) and torch.equal(logits_after, logits)


@pytest.mark.parametrize("drop", ["weights", "activation"])
def test_model_restored_after_exception(resnet, mnist_small, drop):
    model = resnet("mnist")
    x = mnist_small[0][:4].float() / 255
    before = snapshot(model)
    with torch.no_grad():
        logits = model(x)
    with pytest.raises(KeyError):
        with kernels.dropped(model, 63, drop):
            raise KeyError("boom")
    assert state_equal(model, before)
    assert len(model.body.relu._forward_hooks) == 0
    with torch.no_grad():
        assert torch.equal(model(x), logits)


def test_activation_drop_zeroes_channel_after_relu_only(resnet, cifar_small):
    model = resnet("cifar10")
    x = cifar_small[0][:4].float() / 255
    before = snapshot(model)
    conv, relu, logits = stem_outputs(model, x)
    k = 5
    assert torch.count_nonzero(relu[:, k]) > 0
    with kernels.dropped(model, k, "activation"):
        conv_d, relu_d, logits_d = stem_outputs(model, x)
        assert state_equal(model, before)                       # weights untouched while dropped
    others = [c for c in range(64) if c != k]
    assert torch.equal(conv_d, conv)                            # conv1 output unchanged
    assert torch.count_nonzero(relu_d[:, k]) == 0
    assert torch.equal(relu_d[:, others], relu[:, others])
    assert not torch.equal(logits_d, logits)
    assert len(model.body.relu._forward_hooks) == 0
    with torch.no_grad():
        assert torch.equal(model(x), logits)


def test_weights_and_activation_drops_differ_because_of_bn_bias(tiny):
    """bn1 turns a zeroed convolution into a constant, so the two drop modes are not the same."""
    model = tiny(in_ch=1)
    x = torch.rand(3, 1, 8, 8)
    with kernels.dropped(model, 2, "weights"):
        _, relu_w, _ = stem_outputs(model, x)
    with kernels.dropped(model, 2, "activation"):
        _, relu_a, _ = stem_outputs(model, x)
    assert torch.count_nonzero(relu_a[:, 2]) == 0
    bias = model.body.bn1.bias[2] - model.body.bn1.running_mean[2] * model.body.bn1.weight[2] / torch.sqrt(
        model.body.bn1.running_var[2] + model.body.bn1.eps)
    assert torch.allclose(relu_w[:, 2], torch.relu(bias).expand_as(relu_w[:, 2]), atol=1e-6)


def test_bad_drop_or_index_raises(tiny):
    model = tiny()
    with pytest.raises(ValueError, match="weights, activation"):
        with kernels.dropped(model, 0, "bias"):
            pass
    with pytest.raises(ValueError, match="weights, activation"):
        kernels.rank(model, torch.rand(2, 1, 8, 8), torch.tensor([0, 1]), drop="nodes")
    for k in (-1, 64):
        with pytest.raises(ValueError, match="0..63"):
            with kernels.dropped(model, k):
                pass


# ------------------------------------------------------------------ rank

class Signal(nn.Module):
    """conv1 (1x1, all weights 1) -> relu -> mean -> fc: class 0 gets the kernels in ``fragile``, class 1 a
    constant 4.5. An image of class 0 with pixel value v is right iff v·#live(fragile) > 4.5."""

    def __init__(self, fragile):
        super().__init__()
        self.normalize = Normalize((0.0,), (1.0,))
        self.body = nn.Module()
        self.body.conv1 = nn.Conv2d(1, 64, 1, bias=False)
        self.body.relu = nn.ReLU()
        self.body.fc = nn.Linear(64, 10)
        with torch.no_grad():
            self.body.conv1.weight.fill_(1.0)
            self.body.fc.weight.zero_()
            self.body.fc.bias.zero_()
            self.body.fc.weight[0, fragile] = 1.0
            self.body.fc.bias[1] = 4.5

    @property
    def conv1(self):
        return self.body.conv1

    def forward(self, x):
        h = self.body.relu(self.body.conv1(self.normalize(x)))
        return self.body.fc(h.mean((2, 3)))


@pytest.mark.parametrize("drop", ["weights", "activation"])
def test_rank_on_a_model_with_known_fragile_kernels(drop):
    fragile = [3, 17, 22, 40, 63]
    model = Signal(fragile)
    x = torch.tensor([1.0] * 5 + [2.0] * 5).view(10, 1, 1, 1).expand(10, 1, 2, 2).contiguous()
    y = torch.zeros(10, dtype=torch.long)
    before = snapshot(model)
    r = kernels.rank(model, x, y, drop=drop, batch_size=3)
    # dropping a fragile kernel: v=1 images fall to 4 < 4.5 (wrong), v=2 ones stay at 8 (right) -> 50 %
    expected = [50.0 if k in fragile else 100.0 for k in range(64)]
    assert r.accuracies == expected
    assert r.base_accuracy == 100.0
    assert r.mean == pytest.approx((5 * 50 + 59 * 100) / 64)
    assert r.fragile == fragile
    assert r.null == [k for k in range(64) if k not in fragile]
    assert r.drop == drop
    assert state_equal(model, before)


def test_rank_split_uses_strict_mean_and_covers_every_kernel(monkeypatch, tiny):
    """Accuracies 40 (16 kernels), 60 (32), 80 (16): the mean is exactly 60, and 60 counts as null."""
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(64, generator=g).tolist()
    table = {k: 40.0 for k in perm[:16]} | {k: 60.0 for k in perm[16:48]} | {k: 80.0 for k in perm[48:]}
    model = tiny()

    def fake_accuracy(m, x, y, batch_size=1000):
        zero = [k for k in range(64) if torch.count_nonzero(m.conv1.weight[k]) == 0]
        assert len(zero) <= 1
        return table[zero[0]] if zero else 99.0

    monkeypatch.setattr(kernels, "accuracy", fake_accuracy)
    r = kernels.rank(model, torch.rand(2, 1, 8, 8), torch.tensor([0, 1]))
    assert r.base_accuracy == 99.0
    assert r.accuracies == [table[k] for k in range(64)]
    assert r.mean == 60.0
    assert r.fragile == sorted(perm[:16])
    assert r.null == sorted(perm[16:])
    assert sorted(r.fragile + r.null) == list(range(64))
    assert not set(r.fragile) & set(r.null)


def test_ranking_dataclass_direct():
    r = kernels.Ranking([1.0, 2.0, 3.0, 3.0], 5.0, "weights")
    assert r.mean == 2.25 and r.fragile == [0, 1] and r.null == [2, 3]
    r = kernels.Ranking([7.0] * 4, 7.0, "weights")               # all equal: nothing is fragile
    assert r.fragile == [] and r.null == [0, 1, 2, 3]


def test_rank_on_resnet18_partitions_and_restores(resnet, mnist_small):
    model = resnet("mnist")
    model.train()
    x, y = mnist_small[0][:8], mnist_small[1][:8]
    before = snapshot(model)
    r = kernels.rank(model, x, y)
    assert len(r.accuracies) == 64
    assert sorted(r.fragile + r.null) == list(range(64))
    assert all(a < r.mean for a in (r.accuracies[k] for k in r.fragile))
    assert all(a >= r.mean for a in (r.accuracies[k] for k in r.null))
    assert all(a in {100.0 * i / 8 for i in range(9)} for a in r.accuracies)
    assert state_equal(model, before)
