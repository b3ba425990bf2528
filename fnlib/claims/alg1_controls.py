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
        """Rule ``alg1_norm_control`` v2: the largest-norm kernels win on ≥ 95 % of images, a random sign gives S's
        share within the margin, and dividing each distance by its kernel's norm moves S's share by more than the
        margin (taking size out changes the count)."""
        return self.follows_norms_v1 and not self.per_norm_same

    @property
    def follows_norms_v1(self) -> bool:
        """Version 1 of the rule, which did not consult the division by norm (shown beside v2 where they differ)."""
        return self.share["norm_sets"] >= NORM_DECIDES and self.same_sign

    @property
    def against_random_sets(self) -> int | None:
        """+1: S wins on more images than random sets of its size (permutation p < 0.05); −1 fewer; 0 neither;
        None without the p-values (results from before they were recorded)."""
        if math.isnan(self.p_above) or math.isnan(self.p_below):
            return None
        return stats.direction(self.p_above, self.p_below)

    def label(self, version: int = 2) -> str:
        """Four words for a table cell (``version`` 1: the reading of the rule's first version)."""
        return ("follows kernel size" if (self.follows_norms if version >= 2 else self.follows_norms_v1) else
                "needs no adversary" if self.same_sign else "not kernel size alone")

    def clause(self) -> str:
        """What a claims row's reason adds: the reading and the shares that make it."""
        v = {k: pct(x) for k, x in self.share.items()}
        if self.follows_norms:
            return (f"the count follows kernel size: the |S| largest-norm kernels win on {v['norm_sets']} % of "
                    f"images, a random sign gives {v['random_sign']} % and dividing by the norm {v['per_norm']} %")
        if self.same_sign:
            return (f"the count needs no adversary: a random sign gives {v['random_sign']} %; not kernel size "
                    f"alone: dividing by the norm gives {v['per_norm']} %, the largest-norm kernels {v['norm_sets']} %")
        return (f"not kernel size alone: a random sign gives {v['random_sign']} %, the largest-norm kernels "
                f"{v['norm_sets']} %")

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


def lead(controls: list[dict]) -> str:
    """The intro's lead-in to the Algorithm 1 finding, from the ``control`` fields of the rows that quote its count:
    what every one of them reads (rule ``alg1_norm_control``), or a neutral title where they differ."""
    if controls and all(c.get("follows_kernel_size") for c in controls):
        return "Where the paper quotes Algorithm 1's count, it follows the kernels' size rather than the attack"
    if controls and all(c.get("needs_no_adversary") for c in controls):
        return ("Where the paper quotes Algorithm 1's count, a random perturbation of the same size gives the same "
                "count as the attack")
    return "Algorithm 1's count against its controls"


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
