"""The smoke profile's numbers against the committed ``results/smoke``, with tolerances that hold on any CPU.

nbval (``make test``) re-executes every committed smoke notebook into ``$FNLIB_WORKDIR`` and compares
exactly what rounding cannot change (parameters, grids, column names, kernel counts, no errors); these
tests then compare the numbers those runs wrote with the committed ones. They run after the notebooks
(``tests/conftest.py`` orders them last). Run alone (``pytest tests``), they first run the smoke profile
into a scratch folder.

Tolerances (``TOL``, absolute, in the unit of each column) come from the spread measured on one machine
(2026-11-25, ``python tests/calibrate.py``) between the committed run (2 threads, default oneDNN kernels,
seed 0) and five variants: ``ONEDNN_MAX_CPU_ISA=AVX2``, ``ONEDNN_MAX_CPU_ISA=AVX512_CORE`` (identical to the
default: spread 0), ``OMP_NUM_THREADS=1`` and seeds 1, 2, 3; then (2026-12-03) on a second machine, an AMD
EPYC with avx512_bf16 (Zen 4), with its default kernels, ``ONEDNN_MAX_CPU_ISA=AVX2`` and ``OMP_NUM_THREADS=1``
(the last moved the training accuracy by 3.6 points, beyond the first machine's spread, and failed a
one-thread run of `make test` there).
A tolerance is the largest difference seen, times 1.5, rounded up. The smoke profile trains 1-2 epochs
on 2,000 images and tests on 250, so its models are chaotic: the per-epoch training loss and accuracy
repeat within a few points, but a test accuracy of the final model moves by up to 15 points with the
kernel set or seed, and Algorithm 1's share of images swings between 0 % and 100 % (an untrained conv1
puts every image on the same side). A tolerance that wide would test nothing, so those shares are
checked for validity and internal consistency instead of closeness (:func:`test_results_agree_with_each_other`).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from fnlib import results
from fnlib.results import PROJECT_ROOT

REF = PROJECT_ROOT / "results" / "smoke"
RUNS = [("mnist", "resnet18"), ("cifar10", "resnet18")]
EPOCHS = (1, 2)
# Wide because these models are trained, and training differs between machines; the analyses are held to one
# image each on a model every machine makes identically instead (tests/test_fixed_model.py).
# measured max |Δ| over the nine variants (see calibrate.py) → tolerance; the spread is written beside each
TOL = {                         # measured max |Δ| over the variants → tolerance (1.5 ×, rounded up)
    "train_loss": 0.12,         # 0.073 (Zen 4, one thread); first machine 0.061 (AVX2)
    "train_acc": 5.5,           # 3.60 points (Zen 4, one thread); first machine 1.90 (AVX2)
    "test_acc": 23.0,           # 15.2 (seed 1); AVX2 alone 8.0
    "accuracy": 33.0,           # attack / drop / defence accuracies: 21.5 (seed 1); AVX2 alone 14.5
    "base_accuracy": 21.0,      # 14.0 (seed 1)
    "mean": 20.0,               # mean drop accuracy: 12.7 (seed 1)
    "fraction_fragile": 0.31,   # 0.203 (seed 3), i.e. 13 of 64 kernels
}
# α of the filter follows σ_noise, picked from a discrete grid: 0.34 (seed 1) but 1.25 with one thread, when
# the search picks another grid point. Checked for validity (α ≥ 1, α > 1 iff the filter removed something).
# not compared for closeness (spread 100 points, the whole range): Algorithm 1 and controls percentages
SHARES = ("percent", "targeting_percent", "low", "high")
STARTED = time.time()


def _fresh(root: Path) -> bool:
    files = [root / d / a / f"e{e}" / "attack.csv" for d, a in RUNS for e in EPOCHS]
    return all(f.exists() and f.stat().st_mtime >= STARTED for f in files)


@pytest.fixture(scope="module")
def fresh(tmp_path_factory, smoke_notebooks_done) -> Path:
    """This session's smoke results: from the nbval re-executions (waited for: under xdist another worker may
    still run some; ``conftest.py``), or from a run made here."""
    root = results.work_root() / "results" / "smoke"
    if results.work_root() != PROJECT_ROOT and _fresh(root):
        return root
    work = tmp_path_factory.mktemp("smoke-run")
    env = dict(os.environ, FNLIB_WORKDIR=str(work))
    subprocess.run([sys.executable, "-m", "fnlib", "run", "--profile", "smoke"], env=env, check=True,
                   cwd=PROJECT_ROOT, capture_output=True)
    return work / "results" / "smoke"


def compare(ours: pd.DataFrame, ref: pd.DataFrame, keys: list[str], name: str) -> None:
    """Key columns equal; every value column of TOL within its tolerance. Values, not dtypes: a column whose
    every value happens to be whole on one machine ("64" of 500 images) reads as int64 there, float64 here."""
    assert list(ours.columns) == list(ref.columns), f"{name}: columns {list(ours.columns)} != {list(ref.columns)}"
    pd.testing.assert_frame_equal(ours[keys].reset_index(drop=True), ref[keys].reset_index(drop=True),
                                  check_exact=False, check_dtype=False, rtol=0, atol=1e-9, obj=f"{name} keys")
    for col in ours.columns:
        if col in TOL:
            pd.testing.assert_series_equal(ours[col].reset_index(drop=True), ref[col].reset_index(drop=True),
                                           check_exact=False, check_dtype=False, rtol=0, atol=TOL[col],
                                           obj=f"{name}: {col}")


FILES = [("train.csv", ["epoch"]), ("e{e}/kernel_drop.csv", ["kernel"]), ("e{e}/attack.csv", ["space", "epsilon"]),
         ("e{e}/targeting.csv", ["space", "epsilon", "n", "layer"]), ("e1/defence.csv", ["model", "epsilon", "n"]),
         ("e{e}/controls.csv", ["control", "epsilon", "n", "layer", "space"]),
         ("e{e}/kernel_drop_val.csv", ["kernel"]), ("e{e}/targeting_val.csv", ["space", "epsilon", "n", "layer"]),
         ("e1/clamp.csv", ["model", "epsilon", "n"])]


@pytest.mark.parametrize("dataset,arch", RUNS)
@pytest.mark.parametrize("pattern,keys", FILES, ids=[f for f, _ in FILES])
def test_results_files_match_the_committed_run(fresh, dataset, arch, pattern, keys):
    for e in EPOCHS if "{e}" in pattern else (None,):
        rel = Path(dataset, arch, pattern.format(e=e))
        ref = REF / rel
        assert ref.exists(), f"{ref} is committed with the repository; run `make regen-smoke`"
        compare(pd.read_csv(fresh / rel), pd.read_csv(ref), keys, str(rel))


@pytest.mark.parametrize("dataset,arch", RUNS)
def test_ranking_and_filter_match_the_committed_run(fresh, dataset, arch):
    for e in EPOCHS:
        ours, ref = (json.loads((r / dataset / arch / f"e{e}" / "meta.json").read_text()) for r in (fresh, REF))
        assert ours["drop"] == ref["drop"] and len(ours["fragile"]) + len(ours["null"]) == 64
        for k in ("base_accuracy", "mean", "fraction_fragile"):
            assert ours[k] == pytest.approx(ref[k], abs=TOL[k]), f"e{e} meta.json {k}"
        fragile = pd.read_csv(fresh / dataset / arch / f"e{e}" / "kernel_drop.csv")["fragile"]
        assert fragile.sum() == len(ours["fragile"])
    ours, ref = (json.loads((r / dataset / arch / "e1" / "defence.json").read_text()) for r in (fresh, REF))
    for k in ("mode", "search_eps", "space", "n_val", "n_test"):
        assert ours[k] == ref[k], k
    assert ours["shape"][1] == ref["shape"][1] and len(ours["grid"]) == len(ref["grid"])
    for k in ("clean_original", "clean_filtered"):
        assert ours[k] == pytest.approx(ref[k], abs=TOL["accuracy"]), k
    assert ours["alpha"] >= 1 and (ours["alpha"] > 1) == (ours["rank_after"] < ours["rank_before"])


def test_summary_rows_match_the_committed_run(fresh):
    from fnlib import summary
    ours = summary.build("smoke", root=fresh)
    ref = json.loads((REF / "summary.json").read_text())
    assert [r["id"] for r in ours["rows"]] == [r["id"] for r in ref["rows"]]
    for a, b in zip(ours["rows"], ref["rows"]):
        assert a["rule"] == b["rule"] and a["model"] == b["model"], a["id"]
        assert a["verdict"].split(" (")[0] in {v.split(" (")[0] for v in summary.VERDICTS}, a["verdict"]
        if isinstance(b["ours"], (int, float)) and ("clean" in a["id"] or "fgsm" in a["id"]):
            assert a["ours"] == pytest.approx(b["ours"], abs=TOL["accuracy"]), a["id"]


@pytest.mark.parametrize("dataset,arch", RUNS)
def test_results_agree_with_each_other(fresh, dataset, arch):
    """Exact relations between files of one run, which no rounding can break."""
    run = fresh / dataset / arch
    train = pd.read_csv(run / "train.csv").set_index("epoch")
    for e in EPOCHS:
        att = pd.read_csv(run / f"e{e}" / "attack.csv")
        clean = att[(att["space"] == "pixel") & (att["epsilon"] == 0)]["accuracy"].item()
        assert clean == pytest.approx(train.loc[e, "test_acc"], abs=0.41)   # same model and images (≤ 1 image: batch size)
        assert (att.groupby("space")["accuracy"].first() == clean).all()          # ε = 0 is clean in both spaces
        tgt = pd.read_csv(run / f"e{e}" / "targeting.csv")
        assert ((tgt["percent"] - 100 * tgt["fragile_count"] / tgt["n"]).abs() < 1e-3).all()
        ctl = pd.read_csv(run / f"e{e}" / "controls.csv")
        for col in SHARES[:1] + SHARES[2:]:
            assert ctl[col].between(0, 100).all(), col
        a1 = ctl[(ctl["control"] == "algorithm1")].merge(tgt, on=["epsilon", "layer", "space"])
        assert len(a1) and (a1["percent_x"] - a1["percent_y"]).abs().max() < 1e-3   # controls' own Algorithm 1
        split = pd.read_csv(run / f"e{e}" / "split.csv")                  # step 11 redraws step 2's split
        ranked = pd.read_csv(run / f"e{e}" / "kernel_drop.csv")
        assert (split["accuracy"] - ranked["accuracy"]).abs().max() < 1e-3
        assert (split["fragile"] == ranked["fragile"]).all() and split["fragile_frequency"].between(0, 1).all()
        val = pd.read_csv(run / f"e{e}" / "kernel_drop_val.csv")          # step 12 keeps step 2's ranking beside its own
        assert (val["accuracy_test"] - ranked["accuracy"]).abs().max() < 1e-3 and (val["fragile_test"] == ranked["fragile"]).all()
        assert (val["fragile"] == (val["accuracy"] < val["accuracy"].mean())).all()
        tv = pd.read_csv(run / f"e{e}" / "targeting_val.csv")
        assert ((tv["percent"] - 100 * tv["fragile_count"] / tv["n"]).abs() < 1e-3).all() and (tv["n"] == tgt["n"].max()).all()
    dfn = pd.read_csv(run / "e1" / "defence.csv")
    o = dfn[(dfn["model"] == "original") & (dfn["epsilon"] == 0)]["accuracy"].item()
    assert o == pytest.approx(train.loc[1, "test_acc"], abs=0.41)
    assert dfn["targeting_percent"].between(0, 100).all()


@pytest.mark.parametrize("dataset,arch", RUNS)
def test_beyond_results_agree_with_the_paper_steps(fresh, dataset, arch):
    """Steps 7-10 recompute some numbers of steps 1-5 on the same model and images: they must agree (≤ 1 image).

    Exact on any CPU, unlike closeness to the committed run, so a bug in the new steps cannot hide in a tolerance.
    """
    run = fresh / dataset / arch
    one = 100 / 250 + 0.01                                    # one of the smoke profile's 250 test images
    att1 = pd.read_csv(run / "e1" / "attack.csv")
    fgsm1 = att1[(att1["space"] == "pixel") & (att1["epsilon"] == 0.015)]["accuracy"].item()
    # step 7: the original under FGSM is step 3's number; the paper's filter under FGSM is step 4's
    rob = pd.read_csv(run / "e1" / "robustness.csv")
    r = rob.set_index(["model", "attack"])
    assert r.loc[("original", "fgsm"), "accuracy"] == pytest.approx(fgsm1, abs=one)
    dfn = pd.read_csv(run / "e1" / "defence.csv")
    filt = dfn[(dfn["model"] == "filtered") & (dfn["epsilon"] == 0.015)]["accuracy"].item()
    assert r.loc[("filtered", "fgsm"), "accuracy"] == pytest.approx(filt, abs=one)
    assert set(rob["model"]) == {"original", "filtered", "filtered_val", "filtered_bn", "original_bn"}
    assert (rob["low"] <= rob["accuracy"]).all() and (rob["accuracy"] <= rob["high"]).all()
    assert (rob["only_original"] + rob["only_model"] <= rob["n"]).all()
    assert (rob[rob["model"] == "filtered_bn"]["baseline"] == "original_bn").all()
    # step 13 is step 4 in clamp mode on the same model, images and S: the unfiltered rows are step 4's exactly
    cl, clj = pd.read_csv(run / "e1" / "clamp.csv"), json.loads((run / "e1" / "clamp.json").read_text())
    assert clj["mode"] == "clamp" and clj["fragile"] == json.loads((run / "e1" / "defence.json").read_text())["fragile"]
    pick = lambda df: df[df["model"] == "original"][["epsilon", "accuracy", "targeting_percent"]].reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(pick(cl), pick(dfn))
    # step 12 ranks on the same validation images as step 7's validation-ranked filter (smoke: 200 both): same S
    robj = json.loads((run / "e1" / "robustness.json").read_text())
    rv = json.loads((run / "e1" / "rank_val.json").read_text())
    assert rv["params"]["n_val"] == robj["profile"]["val_limit"] and rv["fragile"] == robj["fragile_val"] and rv["null"] == robj["null_val"]
    # PGD from the same start is at least as strong as FGSM on the original, up to a few images
    assert r.loc[("original", "pgd"), "accuracy"] <= r.loc[("original", "fgsm"), "accuracy"] + 3 * one
    # step 8: CSG is a finite, non-negative number per draw
    csg = pd.read_csv(run / "csg.csv")
    assert len(csg) and (csg["csg"] >= 0).all() and csg["csg"].notna().all()
    # step 9: seed 0 is the pipeline's own run
    seeds = pd.read_csv(run / "seeds.csv", keep_default_na=False)
    s0 = seeds[seeds["seed"] == 0]
    train = pd.read_csv(run / "train.csv").set_index("epoch")
    for e in EPOCHS:
        got = s0[s0["epoch"] == e].set_index(["quantity", "epsilon", "space"])["value"].astype(float)
        meta = json.loads((run / f"e{e}" / "meta.json").read_text())
        att = pd.read_csv(run / f"e{e}" / "attack.csv")
        tgt = pd.read_csv(run / f"e{e}" / "targeting.csv")
        assert got[("clean_accuracy", "", "")] == pytest.approx(train.loc[e, "test_acc"], abs=one)
        # the CSV files keep 6 significant digits (results.write_csv)
        assert got[("fraction_fragile", "", "")] == pytest.approx(100 * meta["fraction_fragile"], abs=1e-3)
        assert got[("mean_drop", "", "")] == pytest.approx(meta["mean"], abs=1e-3)
        for space in ("pixel", "normalized"):
            a = att[(att["space"] == space) & (att["epsilon"] == 0.015)]["accuracy"].item()
            t = tgt[(tgt["space"] == space) & (tgt["epsilon"] == 0.015)]["percent"].item()
            assert got[("fgsm_accuracy", "0.015", space)] == pytest.approx(a, abs=one)
            if not meta["fragile"] or not meta["null"]:
                continue
            assert got[("attacking_s", "0.015", space)] == pytest.approx(t, abs=one)
    assert sorted(seeds["seed"].unique()) == [0, 1]
    # step 10: every convolution of ResNet-18, shares and percentages in range
    lay = pd.read_csv(run / f"e{EPOCHS[-1]}" / "layers.csv")
    per = lay.drop_duplicates("layer")
    assert len(per) == 20 and per["kernels"].sum() == 4800 and per["layer"].iloc[0] == "conv1"
    assert per["fraction_fragile"].between(0, 1).all()
    assert lay["percent"].dropna().between(0, 100).all() and lay["random_percent"].dropna().between(0, 100).all()


def test_compare_reads_values_not_dtypes():
    # seen on an AMD EPYC: every test accuracy of 500 images whole, so train.csv's column read as int64
    ref = pd.DataFrame({"epoch": [1, 2], "test_acc": [73.2, 94.8]})
    compare(pd.DataFrame({"epoch": [1.0, 2.0], "test_acc": [64, 94]}), ref, ["epoch"], "int beside float")
    with pytest.raises(AssertionError, match="test_acc"):
        compare(pd.DataFrame({"epoch": [1, 2], "test_acc": [40, 94]}), ref, ["epoch"], "outside tolerance")
    with pytest.raises(AssertionError, match="keys"):
        compare(pd.DataFrame({"epoch": [1, 3], "test_acc": [73.2, 94.8]}), ref, ["epoch"], "other epochs")
