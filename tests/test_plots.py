"""fnlib.plots on small hand-written results trees (SPEC §4 layout); no torch, no models."""
import json
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from fnlib import plots  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
N_KERNELS = 64
LIN = [0.0, 0.01, 0.02, 0.03, 0.04, 0.05]
LOG = [1e-4, 1e-3, 1e-2, 1e-1, 1.0]

# fragile kernels per epoch: 3 and 7 are fragile at every epoch, the rest only at some
FRAGILE = {1: {3, 7, 10, 20}, 3: {3, 7, 11}, 5: {3, 7, 10, 40, 41}}
PERSISTENT = {3, 7}


def _write_epoch(d: Path, epoch: int, fragile: set, defence: bool = False):
    d.mkdir(parents=True, exist_ok=True)
    base = 60.0 + epoch
    acc = np.array([base - (8.0 if k in fragile else 0.5) - 0.01 * k for k in range(N_KERNELS)])
    mean = float(acc.mean())
    # the writer's rule (below mean) agrees with the crafted set
    assert set(np.flatnonzero(acc < mean)) == fragile
    pd.DataFrame({"kernel": range(N_KERNELS), "accuracy": acc,
                  "fragile": [k in fragile for k in range(N_KERNELS)]}).to_csv(d / "kernel_drop.csv", index=False)
    (d / "meta.json").write_text(json.dumps({
        "base_accuracy": base, "mean": mean, "drop": "weights", "fragile": sorted(fragile),
        "null": sorted(set(range(N_KERNELS)) - fragile), "seed": 0}))
    rows = [{"space": s, "epsilon": e, "accuracy": base * (1 - 8 * e) - (2 if s == "normalized" else 0)}
            for s in ("pixel", "normalized") for e in LIN]
    pd.DataFrame(rows).to_csv(d / "attack.csv", index=False)
    rows = [{"space": s, "epsilon": e, "n": 200, "fragile_count": int(100 + 80 * e),
             "percent": (100 + 80 * e) / 2, "layer": "conv1"} for s in ("pixel", "normalized") for e in LOG]
    pd.DataFrame(rows).to_csv(d / "targeting.csv", index=False)
    if defence:
        rows = [{"model": m, "epsilon": e, "accuracy": base * (1 - 0.5 * e) + (3 if m == "filtered" else 0),
                 "targeting_percent": (90 if m == "original" else 70) - 5 * np.log10(max(e, 1e-4))}
                for m in ("original", "filtered") for e in [0.0] + LOG]
        pd.DataFrame(rows).to_csv(d / "defence.csv", index=False)
        (d / "defence.json").write_text(json.dumps({
            "mode": "hard", "sigma_noise": 0.01, "tau": 0.05, "beta": 0.2, "alpha": 1.12,
            "singular_values_before": [0.9, 0.4, 0.1, 0.04, 0.02],
            "singular_values_after": [0.9, 0.4, 0.1, 0.0, 0.0]}))


@pytest.fixture
def profile_dir(tmp_path):
    """results/quick with mnist/resnet18 (epochs 1,3,5), cifar10/resnet18 (1,3) and cifar10/resnet50 (1,3)."""
    prof = tmp_path / "results" / "quick"
    for e, fr in FRAGILE.items():
        _write_epoch(prof / "mnist" / "resnet18" / f"e{e}", e, fr, defence=(e == 1))
    for arch in ("resnet18", "resnet50"):
        for e in (1, 3):
            _write_epoch(prof / "cifar10" / arch / f"e{e}", e, FRAGILE[e])
    (prof / "mnist" / "resnet18" / "notes").mkdir()          # not an epoch folder
    pd.DataFrame({"epoch": [1, 3, 5], "train_loss": [1.0, 0.5, 0.3], "train_acc": [50, 80, 90],
                  "test_acc": [61, 63, 65], "seconds": [1, 1, 1]}).to_csv(prof / "mnist" / "resnet18" / "train.csv",
                                                                           index=False)
    return prof


@pytest.fixture
def run_dir(profile_dir):
    return profile_dir / "mnist" / "resnet18"


def _labelled(ax, prefix):
    return [l for l in ax.get_lines() if l.get_label().startswith(prefix)]


def _scatter(ax, prefix):
    found = [c for c in ax.collections if isinstance(c, PathCollection) and c.get_label().startswith(prefix)]
    assert len(found) == 1, [c.get_label() for c in ax.collections]
    return found[0]


def _png_ok(path: Path):
    assert path.is_file() and path.stat().st_size > 1000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_import_does_not_load_torch():
    code = "import fnlib.plots, sys; assert 'torch' not in sys.modules, 'torch imported'"
    env = dict(os.environ, MPLBACKEND="Agg")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_epochs_and_fragile_sets(run_dir, tmp_path):
    assert plots.epochs_in(run_dir) == [1, 3, 5]
    assert plots.epochs_in(tmp_path / "missing") == []
    # numeric, not lexical, order
    for e in (2, 10, 100):
        (tmp_path / "r" / f"e{e}").mkdir(parents=True)
    assert plots.epochs_in(tmp_path / "r") == [2, 10, 100]
    assert plots.fragile_sets(run_dir) == FRAGILE
    assert plots.persistent_fragile(run_dir) == PERSISTENT
    assert plots.persistent_fragile(run_dir, epochs=[1, 5]) == {3, 7, 10}
    assert plots.persistent_fragile(tmp_path / "missing") == set()
    assert plots.transient_fragile(run_dir) == {e: s - PERSISTENT for e, s in FRAGILE.items()}
    t = plots.kernel_drop_table(run_dir)
    assert len(t) == 3 * N_KERNELS and t["fragile"].dtype == bool
    assert set(t.columns) >= {"epoch", "kernel", "accuracy", "fragile", "mean", "base_accuracy"}


def test_string_booleans_are_parsed(tmp_path):
    d = tmp_path / "e1"
    d.mkdir()
    pd.DataFrame({"kernel": [0, 1, 2], "accuracy": [1.0, 2.0, 3.0],
                  "fragile": ["True", "false", "1"]}).to_csv(d / "kernel_drop.csv", index=False)
    assert plots.kernel_drop(d)["fragile"].tolist() == [True, False, True]


def test_runs_and_colors(profile_dir):
    assert plots.runs_in(profile_dir) == [("mnist", "resnet18"), ("cifar10", "resnet18"), ("cifar10", "resnet50")]
    c = plots.epoch_colors([100, 10, 50])
    assert [c[e] for e in (10, 50, 100)] == list(plots.EPOCH_COLORS)
    assert len(set(map(str, plots.epoch_colors(range(8)).values()))) == 8


def test_fig1(run_dir, tmp_path):
    fig = plots.fig1(run_dir, 1, path=tmp_path / "f1.png")
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    frag, null = _scatter(ax, "fragile S"), _scatter(ax, "null S'")
    assert len(frag.get_offsets()) == len(FRAGILE[1])
    assert len(null.get_offsets()) == N_KERNELS - len(FRAGILE[1])
    assert sorted(frag.get_offsets()[:, 0].astype(int)) == sorted(FRAGILE[1])
    meta = json.loads((run_dir / "e1" / "meta.json").read_text())
    mean, base = _labelled(ax, "mean"), _labelled(ax, "no kernel dropped")
    assert len(mean) == 1 and mean[0].get_ydata()[0] == pytest.approx(meta["mean"])
    assert len(base) == 1 and base[0].get_ydata()[0] == pytest.approx(meta["base_accuracy"])
    assert "MNIST" in ax.get_title() and "ResNet-18" in ax.get_title() and "epoch 1" in ax.get_title()
    _png_ok(tmp_path / "f1.png")


def test_fig2(run_dir, tmp_path):
    fig = plots.fig2(run_dir, path=tmp_path / "f2.png")
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    left, right = fig.axes
    for ax in (left, right):
        assert [l.get_label() for l in _labelled(ax, "epoch")] == ["epoch 1", "epoch 3", "epoch 5"]
    assert right.get_xscale() == "log" and left.get_xscale() == "linear"
    l1 = _labelled(left, "epoch 1")[0]
    assert list(l1.get_xdata()) == LIN and l1.get_marker() == "o"
    r1 = _labelled(right, "epoch 1")[0]
    assert list(r1.get_xdata()) == LOG and r1.get_marker() == "*"
    assert [l.get_color() for l in _labelled(left, "epoch")] == list(plots.EPOCH_COLORS)
    _png_ok(tmp_path / "f2.png")
    # two epochs, the other space
    fig = plots.fig2(run_dir, epochs=[1, 5], space="normalized")
    left = fig.axes[0]
    assert len(_labelled(left, "epoch")) == 2
    assert _labelled(left, "epoch 1")[0].get_ydata()[0] == pytest.approx(61.0 - 2)


def test_fig3(run_dir, tmp_path):
    fig = plots.fig3(run_dir / "e1", path=tmp_path / "f3.png")
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    tgt, acc = fig.axes
    assert [l.get_label() for l in _labelled(tgt, "original") + _labelled(tgt, "filtered")] == ["original",
                                                                                                "filtered"]
    assert tgt.get_xscale() == "log"
    assert list(_labelled(tgt, "original")[0].get_xdata()) == LOG        # ε = 0 left off the log axis
    assert len(_labelled(acc, "original")[0].get_xdata()) == len(LOG) + 1
    text = " ".join(t.get_text() for t in acc.texts) + fig.get_suptitle()
    for s in ("hard", r"$\sigma_{\rm noise}$", "τ", "α"):
        assert s in text
    _png_ok(tmp_path / "f3.png")
    fig = plots.fig3(run_dir / "e1", spectrum=True)
    assert len(fig.axes) == 3 and len(_labelled(fig.axes[2], "before")) == 1


def test_fig4(profile_dir, tmp_path):
    fig = plots.fig4(profile_dir, path=tmp_path / "f4.png")
    assert isinstance(fig, Figure) and len(fig.axes) == 2 * 2      # rows resnet18/50, cols mnist/cifar10
    ax = fig.axes[0]                                                # resnet18 × MNIST
    assert "MNIST" in ax.get_title() and "ResNet-18" in ax.get_title()
    assert len(_labelled(ax, "epoch")) == 3
    assert len(_labelled(ax, "_mean")) == 3
    pers, trans = _scatter(ax, "fragile at every epoch"), _scatter(ax, "fragile at this epoch")
    assert set(pers.get_offsets()[:, 0].astype(int)) == PERSISTENT
    assert len(pers.get_offsets()) == len(PERSISTENT) * 3             # one circle per epoch
    assert len(trans.get_offsets()) == sum(len(s - PERSISTENT) for s in FRAGILE.values())
    empty = fig.axes[2]                                             # resnet50 × MNIST: no results
    assert not empty.get_lines() and any("no results" in t.get_text() for t in empty.texts)
    _png_ok(tmp_path / "f4.png")
    fig = plots.fig4(profile_dir, datasets=["cifar10"], archs=["resnet50", "resnet18", "resnet101"])
    assert len(fig.axes) == 2
    assert "ResNet-50" in fig.axes[0].get_title()
    # at cifar10's epochs 1 and 3 the persistent set is FRAGILE[1] & FRAGILE[3]
    pers = _scatter(fig.axes[0], "fragile at every epoch")
    assert set(pers.get_offsets()[:, 0].astype(int)) == FRAGILE[1] & FRAGILE[3]
    with pytest.raises(FileNotFoundError):
        plots.fig4(tmp_path / "nothing")
    # a depth the profile plans but has not run gets a row of its own, marked as missing
    fig = plots.fig4(profile_dir, datasets=["cifar10"], planned=["resnet18", "resnet50", "resnet101"])
    assert len(fig.axes) == 3 and "ResNet-101" in fig.axes[2].get_title()
    assert any("not run yet" in t.get_text() for t in fig.axes[2].texts)


def test_figures_leave_pyplot_empty(run_dir):
    import matplotlib.pyplot as plt
    plt.close("all")
    plots.fig1(run_dir, 3)
    plots.fig2(run_dir)
    assert plt.get_fignums() == []


def _controls_csv(d: Path):
    rows = []
    for c, pct in (("algorithm1", 80.0), ("random_sign", 79.0), ("random_sets", 50.0), ("norm_sets", 90.0),
                   ("per_norm", 40.0)):
        rows += [{"control": c, "epsilon": e, "n": 100, "percent": pct, "low": pct - 10, "high": pct + 10,
                  "layer": "conv1", "space": "pixel"} for e in LOG]
    for layer in ("conv1", "bn1", "relu"):
        for space in ("pixel", "normalized"):
            if (layer, space) != ("conv1", "pixel"):
                rows += [{"control": "algorithm1", "epsilon": e, "n": 100, "percent": 60.0, "low": 60.0,
                          "high": 60.0, "layer": layer, "space": space} for e in LOG]
    d.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(d / "controls.csv", index=False)


def test_controls_and_layer_figures(tmp_path):
    d = tmp_path / "cifar10" / "resnet18" / "e1"
    _controls_csv(d)
    fig = plots.controls(d, path=tmp_path / "c.png")
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")] == \
        list(plots.CONTROL_LABELS.values())
    assert all(len(line.get_xdata()) == len(LOG) for line in ax.get_lines()[:5])   # one layer/space only
    assert (tmp_path / "c.png").stat().st_size > 0
    fig = plots.layers_spaces(d)
    assert [len(a.get_lines()) for a in fig.axes] == [4, 4]                        # 3 layers + the 50 % line
