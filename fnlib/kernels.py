"""Fragile and null kernels of conv1 by nodal dropout (Sec 3.3, Fig 1, Fig 4).

Each of the 64 conv1 kernels is dropped in turn and test accuracy is measured. ``drop="weights"``
zeroes ``conv1.weight[k]``; ``drop="activation"`` zeroes channel k after bn1 + relu (the two differ
because bn1 adds a bias to a zeroed convolution). Fragile S: accuracy below the mean of the 64
accuracies; null S': accuracy at or above it. The model is restored after every drop.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from tqdm import tqdm

from .evaluate import accuracy

DROPS = ("weights", "activation")


@contextmanager
def dropped(model, k: int, drop: str = "weights"):
    """Within the block, kernel k of conv1 is dropped; on exit the model is exactly as before."""
    if drop not in DROPS:
        raise ValueError(f"unknown drop {drop!r}; allowed: {', '.join(DROPS)}")
    conv = model.conv1
    if not 0 <= k < conv.out_channels:
        raise ValueError(f"kernel index {k} outside 0..{conv.out_channels - 1}")
    if drop == "weights":
        saved = conv.weight.data[k].clone()
        conv.weight.data[k].zero_()
        try:
            yield model
        finally:
            conv.weight.data[k].copy_(saved)
    else:
        def zero_channel(_module, _inputs, out):
            out = out.clone()
            out[:, k] = 0
            return out
        handle = model.body.relu.register_forward_hook(zero_channel)
        try:
            yield model
        finally:
            handle.remove()


@dataclass
class Ranking:
    """Per-kernel drop accuracies and the fragile / null split they induce."""
    accuracies: list[float]
    base_accuracy: float
    drop: str
    mean: float = field(init=False)
    fragile: list[int] = field(init=False)
    null: list[int] = field(init=False)

    def __post_init__(self):
        acc = torch.tensor(self.accuracies, dtype=torch.float64)
        self.mean = acc.mean().item()
        self.fragile = [k for k, a in enumerate(self.accuracies) if a < self.mean]
        self.null = [k for k, a in enumerate(self.accuracies) if a >= self.mean]


def rank(model, x, y, drop: str = "weights", batch_size: int = 1000, progress: bool = False) -> Ranking:
    """Drop every conv1 kernel in turn and split them into fragile S and null S' (Sec 3.3)."""
    if drop not in DROPS:
        raise ValueError(f"unknown drop {drop!r}; allowed: {', '.join(DROPS)}")
    model.eval()
    base = accuracy(model, x, y, batch_size)
    accs = []
    for k in tqdm(range(model.conv1.out_channels), desc=f"drop ({drop})", disable=not progress, mininterval=5):
        with dropped(model, k, drop):
            accs.append(accuracy(model, x, y, batch_size))
    return Ranking(accs, base, drop)
