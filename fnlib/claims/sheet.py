"""The claims table being written (:class:`Sheet`): the profile, where its results are, the paper's values, the
arch and epochs standing in for the paper's ResNet-50 at epochs 10/50/100, and the rows so far."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .. import profiles, results

PAPER_VALUES = results.PROJECT_ROOT / "book" / "paper_values.json"


def paper_values() -> dict:
    return json.loads(PAPER_VALUES.read_text())


def reference(p: profiles.Profile) -> tuple[str, dict]:
    """The arch standing in for ResNet-50 and the epochs standing in for 10/50/100."""
    arch = "resnet50" if "resnet50" in p.archs else p.archs[-1]
    e = p.epochs
    return arch, {10: e[0], 50: e[len(e) // 2], 100: e[-1]}


# which number of the seed study (``seeds_summary.csv``) stands behind a claims-table row
SEED_QUANTITIES = {"cifar10_clean_e100": ("cifar10", "clean_accuracy", "", "", 100),
                   "mnist_clean_e100": ("mnist", "clean_accuracy", "", "", 100),
                   "cifar10_fgsm_0.01_e100": ("cifar10", "fgsm_accuracy", "0.01", "pixel", 100),
                   "mnist_fgsm_0.34_e100": ("mnist", "fgsm_accuracy", "0.34", "pixel", 100),
                   "mnist_fraction_fragile_e10": ("mnist", "fraction_fragile", "", "", 10),
                   "cifar10_fraction_fragile_e50": ("cifar10", "fraction_fragile", "", "", 50),
                   "mnist_attacking_S_e10": ("mnist", "attacking_s", "0.015", "pixel", 10),
                   "cifar10_attacking_S_e50": ("cifar10", "attacking_s", "0.015", "pixel", 50),
                   "filter_improves_robustness": ("mnist", "filter_gain", "0.015", "pixel", 10)}


def across_seeds(tables: dict, root: Path, p: profiles.Profile, arch: str, key: str | None) -> str | None:
    """'mean [t interval] (n seeds)' of the seed study for a row, when the profile has one and it has landed.
    ``tables`` keeps each data set's ``seeds_summary.csv`` (or None, if it has not landed) once read."""
    if key is None or key not in SEED_QUANTITIES or not p.seeds:
        return None
    dataset, quantity, eps, space, paper_epoch = SEED_QUANTITIES[key]
    if dataset not in tables:
        path = root / dataset / arch / "seeds_summary.csv"
        tables[dataset] = (pd.read_csv(path, keep_default_na=False, dtype={"epsilon": str}) if path.exists()
                           else None)
    df = tables[dataset]
    if df is None:
        return None
    epoch = reference(p)[1][paper_epoch]
    hit = df[(df["quantity"] == quantity) & (df["epoch"] == epoch) & (df["space"] == space)
             & (df["epsilon"].map(lambda e: e == eps or (e != "" and eps != "" and float(e) == float(eps))))]
    if hit.empty:
        return None
    h = hit.iloc[0]
    return (f"{float(h['mean']):.2f} [{float(h['low']):.2f}, {float(h['high']):.2f}] ({int(h['seeds'])} seeds, range "
            f"{float(h['min']):.2f}–{float(h['max']):.2f})")


@dataclass
class Sheet:
    """The rows of the claims table, in the order they are added, and ``numbers``: each row's value by its id,
    which :meth:`row` records, plus a few values the book quotes, which the row builders add directly (the FGSM
    accuracies in normalized space, the filter's two accuracies, the mean drop accuracies)."""
    p: profiles.Profile
    root: Path
    pv: dict = field(default_factory=paper_values)
    rows: list = field(default_factory=list)
    numbers: dict = field(default_factory=dict)
    arch: str = field(init=False)       # the arch standing in for the paper's ResNet-50 (:func:`reference`)
    ep: dict = field(init=False)        # the epochs standing in for the paper's 10/50/100
    seed_tables: dict = field(default_factory=dict, repr=False)     # read once per build (:func:`across_seeds`)

    def __post_init__(self):
        self.arch, self.ep = reference(self.p)

    def edir(self, dataset: str, epoch: int, a: str | None = None) -> Path:
        """A checkpoint's results folder; the reference arch unless ``a`` names another."""
        return self.root / dataset / (a or self.arch) / f"e{epoch}"

    def row(self, key, ours, model, rule, verdict, note="", ci=None, n=None, paper=None, item=None, seeds=None,
            kind=None):
        """Add a row: the paper's value and item come from ``book/paper_values.json`` unless given."""
        pv = self.pv
        paper = pv[key]["value"] if paper is None and key in pv else paper
        self.numbers[key] = ours
        item = item or (pv[key]["item"] if key in pv else pv["claims"][key])
        self.rows.append({"id": key, "kind": kind or ("number" if key in pv else "claim"), "item": item,
                          "paper": paper, "ours": None if ours is None else round(ours, 2), "ci": None if ci is None
                          else [round(ci[0], 2), round(ci[1], 2)], "n": n, "model": model, "rule": rule,
                          "verdict": verdict, "note": note,
                          "seeds": across_seeds(self.seed_tables, self.root, self.p, self.arch, seeds or key)})
