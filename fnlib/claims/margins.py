"""The number rows' refuting margin, grounded in the seed spread (rule ``seed_margin`` v2, frozen on 2026-12-07
before any seed replicate at paper scale had landed).

A number row judges the interval of our value against the paper's value ± a stated margin (rule ``number``):
inside it is reproduced, wholly outside it is not reproduced. The paper reports one training of its recipe and
our seed 0 is another. If our recipe's seed-to-seed standard deviation σ stands for the paper's too (an
assumption: the paper does not state its whole recipe), two trainings differ by √2·σ in standard deviation, so a
difference up to 1.96·√2·σ is what two runs of one recipe show 95 % of the time and cannot by itself refute the
paper. Once seeds 0, 1 and 2 of a row's checkpoint have landed, σ is estimated by the sample standard deviation s
of the three seeds' values, and the row refutes only beyond the larger of the stated margin and 1.96·√2·s.
Reproduced still needs the interval inside the stated margin: a wide seed spread can turn *not reproduced* into
*inconclusive*, never make *reproduced* easier (version 1 widened the margin for both, which a review showed lets
a noisier recipe reproduce more easily; it was replaced before any of its data existed).

The numbers are keyed as :func:`fnlib.replicates.checkpoint_numbers` writes them (:func:`key`: the ε of each
number comes from there, never from the caller). Pure functions; nothing here reads files.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist, stdev

from ..replicates import FGSM_EPS, TARGET_EPS
from . import sensitivity
from .variants import SEEDS            # the seeds whose spread grounds a margin (all of them, as rule seeds)
from .verdict import Verdict

Z = NormalDist().inv_cdf(0.975)         # 1.96: a two-sided 95 % range of the difference of two runs
QUANTITIES = ("clean_accuracy", "fgsm_accuracy", "fraction_fragile", "attacking_s")


def key(dataset: str, arch: str, epoch: int, quantity: str, space: str = "") -> tuple:
    """The seed table's key of one number (the ε is the one the replicates read for that quantity)."""
    if quantity not in QUANTITIES:
        raise ValueError(f"no seed-table number {quantity!r}; one of {QUANTITIES}")
    eps = {"fgsm_accuracy": format(FGSM_EPS[dataset], "g"), "attacking_s": format(TARGET_EPS, "g")}.get(quantity, "")
    return dataset, arch, epoch, quantity, eps, space


def grounded(values) -> float | None:
    """1.96·√2·s of one number over the seeds of :data:`SEEDS` (``{seed: value}``), in points, two decimals;
    None until every seed has a value."""
    if values is None or any(s not in values for s in SEEDS):
        return None
    return round(Z * math.sqrt(2) * stdev(float(values[s]) for s in SEEDS), 2)


@dataclass(frozen=True)
class Spread:
    """Each number's value per seed at the checkpoints of the main schedule (``values``: :func:`key` → {seed:
    value}) and the checkpoints the seed replicates train (``replicated``: (data set, arch, epoch)); built once per
    summary from the replicates' seed table."""
    values: dict
    replicated: frozenset

    @classmethod
    def of(cls, table: list[dict], cycle: int, replicated) -> "Spread":
        values = {(r["dataset"], r["arch"], r["epoch"], r["quantity"], r["epsilon"], r["space"]):
                  {int(s): v for s, v in r["values"].items()} for r in table if r["schedule"] == cycle}
        return cls(values, frozenset(replicated))

    def seeds(self, dataset: str, arch: str, epoch: int, quantity: str, space: str = "") -> dict:
        return self.values.get(key(dataset, arch, epoch, quantity, space)) or {}


def refuting(spread: Spread | None, stated: float, dataset: str, arch: str, epoch: int, quantity: str,
             spaces=("",)) -> dict[str, float]:
    """``{space: margin}`` beyond which the row refutes: the larger of ``stated`` and 1.96·√2·s in every space the
    row reads once all of them have three seeds; ``stated`` in every space until then (never one space grounded
    and another not)."""
    g = {space: grounded(spread.seeds(dataset, arch, epoch, quantity, space)) if spread else None
         for space in spaces}
    if any(v is None for v in g.values()):
        return {space: stated for space in spaces}
    return {space: max(stated, v) for space, v in g.items()}


def fmt(margins: dict[str, float]) -> str:
    """'2' when every space has the same margin, else '3.1 in pixel space, ± 2 in normalized space' (written after
    a '± ')."""
    if len(set(margins.values())) <= 1:
        return f"{next(iter(margins.values())):g}" if margins else ""
    return ", ± ".join(f"{m:g} in {space} space" for space, m in margins.items())


def widened(stated: float, refute: dict[str, float]) -> str | None:
    """The refuting margin in words where the seed spread widened it ('3.1', '3.1 in pixel space, ± 2 in normalized
    space'), else None."""
    return fmt(refute) if any(m > stated for m in refute.values()) else None


def refute_clause(wide: str | None) -> str:
    """The clause a row's reason gains where the seed spread widened its refuting margin (``wide``:
    :func:`widened`'s words), else ''."""
    return f"; refuted only beyond ± {wide}, what two trainings of the recipe differ by" if wide else ""


def reading(spread: Spread | None, stated: float, dataset: str, arch: str, epoch: int, quantity: str, spaces,
            stated_verdict, row_verdict) -> dict | None:
    """The row's ``seed_margin`` reading: each space's seeds, s and 1.96·√2·s, and the verdict with the stated
    margin alone (``flips`` where it differs from the row's); pending until three seeds have landed in every space;
    unavailable at a checkpoint the replicates do not train; None for a profile without seed replicates."""
    if spread is None:
        return None
    where = f"{dataset}/{arch} @{epoch}"
    if (dataset, arch, epoch) not in spread.replicated:
        return sensitivity.unavailable("seed_margin", f"the seed replicates do not train {where}: the stated "
                                                      f"margin ± {stated:g} stands")
    per = {space: spread.seeds(dataset, arch, epoch, quantity, space) for space in spaces}
    if any(grounded(v) is None for v in per.values()):
        have = min(sum(s in v for s in SEEDS) for v in per.values())
        return sensitivity.pending("seed_margin", f"refuting margin from the seed spread: pending ({have} of "
                                                  f"{len(SEEDS)} seeds of {where} landed)")
    parts = [(f"{space} space: " if space else "") + "seeds " + ", ".join(f"{v[s]:.2f}" for s in SEEDS)
             + f", s = {stdev(v[s] for s in SEEDS):.2f}, 1.96·√2·s = {grounded(v):g}" for space, v in per.items()]
    return sensitivity.reading("seed_margin", "; ".join(parts) + f"; refuted only beyond the larger of that and "
                                              f"± {stated:g}; with ± {stated:g} alone: {Verdict.of(stated_verdict).value}",
                               verdict=stated_verdict, row_verdict=row_verdict)
