"""The two ε spaces matched in pixel step size (rule ``eps_matched``).

A pixel-space FGSM step of size ε moves every pixel by ε and clips to [0, 1]; a normalized-space step of size ε′
moves the pixels of channel c by ε′·σ_c and does not clip. At the same number the two differ by 1/σ (≈ 3.2× on
MNIST, ≈ 4× on CIFAR-10), which is why the ε-space rule (``eps_spaces``) can split a verdict. Taken at
ε′ = ε / σ̄, with σ̄ the mean of the data set's channel standard deviations, the steps match in pixel size and the
spaces differ only in the clipping. :func:`matched` finds that ε′ on a results grid.
"""
from __future__ import annotations

TOLERANCE = 0.05      # a grid value within 5 % of ε / σ̄ stands in for it


def sigmas(dataset: str) -> tuple[float, ...]:
    """The data set's per-channel standard deviations, as the models normalize by (:data:`fnlib.models.STATS`)."""
    from ..models import STATS
    return tuple(STATS[dataset][1])


def sigma(dataset: str) -> float:
    s = sigmas(dataset)
    return sum(s) / len(s)


def matched(dataset: str, eps: float, grid) -> float | None:
    """The normalized-space ε′ of ``grid`` nearest ε / σ̄, if within :data:`TOLERANCE` of it (None otherwise)."""
    target = eps / sigma(dataset)
    best = min((float(g) for g in grid if g > 0), key=lambda g: abs(g / target - 1), default=None)
    return best if best is not None and abs(best / target - 1) <= TOLERANCE else None


def find(dataset: str, eps: float, grid) -> tuple[float | None, str]:
    """:func:`matched` and the reading in words: 'normalized ε′ = 0.04, a pixel step of 0.00974–0.0105 against
    pixel space's 0.01', or why the grid holds none."""
    grid = [float(g) for g in grid]
    e, target = matched(dataset, eps, grid), eps / sigma(dataset)
    if e is None:
        return None, (f"no normalized-space ε on the grid lies within {100 * TOLERANCE:g} % of ε/σ̄ = {target:.4g}"
                      + (f" (the grid runs to {max(grid):g})" if grid else " (the results hold no normalized-space grid)"))
    steps = [e * s for s in sigmas(dataset)]
    size = f"{steps[0]:.3g}" if len(steps) == 1 else f"{min(steps):.3g}–{max(steps):.3g}"
    return e, f"normalized ε′ = {e:g}, a pixel step of {size} against pixel space's {eps:g}"
