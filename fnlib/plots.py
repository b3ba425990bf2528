"""Figures 1-4 of the paper, drawn from the results files of SPEC §4 (never from models).

Every function reads CSV/JSON under ``results/<profile>/<dataset>/<arch>/`` and returns a
:class:`matplotlib.figure.Figure`; ``path=`` also saves it as PNG (150 dpi). Figures are built with
``matplotlib.figure.Figure`` rather than ``pyplot``, so nothing is left open in pyplot's registry and a
notebook cell that returns a figure shows it once. This module imports neither torch nor any other
fnlib module, so the book's figure pages stay light.

=========  ======================================================================================
``fig1``   per-kernel accuracy when that conv1 kernel is dropped; mean (red), base (grey, dashed),
           fragile S (blue circles), null S' (black stars)                           — Sec 3.3, Fig 1
``fig2``   left: FGSM accuracy vs ε (linear grid, dots); right: % of examples attacking S vs ε
           (log grid, stars); one line per epoch, grey / green / violet                    — Fig 2
``fig3``   % attacking S vs ε, original vs filtered model; FGSM accuracy vs ε; filter settings — Fig 3
``fig4``   per-kernel drop accuracy at every epoch, archs × datasets; red circles: fragile at every
           epoch, red crosses: fragile at some epochs only                                — Fig 4
=========  ======================================================================================
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt  # noqa: F401  (importing pyplot lets Jupyter register its figure formatters)
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

__all__ = ["epochs_in", "kernel_drop", "kernel_drop_table", "fragile_sets", "persistent_fragile",
           "transient_fragile", "runs_in", "epoch_colors", "fig1", "fig2", "fig3", "fig4", "save",
           "EPOCH_COLORS", "DATASET_NAMES", "ARCH_NAMES"]

#: Fig 2 caption: "Epoch 10, 50, 100 respectively indicated in colors grey, green, violet".
EPOCH_COLORS = ("grey", "tab:green", "darkviolet")
DATASET_NAMES = {"mnist": "MNIST", "cifar10": "CIFAR-10"}
ARCH_NAMES = {"resnet18": "ResNet-18", "resnet50": "ResNet-50", "resnet101": "ResNet-101"}
DATASET_ORDER = ("mnist", "cifar10")
FRAGILE_COLOR, NULL_COLOR, MEAN_COLOR, BASE_COLOR = "tab:blue", "black", "red", "grey"
ORIGINAL_COLOR, FILTERED_COLOR = "black", "tab:orange"
DPI = 150

_EPOCH_DIR = re.compile(r"^e(\d+)$")


# --------------------------------------------------------------------------------------------- reading
def _bool(series: pd.Series) -> pd.Series:
    """CSV booleans as written by the pipeline (True/False), tolerant of 1/0 and lower case."""
    if series.dtype == bool:
        return series
    return series.astype(str).str.strip().str.lower().isin({"true", "1", "1.0", "yes"})


def _read_json(path: Path) -> dict:
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else {}


def epochs_in(run_dir) -> list[int]:
    """Epochs with a results folder ``e<E>`` under ``run_dir``, sorted numerically."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = [int(m.group(1)) for p in run_dir.iterdir() if p.is_dir() and (m := _EPOCH_DIR.match(p.name))]
    return sorted(found)


def kernel_drop(epoch_dir) -> pd.DataFrame:
    """``e<E>/kernel_drop.csv`` as kernel (int), accuracy (float, %), fragile (bool), sorted by kernel."""
    df = pd.read_csv(Path(epoch_dir) / "kernel_drop.csv")
    df["kernel"] = df["kernel"].astype(int)
    df["accuracy"] = df["accuracy"].astype(float)
    df["fragile"] = _bool(df["fragile"])
    return df.sort_values("kernel").reset_index(drop=True)


def kernel_drop_table(run_dir, epochs=None) -> pd.DataFrame:
    """All epochs' kernel drops in long form: epoch, kernel, accuracy, fragile, mean, base_accuracy.

    ``mean`` and ``base_accuracy`` come from ``meta.json`` when present (mean falls back to the
    mean of the CSV's accuracies, base accuracy to NaN). Epochs without ``kernel_drop.csv`` are skipped.
    """
    run_dir = Path(run_dir)
    frames = []
    for e in (epochs_in(run_dir) if epochs is None else epochs):
        d = run_dir / f"e{e}"
        if not (d / "kernel_drop.csv").is_file():
            continue
        df = kernel_drop(d)
        meta = _read_json(d / "meta.json")
        df.insert(0, "epoch", int(e))
        df["mean"] = float(meta.get("mean", df["accuracy"].mean()))
        df["base_accuracy"] = float(meta.get("base_accuracy", np.nan))
        frames.append(df)
    cols = ["epoch", "kernel", "accuracy", "fragile", "mean", "base_accuracy"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)


def fragile_sets(run_dir, epochs=None) -> dict[int, set[int]]:
    """``{epoch: set of fragile kernels}`` for every epoch that has a ``kernel_drop.csv``."""
    t = kernel_drop_table(run_dir, epochs)
    return {int(e): set(g.loc[g["fragile"], "kernel"].astype(int)) for e, g in t.groupby("epoch")}


def persistent_fragile(run_dir, epochs=None) -> set[int]:
    """Kernels fragile at every epoch (Fig 4's red circles); empty when no epoch has results."""
    sets = list(fragile_sets(run_dir, epochs).values())
    return set.intersection(*sets) if sets else set()


def transient_fragile(run_dir, epochs=None) -> dict[int, set[int]]:
    """``{epoch: kernels fragile at that epoch but not at every epoch}`` (Fig 4's red crosses)."""
    sets = fragile_sets(run_dir, epochs)
    always = set.intersection(*sets.values()) if sets else set()
    return {e: s - always for e, s in sets.items()}


def _arch_key(name: str):
    m = re.search(r"(\d+)$", name)
    return (re.sub(r"\d+$", "", name), int(m.group(1)) if m else -1, name)


def _dataset_key(name: str):
    return (DATASET_ORDER.index(name) if name in DATASET_ORDER else len(DATASET_ORDER), name)


def runs_in(profile_dir) -> list[tuple[str, str]]:
    """``(dataset, arch)`` pairs under ``results/<profile>/`` that hold at least one ``e<E>`` folder."""
    profile_dir = Path(profile_dir)
    runs = []
    if profile_dir.is_dir():
        for ds in profile_dir.iterdir():
            if ds.is_dir():
                runs += [(ds.name, a.name) for a in ds.iterdir() if a.is_dir() and epochs_in(a)]
    return sorted(runs, key=lambda r: (_dataset_key(r[0]), _arch_key(r[1])))


# -------------------------------------------------------------------------------------------- styling
def epoch_colors(epochs) -> dict[int, object]:
    """Epoch → colour: grey, green, violet in order (the paper's three); more epochs extend the list
    with seaborn's ``deep`` palette (skipping its green and purple)."""
    epochs = sorted(int(e) for e in epochs)
    extra = [c for i, c in enumerate(sns.color_palette("deep", 10)) if i not in (2, 4, 7)]
    colors = list(EPOCH_COLORS) + extra
    while len(colors) < len(epochs):
        colors += extra
    return {e: colors[i] for i, e in enumerate(epochs)}


def _pretty_dataset(name: str) -> str:
    return DATASET_NAMES.get(name, name)


def _pretty_arch(name: str) -> str:
    return ARCH_NAMES.get(name, name)


def _run_label(run_dir: Path) -> str:
    run_dir = Path(run_dir).resolve()
    return f"{_pretty_dataset(run_dir.parent.name)} · {_pretty_arch(run_dir.name)}"


class _style:
    """seaborn's whitegrid/paper look, applied only while a figure is being built."""

    def __enter__(self):
        self._rc = matplotlib.rc_context()
        self._rc.__enter__()
        sns.set_theme(style="whitegrid", context="paper", font_scale=1.1,
                      rc={"axes.edgecolor": "0.3", "grid.color": "0.9", "legend.frameon": True})
        return self

    def __exit__(self, *exc):
        return self._rc.__exit__(*exc)


MAX_WIDTH = 7.6     # inches: at the book's 110 dpi a figure then fits a page's text column at about its own size


def _figure(nrows=1, ncols=1, figsize=(6.4, 4.0), **kw):
    """A constrained-layout figure, at most :data:`MAX_WIDTH` wide (a wider one is scaled down whole, so that the
    page does not shrink it and its labels with it)."""
    w, h = figsize
    if w > MAX_WIDTH:
        w, h = MAX_WIDTH, h * max(MAX_WIDTH / w, 0.75)
    fig = Figure(figsize=(w, h), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def save(fig: Figure, path) -> Path:
    """Save ``fig`` as PNG at 150 dpi (parent folders created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, format=path.suffix.lstrip(".") or "png")
    return path


def _finish(fig: Figure, path):
    if path is not None:
        save(fig, path)
    return fig


def _scale_for(ax, eps) -> None:
    """Log x when the positive ε span two decades or more (zero is then drawn on a symlog axis)."""
    eps = np.asarray(eps, dtype=float)
    pos = eps[eps > 0]
    if len(pos) and pos.max() / pos.min() >= 100:
        if (eps <= 0).any():
            ax.set_xscale("symlog", linthresh=float(pos.min()))
        else:
            ax.set_xscale("log")
        ax.set_xlabel("ε (log scale)")
    else:
        ax.set_xlabel("ε")


# ---------------------------------------------------------------------------------------------- Fig 1
def fig1(run_dir, epoch, path=None) -> Figure:
    """Fig 1: accuracy when each conv1 kernel is dropped (x = kernel index).

    Red line: mean over the kernels (the split); dashed grey: accuracy with no kernel dropped;
    fragile kernels S (below the mean) as blue circles, null kernels S' as black stars.
    The blue and black markers are single scatter collections labelled ``fragile S`` / ``null S'``.
    """
    run_dir = Path(run_dir)
    d = run_dir / f"e{epoch}"
    df = kernel_drop(d)
    meta = _read_json(d / "meta.json")
    mean = float(meta.get("mean", df["accuracy"].mean()))
    base = meta.get("base_accuracy")
    frag, null = df[df["fragile"]], df[~df["fragile"]]
    n = len(df)
    with _style():
        fig, axes = _figure(figsize=(7.5, 3.8))
        ax = axes[0, 0]
        ax.vlines(df["kernel"], df["accuracy"], mean, color="0.8", lw=0.8, zorder=1)
        ax.scatter(frag["kernel"], frag["accuracy"], s=30, facecolors="none", edgecolors=FRAGILE_COLOR,
                   linewidths=1.3, zorder=3, label=f"fragile S ({len(frag)}/{n}, {100 * len(frag) / n:.0f} %)")
        ax.scatter(null["kernel"], null["accuracy"], s=45, marker="*", color=NULL_COLOR, zorder=3,
                   label=f"null S' ({len(null)}/{n})")
        ax.axhline(mean, color=MEAN_COLOR, lw=1.4, zorder=2, label=f"mean {mean:.2f} %")
        if base is not None:
            ax.axhline(float(base), color=BASE_COLOR, ls="--", lw=1.1, zorder=2,
                       label=f"no kernel dropped {float(base):.2f} %")
        ax.set_xlim(-1, n)
        ax.set_xticks(np.arange(0, n + 1, 8 if n > 16 else 1))
        ax.set_xlabel("dropped kernel (conv1 channel)")
        ax.set_ylabel("test accuracy (%)")
        drop = meta.get("drop")
        ax.set_title(f"Fig 1 — {_run_label(run_dir)} · epoch {epoch}"
                     + (f" · drop = {drop}" if drop else ""))
        ax.legend(loc="best", fontsize="small")
    return _finish(fig, path)


# ---------------------------------------------------------------------------------------------- Fig 2
def _select(df: pd.DataFrame, space: str, layer: str | None = None) -> pd.DataFrame:
    if "space" in df:
        df = df[df["space"] == space]
    if layer is not None and "layer" in df and len(df):
        layers = list(dict.fromkeys(df["layer"]))
        df = df[df["layer"] == (layer if layer in layers else layers[0])]
    return df.sort_values("epsilon")


def fig2(run_dir, epochs=None, space="pixel", path=None, layer="conv1") -> Figure:
    """Fig 2: left, FGSM accuracy vs ε on the linear grid (dots); right, % of examples whose
    perturbation moves the fragile kernels more than the null ones (Algorithm 1) vs ε on the log grid
    (stars). One line per epoch, coloured grey / green / violet; each line is labelled ``epoch <E>``.

    ``space`` picks the FGSM space ("pixel" or "normalized"); ``layer`` the Algorithm-1 layer (the
    first one present when the requested one is missing). Epochs lacking a file are skipped.
    """
    run_dir = Path(run_dir)
    epochs = epochs_in(run_dir) if epochs is None else sorted(int(e) for e in epochs)
    colors = epoch_colors(epochs)
    with _style():
        fig, axes = _figure(1, 2, figsize=(11, 4.0))
        left, right = axes[0]
        for e in epochs:
            d = run_dir / f"e{e}"
            if (d / "attack.csv").is_file():
                a = _select(pd.read_csv(d / "attack.csv"), space)
                left.plot(a["epsilon"], a["accuracy"], marker="o", ms=4, lw=1.4, color=colors[e],
                          label=f"epoch {e}")
            if (d / "targeting.csv").is_file():
                t = _select(pd.read_csv(d / "targeting.csv"), space, layer)
                t = t[t["epsilon"] > 0].dropna(subset=["percent"])
                right.plot(t["epsilon"], t["percent"], marker="*", ms=8, lw=1.4, color=colors[e],
                           label=f"epoch {e}")
        left.set_xlabel("ε")
        left.set_ylabel("accuracy under FGSM (%)")
        left.set_title("accuracy vs ε (linear grid)")
        right.axhline(50, color="0.6", ls=":", lw=1, label="_balanced")
        right.set_xscale("log")
        right.set_xlabel("ε (log scale)")
        right.set_ylabel("examples attacking S (%)")
        right.set_title(r"Algorithm 1: $S_f > S_n$ (log grid)")
        for ax in (left, right):
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize="small")
        fig.suptitle(f"Fig 2 — {_run_label(run_dir)} · FGSM in {space} space")
    return _finish(fig, path)


CONTROL_LABELS = {"algorithm1": "Algorithm 1 (FGSM, S by dropout)", "random_sign": "random ±1 sign, same L∞",
                  "random_sets": "random S of size |S| (2.5-97.5 %)", "norm_sets": "S = largest-norm kernels",
                  "per_norm": "distances ÷ kernel norm"}


def controls(epoch_dir, path=None) -> Figure:
    """The controls of Algorithm 1 (``controls.csv``): % of images with S_f > S_n vs ε for each control."""
    epoch_dir = Path(epoch_dir)
    df = pd.read_csv(epoch_dir / "controls.csv")
    main = df[df["control"] != "algorithm1"][["layer", "space"]].drop_duplicates()
    if len(main):   # the controls' own layer and space (the other rows of algorithm1 are the layer × space views)
        df = df.merge(main.iloc[:1], on=["layer", "space"])
    df = df[df["epsilon"] > 0]
    with _style():
        fig, axes = _figure(1, 1, figsize=(7.5, 4.0))
        ax = axes[0][0]
        for i, (name, label) in enumerate(CONTROL_LABELS.items()):
            d = df[df["control"] == name].sort_values("epsilon")
            if d.empty:
                continue
            line, = ax.plot(d["epsilon"], d["percent"], marker="*" if name == "algorithm1" else "o",
                            ms=8 if name == "algorithm1" else 4, lw=2.2 if name == "algorithm1" else 1.2,
                            label=label, color="black" if name == "algorithm1" else f"C{i}")
            if name == "random_sets":
                ax.fill_between(d["epsilon"], d["low"], d["high"], color=line.get_color(), alpha=0.15, lw=0)
        ax.axhline(50, color="0.6", ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_xlabel("ε (log scale)")
        ax.set_ylabel(r"examples with $S_f > S_n$ (%)")
        ax.set_ylim(-3, 103)
        ax.legend(fontsize="small")
        fig.suptitle(f"Controls of Algorithm 1 — {_run_label(epoch_dir.parent)} @{epoch_dir.name[1:]}")
    return _finish(fig, path)


def layers_spaces(epoch_dir, path=None) -> Figure:
    """Algorithm 1 at conv1 / bn1 / relu, with clipped (pixel) and unclipped (normalized) FGSM steps."""
    epoch_dir = Path(epoch_dir)
    df = pd.read_csv(epoch_dir / "controls.csv")
    df = df[(df["control"] == "algorithm1") & (df["epsilon"] > 0)]
    with _style():
        fig, axes = _figure(1, 2, figsize=(11, 4.0), sharey=True)
        for ax, space in zip(axes[0], ("pixel", "normalized")):
            for i, layer in enumerate(("conv1", "bn1", "relu")):
                d = df[(df["layer"] == layer) & (df["space"] == space)].sort_values("epsilon")
                if len(d):
                    ax.plot(d["epsilon"], d["percent"], marker="*", ms=7, lw=1.4, color=f"C{i}", label=layer)
            ax.axhline(50, color="0.6", ls=":", lw=1)
            ax.set_xscale("log")
            ax.set_xlabel("ε (log scale)")
            ax.set_title("pixel space: step clipped to [0, 1]" if space == "pixel" else
                         "normalized space: unclipped step")
            ax.legend(fontsize="small", title="$f_L$")
        axes[0][0].set_ylabel("examples attacking S (%)")
        axes[0][0].set_ylim(-3, 103)
        fig.suptitle(f"Why Algorithm 1 moves with ε — {_run_label(epoch_dir.parent)} @{epoch_dir.name[1:]}")
    return _finish(fig, path)


# ---------------------------------------------------------------------------------------------- Fig 3
def _fmt(v, spec=".4g"):
    try:
        return format(float(v), spec)
    except (TypeError, ValueError):
        return str(v)


def fig3(epoch_dir, path=None, spectrum=False) -> Figure:
    """Fig 3: Algorithm-1 % of examples attacking S vs ε (log x) for the original and the filtered
    model (left), FGSM accuracy vs ε for both (right), and the filter's settings (mode, σ_noise, τ, β,
    α) from ``defence.json`` in a text box. ``spectrum=True`` adds a third panel, below the two, with the
    null-kernel matrix's singular values before/after filtering and τ. Lines are labelled ``original`` / ``filtered``.
    """
    epoch_dir = Path(epoch_dir)
    df = pd.read_csv(epoch_dir / "defence.csv")
    info = _read_json(epoch_dir / "defence.json")
    models = [m for m in ("original", "filtered") if m in set(df["model"])]
    models += [m for m in dict.fromkeys(df["model"]) if m not in models]
    color = {"original": ORIGINAL_COLOR, "filtered": FILTERED_COLOR}
    with _style():
        if spectrum:        # two panels over the spectrum: legible at a book page's width, unlike three in a row
            fig = Figure(figsize=(11, 7.6), layout="constrained")
            panels = fig.subplot_mosaic([["tgt", "acc"], ["sp", "sp"]], height_ratios=[1.2, 0.8])
            tgt, acc = panels["tgt"], panels["acc"]
        else:
            fig, axes = _figure(1, 2, figsize=(11, 4.2))
            tgt, acc = axes[0, 0], axes[0, 1]
        for m in models:
            g = df[df["model"] == m].sort_values("epsilon")
            c = color.get(m)
            if "targeting_percent" in g:
                t = g[g["epsilon"] > 0].dropna(subset=["targeting_percent"])
                tgt.plot(t["epsilon"], t["targeting_percent"], marker="*", ms=8, lw=1.4, color=c, label=m)
            a = g.dropna(subset=["accuracy"])
            acc.plot(a["epsilon"], a["accuracy"], marker="o", ms=4, lw=1.4, color=c, label=m)
        tgt.axhline(50, color="0.6", ls=":", lw=1, label="_balanced")
        tgt.set_xscale("log")
        tgt.set_xlabel("ε (log scale)")
        tgt.set_ylabel("examples attacking S (%)")
        tgt.set_title("attack concentration on fragile kernels S")
        _scale_for(acc, df["epsilon"])
        acc.set_ylabel("accuracy under FGSM (%)")
        acc.set_title("robustness (eq 2)")
        for ax in (tgt, acc):
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize="small", loc="best")
        lines = [f"mode = {info['mode']}" if "mode" in info else None,
                 f"$\\sigma_{{\\rm noise}}$ = {_fmt(info['sigma_noise'])}" if "sigma_noise" in info else None,
                 f"τ = {_fmt(info['tau'])}" if "tau" in info else None,
                 f"β = {_fmt(info['beta'], '.3f')}" if "beta" in info else None,
                 f"α = {_fmt(info['alpha'])}" if "alpha" in info else None]
        text = "\n".join(s for s in lines if s)
        if text:
            acc.text(0.02, 0.03, text, transform=acc.transAxes, fontsize="small", va="bottom", ha="left",
                     bbox=dict(boxstyle="round", fc="white", ec="0.7", alpha=0.9))
        if spectrum:
            sp = panels["sp"]
            for key, lab, c, mk in (("singular_values_before", "before", ORIGINAL_COLOR, "o"),
                                    ("singular_values_after", "after", FILTERED_COLOR, "x")):
                sv = info.get(key)
                if sv is not None and len(sv):
                    sp.plot(np.arange(1, len(sv) + 1), sv, marker=mk, ms=4, lw=1, color=c, label=lab)
            if "tau" in info:
                sp.axhline(float(info["tau"]), color=MEAN_COLOR, ls="--", lw=1, label="τ")
            sp.set_xlabel("index i")
            sp.set_ylabel(r"$\sigma_i$ of $K_{S'}$")
            sp.set_title("null-kernel spectrum")
            if sp.get_legend_handles_labels()[0]:
                sp.legend(fontsize="small")
        ep = epoch_dir.name[1:] if _EPOCH_DIR.match(epoch_dir.name) else epoch_dir.name
        head = " · ".join(s for s in (lines[0], lines[1], lines[4]) if s)
        fig.suptitle(f"Fig 3 — {_run_label(epoch_dir.resolve().parent)} · epoch {ep} · original vs filtered"
                     + (f"  ({head})" if head else ""))
    return _finish(fig, path)


# ---------------------------------------------------------------------------------------------- Fig 4
def fig4(profile_dir, datasets=None, archs=None, path=None, planned=None) -> Figure:
    """Fig 4: per-kernel drop accuracy over training, rows = archs, columns = datasets (present ones).

    In each panel, one thin line with dots per epoch (x = kernel index) and that epoch's mean as a
    dashed line in the same colour; red open circles mark kernels fragile at every epoch (at each
    epoch's point), red crosses kernels fragile at only some epochs (at the epochs they are fragile).
    Both markers are one scatter collection per panel, labelled ``fragile at every epoch`` and
    ``fragile at this epoch``. A panel's title counts the persistent kernels.
    """
    profile_dir = Path(profile_dir)
    runs = runs_in(profile_dir)
    if datasets is None:
        datasets = sorted({d for d, _ in runs}, key=_dataset_key)
    if archs is None:
        archs = sorted({a for _, a in runs if a}, key=_arch_key)
    datasets = [d for d in datasets if any(r[0] == d for r in runs)]
    archs = [a for a in archs if any(r[1] == a for r in runs)]
    if not datasets or not archs:
        raise FileNotFoundError(f"no kernel-drop results under {profile_dir}")
    # architectures the profile plans but whose results have not landed: a row of their own, marked as missing
    if planned:
        archs = sorted(set(archs) | set(planned), key=_arch_key)
    all_epochs = sorted({e for d in datasets for a in archs for e in epochs_in(profile_dir / d / a)})
    colors = epoch_colors(all_epochs)
    with _style():
        fig, axes = _figure(len(archs), len(datasets), figsize=(max(5.6 * len(datasets), 7.0), 3.0 * len(archs) + 1.0),
                            sharex=True)
        for i, a in enumerate(archs):
            for j, d in enumerate(datasets):
                ax = axes[i, j]
                t = kernel_drop_table(profile_dir / d / a)
                if t.empty:
                    ax.text(0.5, 0.5, "not run yet: no results for this depth", transform=ax.transAxes,
                            ha="center", va="center", color="0.35")
                    ax.set_facecolor("0.96")
                    ax.set_yticks([])
                    ax.set_title(f"{_pretty_dataset(d)} · {_pretty_arch(a)}")
                    continue
                sets = {int(e): set(g.loc[g["fragile"], "kernel"]) for e, g in t.groupby("epoch")}
                always = set.intersection(*sets.values())
                for e, g in t.groupby("epoch"):
                    e = int(e)
                    ax.plot(g["kernel"], g["accuracy"], marker=".", ms=4, lw=0.7, alpha=0.9, color=colors[e],
                            label=f"epoch {e}")
                    ax.axhline(g["mean"].iloc[0], color=colors[e], ls="--", lw=1.0, alpha=0.9,
                               label=f"_mean {e}")
                pers = t[t["kernel"].isin(always)]
                trans = t[t["fragile"] & ~t["kernel"].isin(always)]
                ax.scatter(pers["kernel"], pers["accuracy"], s=42, facecolors="none", edgecolors="red",
                           linewidths=1.2, zorder=4, label="fragile at every epoch")
                ax.scatter(trans["kernel"], trans["accuracy"], s=24, marker="x", color="red", linewidths=1.0,
                           zorder=4, label="fragile at this epoch")
                n_e = len(sets)
                at = f"at all {n_e} epochs" if n_e > 1 else "(1 epoch landed)"
                ax.set_title(f"{_pretty_dataset(d)} · {_pretty_arch(a)} — {len(always)} fragile {at}",
                             fontsize="medium")
                n_k = int(t["kernel"].max()) + 1
                ax.set_xlim(-1, n_k)
                ax.set_xticks(np.arange(0, n_k + 1, 8 if n_k > 16 else 1))
                if i == len(archs) - 1:
                    ax.set_xlabel("dropped kernel (conv1 channel)")
                if j == 0:
                    ax.set_ylabel("test accuracy (%)")
        handles = [Line2D([], [], color=colors[e], marker=".", lw=1, label=f"epoch {e}") for e in all_epochs]
        handles += [Line2D([], [], color="0.4", ls="--", lw=1, label="epoch mean"),
                    Line2D([], [], ls="none", marker="o", mfc="none", mec="red", label="fragile at every epoch"),
                    Line2D([], [], ls="none", marker="x", color="red", label="fragile at some epochs only")]
        fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 7 if len(datasets) > 1 else 4), fontsize="small")
        fig.suptitle(f"Fig 4 — kernel-drop accuracy over training ({profile_dir.name} profile)")
    return _finish(fig, path)
