"""Algorithm 1, adversarial targeting (Sec 4.3, Fig 2 right, Fig 3).

For every ε and test image: x' = FGSM(full model, x, ε); y = f_L(x), y' = f_L(x') with f_L the output
of conv1 (or bn1, or the relu after them); d_k = ‖y_k − y'_k‖₂ over the spatial map of channel k;
S_f = mean of d over fragile kernels S, S_n = mean over null kernels S'. The image "attacks S" when
S_f > S_n. The result is the percentage of such images per ε.
"""
from __future__ import annotations

import torch
from tqdm import tqdm

from .attacks import _floats, batches, check_epsilons, check_space, gradient_sign, perturb
from .models import LAYERS


def check_sets(fragile, null, channels: int = 64) -> tuple[list[int], list[int]]:
    fragile, null = sorted(int(k) for k in fragile), sorted(int(k) for k in null)
    if not fragile or not null:
        raise ValueError("S (fragile) and S' (null) must both be non-empty; rank the kernels first "
                         "(fnlib.kernels.rank) — an empty set means all 64 drop accuracies were equal")
    if set(fragile) & set(null):
        raise ValueError(f"kernels {sorted(set(fragile) & set(null))} are in both S and S'")
    if not all(0 <= k < channels for k in fragile + null):
        raise ValueError(f"kernel indices must lie in 0..{channels - 1}")
    return fragile, null


def channel_distances(y: torch.Tensor, y_adv: torch.Tensor) -> torch.Tensor:
    """d_k = ‖y_k − y'_k‖₂ over each channel's spatial map: (N, C, H, W) -> (N, C)."""
    return (y - y_adv).flatten(2).norm(dim=2)


def attacks_fragile(d: torch.Tensor, fragile, null) -> torch.Tensor:
    """Lines 12-14 of Algorithm 1: True where the mean distance over S exceeds the mean over S'."""
    return d[:, fragile].mean(1) > d[:, null].mean(1)


def algorithm1(model, x, y, fragile, null, epsilons, layer: str = "conv1", space: str = "pixel",
               batch_size: int = 500, progress: bool = False) -> list[dict]:
    """Percent of images whose perturbation concentrates on fragile kernels, for every ε."""
    if layer not in LAYERS:
        raise ValueError(f"unknown layer {layer!r}; allowed: {', '.join(LAYERS)}")
    check_space(space)
    epsilons = check_epsilons(epsilons)
    fragile, null = check_sets(fragile, null, model.conv1.out_channels)
    device = next(model.parameters()).device
    model.eval()
    count = torch.zeros(len(epsilons), dtype=torch.long)
    for xb, yb in tqdm(list(batches(x, y, batch_size)), desc="algorithm 1", disable=not progress, mininterval=5):
        xb, yb = _floats(xb, device), yb.to(device)
        sign = gradient_sign(model, xb, yb)
        with torch.no_grad():
            clean = model.stem(model.normalize(xb), layer)
            for j, eps in enumerate(epsilons):
                adv = model.stem(model.normalize(perturb(model, xb, sign, eps, space)), layer)
                count[j] += attacks_fragile(channel_distances(clean, adv), fragile, null).sum().item()
    n = len(x)
    return [{"space": space, "epsilon": e, "n": n, "fragile_count": c.item(), "percent": 100.0 * c.item() / n,
             "layer": layer} for e, c in zip(epsilons, count)]
