"""A verdict is a value, not a string to parse: :class:`Verdict` is the enum every row of ``summary.json`` carries
(its ``verdict`` field holds the enum's value), beside the row's ``reason`` (one plain sentence), ``scope`` (runs,
epochs, ε spaces, seeds), ``evidence`` and the rules it cites (:mod:`.rules`).

:mod:`fnlib.stats` keeps its own string constants (they are part of several steps' cache keys); :meth:`Verdict.of`
maps them, and the legacy spellings of older summaries, onto the enum.
"""
from __future__ import annotations

from enum import Enum

from .. import stats


class Verdict(str, Enum):
    REPRODUCED = "reproduced"
    NOT = "not reproduced"
    INCONCLUSIVE = "inconclusive"
    NO_VERDICT = "no verdict"     # a value recomputed but not judged, or a claim this profile cannot test
    PENDING = "pending"           # its results have not landed yet

    def __str__(self) -> str:     # f"{v}" is the plain word, never "Verdict.NOT"
        return self.value

    @classmethod
    def of(cls, value) -> "Verdict":
        """The enum member for ``value``: a member, its value, or one of :mod:`fnlib.stats`' constants
        (``stats.PENDING`` is "pending (not computed yet)", ``stats.UNTESTABLE`` "not testable here": both map to
        the enum, the latter to NO_VERDICT). Anything else is a ValueError, never a guess."""
        if isinstance(value, cls):
            return value
        legacy = {stats.PENDING: cls.PENDING, stats.UNTESTABLE: cls.NO_VERDICT, "no verdict (by design)": cls.NO_VERDICT}
        if value in legacy:
            return legacy[value]
        return cls(value)

    @property
    def decided(self) -> bool:
        """A verdict on the claim (reproduced, not reproduced or inconclusive), not a missing one."""
        return self in (Verdict.REPRODUCED, Verdict.NOT, Verdict.INCONCLUSIVE)


REPRODUCED, NOT, INCONCLUSIVE, NO_VERDICT, PENDING = (Verdict.REPRODUCED, Verdict.NOT, Verdict.INCONCLUSIVE,
                                                       Verdict.NO_VERDICT, Verdict.PENDING)


def combine(verdicts) -> Verdict:
    """One verdict for a claim judged in several places (runs, tests): reproduced only if reproduced in every
    place; not reproduced if not reproduced in any; pending while a place that could still decide is pending;
    otherwise inconclusive. Places without a verdict (NO_VERDICT) are left out; none left: NO_VERDICT."""
    vs = [Verdict.of(v) for v in verdicts]
    vs = [v for v in vs if v is not Verdict.NO_VERDICT]
    if not vs:
        return Verdict.NO_VERDICT
    if Verdict.NOT in vs:
        return Verdict.NOT
    if Verdict.PENDING in vs:
        return Verdict.PENDING
    return Verdict.REPRODUCED if all(v is Verdict.REPRODUCED for v in vs) else Verdict.INCONCLUSIVE


def tally(rows: list[dict], verdict) -> int:
    """How many rows carry ``verdict`` (compared as enum members, never by parsing text)."""
    v = Verdict.of(verdict)
    return sum(1 for r in rows if Verdict.of(r["verdict"]) is v)
