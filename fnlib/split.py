"""How firmly the test images fix the fragile / null split of conv1 (issue 33; beyond the paper).

Sec 3.3 splits the 64 conv1 kernels at the mean of their drop accuracies, measured on test images, so the split
is itself an estimate: a kernel whose drop accuracy lies a fraction of a point from the mean could fall on the
other side with other images. :func:`drop_correct` keeps, for every kernel, which test images stay right with it
dropped (the data the ranking of :mod:`fnlib.kernels` averages away); :func:`bootstrap` redraws the images with
replacement and splits again each time. Every kernel's drop accuracy is recomputed on the same images in each
resample, so the kernels move together, as they do between image sets.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm import tqdm

from .evaluate import correct
from .kernels import DROPS, dropped


def drop_correct(model, x, y, drop: str = "weights", batch_size: int = 1000, progress: bool = False) -> torch.Tensor:
    """(kernels, images) booleans: image i is classified right with conv1 kernel k dropped."""
    if drop not in DROPS:
        raise ValueError(f"unknown drop {drop!r}; allowed: {', '.join(DROPS)}")
    model.eval()
    rows = []
    for k in tqdm(range(model.conv1.out_channels), desc=f"per-image drop ({drop})", disable=not progress,
                  mininterval=5):
        with dropped(model, k, drop):
            rows.append(correct(model, x, y, batch_size).bool().cpu())
    return torch.stack(rows)


@dataclass
class Bootstrap:
    """The split redrawn ``resamples`` times: how often each kernel is fragile, and the fragile count each time."""
    fragile_frequency: list[float]      # per kernel: share of resamples in which it is fragile
    counts: list[int]                   # per resample: number of fragile kernels
    resamples: int
    seed: int

    def count_interval(self, level: float = 0.95) -> tuple[float, float]:
        """The central ``level`` range of the fragile count over the resamples (percentile bootstrap)."""
        c = torch.tensor(self.counts, dtype=torch.float64)
        q = torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64)
        lo, hi = torch.quantile(c, q).tolist()
        return lo, hi

    def share_within(self, paper: float, margin: float) -> float:
        """Percent of resamples whose fragile share (percent of kernels) lies within ``paper`` ± ``margin``."""
        k = len(self.fragile_frequency)
        inside = [abs(100 * c / k - paper) <= margin for c in self.counts]
        return 100 * sum(inside) / len(inside)


def bootstrap(correct_: torch.Tensor, resamples: int = 1000, seed: int = 0, chunk: int = 100) -> Bootstrap:
    """Redraw the images with replacement ``resamples`` times (multinomial weights, generator seeded with
    ``seed``) and split the kernels at the mean of their drop accuracies each time (Sec 3.3's rule)."""
    kernels, n = correct_.shape
    gen = torch.Generator().manual_seed(seed)
    c = correct_.to(torch.float64).T                                 # (images, kernels)
    frequency, counts = torch.zeros(kernels, dtype=torch.float64), []
    for start in range(0, resamples, chunk):
        b = min(chunk, resamples - start)
        draws = torch.randint(0, n, (b, n), generator=gen)
        weights = torch.zeros(b, n, dtype=torch.float64).scatter_add_(1, draws, torch.ones(b, n, dtype=torch.float64))
        acc = weights @ c / n                                        # (resamples, kernels)
        fragile = acc < acc.mean(dim=1, keepdim=True)
        frequency += fragile.sum(dim=0)
        counts += fragile.sum(dim=1).tolist()
    return Bootstrap((frequency / resamples).tolist(), [int(x) for x in counts], resamples, seed)
