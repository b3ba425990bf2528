"""Fragile kernels and Algorithm 1 at every convolution, not only conv1 (the paper studies conv1 alone).

For each Conv2d of the network, in forward order (``depth`` 0 = conv1): every output kernel is dropped
in turn (weights zeroed, as :mod:`fnlib.kernels` does for conv1) and accuracy and loss measured. Two
splits per layer (``criterion``): ``accuracy`` — the paper's rule, fragile S = drop accuracy below the
layer's mean; ``loss`` — fragile S = cross-entropy with the kernel dropped above the layer's mean. The
second exists because accuracy moves in steps of one image: deep in a well-trained network most single
drops change no prediction, the accuracies tie and the paper's split degenerates (S empty, or S = every
kernel tied below a few that gained an image). Algorithm 1 then compares, at that convolution's
output, the mean per-channel distance ‖y_k − y'_k‖₂ over S and over S' between clean and FGSM images
(one gradient per image, every layer read in the same forward pass through hooks), and the same for a
random-sign perturbation of the same L∞ size, the control that exposes norm effects (:mod:`fnlib.controls`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from .attacks import _floats, batches, check_epsilons, gradient_sign, perturb
from .evaluate import accuracy
from .kernels import Ranking
from .targeting import attacks_fragile, channel_distances


def convolutions(model) -> list[tuple[str, nn.Conv2d]]:
    """(name, module) of every Conv2d of ``model.body`` in forward (definition) order."""
    return [(n, m) for n, m in model.body.named_modules() if isinstance(m, nn.Conv2d)]


def dropped_logits(model, conv: nn.Conv2d, x: torch.Tensor, kernels: list[int]) -> torch.Tensor:
    """Logits (len(kernels), N, classes): the images x (floats on the model's device) once per kernel k, with
    k's output channel of ``conv`` zeroed in its copy — the same as zeroing ``conv.weight[k]`` (no bias)."""
    if conv.bias is not None:
        raise ValueError("a kernel is dropped by zeroing its output channel, which needs a bias-free conv")
    n = len(x)

    def zero(_m, _i, out):
        out = out.clone()
        for g, k in enumerate(kernels):
            out[g * n:(g + 1) * n, k] = 0
        return out
    handle = conv.register_forward_hook(zero)
    try:
        with torch.no_grad():
            return model(x.repeat(len(kernels), *([1] * (x.dim() - 1)))).view(len(kernels), n, -1)
    finally:
        handle.remove()


@dataclass
class LossSplit:
    """Fragile S = kernels whose drop raises the mean cross-entropy above the layer's mean; null S' = the rest."""
    losses: list[float]
    fragile: list[int] = field(init=False)
    null: list[int] = field(init=False)

    def __post_init__(self):
        mean = sum(self.losses) / len(self.losses)
        self.fragile = [k for k, v in enumerate(self.losses) if v > mean]
        self.null = [k for k, v in enumerate(self.losses) if v <= mean]


def rank_layer(model, conv: nn.Conv2d, x, y, batch_size: int = 500) -> tuple[list[float], list[float]]:
    """Accuracy (%) and mean cross-entropy with each output kernel of ``conv`` dropped in turn, as many
    kernels per forward pass as ``batch_size`` images allow."""
    device = next(model.parameters()).device
    x, y = _floats(x, device), y.to(device)
    group = max(1, batch_size // max(1, len(y)))
    accs, losses = [], []
    for start in range(0, conv.out_channels, group):
        ks = list(range(start, min(start + group, conv.out_channels)))
        logits = dropped_logits(model, conv, x, ks)
        accs += (100.0 * (logits.argmax(2) == y).sum(1).double() / len(y)).tolist()
        losses += [F.cross_entropy(lg, y).item() for lg in logits]
    return accs, losses


def rank_all(model, x, y, batch_size: int = 500, progress: bool = False) -> dict[str, dict]:
    """Nodal-dropout splits of every convolution: {"accuracy": {layer: Ranking}, "loss": {layer: LossSplit}}."""
    model.eval()
    base = accuracy(model, x, y, batch_size)
    out = {"accuracy": {}, "loss": {}}
    for name, conv in tqdm(convolutions(model), desc="layers", disable=not progress, mininterval=5):
        accs, losses = rank_layer(model, conv, x, y, batch_size)
        out["accuracy"][name] = Ranking(accs, base, "weights")
        out["loss"][name] = LossSplit(losses)
    return out


def targeting_all(model, x, y, sets: dict, epsilons, seed: int = 0,
                  batch_size: int = 500) -> dict[str, torch.Tensor]:
    """Images attacking S at every layer of ``sets`` ({name: split with .fragile, .null}):
    {name: (2, len(epsilons)) counts, row 0 FGSM, row 1 random sign}."""
    epsilons = check_epsilons(epsilons)
    convs = dict(convolutions(model))
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    model.eval()
    seen: dict[str, torch.Tensor] = {}
    hooks = [convs[n].register_forward_hook(lambda _m, _i, out, n=n: seen.__setitem__(n, out.detach()))
             for n in sets]
    counts = {n: torch.zeros(2, len(epsilons), dtype=torch.long) for n in sets}
    try:
        for xb, yb in batches(x, y, batch_size):
            xb, yb = _floats(xb, device), yb.to(device)
            sign = gradient_sign(model, xb, yb)
            noise = (torch.randint(0, 2, xb.shape, generator=g) * 2 - 1).to(device, xb.dtype)
            with torch.no_grad():
                model(xb)
                clean = dict(seen)
                for j, eps in enumerate(epsilons):
                    for row, direction in enumerate((sign, noise)):
                        model(perturb(model, xb, direction, eps, "pixel"))
                        for n, r in sets.items():
                            if r.fragile and r.null:
                                d = channel_distances(clean[n].float(), seen[n].float()).cpu()
                                counts[n][row, j] += attacks_fragile(d, r.fragile, r.null).sum()
    finally:
        for h in hooks:
            h.remove()
    return counts


def layer_table(model, splits: dict[str, dict], counts: dict[str, dict], epsilons, n: int) -> list[dict]:
    """One row per (criterion, layer, ε): depth, kernels, fragile share, the layer's mean drop accuracy or
    loss, % of images attacking S under FGSM and under a random sign (NaN where S or S' is empty)."""
    convs = dict(convolutions(model))
    rows = []
    for criterion, sets in splits.items():
        for depth, (name, r) in enumerate(sets.items()):
            values = r.accuracies if criterion == "accuracy" else r.losses
            for j, eps in enumerate(check_epsilons(epsilons)):
                empty = not (r.fragile and r.null)
                c = counts[criterion][name]
                rows.append({"criterion": criterion, "layer": name, "depth": depth, "kernels": convs[name].out_channels,
                             "n_fragile": len(r.fragile), "fraction_fragile": len(r.fragile) / len(values),
                             "mean": sum(values) / len(values), "epsilon": eps, "n": n,
                             "percent": float("nan") if empty else 100.0 * c[0, j].item() / n,
                             "random_percent": float("nan") if empty else 100.0 * c[1, j].item() / n})
    return rows
