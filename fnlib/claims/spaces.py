"""Judging a claim in both ε spaces. The paper does not say whether its ε is measured on pixels in [0, 1] or on
normalized inputs (SPEC §1), so every row that reads FGSM or Algorithm 1 at a given ε is judged in each space
the results hold, and the verdicts are combined by :func:`across_spaces` (rule ``eps_spaces`` of
:data:`fnlib.claims.rules.RULES`, which also keeps its earlier version: :func:`pixel_only`)."""
from __future__ import annotations

from ..stats import PENDING
from .verdict import Verdict

SPACES = ("pixel", "normalized")    # where FGSM's ε is measured (SPEC §1): the paper does not say which


def space_rule(spaces: list[str]) -> str:
    """The part of a row's rule that says in which ε space(s) it was judged; the rule itself is stated once
    (``eps_spaces``)."""
    spaces = list(spaces) or list(SPACES)          # nothing landed yet: the rule the row will be judged by
    if len(spaces) < 2:
        return f"{spaces[0]} space (the results hold no other)"
    return "judged in both ε spaces"


def across_spaces(verdicts: dict[str, str]) -> tuple[str, str]:
    """One verdict from a claim judged in each ε space (``{"pixel": …, "normalized": …}``), and why in words.
    The paper does not say in which space its ε lives, so: the shared verdict where the spaces agree; pending
    while one still is; inconclusive where one space reproduces the claim and another does not (the verdict
    hangs on the paper's unstated choice); not reproduced where no space reproduces it and one refutes it."""
    vs = {space: Verdict.of(v) for space, v in verdicts.items()}
    values = set(vs.values())
    if len(values) <= 1:
        return (verdicts[next(iter(verdicts))] if verdicts else PENDING), ""
    detail = ", ".join(f"{space} space {v.value}" for space, v in vs.items())
    if Verdict.PENDING in values:
        return PENDING, f" (the ε spaces disagree so far: {detail})"
    if Verdict.REPRODUCED in values:
        return Verdict.INCONCLUSIVE.value, f" (depends on the ε space: {detail})"
    return (Verdict.NOT.value if Verdict.NOT in values else Verdict.INCONCLUSIVE.value), \
        f" (reproduced in no ε space: {detail})"


def pixel_only(verdicts: dict[str, str]) -> str | None:
    """The verdict of version 1 of rule ``eps_spaces``: pixel space alone (None when pixel space has none)."""
    return verdicts.get("pixel")
