"""The margins of the number rows, grounded in the seed spread (rule ``seed_margin``, frozen on 2026-12-07 before
any seed replicate at paper scale had landed).

A number row judges our value against the paper's ± a stated margin (rule ``number``): 2 points for an accuracy
(at most half the paper's error rate), 5 points for a share. The paper reports one training of its recipe; our
seed 0 is another. Two trainings of one recipe whose seed-to-seed standard deviation is σ differ by √2·σ in
standard deviation, so a difference of up to 1.96·√2·σ is what two honest runs show 95 % of the time, and it
cannot count against the paper. Once seeds 0, 1 and 2 of a row's checkpoint have landed (profiles
``paper-seed1`` and ``paper-seed2``), σ is estimated by the sample standard deviation s of the three seeds'
values (each ε space on its own) and the row's margin becomes the larger of the stated one and 1.96·√2·s. Every
network the row is judged on (each seed, each schedule) uses that margin; rule ``seeds`` then combines the seeds.
The verdict with the stated margin alone stays beside it as a sensitivity reading.

Pure functions over the replicates' seed table (:func:`fnlib.replicates.seed_table`); nothing here reads files.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist, stdev

from . import sensitivity

SEEDS = (0, 1, 2)                       # the seeds whose spread grounds a margin (all of them, as rule seeds)
Z = NormalDist().inv_cdf(0.975)         # 1.96: a two-sided 95 % range of the difference of two runs


def grounded(values) -> float | None:
    """1.96·√2·s of one number over the seeds of :data:`SEEDS` (``{seed: value}``), in points, two decimals;
    None until every seed has a value."""
    if values is None or any(s not in values for s in SEEDS):
        return None
    return round(Z * math.sqrt(2) * stdev(float(values[s]) for s in SEEDS), 2)


@dataclass(frozen=True)
class Spread:
    """Each number's value per seed at the checkpoints of the main schedule (``values``: (data set, arch, epoch,
    quantity, ε, space) → {seed: value}) and the checkpoints the seed replicates train (``replicated``: (data set,
    arch, epoch)); built once per summary from the replicates' seed table."""
    values: dict
    replicated: frozenset

    @classmethod
    def of(cls, table: list[dict], cycle: int, replicated) -> "Spread":
        values = {(r["dataset"], r["arch"], r["epoch"], r["quantity"], r["epsilon"], r["space"]):
                  {int(s): v for s, v in r["values"].items()} for r in table if r["schedule"] == cycle}
        return cls(values, frozenset(replicated))

    def at(self, dataset: str, arch: str, epoch: int, quantity: str, eps: str = "", space: str = "") -> dict | None:
        return self.values.get((dataset, arch, epoch, quantity, eps, space))


def applied(spread: Spread | None, stated: float, dataset: str, arch: str, epoch: int, quantity: str,
            eps: str = "", space: str = "") -> float:
    """The margin a number row applies: the larger of ``stated`` and the seed-grounded one, where that exists."""
    g = grounded(spread.at(dataset, arch, epoch, quantity, eps, space)) if spread else None
    return stated if g is None else max(stated, g)


def fmt(margins: dict[str, float]) -> str:
    """'2' when every space applies the same margin, else 'pixel 3.1, normalized 2'."""
    if len(set(margins.values())) <= 1:
        return f"{next(iter(margins.values())):g}" if margins else ""
    return ", ".join(f"{space} {m:g}" for space, m in margins.items())


def reading(spread: Spread | None, stated: float, dataset: str, arch: str, epoch: int, quantity: str, eps: str,
            spaces, stated_verdict, row_verdict) -> dict | None:
    """The row's ``seed_margin`` reading: the seed spread, the margin it grounds, and the verdict with the stated
    margin alone (which flips when it differs from the row's); pending until the three seeds have landed;
    unavailable at a checkpoint the replicates do not train; None for a profile without seed replicates."""
    if spread is None:
        return None
    where = f"{dataset}/{arch} @{epoch}"
    if (dataset, arch, epoch) not in spread.replicated:
        return sensitivity.unavailable("seed_margin", f"the seed replicates do not train {where}: the stated "
                                                      f"margin ± {stated:g} stands")
    per = {space: spread.at(dataset, arch, epoch, quantity, eps, space) for space in spaces}
    if any(grounded(v) is None for v in per.values()):
        have = min(len(v or {}) for v in per.values())
        return sensitivity.pending("seed_margin", f"margin grounded in the seed spread: pending ({have} of "
                                                  f"{len(SEEDS)} seeds of {where} landed)")
    parts = [(f"{space} space " if space else "") + "seeds " + ", ".join(f"{v[s]:.2f}" for s in SEEDS)
             + f": s = {stdev(v[s] for s in SEEDS):.2f}, 1.96·√2·s = {grounded(v):g}" for space, v in per.items()]
    return sensitivity.reading("seed_margin", "; ".join(parts) + f"; margin applied: the larger of that and ± "
                                              f"{stated:g}; with ± {stated:g} alone: {stated_verdict}",
                               verdict=stated_verdict, row_verdict=row_verdict)
