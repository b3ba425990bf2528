"""Intervals, tests and the verdict rules of the claims table (no torch).

Every verdict is one of REPRODUCED, NOT, INCONCLUSIVE (or UNTESTABLE / PENDING when there is nothing to
test) and follows a stated rule:

* a **number** of the paper is *reproduced* when the 95 % interval of ours lies inside the paper's value ±
  a margin, *not reproduced* when it lies wholly outside, *inconclusive* when it straddles an edge
  (an equivalence test, :func:`equivalence`);
* a **change** (between epochs, models or ε values) counts when a one-sided test at level 0.05 says so:
  McNemar's exact test where the two sides are the same images (:func:`mcnemar_greater`), otherwise the
  two-proportion z-test (:func:`proportion_greater`, conservative for images shared by both sides).

Accuracies and percentages of images get Wilson score intervals (:func:`wilson`).
"""
from __future__ import annotations

import math

from scipy import stats as _st

ALPHA = 0.05
Z = 1.959963984540054       # two-sided 95 %
REPRODUCED, NOT, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive"
UNTESTABLE, PENDING = "not testable here", "pending (not computed yet)"


def wilson(k: float, n: int, z: float = Z) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion k/n, in percent."""
    if n <= 0:
        raise ValueError("n must be positive")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    lo = 0.0 if k <= 0 else 100 * max(0.0, centre - half)         # exact ends (no 2e-17 from rounding)
    hi = 100.0 if k >= n else 100 * min(1.0, centre + half)
    return lo, hi


def mcnemar_greater(only_b: int, only_a: int) -> float:
    """One-sided exact McNemar p-value that model B beats model A on the same images.

    ``only_b``: images right for B only; ``only_a``: right for A only (the discordant pairs).
    """
    n = only_a + only_b
    return 1.0 if n == 0 else float(_st.binomtest(only_b, n, 0.5, alternative="greater").pvalue)


def proportion_greater(k_b: float, n_b: int, k_a: float, n_a: int) -> float:
    """One-sided two-proportion z-test p-value that proportion B > proportion A (pooled variance)."""
    pa, pb = k_a / n_a, k_b / n_b
    pool = (k_a + k_b) / (n_a + n_b)
    se = math.sqrt(pool * (1 - pool) * (1 / n_a + 1 / n_b))
    if se == 0:
        return 0.5 if pa == pb else (0.0 if pb > pa else 1.0)
    return float(_st.norm.sf((pb - pa) / se))


def equivalence(paper: float, lo: float, hi: float, margin: float) -> str:
    """The number rule: interval [lo, hi] inside paper ± margin, wholly outside, or straddling an edge."""
    if paper - margin <= lo and hi <= paper + margin:
        return REPRODUCED
    if hi < paper - margin or lo > paper + margin:
        return NOT
    return INCONCLUSIVE


def accuracy_margin(paper: float) -> float:
    """Margin for an accuracy: 2 points, but at most half the paper's error rate (99.42 % → 0.29 points)."""
    return min(2.0, 0.5 * (100.0 - paper))


def direction(p_up: float, p_down: float) -> int:
    """+1 significantly up, -1 significantly down, 0 neither."""
    return 1 if p_up < ALPHA else -1 if p_down < ALPHA else 0


def all_up(steps: list[int]) -> str:
    """A monotone-growth claim: every step significantly up → reproduced; any step down → not; else inconclusive."""
    if not steps:
        return UNTESTABLE
    if all(s == 1 for s in steps):
        return REPRODUCED
    return NOT if any(s == -1 for s in steps) else INCONCLUSIVE


def combine(verdicts: list[str]) -> str:
    """A claim tested in several places: reproduced only if reproduced everywhere; not if not anywhere."""
    verdicts = [v for v in verdicts if v not in (UNTESTABLE, PENDING)]
    if not verdicts:
        return UNTESTABLE
    if all(v == REPRODUCED for v in verdicts):
        return REPRODUCED
    return NOT if NOT in verdicts else INCONCLUSIVE


def t_interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and the two ends of the t interval of the mean over the finite values (NaN ends below two)."""
    values = [float(v) for v in values if v == v]
    if not values:
        return float("nan"), float("nan"), float("nan")
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    half = _st.t.ppf((1 + level) / 2, len(values) - 1) * sd / math.sqrt(len(values))
    return mean, mean - half, mean + half


def holm(pvalues: dict) -> dict:
    """Holm's step-down adjusted p-values ({name: p} → {name: adjusted p}): family-wise error ≤ α."""
    order = sorted(pvalues, key=lambda k: pvalues[k])
    m, out, running = len(order), {}, 0.0
    for i, k in enumerate(order):
        running = max(running, min(1.0, (m - i) * pvalues[k]))
        out[k] = running
    return out
