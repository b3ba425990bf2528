"""Sec 6 and eqs 2-9 of the paper, the defence: the filtered model attacks S less and keeps more accuracy under
FGSM; beyond the paper, the filtered model under other attacks and against Step 7's controls (BatchNorm
statistics recomputed without the filter)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import profiles, stats
from ..stats import INCONCLUSIVE, NOT, PENDING, REPRODUCED
from .evidence import n_images, read_csv, value_at
from .sheet import Sheet


def paired_gain_interval(only_new: int, only_old: int, n: int) -> tuple[float, float]:
    """95 % Wald interval (points) of the accuracy gain of a new model over an old one on the same ``n`` images,
    from the discordant counts (right only for the new one, only for the old one)."""
    d = (only_new - only_old) / n
    se = float(np.sqrt(max(only_new + only_old - n * d * d, 0.0))) / n
    return 100 * (d - stats.Z * se), 100 * (d + stats.Z * se)


def gain_verdict(only_new: int, only_old: int, p_up: float, p_down: float) -> str:
    """A claimed gain of a new model over an old one on the same images (one-sided McNemar, ``p_up``/``p_down``):
    reproduced when significantly up; not reproduced when significantly down, or when the new model is right on
    no image the old one misses (its gain cannot be positive: nothing to test); inconclusive otherwise."""
    if p_up < stats.ALPHA:
        return REPRODUCED
    return NOT if p_down < stats.ALPHA or only_new == 0 else INCONCLUSIVE


def bn_alone(rob: pd.DataFrame | None, eps: float, attack: str = "fgsm") -> str:
    """What recomputing every BatchNorm's statistics does to the *unfiltered* model under ``attack`` at ``eps``
    (Step 7's ``original_bn`` against ``original``, same images), in words; '' before Step 7 has landed."""
    if rob is None:
        return ""
    pick = lambda m, a: rob[(rob["model"] == m) & (rob["attack"] == a) & np.isclose(rob["epsilon"], eps)]  # noqa: E731
    # an attack made on the original ("…_transfer") is, for the original itself, its own white-box attack
    r, b = pick("original_bn", attack), pick("original", attack.replace("_transfer", ""))
    if r.empty or b.empty:
        return ""
    r, b = r.iloc[0], b.iloc[0]
    up = r["p_better"] <= r["p_worse"]
    return (f"BatchNorm statistics recomputed alone, without the filter (Step 7, {int(r['n']):,} images): original "
            f"{b['accuracy']:.2f} → {r['accuracy']:.2f} % (McNemar +{int(r['only_model'])}/−{int(r['only_original'])}, "
            f"p{'↑' if up else '↓'} {min(r['p_better'], r['p_worse']):.2g}, unadjusted)")


def filter_space(p: profiles.Profile) -> str:
    """The rule's part saying in which ε space the defence rows are judged."""
    return (f"{p.spaces[0]} space only: the filter step (and Step 7) attack in the profile's first ε space "
            f"({p.spaces[0]})")


def rows(t: Sheet) -> None:
    """The rows of the filter, all read from MNIST at the epoch standing in for 10: the paper's two claims, then
    the filtered model beyond the paper (Step 7). Both cite what recomputed BatchNorm statistics do alone."""
    edir = t.edir("mnist", t.ep[10])
    rob = read_csv(edir / "robustness.csv")
    bn_only = bn_alone(rob, t.p.filter_eps)
    paper_rows(t, edir, read_csv(edir / "defence.csv"), bn_only)
    beyond_rows(t, rob, bn_only)


def paper_rows(t: Sheet, edir: Path, dfn: pd.DataFrame | None, bn_only: str) -> None:
    """Rows filter_lowers_targeting (fewer images attack S) and filter_improves_robustness (higher FGSM accuracy,
    eq 2), from the filter step's ``defence.csv``."""
    if dfn is not None:
        o = dfn[dfn["model"] == "original"].set_index("epsilon")
        f = dfn[dfn["model"] == "filtered"].set_index("epsilon")
        pos = [e for e in o.index if e > 0]          # at ε = 0 nothing is perturbed: both are 0 % by definition
        ns = o["n"] if "n" in o else pd.Series(n_images(edir, "targeting") or 0, index=o.index)
        cnt = lambda d, e: d.loc[e, "targeting_count"] if "targeting_count" in d else d.loc[e, "targeting_percent"] * ns[e] / 100  # noqa: E731
        dirs_ = [stats.direction(stats.proportion_greater(cnt(o, e), ns[e], cnt(f, e), ns[e]),
                                 stats.proportion_greater(cnt(f, e), ns[e], cnt(o, e), ns[e])) for e in pos]
        lower, higher = dirs_.count(1), dirs_.count(-1)
        verdict = REPRODUCED if higher == 0 and lower >= len(pos) / 2 else NOT if higher > lower else INCONCLUSIVE
        t.row("filter_lowers_targeting", None, f"mnist/{t.arch} @{t.ep[10]}",
            "filtered significantly lower at ≥ half the ε > 0 and higher at none (two-proportion z-test per ε); "
            "more often higher than lower: not reproduced; " + filter_space(t.p), verdict,
            note=f"of {len(pos)} ε > 0: lower at {lower}, higher at {higher}, no significant difference at "
                 f"{len(pos) - lower - higher}; the filter's α > 1 raises S's conv1 distances by construction (Fig 3)")
        acc_o, acc_f = (value_at(dfn, 0.015, "accuracy", model=m) for m in ("original", "filtered"))
        t.numbers["mnist_filter_acc_original_0.015"], t.numbers["mnist_filter_acc_filtered_0.015"] = acc_o, acc_f
        cl_o, cl_f = (value_at(dfn, 0.0, "accuracy", model=m) for m in ("original", "filtered"))
        gain, gain_ci, n_pairs = None, None, None
        if "only_filtered" in dfn:
            of, oo = (int(value_at(dfn, 0.015, c, model="original")) for c in ("only_filtered", "only_original"))
            p_up, p_down = stats.mcnemar_greater(of, oo), stats.mcnemar_greater(oo, of)
            verdict = gain_verdict(of, oo, p_up, p_down)
            test = f"McNemar: {of} images right only when filtered, {oo} only when original, p = {min(p_up, p_down):.3g}"
            n_pairs = value_at(dfn, 0.015, "n", model="original") if "n" in dfn else n_images(edir, "targeting")
            if n_pairs:
                n_pairs = int(n_pairs)
                gain, gain_ci = 100 * (of - oo) / n_pairs, paired_gain_interval(of, oo, n_pairs)
        else:
            verdict, test = PENDING, "per-image pairs not recorded (re-run the filter step)"
        t.row("filter_improves_robustness", gain, f"mnist/{t.arch} @{t.ep[10]}",
            "filtered FGSM accuracy at ε = 0.015 significantly above the original's (one-sided exact McNemar, "
            "same images, p < 0.05); significantly below, or right on no image the original misses: not reproduced; "
            + filter_space(t.p),
            verdict, ci=gain_ci, n=n_pairs,
            note=("ours: the gain in points, filtered − original, with its 95 % interval (paired, from the discordant "
                  "images); " if gain is not None else "")
                 + f"FGSM ε=0.015: original {acc_o:.2f} %, filtered {acc_f:.2f} %; clean {cl_o:.2f} → {cl_f:.2f} %; "
                 f"damage (clean − attacked) {cl_o - acc_o:.2f} → {cl_f - acc_f:.2f} points; {test}"
                 + (f"; {bn_only} — see Beyond the paper" if bn_only else ""))
    else:
        t.row("filter_lowers_targeting", None, "—", "—", PENDING)
        t.row("filter_improves_robustness", None, "—", "—", PENDING)


def beyond_rows(t: Sheet, rob: pd.DataFrame | None, bn_only: str) -> None:
    """Rows beyond_* (Step 7's ``robustness.csv``): the filtered model under PGD, a transfer attack, S ranked on
    validation images and recomputed BatchNorm statistics, each against its baseline, Holm-adjusted together."""
    beyond = []
    for model_, attack, what in (("filtered", "pgd", "PGD-{steps}, white-box"),
                                 ("filtered", "fgsm_transfer", "FGSM made on the original (transfer)"),
                                 ("filtered_val", "fgsm", "FGSM, with S ranked on validation images"),
                                 ("filtered_bn", "fgsm", "FGSM, with BatchNorm statistics recomputed")):
        key = f"beyond_{model_}_{attack}"
        item = f"(beyond the paper) filtered model's accuracy under {what.format(steps=t.p.pgd_steps)}, MNIST ε = 0.015"
        r = None if rob is None else rob[(rob["model"] == model_) & (rob["attack"] == attack)
                                         & np.isclose(rob["epsilon"], t.p.filter_eps)]
        ref = "original" if r is None or r.empty or "baseline" not in r else r.iloc[0]["baseline"]
        base = None if r is None or r.empty else \
            rob[(rob["model"] == ref) & (rob["attack"] == (attack if ref != "original" else attack.replace("_transfer", "")))
                & np.isclose(rob["epsilon"], t.p.filter_eps)]
        beyond.append((key, attack, item, ref, None if r is None or r.empty or base.empty else (r.iloc[0], base.iloc[0])))
    # Holm's step-down correction over the tests of this family (each row tests up and down: 2 × rows tests)
    pvals = {(k, d): got[0][f"p_{d}"] for k, _, _, _, got in beyond if got is not None for d in ("better", "worse")}
    adjusted = stats.holm(pvals)
    for key, attack, item, ref, got in beyond:
        if got is None:
            t.row(key, None, "—", "—", PENDING, item=item, paper="—", kind="beyond")
            continue
        r, base = got
        up, down = adjusted[(key, "better")], adjusted[(key, "worse")]
        same = int(r["only_model"]) == int(r["only_original"]) == 0      # the filter changes no prediction here
        verdict = gain_verdict(int(r["only_model"]), int(r["only_original"]), up, down)
        t.row(key, r["accuracy"], f"mnist/{t.arch} @{t.ep[10]}", f"above the {ref} model's accuracy under the same attack: "
            f"one-sided exact McNemar, Holm-adjusted over the {len(pvals)} one-sided tests of this section (each row "
            "tested up and down), p < 0.05; below, or right on no image the baseline misses (no gain to test): "
            "not reproduced; " + filter_space(t.p), verdict, ci=(r["low"], r["high"]), n=int(r["n"]), item=item, paper="—", kind="beyond",
            note=f"{ref} {base['accuracy']:.2f} % → filtered {r['accuracy']:.2f} % (gain {r['accuracy'] - base['accuracy']:+.2f} "
                 f"points); right only when filtered {int(r['only_model'])}, only for {ref} {int(r['only_original'])}; "
                 f"Holm-adjusted p = {min(up, down):.3g}"
                 + ("; both models are right on exactly the same images (no discordant pair)" if same else "")
                 + (f"; {bn_only}" if key == "beyond_filtered_bn_fgsm" and bn_only else "")
                 # the control beside each gain over the plain original: the same recomputation without the filter
                 + (f"; {control}" if ref == "original" and (control := bn_alone(rob, t.p.filter_eps, attack)) else ""))
