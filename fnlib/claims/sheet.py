"""The claims table being written (:class:`Sheet`): the profile, where its results are, the paper's values, the
arch and epochs standing in for the paper's ResNet-50 at epochs 10/50/100, and the rows so far."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .. import profiles, results
from . import evidence, margins
from .margins import Spread
from .rules import cite
from .verdict import Verdict

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
    if key is None or key not in SEED_QUANTITIES:
        return None
    dataset, quantity, eps, space, paper_epoch = SEED_QUANTITIES[key]
    if not p.seeds:
        return across_replicates(tables, root, p, arch, dataset, quantity, eps, space, reference(p)[1][paper_epoch])
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
    lo, hi = clip_t(float(h["low"]), float(h["high"]), quantity)
    return (f"{float(h['mean']):.2f} {evidence.fmt_ci(lo, hi)} ({int(h['seeds'])} seeds, range "
            f"{float(h['min']):.2f}–{float(h['max']):.2f})")


def across_replicates(tables: dict, root: Path, p: profiles.Profile, arch: str, dataset: str, quantity: str,
                      eps: str, space: str, epoch: int) -> str | None:
    """The same, from the profile's seed replicates (``paper-seed1``, ...: :mod:`fnlib.replicates`), once at least
    two seeds of the main schedule have landed at that checkpoint."""
    from .. import replicates
    if "replicates" not in tables:
        tables["replicates"] = replicates.seed_table(p.name, root) if replicates.variants(p.name) else []
    for h in tables["replicates"]:
        if ((h["dataset"], h["arch"], h["schedule"], h["epoch"], h["quantity"], h["space"]) ==
                (dataset, arch, p.cycle, epoch, quantity, space)
                and (h["epsilon"] == eps or (h["epsilon"] and eps and float(h["epsilon"]) == float(eps)))):
            if h["seeds"] < 2:
                return None
            lo, hi = clip_t(h["low"], h["high"], quantity)
            return (f"{h['mean']:.2f} {evidence.fmt_ci(lo, hi)} ({h['seeds']} seeds: "
                    + ", ".join(f"{v:.2f}" for v in h["values"].values()) + ")")
    return None


def clip_t(lo: float, hi: float, quantity: str) -> tuple[float, float]:
    """A t interval of a mean over seeds, clipped to the values the quantity can take: [0, 100] for an accuracy
    or a share, [−100, 100] for a gain in points (with few seeds a t interval reaches past them)."""
    bound = (-100.0, 100.0) if quantity.endswith("gain") else (0.0, 100.0)
    return max(lo, bound[0]), min(hi, bound[1])


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
    spread: Spread | None = None        # the seed replicates' values that ground the refuting margins

    def __post_init__(self):
        self.arch, self.ep = reference(self.p)

    def refuting(self, stated: float, dataset: str, epoch: int, quantity: str, spaces=("",)) -> dict[str, float]:
        """``{space: margin}`` beyond which a number row at this checkpoint refutes (rule ``seed_margin``:
        :mod:`.margins`); ``stated`` until the seed replicates ground a wider one."""
        return margins.refuting(self.spread, stated, dataset, self.arch, epoch, quantity, spaces)

    def margin_reading(self, stated: float, dataset: str, epoch: int, quantity: str, spaces, stated_verdict,
                       row_verdict) -> dict:
        """``{"seed_margin": reading}`` for a number row (empty for a profile without seed replicates)."""
        r = margins.reading(self.spread, stated, dataset, self.arch, epoch, quantity, spaces, stated_verdict,
                            row_verdict)
        return {} if r is None else {"seed_margin": r}

    def edir(self, dataset: str, epoch: int, a: str | None = None) -> Path:
        """A checkpoint's results folder; the reference arch unless ``a`` names another."""
        return self.root / dataset / (a or self.arch) / f"e{epoch}"

    def row(self, key, ours, model, rule, verdict, note="", ci=None, n=None, paper=None, item=None, seeds=None,
            kind=None, *, rules=(), runs=(), epochs=(), spaces=(), reason="", detail="", earlier=None, control=None,
            sensitivity=None):
        """Add a row: the paper's value and item come from ``book/paper_values.json`` unless given.

        ``verdict`` is a :class:`~fnlib.claims.verdict.Verdict` or one of :mod:`fnlib.stats`' constants;
        ``rules`` the ids of the rules of :data:`~fnlib.claims.rules.RULES` it applies (cited with their version);
        ``rule`` the row's own parameters of them (margin, ε, test); ``reason`` one plain sentence and ``detail`` what a
        row judged on many runs says of the rest (shown folded under the reason); ``runs``,
        ``epochs`` and ``spaces`` its scope (the seeds are added from the provenance by
        :func:`fnlib.summary.build`); ``note`` its evidence; ``earlier`` the verdicts of earlier versions of
        rules that changed after its data were seen (:func:`~fnlib.claims.rules.earlier`); ``control`` a
        reading beside the verdict; ``sensitivity`` the row's rule under other readings of its data
        (:mod:`~fnlib.claims.sensitivity`), beside the verdict too."""
        pv = self.pv
        paper = pv[key]["value"] if paper is None and key in pv else paper
        self.numbers[key] = ours
        item = item or (pv[key]["item"] if key in pv else pv["claims"][key])
        v = Verdict.of(verdict)
        self.rows.append({"id": key, "kind": kind or ("number" if key in pv else "claim"), "item": item,
                          "paper": paper, "ours": None if ours is None else round(ours, 2),
                          "ci": None if ci is None else round_ci(*ci), "n": n, "model": model,
                          "verdict": v.value, "reason": reason or default_reason(v, rule), "detail": detail or None,
                          "rules": cite(*rules), "rule": rule,
                          "scope": {"runs": list(runs), "epochs": [int(e) for e in epochs],
                                    "eps_spaces": list(spaces), "seeds": []},
                          "evidence": note, "earlier": earlier, "control": control, "sensitivity": sensitivity or None,
                          "across_seeds": across_seeds(self.seed_tables, self.root, self.p, self.arch, seeds or key)})


def default_reason(v: Verdict, rule: str) -> str:
    """The reason of a row whose builder gives none: what is missing, for a row without a verdict."""
    if v is Verdict.PENDING:
        return "its results have not landed yet"
    if v is Verdict.NO_VERDICT:
        return "not testable with this profile" if not rule or rule == "—" else "a value recomputed, not judged"
    return ""


def round_ci(lo: float, hi: float) -> list[float]:
    """An interval's ends as stored and printed: two decimals, more where two would round an end strictly inside
    (0, 100) to 0 or 100 (a Wilson interval [99.96, 99.998] stays that, not [99.96, 100.0])."""
    return [float(evidence.pct(lo, places=2)) if 0 < lo < 100 else round(lo, 2),
            float(evidence.pct(hi, places=2)) if 0 < hi < 100 else round(hi, 2)]
