"""Sec 5 and Fig 4 of the paper: the share of fragile kernels against the paper's, fragile kernels against
network depth, and the mean drop accuracy over epochs (saturating on CIFAR-10, rising then falling on MNIST)."""
from __future__ import annotations

import numpy as np

from .. import results, stats
from ..stats import INCONCLUSIVE, NOT, PENDING, REPRODUCED, UNTESTABLE
from .rules import all_up_so_far, number_verdict
from . import margins, sensitivity
from .sheet import Sheet
from .verdict import Verdict

ARCH = {'resnet18': 'ResNet-18', 'resnet50': 'ResNet-50', 'resnet101': 'ResNet-101'}

FRAGILE_MARGIN = 5.0      # points of the share of fragile kernels (≈ 3 of 64 kernels)
PLATEAU = 2.0             # points: a last gain this small (its interval inside ±PLATEAU) is a plateau
DEPTH_RULE = ("# kernels fragile at every checkpoint (Fig 4's red circles) up at each step of depth; down at any: "
              "not reproduced (the 64 kernels are the whole layer: no sampling interval)")


def mean_drop_verdict(dataset: str, metas: list[dict]) -> tuple[str, str, str]:
    """Verdict, rule and note of Sec 5's mean-drop claim for one run's first three checkpoints: saturating on
    CIFAR-10, rising then falling on MNIST. The SE of a mean of 64 drop accuracies on n images is at most that
    of one accuracy (they are correlated), which the z-tests use."""
    means = [m["mean"] for m in metas[:3]]
    se = [np.sqrt(max(m["mean"] * (100 - m["mean"]), 1e-9) / m["params"]["n_images"]) for m in metas[:3]]
    g1, g2 = means[1] - means[0], means[2] - means[1]
    s1, s2 = np.hypot(se[0], se[1]), np.hypot(se[1], se[2])
    up1, down1 = g1 > stats.Z * s1, g1 < -stats.Z * s1
    up2, down2 = g2 > stats.Z * s2, g2 < -stats.Z * s2
    if dataset == "cifar10":
        plateau = abs(g2) + stats.Z * s2 <= PLATEAU
        verdict = REPRODUCED if up1 and plateau else NOT if down1 or up2 and g2 > PLATEAU + stats.Z * s2 or down2 \
            else INCONCLUSIVE
    else:
        verdict = REPRODUCED if up1 and down2 else NOT if down1 or up2 else INCONCLUSIVE
    note = (f"mean drop accuracy {fmt_list(means)}; gains {g1:+.2f} ± {stats.Z * s1:.2f}, "
            f"{g2:+.2f} ± {stats.Z * s2:.2f} (± the 95 % half-width)")
    return verdict, mean_drop_rule(dataset), note


def fmt_list(values) -> str:
    """Accuracies as ``[60.58, 69.80, 74.04]``: two decimals each, as the tables print them."""
    return "[" + ", ".join(f"{v:.2f}" for v in values) + "]"


def mean_drop_rule(dataset: str) -> str:
    """The rule of :func:`mean_drop_verdict`, in words (also for a row still waiting for its checkpoints)."""
    se = ("z-tests on the gains between checkpoints; each mean drop accuracy's SE taken as that of one accuracy on "
          "its n images, an upper bound")
    if dataset == "cifar10":
        return (f"first gain significantly > 0 and last gain's 95 % interval inside ±{PLATEAU:g} points "
                f"(still rising by more, or falling: not reproduced); {se}")
    return (f"first gain significantly > 0 and last gain significantly < 0 (first significantly < 0, or last "
            f"significantly > 0: not reproduced); {se}")


def fraction_fragile(t: Sheet, dataset: str, e: int) -> None:
    """Row <dataset>_fraction_fragile_e<e>: the share of conv1's kernels that are fragile, at the epoch standing
    in for the paper's ``e``; beside it, the share redrawn over the test images (step 11) and the share on
    validation images (step 12)."""
    edir = t.edir(dataset, t.ep[e])
    meta = results.read_json(edir / "meta.json") if (edir / "meta.json").exists() else None
    model = f"{dataset}/{t.arch} @{t.ep[e]}"
    frac = 100 * meta["fraction_fragile"] if meta else None
    paper = t.pv[f"{dataset}_fraction_fragile_e{e}"]["value"]
    refute = t.refuting(FRAGILE_MARGIN, dataset, t.ep[e], "fraction_fragile")[""]
    v = number_verdict(paper, frac, margin=FRAGILE_MARGIN, refute=refute)
    split = results.read_json(edir / "split.json") if meta and (edir / "split.json").exists() else None
    flips = split_flips(split, paper, v, refute) if split else None
    sens = split_sensitivity(split, flips) if split else \
        "redrawn over the test images: pending (step 11 has not run on this checkpoint)" if meta else ""
    readings = {}
    if meta:
        readings["test_images"] = sensitivity.reading("fragile_share", sens, flip_percent=flips) \
            if split else sensitivity.pending("fragile_share", sens)
        readings["val_ranking"] = val_share(edir, paper, v, refute)
        readings |= t.margin_reading(FRAGILE_MARGIN, dataset, t.ep[e], "fraction_fragile", [""],
                                     number_verdict(paper, frac, margin=FRAGILE_MARGIN), v)
    wide = margins.widened(FRAGILE_MARGIN, {"": refute})
    where = {Verdict.REPRODUCED: "within", Verdict.NOT: "outside"}.get(Verdict.of(v), "outside")
    t.row(f"{dataset}_fraction_fragile_e{e}", frac, model, f"± {FRAGILE_MARGIN:g} points, point value"
          + (f"; refuted beyond ± {wide}" if wide else ""), v,
        note=f"{len(meta['fragile'])} of 64 kernels" if meta else "",
        rules=("fragile_share", "val_ranking") + (("seed_margin",) if "seed_margin" in readings else ()),
        runs=[f"{dataset}/{t.arch}"], epochs=[t.ep[e]] if meta else [],
        reason="" if frac is None else f"{len(meta['fragile'])} of 64 kernels, {abs(frac - paper):.1f} points from the "
               f"paper's value, {where} ± {FRAGILE_MARGIN:g}" + margins.refute_clause(wide)
               + (f"; {sens}" if split else "") + sensitivity.flip_reason(readings)
               + sensitivity.moved_reason(readings, frac, FRAGILE_MARGIN), sensitivity=readings)


def val_share(edir, paper: float, verdict, refute: float | None = None) -> dict:
    """The share of fragile kernels with the kernels ranked on validation images (step 12, rule ``val_ranking``),
    judged by the row's rule and refuting margin; pending where step 12 has not run on this checkpoint."""
    path = edir / "rank_val.json"
    if not path.exists():
        return sensitivity.pending("val_ranking", "ranked on validation images: pending (step 12 has not run on "
                                                  "this checkpoint)")
    rv = results.read_json(path)
    share = 100 * rv["fraction_fragile"]
    v = number_verdict(paper, share, margin=FRAGILE_MARGIN, refute=refute)
    return sensitivity.reading(
        "val_ranking", f"ranked on {rv['params']['n_val']:,} validation images: {len(rv['fragile'])} of 64 fragile "
                       f"({share:.1f} %), {Verdict.of(v).value}; {rv['overlap']} kernels fragile in both splits "
                       f"(Jaccard {rv['jaccard']:.2f}), {len(rv['moved'])} on different sides",
        verdict=v, ours=share, row_verdict=verdict)


def split_flips(split: dict, paper: float, verdict, refute: float | None = None) -> float:
    """The percentage of step 11's bootstrap resamples of the test images in which the row's rule (with the row's
    refuting margin) gives another verdict."""
    counts, kernels = split["counts"], 64
    same = sum(Verdict.of(number_verdict(paper, 100 * c / kernels, margin=FRAGILE_MARGIN, refute=refute))
               is Verdict.of(verdict)
               for c in counts)
    return 100 * (len(counts) - same) / len(counts)


def split_sensitivity(split: dict, flips: float) -> str:
    """The fragile share redrawn over bootstrap resamples of the test images (step 11, :mod:`fnlib.split`): its
    95 % range and how often the row's rule would give another verdict; beside the verdict, which it leaves."""
    return (f"over {len(split['counts']):,} bootstrap resamples of the test images the fragile count spans "
            f"[{split['count_low']:g}, {split['count_high']:g}] (95 %), and the verdict "
            + (f"flips in {flips:.1f} % of them" if flips else "never flips"))


def grows_with_depth(t: Sheet) -> None:
    """Row fragile_grows_with_depth: more kernels fragile at every checkpoint (Fig 4's red circles, the ones Sec 5
    counts as influential) in deeper networks, on CIFAR-10."""
    epochs = list(t.p.epochs)
    persistent, n_fragile = {}, {}
    for a in t.p.archs:
        m = [t.edir("cifar10", e, a) / "meta.json" for e in epochs]
        if all(x.exists() for x in m):
            sets = [set(results.read_json(x)["fragile"]) for x in m]
            persistent[a], n_fragile[a] = len(set.intersection(*sets)), sum(map(len, sets)) / len(sets)
    if len(t.p.archs) >= 3 and len(persistent) >= 2:
        by_depth = sorted(t.p.archs, key=lambda a: int(a[6:]))
        order = [a for a in by_depth if a in persistent]                  # landed, by depth
        vals = [persistent[a] for a in order]
        steps = [(b > a) - (b < a) for a, b in zip(vals, vals[1:])]
        missing = [a for a in by_depth if a not in persistent]
        v = all_up_so_far(steps, complete=not missing)
        t.row("fragile_grows_with_depth", None, "cifar10/" + "→".join(order), "CIFAR-10, every checkpoint", v,
            rules=("depth",), runs=[f"cifar10/{a}" for a in order], epochs=epochs,
            reason=" → ".join(f"{ARCH[a]} {persistent[a]}" for a in order) + " kernels fragile at every checkpoint: "
                   + ("fewer in the deeper network" if Verdict.of(v) is Verdict.NOT else "more at each depth"
                      if Verdict.of(v) is Verdict.REPRODUCED else "no fall so far") + (
                       f" ({', '.join(ARCH[a] for a in missing)} not run)" if missing else ""),
            note="fragile at every checkpoint: " + ", ".join(f"{a} {persistent[a]}" for a in order)
                 + "; mean # fragile per checkpoint: " + ", ".join(f"{a} {n_fragile[a]:.1f}" for a in order)
                 + (f" ({', '.join(missing)} pending)" if missing else ""))
    else:
        t.row("fragile_grows_with_depth", None, "—", "CIFAR-10, every checkpoint",
            UNTESTABLE if len(t.p.archs) < 3 else PENDING, rules=("depth",),
            reason="needs three depths" if len(t.p.archs) < 3 else "",
            note="needs ResNet-18/50/101, each at every checkpoint" + (" (the paper profile has them)"
                                                                      if len(t.p.archs) < 3 else ""))


def mean_drop(t: Sheet) -> None:
    """Rows mean_drop_cifar_saturates and mean_drop_mnist_rises_falls: the mean drop accuracy over the first three
    checkpoints. Sec 5 says it of the models trained on each data set, so every arch is judged, the reference first."""
    epochs = list(t.p.epochs)
    for dataset, key in (("cifar10", "mean_drop_cifar_saturates"), ("mnist", "mean_drop_mnist_rises_falls")):
        per_arch, rule = {}, mean_drop_rule(dataset) + " (needs three checkpoints)"
        for a in [t.arch] + [x for x in t.p.archs if x != t.arch]:
            metas = [results.read_json(t.edir(dataset, e, a) / "meta.json") for e in epochs
                     if (t.edir(dataset, e, a) / "meta.json").exists()]
            if a == t.arch:
                t.numbers[f"{dataset}_mean_drop"] = [m["mean"] for m in metas]
            if len(metas) >= 3:
                per_arch[a] = mean_drop_verdict(dataset, metas)
        if not per_arch:
            means = t.numbers[f"{dataset}_mean_drop"]
            t.row(key, None, f"{dataset}/{t.arch} @{epochs}", rule, PENDING if len(epochs) >= 3 else UNTESTABLE,
                note="mean drop accuracy " + fmt_list(means), rules=(key.replace("mean_drop_cifar", "mean_drop")
                                                                       .replace("mean_drop_mnist", "mean_drop"),),
                reason="" if len(epochs) >= 3 else "needs three checkpoints")
            continue
        missing = [a for a in t.p.archs if a not in per_arch]
        rule = next(iter(per_arch.values()))[1] + (
            "; judged for every arch: reproduced only if reproduced for each, not reproduced if not for any (so "
            "the row stays pending while an arch still to land could change it)" if len(t.p.archs) > 1 else "")
        combined = stats.combine([v for v, _, _ in per_arch.values()])
        v = PENDING if missing and combined != NOT else combined
        t.row(key, None, f"{dataset}/{'+'.join(per_arch)} @{epochs}", "three checkpoints, every arch", v,
            rules=({"cifar10": "mean_drop_saturates", "mnist": "mean_drop_rises_falls"}[dataset],),
            runs=[f"{dataset}/{a}" for a in per_arch], epochs=epochs,
            reason=mean_drop_reason(dataset, per_arch, v),
            note="; ".join((f"{a}: {v}, " if len(t.p.archs) > 1 else "") + n for a, (v, _, n) in per_arch.items())
                 + (f" ({', '.join(missing)} pending)" if missing else ""))


def mean_drop_reason(dataset: str, per_arch: dict, verdict) -> str:
    """The reason of a mean-drop row: what the curve does for each arch judged."""
    shape = "still rises by more than 2 points at the last step" if dataset == "cifar10" else "does not fall at the last step"
    bad = [ARCH.get(a, a) for a, (v, _, _) in per_arch.items() if Verdict.of(v) is Verdict.NOT]
    if bad:
        return f"mean drop accuracy {shape} ({', '.join(bad)})"
    return {Verdict.REPRODUCED: "the curve has the paper's shape for every arch"}.get(Verdict.of(verdict), "")
