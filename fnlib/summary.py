"""``results/<profile>/summary.json``: every headline number of SPEC §2, the paper's value beside ours,
and a verdict per row. It reads only results files and ``book/paper_values.json`` (no torch).

The paper's numbers come from ResNet-50 at epochs 10/50/100. A profile without those uses its largest
arch and maps 10/50/100 to its first/middle/last checkpoint; every row names the model it was read from.
Verdicts: numbers within ``TOL`` points of the paper are *reproduced*, within ``3·TOL`` *partly*, else
*not reproduced*; claims are *reproduced* when they hold everywhere they are tested, *partly* when they
hold somewhere, and *not testable here* when the profile lacks what they need (e.g. three archs).
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from . import profiles, results

PAPER_VALUES = results.PROJECT_ROOT / "book" / "paper_values.json"
TOL = 2.0   # percentage points
REPRODUCED, PARTLY, NOT, UNTESTABLE = "reproduced", "partly", "not reproduced", "not testable here"
PENDING = "pending (not computed yet)"


def paper_values() -> dict:
    return json.loads(PAPER_VALUES.read_text())


def reference(p: profiles.Profile) -> tuple[str, dict]:
    """The arch standing in for ResNet-50 and the epochs standing in for 10/50/100."""
    arch = "resnet50" if "resnet50" in p.archs else p.archs[-1]
    e = p.epochs
    return arch, {10: e[0], 50: e[len(e) // 2], 100: e[-1]}


def _csv(path: Path) -> pd.DataFrame | None:
    return pd.read_csv(path) if path.exists() else None


def _at(df, epsilon, column, **where):
    if df is None:
        return None
    for k, v in where.items():
        df = df[df[k] == v]
    hit = df[(df["epsilon"] - epsilon).abs() < 1e-9]
    return float(hit[column].iloc[0]) if len(hit) else None


def number_verdict(paper, ours, tol=TOL):
    if ours is None:
        return PENDING
    diff = abs(ours - paper)
    return REPRODUCED if diff <= tol else PARTLY if diff <= 3 * tol else NOT


def _share(flags) -> str:
    flags = [f for f in flags if f is not None]
    if not flags:
        return UNTESTABLE
    return REPRODUCED if all(flags) else PARTLY if any(flags) else NOT


def build(profile: str, root: Path | None = None) -> dict:
    p = profiles.get(profile)
    root = Path(root) if root else results.work_root() / "results" / profile
    if not any(root.glob("*/*/e*/*.csv")):
        raise FileNotFoundError(f"no results of profile {profile} under {root}; nothing written. Make them with: "
                                f"python -m fnlib run --profile {profile}")
    pv = paper_values()
    arch, ep = reference(p)
    rows, numbers = [], {}

    def edir(dataset, epoch, a=arch):
        return root / dataset / a / f"e{epoch}"

    def row(key, ours, model, note="", verdict=None, paper=None):
        paper = pv[key]["value"] if paper is None and key in pv else paper
        numbers[key] = ours
        rows.append({"id": key, "item": pv[key]["item"] if key in pv else pv["claims"][key],
                     "paper": paper, "ours": None if ours is None else round(ours, 2), "model": model,
                     "verdict": verdict or number_verdict(paper, ours), "note": note})

    # --- Sec 3.1 numbers ------------------------------------------------------------------------------------
    for dataset, eps in (("cifar10", 0.01), ("mnist", 0.34)):
        att = _csv(edir(dataset, ep[100]) / "attack.csv")
        model = f"{dataset}/{arch} @{ep[100]}"
        row(f"{dataset}_clean_e100", _at(att, 0.0, "accuracy", space="pixel"), model)
        pix = _at(att, eps, "accuracy", space="pixel")
        norm = _at(att, eps, "accuracy", space="normalized")
        numbers[f"{dataset}_fgsm_{eps}_e100_normalized"] = norm
        row(f"{dataset}_fgsm_{eps}_e100", pix, model,
            note=f"pixel space; normalized space gives {norm:.2f} %" if norm is not None else "pixel space")
    # --- Sec 5/6: share of fragile kernels and Algorithm 1 at ε = 0.015 --------------------------------------
    for dataset, e in (("mnist", 10), ("cifar10", 50)):
        meta_path = edir(dataset, ep[e]) / "meta.json"
        meta = results.read_json(meta_path) if meta_path.exists() else None
        model = f"{dataset}/{arch} @{ep[e]}"
        row(f"{dataset}_fraction_fragile_e{e}", 100 * meta["fraction_fragile"] if meta else None, model,
            verdict=number_verdict(37, 100 * meta["fraction_fragile"], tol=5) if meta else None)
        tgt = _csv(edir(dataset, ep[e]) / "targeting.csv")
        pct = _at(tgt, 0.015, "percent", space="pixel")
        row(f"{dataset}_attacking_S_e{e}", pct, model, note="ε = 0.015 (the paper's filter ε), pixel space",
            verdict=number_verdict(89, pct, tol=5) if pct is not None else None)
    for key in ("csg_cifar10", "csg_mnist"):
        row(key, None, "—", note="cited by the paper from Branchaud-Charron et al. (2019); not recomputed here",
            verdict="not recomputed (cited)")
    # --- claims ---------------------------------------------------------------------------------------------
    epochs = list(p.epochs)
    att = {e: _csv(edir("cifar10", e) / "attack.csv") for e in epochs}
    clean = [_at(att[e], 0.0, "accuracy", space="pixel") for e in epochs]
    attacked = [_at(att[e], 0.01, "accuracy", space="pixel") for e in epochs]
    mono = lambda xs: None if None in xs or len(xs) < 2 else all(b > a for a, b in zip(xs, xs[1:]))
    row("accuracy_grows", None, f"cifar10/{arch} @{epochs}", verdict=_share([mono(clean), mono(attacked)]),
        note=f"clean {[round(c, 1) for c in clean if c is not None]}, ε=0.01 "
             f"{[round(a, 1) for a in attacked if a is not None]}")
    tg = {e: _csv(edir("cifar10", e) / "targeting.csv") for e in epochs}
    grows, small = [], {}
    for e in epochs:
        df = tg[e]
        if df is None:
            continue
        df = df[df["space"] == "pixel"].sort_values("epsilon")
        grows.append(df["percent"].iloc[-1] > df["percent"].iloc[0])
        small[e] = df[df["epsilon"] <= 1e-3]["percent"].mean()
    row("targeting_grows_with_eps", None, f"cifar10/{arch} @{epochs}", verdict=_share(grows),
        note="largest vs smallest ε of the log grid, per epoch")
    balanced = None if len(small) < 2 else abs(small[epochs[-1]] - 50) < abs(small[epochs[0]] - 50)
    row("late_model_balanced", None, f"cifar10/{arch} @{epochs[0]} vs @{epochs[-1]}", verdict=_share([balanced]),
        note="mean % attacking S over ε ≤ 1e-3: " + ", ".join(f"@{e}: {v:.1f}" for e, v in small.items()))
    dfn = _csv(edir("mnist", ep[10]) / "defence.csv")
    if dfn is not None:
        o = dfn[dfn["model"] == "original"].set_index("epsilon")
        f = dfn[dfn["model"] == "filtered"].set_index("epsilon")
        lower = (f["targeting_percent"] < o["targeting_percent"]).mean()
        row("filter_lowers_targeting", None, f"mnist/{arch} @{ep[10]}",
            verdict=REPRODUCED if lower >= 0.8 else PARTLY if lower > 0 else NOT,
            note=f"filtered below original at {100 * lower:.0f} % of ε values")
        acc_o, acc_f = _at(dfn, 0.015, "accuracy", model="original"), _at(dfn, 0.015, "accuracy", model="filtered")
        numbers["mnist_filter_acc_original_0.015"], numbers["mnist_filter_acc_filtered_0.015"] = acc_o, acc_f
        cl_o, cl_f = _at(dfn, 0.0, "accuracy", model="original"), _at(dfn, 0.0, "accuracy", model="filtered")
        row("filter_improves_robustness", None, f"mnist/{arch} @{ep[10]}",
            verdict=REPRODUCED if acc_f > acc_o else NOT,
            note=f"FGSM ε=0.015: original {acc_o:.2f} %, filtered {acc_f:.2f} %; clean {cl_o:.2f} → {cl_f:.2f} %")
    else:
        row("filter_lowers_targeting", None, "—", verdict=UNTESTABLE)
        row("filter_improves_robustness", None, "—", verdict=UNTESTABLE)
    n_fragile = {}
    for a in p.archs:
        m = [edir("cifar10", e, a) / "meta.json" for e in epochs]
        if all(x.exists() for x in m):
            n_fragile[a] = sum(len(results.read_json(x)["fragile"]) for x in m) / len(m)
    if len(n_fragile) >= 2:
        vals = [n_fragile[a] for a in p.archs if a in n_fragile]
        row("fragile_grows_with_depth", None, "cifar10/" + "→".join(n_fragile), verdict=_share([mono(vals)]),
            note="mean # fragile over epochs: " + ", ".join(f"{a} {v:.1f}" for a, v in n_fragile.items()))
    else:
        row("fragile_grows_with_depth", None, "—", verdict=UNTESTABLE, note="needs ResNet-18/50/101 (paper profile)")
    means = {}
    for dataset in ("cifar10", "mnist"):
        m = [edir(dataset, e) / "meta.json" for e in epochs]
        means[dataset] = [results.read_json(x)["mean"] for x in m if x.exists()]
        numbers[f"{dataset}_mean_drop"] = means[dataset]
    c, mn = means["cifar10"], means["mnist"]
    sat = None if len(c) < 3 else (c[-1] >= c[0] and (c[-1] - c[-2]) < (c[1] - c[0]))
    row("mean_drop_cifar_saturates", None, f"cifar10/{arch} @{epochs}", verdict=_share([sat]),
        note="mean drop accuracy " + str([round(v, 2) for v in c]))
    rf = None if len(mn) < 3 else (max(mn) > mn[0] and max(mn) > mn[-1])
    row("mean_drop_mnist_rises_falls", None, f"mnist/{arch} @{epochs}", verdict=_share([rf]),
        note="mean drop accuracy " + str([round(v, 2) for v in mn]))
    out = {"profile": profile, "description": p.description, "reference_arch": arch,
           "reference_epochs": {str(k): v for k, v in ep.items()}, "rows": rows, "numbers": numbers,
           "provenance": _provenance(root)}
    results.write_json(out, root / "summary.json")
    return out


def _provenance(root: Path) -> dict:
    """Seeds, versions and hardware as recorded by the training steps."""
    out = {}
    for f in sorted(root.glob("*/*/train.json")):
        info = results.read_json(f)
        out[f"{f.parent.parent.name}/{f.parent.name}"] = {
            **info.get("provenance", {}), "train_seconds": info.get("seconds"), "precision": info.get("precision"),
            "epochs_done": info.get("epochs_done"), "sessions": len(info.get("sessions", [])),
            "cpus": sorted({s.get("cpu", "?") for s in info.get("sessions", [])})}
    return out


def table(summary: dict) -> pd.DataFrame:
    """The claims table of the book: item, paper, ours, model, verdict, note."""
    df = pd.DataFrame(summary["rows"])
    return df[["item", "paper", "ours", "model", "verdict", "note"]]
