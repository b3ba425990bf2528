"""FGSM, eq (1), in pixel and in normalized space, and accuracy under attack."""
import pytest
import torch
import torch.nn.functional as F

from fnlib import attacks, evaluate
from conftest import snapshot, state_equal


def independent_grad(model, x, y):
    """∇ₓ of the summed cross-entropy, model in eval mode, computed here and not by fnlib."""
    model.eval()
    x = x.detach().clone().requires_grad_(True)
    F.cross_entropy(model(x), y, reduction="sum").backward()
    model.zero_grad(set_to_none=True)
    return x.grad.detach()


@pytest.mark.parametrize("ds", ["mnist", "cifar10"])
def test_pixel_fgsm_is_clipped_sign_step(resnet, mnist_small, cifar_small, ds):
    model = resnet(ds)
    xu, y = mnist_small if ds == "mnist" else cifar_small
    x = xu.float() / 255
    eps = 0.03
    grad = independent_grad(model, x, y)
    expected = (x + eps * grad.sign()).clamp(0, 1)
    adv = attacks.fgsm(model, x, y, eps)
    assert torch.equal(adv, expected)
    assert adv.min() >= 0 and adv.max() <= 1
    assert not adv.requires_grad
    # the clip really acted (MNIST has many 0 pixels; without clipping some would go negative)
    unclipped = x + eps * grad.sign()
    assert (unclipped < 0).any() or (unclipped > 1).any()
    # most pixels moved by exactly ε
    moved = (adv - x).abs()
    assert torch.isclose(moved, torch.tensor(eps)).float().mean() > 0.3
    # uint8 input gives the same result as the equivalent float input
    assert torch.equal(attacks.fgsm(model, xu, y, eps), adv)


def test_fgsm_increases_the_loss(resnet, cifar_small):
    model = resnet("cifar10")
    x, y = cifar_small[0].float() / 255, cifar_small[1]
    adv = attacks.fgsm(model, x, y, 0.01)
    with torch.no_grad():
        clean = F.cross_entropy(model(x), y).item()
        attacked = F.cross_entropy(model(adv), y).item()
    assert attacked > clean


@pytest.mark.parametrize("space", ["pixel", "normalized"])
def test_eps_zero_returns_x(tiny, space):
    model = tiny(in_ch=3)
    x = torch.rand(5, 3, 8, 8)
    y = torch.arange(5)
    assert torch.equal(attacks.fgsm(model, x, y, 0.0, space=space), x)
    assert torch.equal(attacks.fgsm(model, x, y, 0, space=space), x)


def test_normalized_space_step(resnet, cifar_small):
    model = resnet("cifar10")
    x, y = cifar_small[0].float() / 255, cifar_small[1]
    eps = 0.3
    std = model.normalize.std
    grad_x = independent_grad(model, x, y)
    adv = attacks.fgsm(model, x, y, eps, space="normalized")
    # pixel units: x + ε·σ·sign(∇ₓL), no clipping
    assert torch.allclose(adv, x + eps * std * grad_x.sign(), atol=1e-7, rtol=0)
    assert adv.min() < 0 or adv.max() > 1                   # not clipped
    steps = ((adv - x) / std).abs()
    assert torch.allclose(steps[grad_x != 0], torch.tensor(eps), atol=1e-5)
    # normalized units: z + ε·sign(∇_z L), with ∇_z computed on the body directly
    z = model.normalize(x).detach().requires_grad_(True)
    F.cross_entropy(model.body(z), y, reduction="sum").backward()
    expected_z = z.detach() + eps * z.grad.sign()
    with torch.no_grad():
        assert torch.allclose(model.normalize(adv), expected_z, atol=1e-5, rtol=0)


def test_normalized_space_differs_from_pixel_space(tiny):
    model = tiny(in_ch=1)
    x = torch.rand(6, 1, 8, 8)
    y = torch.arange(6)
    eps = 0.02
    pix = attacks.fgsm(model, x, y, eps, space="pixel")
    nor = attacks.fgsm(model, x, y, eps, space="normalized")
    std = model.normalize.std                                  # 0.25 in TinyNet
    assert torch.allclose((nor - x).abs().max(), eps * std.max())
    assert torch.allclose((pix - x).abs().max(), torch.tensor(eps))


def test_fgsm_keeps_training_mode_and_buffers(resnet, mnist_small):
    model = resnet("mnist")
    model.train()
    before = snapshot(model)
    attacks.fgsm(model, mnist_small[0], mnist_small[1], 0.1)
    assert model.training                                      # mode restored
    assert state_equal(model, before)                          # eval mode used: BN statistics untouched
    assert all(p.grad is None for p in model.parameters())     # no gradients left on the weights


@pytest.mark.parametrize("eps", [-0.01, float("nan"), float("inf"), -float("inf")])
def test_bad_eps_raises(tiny, eps):
    model = tiny()
    with pytest.raises(ValueError, match="ε"):
        attacks.fgsm(model, torch.rand(2, 1, 8, 8), torch.tensor([0, 1]), eps)
    with pytest.raises(ValueError, match="ε"):
        attacks.accuracy_under_attack(model, torch.rand(2, 1, 8, 8), torch.tensor([0, 1]), [0.0, eps])


def test_unknown_space_and_empty_grid_raise(tiny):
    model = tiny()
    x, y = torch.rand(2, 1, 8, 8), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="pixel, normalized"):
        attacks.fgsm(model, x, y, 0.1, space="logits")
    with pytest.raises(ValueError, match="pixel, normalized"):
        attacks.accuracy_under_attack(model, x, y, [0.1], space="Pixel")
    with pytest.raises(ValueError, match="empty"):
        attacks.accuracy_under_attack(model, x, y, [])


def test_check_epsilons_accepts_scalar_and_iterables():
    assert attacks.check_epsilons(0.5) == [0.5]
    assert attacks.check_epsilons([0, 0.01]) == [0.0, 0.01]
    assert attacks.check_epsilons(torch.tensor([0.1, 0.2])) == pytest.approx([0.1, 0.2])


@pytest.mark.parametrize("space", ["pixel", "normalized"])
def test_accuracy_under_attack_at_zero_is_clean_accuracy(resnet, mnist_small, space):
    model = resnet("mnist")
    x, y = mnist_small
    clean = evaluate.accuracy(model, x, y)
    res = attacks.accuracy_under_attack(model, x, y, [0.0, 0.1, 0.3], space=space, batch_size=5)
    assert [r["epsilon"] for r in res] == [0.0, 0.1, 0.3]
    assert all(r["space"] == space for r in res)
    assert res[0]["accuracy"] == clean
    # each ε agrees with attacking the whole set at once and measuring accuracy (batching is invisible)
    for r in res[1:]:
        adv = attacks.fgsm(model, x, y, r["epsilon"], space=space)
        assert r["accuracy"] == pytest.approx(evaluate.accuracy(model, adv, y))


def test_accuracy_under_attack_hand_model():
    """A linear model on one pixel: class 1 iff x > 0.5. FGSM at ε pushes x away from its label."""
    import torch.nn as nn

    class Lin(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.tensor([[-10.0], [10.0]]))
            self.b = nn.Parameter(torch.tensor([5.0, -5.0]))

        def forward(self, x):
            return x.flatten(1) @ self.w.T + self.b

    model = Lin()
    x = torch.tensor([0.1, 0.45, 0.55, 0.9]).view(4, 1, 1, 1)
    y = torch.tensor([0, 0, 1, 1])
    res = attacks.accuracy_under_attack(model, x, y, [0.0, 0.04, 0.1, 0.5])
    assert [r["accuracy"] for r in res] == [100.0, 100.0, 50.0, 0.0]
    adv = attacks.fgsm(model, x, y, 0.1)
    assert torch.allclose(adv.flatten(), torch.tensor([0.2, 0.55, 0.45, 0.8]))
    adv = attacks.fgsm(model, x, y, 0.5)
    assert torch.allclose(adv.flatten(), torch.tensor([0.6, 0.95, 0.05, 0.4]))
    adv = attacks.fgsm(model, x, y, 1.0)
    assert torch.equal(adv.flatten(), torch.tensor([1.0, 1.0, 0.0, 0.0]))   # clipped
