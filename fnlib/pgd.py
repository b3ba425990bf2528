"""PGD, L∞ (Madry et al. 2018): FGSM's step repeated from a random start, projected back after each step.

x⁰ = clip(x + U(−ε, ε)), xᵗ⁺¹ = clip(Π_ε(xᵗ + a·sign(∇ₓ L(xᵗ, y)))), with Π_ε the projection onto the L∞ ball
of radius ε around x, clip onto [0, 1] pixels and a = 2.5·ε / steps (Madry et al.'s rule: the walk can
cross the ball). Untargeted, cross-entropy on the true labels, model in eval mode; the random start is
drawn from a seeded generator so that a result repeats. Pixel space only: the defence is scored there.
"""
from __future__ import annotations

import torch

from .attacks import _floats, batches, check_epsilons, gradient_sign


def pgd(model, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int = 20, step_size: float | None = None,
        random_start: bool = True, generator: torch.Generator | None = None) -> torch.Tensor:
    """Adversarial examples for one ε, in pixel units in [0, 1]; x uint8 or float in [0, 1]."""
    (eps,) = check_epsilons([eps])
    if steps < 1:
        raise ValueError(f"PGD needs at least one step, got {steps}")
    device = next(model.parameters()).device
    x = _floats(x, device)
    y = y.to(device)
    a = 2.5 * eps / steps if step_size is None else float(step_size)
    adv = x.clone()
    if random_start and eps > 0:
        noise = torch.rand(x.shape, generator=generator, dtype=x.dtype).to(device) * 2 - 1
        adv = (x + eps * noise).clamp_(0, 1)
    for _ in range(steps):
        adv = adv + a * gradient_sign(model, adv, y)
        adv = torch.min(torch.max(adv, x - eps), x + eps).clamp_(0, 1)
    return adv.detach()


def correct_under_pgd(model, x, y, epsilons, steps: int = 20, seed: int = 0, batch_size: int = 500) -> torch.Tensor:
    """Per-image PGD correctness, bool (len(epsilons), N)."""
    epsilons = check_epsilons(epsilons)
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    model.eval()
    out = []
    for xb, yb in batches(x, y, batch_size):
        yb = yb.to(device)
        with torch.no_grad():
            out.append(torch.stack([(model(pgd(model, xb, yb, e, steps, generator=g)).argmax(1) == yb).cpu()
                                    for e in epsilons]))
    return torch.cat(out, dim=1) if out else torch.zeros(len(epsilons), 0, dtype=torch.bool)
