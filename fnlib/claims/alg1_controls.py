"""What Algorithm 1's controls (step 6, ``controls.csv``) say about its count: does the share of images attacking S
follow the adversary, or the kernels' size? Rule ``alg1_norm_control`` of :data:`fnlib.claims.rules.RULES` (the
reading the claims rows carry beside their verdict), and the sentence the Fig 2 page prints for a checkpoint, by
the rules stated in it (5-point margins; one-sided permutation p-values at 0.05 against random kernel sets).
Nothing here imports torch; the book only displays what these functions return."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .. import results, stats
from .evidence import pct, read_csv, value_at

CONTROLS = ("algorithm1", "random_sign", "random_sets", "norm_sets", "per_norm")
MARGIN = 5.0            # points of the share: "the same share"
NORM_DECIDES = 95.0     # % of images on which the |S| largest-norm kernels win: kernel size alone decides the count


@dataclass(frozen=True)
class Reading:
    """The controls at one (checkpoint, ε), conv1, pixel space: each share (%), the range of random sets and the
    permutation p-values of S against them (NaN when not recorded)."""
    share: dict
    sets_low: float
    sets_high: float
    p_above: float = float("nan")
    p_below: float = float("nan")
    n_sets: int | None = None
    margin: float = MARGIN

    @property
    def same_sign(self) -> bool:
        """A random ±1 perturbation of the same size gives S's share within the margin: no need of the adversary."""
        return abs(self.share["random_sign"] - self.share["algorithm1"]) <= self.margin

    @property
    def norm_gap(self) -> float:
        return self.share["norm_sets"] - self.share["algorithm1"]

    @property
    def per_norm_same(self) -> bool:
        return abs(self.share["per_norm"] - self.share["algorithm1"]) <= self.margin

    @property
    def follows_norms(self) -> bool:
        """Rule ``alg1_norm_control``: the largest-norm kernels win on ≥ 95 % of images and a random sign gives S's
        share within the margin."""
        return self.share["norm_sets"] >= NORM_DECIDES and self.same_sign

    @property
    def against_random_sets(self) -> int | None:
        """+1: S wins on more images than random sets of its size (permutation p < 0.05); −1 fewer; 0 neither;
        None without the p-values (results from before they were recorded)."""
        if math.isnan(self.p_above) or math.isnan(self.p_below):
            return None
        return stats.direction(self.p_above, self.p_below)

    def label(self) -> str:
        """Four words for a table cell."""
        return ("follows kernel size" if self.follows_norms else
                "needs no adversary" if self.same_sign else "not kernel size alone")

    def sentence(self) -> str:
        """The reading in words, each clause by its stated rule (what the Fig 2 page prints)."""
        v, m = self.share, self.margin
        text = (f"Algorithm 1 {pct(v['algorithm1'])} %, random sign {pct(v['random_sign'])} %, random sets "
                f"{pct(v['random_sets'])} % (range {pct(self.sets_low)}–{pct(self.sets_high)}), largest-norm sets "
                f"{pct(v['norm_sets'])} %, distances ÷ norm {pct(v['per_norm'])} %. ")
        text += (f"A random sign gives the same share (within {m:g} points): the count does not need the adversary. "
                 if self.same_sign else
                 f"FGSM moves S more than S' on more images than a random sign of the same size does (by more than {m:g} "
                 "points): the adversary's direction favours the fragile kernels. "
                 if v["algorithm1"] > v["random_sign"] else
                 f"FGSM moves S more than S' on fewer images than a random sign of the same size does (by more than {m:g} "
                 "points): the adversary favours the fragile kernels less than a random sign does. ")
        gap = self.norm_gap
        text += (f"The |S| largest-norm kernels give the same share (within {m:g} points): kernel size alone would "
                 "give this count. " if abs(gap) <= m else
                 f"The |S| largest-norm kernels give a higher share (by more than {m:g} points): S is not simply the "
                 "largest kernels. " if gap > 0 else
                 f"The |S| largest-norm kernels give a lower share (by more than {m:g} points). ")
        text += (f"Dividing each distance by its kernel's weight norm leaves the share within {m:g} points. "
                 if self.per_norm_same else
                 f"Dividing each distance by its kernel's weight norm moves the share by more than {m:g} points: "
                 "kernel size drives part of the count. ")
        d, n = self.against_random_sets, self.n_sets or "the"
        if d is None:
            text += ("Random sets of the size of S range over nearly every possible share, so this comparison "
                     "cannot set S apart." if self.sets_low <= m and self.sets_high >= 100 - m else
                     "The paper's S lies outside the range of random sets of its size."
                     if not self.sets_low <= v["algorithm1"] <= self.sets_high else
                     "The paper's S lies within the range of random sets of its size.")
        else:
            text += {1: f"Against {n} random sets of its size, S wins on more images (permutation p = "
                        f"{self.p_above:.2g}).",
                     -1: f"Against {n} random sets of its size, S wins on fewer images (permutation p = "
                         f"{self.p_below:.2g}).",
                     0: f"Against {n} random sets of its size, S is neither higher nor lower (permutation p = "
                        f"{self.p_above:.2g} above, {self.p_below:.2g} below): no evidence that fragile kernels are "
                        "special."}[d]
        return text


def read(edir: Path, eps: float = 0.015) -> Reading | None:
    """The controls of a checkpoint at ``eps`` (conv1, pixel space), or None when step 6 has not landed there or a
    share is missing (a degenerate split: S or S' empty)."""
    df = read_csv(Path(edir) / "controls.csv")
    if df is None:
        return None
    return reading(df, eps, results.read_json(Path(edir) / "controls.json").get("params", {}).get("n_sets")
                   if (Path(edir) / "controls.json").exists() else None)


def reading(df: pd.DataFrame, eps: float = 0.015, n_sets: int | None = None) -> Reading | None:
    """:class:`Reading` of a ``controls.csv`` table (rows of conv1 in pixel space when it has those columns)."""
    where = {k: v for k, v in (("layer", "conv1"), ("space", "pixel")) if k in df}
    share = {c: value_at(df, eps, "percent", control=c, **where) for c in CONTROLS}
    if any(x is None or math.isnan(x) for x in share.values()):
        return None
    get = lambda c: (value_at(df, eps, c, control="random_sets", **where) if c in df else None)  # noqa: E731
    pa, pb = get("p_above"), get("p_below")
    return Reading(share, get("low"), get("high"), float("nan") if pa is None else pa,
                   float("nan") if pb is None else pb, n_sets)
