"""Figures and tables beyond the paper's four, drawn from results files like :mod:`fnlib.plots`.

=============  ===================================================================================
``robustness``  accuracy vs ε of original and filtered models under FGSM, PGD and transfer attacks,
                95 % Wilson intervals                                              (``robustness.csv``)
``layers``      by depth of the convolution: fragile share (paper's accuracy rule and the loss rule), and
                % of images attacking S under FGSM and a random sign of the same size (``layers.csv``)
``csg_table``   CSG complexity per embedding, mean and t interval over resamples       (``csg.json``)
``seeds_table`` headline numbers across training seeds: mean, t interval, min, max (``seeds_summary.csv``)
=============  ===================================================================================
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from matplotlib.ticker import NullFormatter

from .claims.sheet import clip_t
from .plots import ARCH_NAMES, DATASET_NAMES, _figure, _finish, _pretty_dataset, _run_label, _style

MODEL_LABELS = {"original": "original", "filtered": "filtered (S ranked on test, the paper's)",
                "filtered_val": "filtered (S ranked on validation)",
                "filtered_bn": "filtered, BatchNorm statistics recomputed",
                "original_bn": "original, BatchNorm statistics recomputed"}
MODEL_COLORS = {"original": "black", "filtered": "tab:orange", "filtered_val": "tab:blue", "filtered_bn": "tab:green",
                "original_bn": "0.55"}
ATTACK_TITLES = {"fgsm": "FGSM, white-box", "pgd": "PGD, white-box", "fgsm_transfer": "FGSM made on the original",
                 "pgd_transfer": "PGD made on the original"}


def robustness(epoch_dir, path=None):
    """Four panels (FGSM, PGD, and both transferred from the original): accuracy vs ε per model."""
    epoch_dir = Path(epoch_dir)
    df = pd.read_csv(epoch_dir / "robustness.csv")
    with _style():
        fig, axes = _figure(2, 2, figsize=(11, 7.6), sharey=True)      # 2 × 2: legible at a page's width
        for ax, attack in zip(axes.flat, ATTACK_TITLES):
            base = "fgsm" if attack.startswith("fgsm") else "pgd"
            for j, (model, label) in enumerate(MODEL_LABELS.items()):
                d = df[(df["model"] == model) & (df["attack"] == (base if model == "original" else attack))]
                if d.empty:
                    continue
                d = d.sort_values("epsilon")
                x = d["epsilon"] * (1 + 0.03 * (j - 2))            # small dodge so the bars do not overlap
                yerr = [(d["accuracy"] - d["low"]).clip(lower=0), (d["high"] - d["accuracy"]).clip(lower=0)]
                ax.errorbar(x, d["accuracy"], yerr=yerr,
                            marker="o", ms=4, capsize=3, lw=1.3, color=MODEL_COLORS[model], label=label)
            ax.set_xscale("log")
            eps = sorted(df["epsilon"].unique().tolist())
            ax.set_xticks(eps, [f"{e:g}" for e in eps])
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel("ε (log scale)")
            ax.set_title(ATTACK_TITLES[attack], fontsize="medium")
        for row in axes:
            row[0].set_ylabel("test accuracy (%), 95 % interval")
        axes[0][0].legend(fontsize="x-small", loc="best")
        fig.suptitle(f"The defence under stronger tests — {_run_label(epoch_dir.parent)} @{epoch_dir.name[1:]}")
    return _finish(fig, path)


def robustness_table(epoch_dir) -> pd.DataFrame:
    """One row per (model, attack), one column per ε: accuracy [95 % interval]; images right only for this
    model / only for its baseline; one-sided McNemar p that it is better (↑) or worse (↓) than the baseline."""
    df = pd.read_csv(Path(epoch_dir) / "robustness.csv")
    df = df[df["model"] != "original"].copy()
    # HTML cells (the book renders them through a Styler, which does not escape): the accuracy on one line, the
    # paired test under it in small type, each part kept whole
    df["cell"] = [f'<span style="white-space:nowrap">{a:.2f} [{lo:.2f}, {hi:.2f}]</span><br><small style="white-space:'
                  f'nowrap">+{m}/−{o} · p↑ {pb:.2g} · p↓ {pw:.2g}</small>' for a, lo, hi, m, o, pb, pw in
                  zip(df["accuracy"], df["low"], df["high"], df["only_model"], df["only_original"], df["p_better"],
                      df["p_worse"])]
    df["model"] = df["model"].map(lambda m: MODEL_LABELS.get(m, m))
    if "baseline" in df:
        df["baseline"] = df["baseline"].map(lambda m: MODEL_LABELS.get(m, m))
    df["attack"] = df["attack"].map(ATTACK_TITLES)
    df["ε"] = df["epsilon"].map(lambda e: f"ε = {e:g}")
    index = ["model", "baseline", "attack"] if "baseline" in df else ["model", "attack"]
    return df.pivot(index=index, columns="ε", values="cell").reset_index().rename_axis(columns=None)


def layers(epoch_dir, path=None):
    """By depth: the fragile share under both criteria, and % attacking S for the loss-based split, one line
    per ε (FGSM solid, random sign dotted)."""
    epoch_dir = Path(epoch_dir)
    df = pd.read_csv(epoch_dir / "layers.csv")
    with _style():
        fig, axes = _figure(1, 2, figsize=(12, 4.2))
        ax = axes[0][0]
        for i, (criterion, label) in enumerate((("accuracy", "accuracy below the mean (the paper's rule)"),
                                                ("loss", "loss above the mean"))):
            per = df[df["criterion"] == criterion].drop_duplicates("layer").sort_values("depth")
            ax.bar(per["depth"] + (i - 0.5) * 0.4, 100 * per["fraction_fragile"], width=0.4, label=label,
                   color=("tab:blue", "tab:orange")[i], alpha=0.8)
        names = df.drop_duplicates("layer").sort_values("depth")
        ax.set_xticks(names["depth"], names["layer"].str.replace("layer", "L").str.replace(".downsample.0", ".ds"),
                      rotation=90, fontsize="x-small")
        ax.set_ylabel("fragile kernels (% of the layer)")
        ax.set_title("fragile share by depth", fontsize="medium")
        ax.legend(fontsize="x-small")
        ax = axes[0][1]
        loss = df[df["criterion"] == "loss"]
        for i, (eps, d) in enumerate(loss.groupby("epsilon")):
            d = d.sort_values("depth")
            ax.plot(d["depth"], d["percent"], marker="*", color=f"C{i + 2}", label=f"FGSM ε = {eps:g}")
            ax.plot(d["depth"], d["random_percent"], ls=":", marker=".", color=f"C{i + 2}",
                    label=f"random sign ε = {eps:g}")
        ax.axhline(50, color="0.6", ls=":", lw=1)
        ax.set_ylim(-3, 103)
        ax.set_ylabel("images attacking S (%), loss-based S")
        ax.set_xlabel("convolution (depth in the forward pass)")
        ax.set_xticks(names["depth"], names["depth"], fontsize="x-small")
        ax.set_title("Algorithm 1 at every convolution", fontsize="medium")
        ax.legend(fontsize="x-small")
        fig.suptitle(f"Every convolution — {_run_label(epoch_dir.parent)} @{epoch_dir.name[1:]}")
    return _finish(fig, path)


def csg_table(run_dirs) -> pd.DataFrame:
    """One row per (data set, embedding): CSG mean [t interval] over resamples."""
    rows = []
    for run_dir in run_dirs:
        path = Path(run_dir) / "csg.json"
        if not path.exists():
            continue
        info = json.loads(path.read_text())
        for s in info["summary"]:
            rows.append({"data set": _pretty_dataset(Path(run_dir).resolve().parent.name), "embedding": f"{s['embedding'].upper()}-{s['dim']}",
                         "CSG [95 % interval]": f"{s['mean']:.3f} [{s['low']:.3f}, {s['high']:.3f}]",
                         "draws": info["params"]["resamples"], "M per class": info["params"]["m"],
                         "k": info["params"]["k"]})
    return pd.DataFrame(rows)


QUANTITY_LABELS = {"clean_accuracy": "clean accuracy (%)", "fraction_fragile": "fragile kernels (%)",
                   "mean_drop": "mean drop accuracy (%)", "fgsm_accuracy": "FGSM accuracy (%)",
                   "attacking_s": "attacking S (%)", "filter_gain": "filter's FGSM gain (points)"}


def seeds_table(run_dir) -> pd.DataFrame:
    """The seed study: one row per number and epoch, mean [t interval] and range over seeds."""
    df = pd.read_csv(Path(run_dir) / "seeds_summary.csv", keep_default_na=False)
    what = [QUANTITY_LABELS.get(q, q) + (f" @ε {e}" if e != "" else "") + (f", {s}" if s else "")
            for q, e, s in zip(df["quantity"], df["epsilon"], df["space"])]
    # a t interval over few seeds can reach past what the quantity can take: clipped (fnlib.claims.sheet.clip_t)
    ends = [clip_t(lo, hi, q) for lo, hi, q in zip(df["low"].astype(float), df["high"].astype(float), df["quantity"])]
    return pd.DataFrame({"epoch": df["epoch"], "number": what, "seeds": df["seeds"],
                         "mean [95 % t interval]": [f"{m:.1f} [{lo:.1f}, {hi:.1f}]" for m, (lo, hi) in
                                                    zip(df["mean"].astype(float), ends)],
                         "range": [f"{a:.1f} – {b:.1f}" for a, b in zip(df["min"].astype(float), df["max"].astype(float))]})


def _run(r: dict) -> str:
    return f"{DATASET_NAMES.get(r['dataset'], r['dataset'])} {ARCH_NAMES.get(r['arch'], r['arch'])}"


def _number(q: str, e: str, s: str) -> str:
    return QUANTITY_LABELS.get(q, q) + (f" @ε {e}" if e != "" else "") + (f", {s}" if s else "")


def replicate_table(rows: list[dict], seeds=(0, 1, 2)) -> pd.DataFrame:
    """The seed replicates (``summary.json["seeds"]``, :func:`fnlib.replicates.seed_table`) of the main schedule:
    one row per checkpoint and number, each seed's value, mean [t interval] (clipped) and range; '—' where a seed
    has not landed."""
    out = []
    for r in rows:
        vals = r["values"]
        lo, hi = (clip_t(r["low"], r["high"], r["quantity"]) if r["low"] is not None else (None, None))
        out.append({"run": _run(r),
                    "epoch": r["epoch"], "number": _number(r["quantity"], r["epsilon"], r["space"]),
                    **{f"seed {s}": (f"{vals[str(s)]:.1f}" if str(s) in vals else "—") for s in seeds},
                    "mean [95 % t interval]": (f"{r['mean']:.1f} [{lo:.1f}, {hi:.1f}]" if lo is not None else "—"),
                    "range": f"{r['min']:.1f} – {r['max']:.1f}" if r["seeds"] > 1 else "—"})
    return pd.DataFrame(out)


def schedule_frame(rows: list[dict]) -> pd.DataFrame:
    """``summary.json["schedules"]`` (:func:`fnlib.replicates.schedule_table`): the 100-epoch run's snapshot at
    epoch E beside the model trained on an E-epoch schedule of its own."""
    return pd.DataFrame([{"run": _run(r), "epoch": r["epoch"],
                          "number": _number(r["quantity"], r["epsilon"], r["space"]),
                          "snapshot of the 100-epoch run": f"{r['snapshot']:.1f}",
                          "trained for E epochs": f"{r['own_schedule']:.1f}",
                          "difference": f"{round(r['difference'], 1) + 0.0:+.1f}"} for r in rows])  # no "-0.0"
