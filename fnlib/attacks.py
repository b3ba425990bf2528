"""FGSM, eq (1): x' = x + ε·sign(∇ₓ L(x, y, θ)), untargeted, cross-entropy on the true labels.

``space="pixel"`` (default) takes the step on pixels in [0, 1] and clips back into [0, 1].
``space="normalized"`` takes the step on the normalized tensor z = (x − μ)/σ without clipping, as many
published codes do; it is returned in pixel units, x' = x + ε·σ·sign(∇ₓ L), which the model maps back to
exactly z + ε·sign(∇_z L) (σ > 0, so the two gradients have the same sign).

The gradient sign does not depend on ε, so :func:`gradient_sign` is computed once per image and
:func:`perturb` applies any number of ε to it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

SPACES = ("pixel", "normalized")


def check_epsilons(epsilons) -> list[float]:
    eps = [float(e) for e in (epsilons if hasattr(epsilons, "__iter__") else [epsilons])]
    if not eps:
        raise ValueError("epsilons is empty; give at least one ε ≥ 0")
    bad = [e for e in eps if not (e >= 0) or e == float("inf")]
    if bad:
        raise ValueError(f"ε must be finite and ≥ 0, got {bad}")
    return eps


def check_space(space: str) -> None:
    if space not in SPACES:
        raise ValueError(f"unknown space {space!r}; allowed: {', '.join(SPACES)}")


def _floats(x: torch.Tensor, device) -> torch.Tensor:
    x = x.to(device)
    return x.float().div_(255) if x.dtype == torch.uint8 else x.float()


def gradient_sign(model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """sign(∇ₓ L) for one batch of [0, 1] images, model in eval mode (summed loss: no underflow)."""
    was = model.training
    model.eval()
    with torch.enable_grad():
        x = x.detach().clone().requires_grad_(True)
        loss = F.cross_entropy(model(x), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x)
    model.train(was)
    return grad.sign()


def perturb(model, x: torch.Tensor, sign: torch.Tensor, eps: float, space: str = "pixel") -> torch.Tensor:
    """Apply one ε to a precomputed gradient sign; returns adversarial images in pixel units."""
    if space == "pixel":
        return (x + eps * sign).clamp_(0, 1)
    return x + eps * model.normalize.std * sign


def fgsm(model, x: torch.Tensor, y: torch.Tensor, eps: float, space: str = "pixel") -> torch.Tensor:
    """Adversarial examples x' for one ε (eq 1); x uint8 or float in [0, 1]."""
    check_space(space)
    (eps,) = check_epsilons([eps])
    device = next(model.parameters()).device
    x = _floats(x, device)
    return perturb(model, x, gradient_sign(model, x, y.to(device)), eps, space).detach()


def batches(x, y, batch_size):
    for i in range(0, len(x), batch_size):
        yield x[i:i + batch_size], y[i:i + batch_size]


def correct_under_attack(model, x, y, epsilons, space: str = "pixel", batch_size: int = 500,
                         progress: bool = False) -> torch.Tensor:
    """Per-image FGSM correctness, bool (len(epsilons), N): one gradient per image, one forward pass per ε."""
    check_space(space)
    epsilons = check_epsilons(epsilons)
    device = next(model.parameters()).device
    model.eval()
    out = []
    from tqdm import tqdm
    for xb, yb in tqdm(list(batches(x, y, batch_size)), desc=f"fgsm {space}", disable=not progress, mininterval=5):
        xb, yb = _floats(xb, device), yb.to(device)
        sign = gradient_sign(model, xb, yb)
        with torch.no_grad():
            out.append(torch.stack([(model(perturb(model, xb, sign, eps, space)).argmax(1) == yb).cpu()
                                    for eps in epsilons]))
    return torch.cat(out, dim=1) if out else torch.zeros(len(epsilons), 0, dtype=torch.bool)


def accuracy_under_attack(model, x, y, epsilons, space: str = "pixel", batch_size: int = 500,
                          progress: bool = False, correct: torch.Tensor | None = None) -> list[dict]:
    """FGSM accuracy (percent) for every ε (from ``correct`` when the per-image results are at hand)."""
    epsilons = check_epsilons(epsilons)
    if correct is None:
        correct = correct_under_attack(model, x, y, epsilons, space, batch_size, progress)
    return [{"space": space, "epsilon": e, "accuracy": 100.0 * c.sum().item() / len(x)}
            for e, c in zip(epsilons, correct)]
