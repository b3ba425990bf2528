"""Judging a claim in both ε spaces. The paper does not say whether its ε is measured on pixels in [0, 1] or on
normalized inputs (SPEC §1), so every row that reads FGSM or Algorithm 1 at a given ε is judged in each space
the results hold, and the verdicts are combined by :func:`across_spaces` (methods gives the rule's history)."""
from __future__ import annotations

from ..stats import INCONCLUSIVE, NOT, PENDING, REPRODUCED

SPACES = ("pixel", "normalized")    # where FGSM's ε is measured (SPEC §1): the paper does not say which


def space_rule(spaces: list[str]) -> str:
    """The part of a rule that says in which ε space(s) the claim was judged (:func:`across_spaces`)."""
    spaces = list(spaces) or list(SPACES)          # nothing landed yet: the rule the row will be judged by
    if len(spaces) < 2:
        return f"{spaces[0]} space (the results hold no other)"
    return ("judged in both ε spaces: reproduced if in both, inconclusive if in one only; if in neither, not "
            "reproduced when either space refutes it and inconclusive otherwise (methods)")


def across_spaces(verdicts: dict[str, str]) -> tuple[str, str]:
    """One verdict from a claim judged in each ε space (``{"pixel": …, "normalized": …}``), and why in words.
    The paper does not say in which space its ε lives, so: the shared verdict where the spaces agree; pending
    while one still is; inconclusive where one space reproduces the claim and another does not (the verdict
    hangs on the paper's unstated choice); not reproduced where no space reproduces it and one refutes it."""
    values = set(verdicts.values())
    if len(values) <= 1:
        return (values.pop() if values else PENDING), ""
    detail = ", ".join(f"{space} space {v.split(' (')[0]}" for space, v in verdicts.items())
    if PENDING in values:
        return PENDING, f" (the ε spaces disagree so far: {detail})"
    if REPRODUCED in values:
        return INCONCLUSIVE, f" (depends on the ε space: {detail})"
    return (NOT if NOT in values else INCONCLUSIVE), f" (reproduced in no ε space: {detail})"
