"""Verdict rules of the claims table that sit on top of :mod:`fnlib.stats`: a number against the paper's, a
claim over checkpoints that are still landing, and the verdict names beyond ``stats``' (kept here, not in
``stats``: ``stats`` is part of several steps' cache keys)."""
from __future__ import annotations

from .. import stats
from ..stats import INCONCLUSIVE, NOT, PENDING, REPRODUCED, UNTESTABLE

NO_VERDICT = "no verdict (by design)"    # a value we recompute but do not judge (the CSG complexities)

VERDICTS = (REPRODUCED, NOT, INCONCLUSIVE, UNTESTABLE, PENDING, NO_VERDICT)


def number_verdict(paper, ours, lo=None, hi=None, margin=2.0):
    """Equivalence rule when there is an interval, else the point estimate against paper ± margin."""
    if ours is None:
        return PENDING
    if lo is None:
        return REPRODUCED if abs(ours - paper) <= margin else NOT
    return stats.equivalence(paper, lo, hi, margin)


def all_up_so_far(steps: list[int], complete: bool) -> str:
    """:func:`fnlib.stats.all_up` over the checkpoints that have landed: a step down refutes the claim at once;
    anything else waits for the rest (``complete`` False → pending), so a run still training never reads as
    reproduced."""
    if any(s == -1 for s in steps):
        return NOT
    return stats.all_up(steps) if complete else PENDING


def pending_note(missing: list, verdict: str, decided: str = "a step down already decides the row") -> str:
    """' (epoch 100 pending)' for a row of :func:`all_up_so_far`, saying (``decided``) when a step the wrong
    way already decides it."""
    if not missing:
        return ""
    return (f" (epoch{'s' if len(missing) > 1 else ''} {', '.join(map(str, missing))} pending"
            f"{'; ' + decided if verdict == NOT else ''})")
