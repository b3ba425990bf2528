"""Seed replicates and separately trained schedules of a profile, read back from their results files (issue 31).

The main runs of ``paper`` are one training per (data set, arch), seed 0, on a 100-epoch one-cycle schedule.
Its replicate profiles (``paper-seed1``, ``paper-seed2``: another seed, the same schedule) and schedule profiles
(``paper-sched10``, ``paper-sched50``: seed 0, a one-cycle schedule of their own length) write their results
under ``results/paper/<folder>/`` with the same files. This module reads the headline numbers of every
checkpoint from those files -- nothing is recomputed -- and gives

* :func:`seed_table`: per (data set, arch, schedule, epoch, number) the value of every seed, their mean, the t
  interval of the mean (n − 1 degrees of freedom: wide for three seeds, which is the honest width) and range;
* :func:`schedule_table`: per (data set, arch, epoch, number) the snapshot of the 100-epoch run at that epoch
  beside the model trained on a schedule that ends there.

A checkpoint whose analyses have not landed contributes nothing; a row says how many seeds stand behind it.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from . import profiles, results
from .stats import t_interval

# the ε of the paper's FGSM numbers (Sec 3.1) and of Algorithm 1's share (Sec 5)
FGSM_EPS = {"mnist": 0.34, "cifar10": 0.01}
TARGET_EPS = 0.015


def variants(profile: str) -> dict[str, profiles.Profile]:
    """The replicate and schedule profiles that sit beside ``profile`` (their folder is under its folder)."""
    base = profiles.get(profile).folder
    return {name: p for name, p in profiles.PROFILES.items() if p.folder.startswith(base + "/")}


def replicated(profile: str) -> set[tuple[str, str, int]]:
    """The (data set, arch, epoch) checkpoints that the seed replicates of ``profile`` train (same schedule)."""
    main = profiles.get(profile)
    return {(d, a, e) for p in variants(profile).values() if p.cycle == main.cycle and p.seed != main.seed
            for d, a in p.runs() for e in p.run_epochs(d, a)}


def _close(a, b) -> bool:
    return abs(float(a) - float(b)) < 1e-9


def checkpoint_numbers(edir: Path, dataset: str) -> list[dict]:
    """The headline numbers of one checkpoint's results folder (rows quantity, epsilon, space, value)."""
    rows = []
    meta = edir / "meta.json"
    if meta.exists():
        m = json.loads(meta.read_text())
        rows += [{"quantity": "fraction_fragile", "epsilon": "", "space": "", "value": 100.0 * m["fraction_fragile"]},
                 {"quantity": "mean_drop", "epsilon": "", "space": "", "value": float(m["mean"])}]
    if (edir / "attack.csv").exists():
        a = pd.read_csv(edir / "attack.csv")
        for space in sorted(set(a["space"])):
            s = a[a["space"] == space]
            clean = s[s["epsilon"].map(lambda e: _close(e, 0))]
            if space == "pixel" and len(clean):
                rows.append({"quantity": "clean_accuracy", "epsilon": "", "space": "",
                             "value": float(clean["accuracy"].iloc[0])})
            hit = s[s["epsilon"].map(lambda e: _close(e, FGSM_EPS[dataset]))]
            if len(hit):
                rows.append({"quantity": "fgsm_accuracy", "epsilon": format(FGSM_EPS[dataset], "g"), "space": space,
                             "value": float(hit["accuracy"].iloc[0])})
    if (edir / "targeting.csv").exists():
        t = pd.read_csv(edir / "targeting.csv")
        for space in sorted(set(t["space"])):
            hit = t[(t["space"] == space) & t["epsilon"].map(lambda e: _close(e, TARGET_EPS))]
            if len(hit):
                rows.append({"quantity": "attacking_s", "epsilon": format(TARGET_EPS, "g"), "space": space,
                             "value": float(hit["percent"].iloc[0])})
    return rows


def _runs(profile: str, root: Path) -> list[dict]:
    """Every checkpoint number of ``profile`` and its variants: rows with seed, schedule, dataset, arch, epoch."""
    base = profiles.get(profile)
    out = []
    for p in [base, *variants(profile).values()]:
        folder = root / Path(p.folder).relative_to(base.folder) if p is not base else root
        for dataset, arch in p.runs():
            for epoch in p.run_epochs(dataset, arch):
                for r in checkpoint_numbers(folder / dataset / arch / f"e{epoch}", dataset):
                    out.append({"seed": p.seed, "schedule": p.cycle, "dataset": dataset, "arch": arch,
                                "epoch": epoch, **r})
    return out


def seed_table(profile: str = "paper", root: Path | None = None) -> list[dict]:
    """Per (data set, arch, schedule, epoch, quantity, ε, space): each seed's value, mean, t interval (clipped to
    the values the number can take), range."""
    from .claims.sheet import clip_t        # here, not at the top: claims imports this module
    root = Path(root) if root else results.work_root() / "results" / profiles.get(profile).folder
    groups: dict[tuple, dict[int, float]] = {}
    for r in _runs(profile, root):
        key = (r["dataset"], r["arch"], r["schedule"], r["epoch"], r["quantity"], r["epsilon"], r["space"])
        groups.setdefault(key, {})[r["seed"]] = r["value"]
    rows = []
    for (dataset, arch, schedule, epoch, quantity, eps, space), by_seed in sorted(groups.items()):
        values = [by_seed[s] for s in sorted(by_seed)]
        mean, lo, hi = (None if v != v else v for v in t_interval(values))   # NaN below two seeds: None in JSON
        if lo is not None:          # few seeds: a t interval can reach past what the number can take
            lo, hi = clip_t(lo, hi, quantity)
        rows.append({"dataset": dataset, "arch": arch, "schedule": schedule, "epoch": epoch, "quantity": quantity,
                     "epsilon": eps, "space": space, "values": {str(s): by_seed[s] for s in sorted(by_seed)},
                     "seeds": len(values), "mean": mean, "low": lo, "high": hi,
                     "min": min(values), "max": max(values)})
    return rows


def schedule_table(profile: str = "paper", root: Path | None = None, seed: int = 0,
                   table: list[dict] | None = None) -> list[dict]:
    """Per (data set, arch, epoch E, number): the ``seed`` snapshot of the main schedule at E beside the model
    trained on a one-cycle schedule of E epochs, where both have landed (from ``table``, :func:`seed_table`'s
    rows, when the caller has them already)."""
    main = profiles.get(profile).cycle
    by = {}
    for r in seed_table(profile, root) if table is None else table:
        if str(seed) in r["values"]:
            by[(r["dataset"], r["arch"], r["schedule"], r["epoch"], r["quantity"], r["epsilon"], r["space"])] = \
                r["values"][str(seed)]
    rows = []
    for (dataset, arch, schedule, epoch, q, eps, space), value in sorted(by.items()):
        if schedule == main or schedule != epoch:
            continue
        snap = by.get((dataset, arch, main, epoch, q, eps, space))
        if snap is not None:
            rows.append({"dataset": dataset, "arch": arch, "epoch": epoch, "quantity": q, "epsilon": eps,
                         "space": space, "snapshot": snap, "own_schedule": value, "difference": value - snap})
    return rows
