"""Algorithm 1 (Sec 4.3): does the FGSM perturbation move the fragile kernels' maps more than the null ones'?"""
import numpy as np
import pytest
import torch

from fnlib import attacks, targeting
from conftest import make_tiny, snapshot, state_equal

A = [0, 3, 7, 8, 20, 33, 41, 50, 62]          # channels that read input channel 0 (the one that moves)
B = [k for k in range(64) if k not in A]      # channels that read input channel 1 (which never moves)


def split_model():
    """Two input channels; conv1 is 1x1, channels A read input 0 and channels B read input 1. The classifier
    ignores the B channels, so ∇ of the loss w.r.t. input 1 is exactly 0 and FGSM leaves input 1 alone:
    the perturbation reaches only the A channels of conv1."""
    model = make_tiny(in_ch=2, kernel=1, seed=5)
    with torch.no_grad():
        w = model.conv1.weight                           # (64, 2, 1, 1)
        w.zero_()
        w[A, 0] = torch.linspace(0.5, 1.5, len(A)).view(-1, 1, 1)
        w[B, 1] = torch.linspace(0.5, 1.5, len(B)).view(-1, 1, 1)
        model.body.fc.weight[:, B] = 0.0
    return model


def split_data(n=12):
    g = torch.Generator().manual_seed(0)
    x = 0.2 + 0.6 * torch.rand(n, 2, 5, 5, generator=g)   # far from 0 and 1: no clipping at ε ≤ 0.1
    y = torch.arange(n) % 10
    return x, y


@pytest.mark.parametrize("layer", ["conv1", "bn1", "relu"])
@pytest.mark.parametrize("space", ["pixel", "normalized"])
def test_known_answer_fragile_channels_moved(layer, space):
    model = split_model()
    x, y = split_data()
    # the premise: FGSM moves input 0 everywhere and input 1 nowhere
    adv = attacks.fgsm(model, x, y, 0.05, space=space)
    assert torch.equal(adv[:, 1], x[:, 1])
    assert (adv[:, 0] != x[:, 0]).all()
    eps = [0.0, 0.01, 0.05]
    # A moves, B does not: S = A -> every image counts (except at ε = 0, where S_f = S_n = 0)
    res = targeting.algorithm1(model, x, y, A, B, eps, layer=layer, space=space, batch_size=5)
    assert [r["percent"] for r in res] == [0.0, 100.0, 100.0]
    assert [r["fragile_count"] for r in res] == [0, 12, 12]
    assert all(r["n"] == 12 and r["layer"] == layer and r["space"] == space for r in res)
    assert [r["epsilon"] for r in res] == eps
    # S = B: never
    res = targeting.algorithm1(model, x, y, B, A, eps, layer=layer, space=space)
    assert [r["percent"] for r in res] == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("fragile,null,percent", [
    # 2 weak movers alone (mean 0.5625) against 7 strong movers diluted by 55 still channels (mean 0.127):
    # the MEAN over S is larger -> 100 % (a sum instead of a mean would say 0 %)
    (A[:2], A[2:] + B, 100.0),
    # 4 movers in 44 (mean 2.75/44) against 5 movers in 20 (mean 6.25/20) -> 0 %
    (A[:4] + B[:40], A[4:] + B[40:], 0.0),
    # kernels outside S ∪ S' are ignored: S = A[6:], S' = A[:6]
    (A[6:], A[:6], 100.0),
])
def test_known_answer_mean_distances(fragile, null, percent):
    model = split_model()
    x, y = split_data(20)
    (r,) = targeting.algorithm1(model, x, y, fragile, null, [0.03])
    assert r["percent"] == percent
    # the same answer by hand: with 1x1 kernels, d_k = |w_k|·‖Δx₀‖/σ₀ for k in A and 0 for k in B
    adv = attacks.fgsm(model, x, y, 0.03)
    dx = ((adv[:, 0] - x[:, 0]) / model.normalize.std[0, 0]).flatten(1).norm(dim=1)       # (N,)
    w = model.conv1.weight[:, 0, 0, 0].abs().detach()
    sf = torch.stack([w[k] * dx for k in fragile]).mean(0)
    sn = torch.stack([w[k] * dx for k in null]).mean(0)
    assert r["fragile_count"] == int((sf > sn).sum())


def test_space_is_used_clipping_known_answer():
    """Channel 0 saturated at 1.0 and a gradient that pushes it further up: a pixel-space step is clipped
    away entirely (nothing moves, 0 %), a normalized-space step is not (only the A channels move, 100 %)."""
    model = split_model()
    with torch.no_grad():
        bn = model.body.bn1
        bn.weight.fill_(1.0), bn.bias.fill_(10.0), bn.running_mean.zero_(), bn.running_var.fill_(1.0)
        model.body.fc.weight.zero_(), model.body.fc.bias.zero_()
        model.body.fc.weight[0, A] = -1.0        # raising channel 0 lowers the true class's logit
    x, _ = split_data(6)
    x[:, 0] = 1.0
    y = torch.zeros(6, dtype=torch.long)
    assert (attacks.gradient_sign(model, x, y)[:, 0] == 1).all()
    eps = [0.01, 0.1]
    for layer in ("conv1", "relu"):
        pix = targeting.algorithm1(model, x, y, A, B, eps, layer=layer, space="pixel")
        nor = targeting.algorithm1(model, x, y, A, B, eps, layer=layer, space="normalized")
        assert [r["percent"] for r in pix] == [0.0, 0.0]
        assert [r["percent"] for r in nor] == [100.0, 100.0]


def test_algorithm1_matches_per_image_definition(resnet, cifar_small):
    model = resnet("cifar10")
    x, y = cifar_small[0][:8], cifar_small[1][:8]
    g = torch.Generator().manual_seed(2)
    perm = torch.randperm(64, generator=g).tolist()
    fragile, null = perm[:24], perm[24:]
    before = snapshot(model)
    eps = [0.001, 0.05]
    res = targeting.algorithm1(model, x, y, fragile, null, eps, layer="bn1", batch_size=3)
    assert state_equal(model, before)
    xf = x.float() / 255
    for r, e in zip(res, eps):
        adv = attacks.fgsm(model, xf, y, e)
        count = 0
        with torch.no_grad():
            for i in range(len(x)):
                c = model.body.bn1(model.body.conv1(model.normalize(xf[i:i + 1])))[0]
                a = model.body.bn1(model.body.conv1(model.normalize(adv[i:i + 1])))[0]
                d = [torch.sqrt(((c[k] - a[k]) ** 2).sum()).item() for k in range(64)]
                count += np.mean([d[k] for k in fragile]) > np.mean([d[k] for k in null])
        assert r["fragile_count"] == count
        assert r["percent"] == pytest.approx(100 * count / 8)


def test_channel_distances_is_per_channel_l2():
    g = torch.Generator().manual_seed(0)
    y, y2 = torch.randn(3, 5, 4, 6, generator=g), torch.randn(3, 5, 4, 6, generator=g)
    d = targeting.channel_distances(y, y2)
    assert d.shape == (3, 5)
    for n in range(3):
        for k in range(5):
            assert d[n, k].item() == pytest.approx(float(np.sqrt(((y[n, k] - y2[n, k]).numpy() ** 2).sum())), rel=1e-5)
    assert torch.equal(targeting.channel_distances(y, y), torch.zeros(3, 5))


def test_attacks_fragile_is_strict():
    d = torch.tensor([[1.0, 3.0, 2.0, 2.0],      # S_f = 2, S_n = 2 -> no (strict)
                      [3.0, 3.0, 2.0, 2.0],      # 3 > 2 -> yes
                      [0.0, 1.0, 2.0, 0.0]])     # 0.5 < 1 -> no
    assert targeting.attacks_fragile(d, [0, 1], [2, 3]).tolist() == [False, True, False]


def test_check_sets():
    assert targeting.check_sets([5, 1], np.array([3, 2])) == ([1, 5], [2, 3])
    assert targeting.check_sets(torch.tensor([0]), [63]) == ([0], [63])
    with pytest.raises(ValueError, match="non-empty"):
        targeting.check_sets([], [1, 2])
    with pytest.raises(ValueError, match="non-empty"):
        targeting.check_sets([1, 2], [])
    with pytest.raises(ValueError, match=r"\[2\]"):
        targeting.check_sets([1, 2], [2, 3])
    with pytest.raises(ValueError, match="0..63"):
        targeting.check_sets([1, 64], [2, 3])
    with pytest.raises(ValueError, match="0..63"):
        targeting.check_sets([-1], [2, 3])
    with pytest.raises(ValueError, match="0..7"):
        targeting.check_sets([1], [8], channels=8)


def test_algorithm1_rejects_bad_arguments():
    model = split_model()
    x, y = split_data(2)
    with pytest.raises(ValueError, match="conv1, bn1, relu"):
        targeting.algorithm1(model, x, y, A, B, [0.1], layer="layer1")
    with pytest.raises(ValueError, match="pixel, normalized"):
        targeting.algorithm1(model, x, y, A, B, [0.1], space="z")
    with pytest.raises(ValueError, match="ε"):
        targeting.algorithm1(model, x, y, A, B, [-0.1])
    with pytest.raises(ValueError, match="both"):
        targeting.algorithm1(model, x, y, A, A, [0.1])
