"""Sec 5 and Fig 4 of the paper: the share of fragile kernels against the paper's, fragile kernels against
network depth, and the mean drop accuracy over epochs (saturating on CIFAR-10, rising then falling on MNIST)."""
from __future__ import annotations

import numpy as np

from .. import results, stats
from ..stats import INCONCLUSIVE, NOT, PENDING, REPRODUCED, UNTESTABLE
from .rules import all_up_so_far, number_verdict
from .sheet import Sheet

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
    note = (f"mean drop accuracy {[round(v, 2) for v in means]}; gains {g1:+.2f} ± {stats.Z * s1:.2f}, "
            f"{g2:+.2f} ± {stats.Z * s2:.2f} (± the 95 % half-width)")
    return verdict, mean_drop_rule(dataset), note


def mean_drop_rule(dataset: str) -> str:
    """The rule of :func:`mean_drop_verdict`, in words (also for a row still waiting for its checkpoints)."""
    se = ("z-tests on the gains between checkpoints; each mean drop accuracy's SE taken as that of one accuracy on "
          "its n images, an upper bound")
    if dataset == "cifar10":
        return (f"first gain significantly > 0 and last gain's 95 % interval inside ±{PLATEAU:g} points "
                f"(still rising by more, or falling: not reproduced); {se}")
    return f"first gain significantly > 0 and last gain significantly < 0; {se}"


def fraction_fragile(t: Sheet, dataset: str, e: int) -> None:
    """The share of fragile kernels at the paper's epoch ``e`` for ``dataset``."""
    pv, arch, ep, row, edir = t.pv, t.arch, t.ep, t.row, t.edir
    meta_path = edir(dataset, ep[e]) / "meta.json"
    meta = results.read_json(meta_path) if meta_path.exists() else None
    model = f"{dataset}/{arch} @{ep[e]}"
    frac = 100 * meta["fraction_fragile"] if meta else None
    row(f"{dataset}_fraction_fragile_e{e}", frac, model,
        f"|ours − paper| ≤ {FRAGILE_MARGIN:g} points (the 64 kernels are the whole layer: no sampling interval)",
        number_verdict(pv[f"{dataset}_fraction_fragile_e{e}"]["value"], frac, margin=FRAGILE_MARGIN),
        note=f"{len(meta['fragile'])} of 64 kernels" if meta else "")


def grows_with_depth(t: Sheet) -> None:
    """Sec 5 counts the “influential” kernels of Fig 4: fragile at every checkpoint (the red circles)."""
    p, row, edir = t.p, t.row, t.edir
    epochs = list(p.epochs)
    persistent, n_fragile = {}, {}
    for a in p.archs:
        m = [edir("cifar10", e, a) / "meta.json" for e in epochs]
        if all(x.exists() for x in m):
            sets = [set(results.read_json(x)["fragile"]) for x in m]
            persistent[a], n_fragile[a] = len(set.intersection(*sets)), sum(map(len, sets)) / len(sets)
    if len(p.archs) >= 3 and len(persistent) >= 2:
        by_depth = sorted(p.archs, key=lambda a: int(a[6:]))
        order = [a for a in by_depth if a in persistent]                  # landed, by depth
        vals = [persistent[a] for a in order]
        steps = [(b > a) - (b < a) for a, b in zip(vals, vals[1:])]
        missing = [a for a in by_depth if a not in persistent]
        row("fragile_grows_with_depth", None, "cifar10/" + "→".join(order),
            DEPTH_RULE,
            all_up_so_far(steps, complete=not missing),
            note="fragile at every checkpoint: " + ", ".join(f"{a} {persistent[a]}" for a in order)
                 + "; mean # fragile per checkpoint: " + ", ".join(f"{a} {n_fragile[a]:.1f}" for a in order)
                 + (f" ({', '.join(missing)} pending)" if missing else ""))
    else:
        row("fragile_grows_with_depth", None, "—", DEPTH_RULE, UNTESTABLE if len(p.archs) < 3 else PENDING,
            note="needs ResNet-18/50/101, each at every checkpoint" + (" (the paper profile has them)"
                                                                      if len(p.archs) < 3 else ""))


def mean_drop(t: Sheet) -> None:
    """Sec 5 says it of “models trained on” each data set: every arch with three checkpoints, the reference first."""
    p, arch, row, edir, numbers = t.p, t.arch, t.row, t.edir, t.numbers
    epochs = list(p.epochs)
    for dataset, key in (("cifar10", "mean_drop_cifar_saturates"), ("mnist", "mean_drop_mnist_rises_falls")):
        per_arch, rule = {}, mean_drop_rule(dataset) + " (needs three checkpoints)"
        for a in [arch] + [x for x in p.archs if x != arch]:
            metas = [results.read_json(edir(dataset, e, a) / "meta.json") for e in epochs
                     if (edir(dataset, e, a) / "meta.json").exists()]
            if a == arch:
                numbers[f"{dataset}_mean_drop"] = [m["mean"] for m in metas]
            if len(metas) >= 3:
                per_arch[a] = mean_drop_verdict(dataset, metas)
        if not per_arch:
            means = numbers[f"{dataset}_mean_drop"]
            row(key, None, f"{dataset}/{arch} @{epochs}", rule, PENDING if len(epochs) >= 3 else UNTESTABLE,
                note="mean drop accuracy " + str([round(v, 2) for v in means]))
            continue
        missing = [a for a in p.archs if a not in per_arch]
        rule = next(iter(per_arch.values()))[1] + (
            "; judged for every arch: reproduced only if reproduced for each, not reproduced if not for any (so "
            "the row stays pending while an arch still to land could change it)" if len(p.archs) > 1 else "")
        combined = stats.combine([v for v, _, _ in per_arch.values()])
        row(key, None, f"{dataset}/{'+'.join(per_arch)} @{epochs}", rule,
            PENDING if missing and combined != NOT else combined,
            note="; ".join((f"{a}: {v}, " if len(p.archs) > 1 else "") + n for a, (v, _, n) in per_arch.items())
                 + (f" ({', '.join(missing)} pending)" if missing else ""))
