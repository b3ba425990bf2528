"""Seed replicates and schedules read back from results files (fnlib.replicates) and fed to the claims rows."""
from __future__ import annotations

import json
import math
import statistics

import pytest
from scipy import stats as st

from fnlib import profiles, replicates
from fnlib.claims.sheet import across_seeds


def write_checkpoint(edir, dataset, fragile=0.25, mean=90.0, clean=98.0, fgsm=40.0, share=12.5):
    edir.mkdir(parents=True)
    (edir / "meta.json").write_text(json.dumps({"fraction_fragile": fragile, "mean": mean}))
    eps = replicates.FGSM_EPS[dataset]
    (edir / "attack.csv").write_text("space,epsilon,accuracy\n"
                                     f"pixel,0,{clean}\npixel,0.001,{clean - 1}\npixel,{eps},{fgsm}\n"
                                     f"normalized,0,{clean}\nnormalized,{eps},{fgsm + 5}\n")
    (edir / "targeting.csv").write_text("space,epsilon,n,fragile_count,percent,layer\n"
                                        f"pixel,0.01,100,1,1.0,conv1\npixel,0.015,100,12,{share},conv1\n")


@pytest.fixture
def tree(tmp_path):
    """results/paper with MNIST ResNet-50 at epoch 10 for seeds 0, 1, 2 and a 10-epoch schedule of seed 0."""
    root = tmp_path / "paper"
    for folder, share, clean in (("", 10.0, 98.0), ("seed1", 20.0, 97.0), ("seed2", 45.0, 99.0),
                                 ("sched10", 60.0, 99.2)):
        write_checkpoint(root / folder / "mnist" / "resnet50" / "e10", "mnist", share=share, clean=clean)
    return root


def test_variants_of_the_paper_profile():
    assert set(replicates.variants("paper")) == {"paper-seed1", "paper-seed2", "paper-sched10", "paper-sched50"}
    assert replicates.variants("smoke") == {}


def test_checkpoint_numbers_read_the_paper_epsilons(tmp_path):
    write_checkpoint(tmp_path / "e", "cifar10", fragile=0.375, mean=61.0, clean=80.0, fgsm=30.0, share=7.0)
    got = {(r["quantity"], r["epsilon"], r["space"]): r["value"] for r in replicates.checkpoint_numbers(tmp_path / "e",
                                                                                                      "cifar10")}
    assert got == {("fraction_fragile", "", ""): 37.5, ("mean_drop", "", ""): 61.0, ("clean_accuracy", "", ""): 80.0,
                   ("fgsm_accuracy", "0.01", "pixel"): 30.0, ("fgsm_accuracy", "0.01", "normalized"): 35.0,
                   ("attacking_s", "0.015", "pixel"): 7.0}
    assert replicates.checkpoint_numbers(tmp_path / "missing", "mnist") == []


def test_seed_table_gives_every_seed_mean_t_interval_and_range(tree):
    rows = replicates.seed_table("paper", tree)
    share = next(r for r in rows if r["quantity"] == "attacking_s" and r["schedule"] == 100)
    assert (share["dataset"], share["arch"], share["epoch"]) == ("mnist", "resnet50", 10)
    assert share["values"] == {"0": 10.0, "1": 20.0, "2": 45.0} and share["seeds"] == 3
    sd = math.sqrt(((10 - 25) ** 2 + (20 - 25) ** 2 + (45 - 25) ** 2) / 2)
    half = st.t.ppf(0.975, 2) * sd / math.sqrt(3)
    assert share["mean"] == pytest.approx(25.0)
    assert 25 - half < 0 and share["low"] == 0.0          # a share cannot be negative: the interval is clipped
    assert share["high"] == pytest.approx(25 + half)
    assert (share["min"], share["max"]) == (10.0, 45.0)
    own = next(r for r in rows if r["quantity"] == "attacking_s" and r["schedule"] == 10)
    assert own["values"] == {"0": 60.0} and own["low"] is None      # one seed: no interval


def test_schedule_table_puts_the_snapshot_beside_its_own_schedule(tree):
    rows = {(r["quantity"], r["space"]): r for r in replicates.schedule_table("paper", tree)}
    r = rows[("attacking_s", "pixel")]
    assert (r["snapshot"], r["own_schedule"], r["difference"]) == (10.0, 60.0, 50.0)
    assert rows[("clean_accuracy", "")]["difference"] == pytest.approx(1.2)


def test_claims_rows_read_the_replicates_once_two_seeds_landed(tree):
    p = profiles.get("paper")
    text = across_seeds({}, tree, p, "resnet50", "mnist_attacking_S_e10")
    assert text.startswith("25.00 [") and "(3 seeds: 10.00, 20.00, 45.00)" in text
    assert "0.00" in text.split("]")[0]          # the t interval is clipped to [0, 100]
    for folder in ("seed1", "seed2"):
        for f in (tree / folder).rglob("targeting.csv"):
            f.unlink()
    assert across_seeds({}, tree, p, "resnet50", "mnist_attacking_S_e10") is None     # seed 0 alone


def test_replicated_checkpoints_are_the_seed_profiles_runs():
    got = replicates.replicated("paper")
    assert {("mnist", "resnet18", e) for e in (10, 50, 100)} <= got
    assert ("mnist", "resnet50", 10) in got and ("mnist", "resnet50", 50) not in got
    assert ("cifar10", "resnet50", 50) in got and ("cifar10", "resnet50", 100) not in got
    assert not any(a == "resnet101" for _, a, _ in got)


@pytest.mark.parametrize("seed2_fragile", [21, 24, 0])
def test_rows_are_judged_over_three_seeds_once_they_land(tmp_path, seed2_fragile):
    """The committed paper results as seed 0 and, copied, as seeds 1 and 2 of the replicated checkpoints: every
    row those decide keeps its verdict (three equal networks: no spread, the stated margins). Seed 2 with another
    fragile count (seeds 0 and 1: 17 of 64, 26.6 %, paper 37 %) grounds the fragile-share row's refuting margin in
    1.96·√2·s (rule seed_margin): with 21 it is 10.0 points, seeds 0 and 1 lie beyond it (not reproduced), seed 2
    (32.8 %) within ± 5 (reproduced), so the row is inconclusive over seeds, its reason naming the seed; with 24 it
    is 17.5, seeds 0 and 1 become inconclusive, never reproduced; with 0 it is 42.5: every seed is inconclusive,
    while the stated ± 5 alone refutes on every seed, which the reading and the reason say. With 0, seed 2's share
    attacking S is moved too, to 60 % in both ε spaces: each space gets its own wider margin, and the ε-matched
    reading, which keeps the stated margin, does not flip."""
    import shutil

    import pandas as pd

    from fnlib import summary
    from fnlib.results import PROJECT_ROOT
    src, root = PROJECT_ROOT / "results" / "paper", tmp_path / "paper"
    shutil.copytree(src, root, ignore=shutil.ignore_patterns("seed*", "sched*", "summary.json", "*.npz"))
    for seed in ("seed1", "seed2"):
        for run, epoch in (("mnist/resnet50", 10), ("cifar10/resnet50", 50)):
            shutil.copytree(src / run / f"e{epoch}", root / seed / run / f"e{epoch}",
                            ignore=shutil.ignore_patterns("defence*", "robustness*"))
    s2 = root / "seed2" / "mnist" / "resnet50" / "e10"
    m = json.loads((s2 / "meta.json").read_text())
    k = seed2_fragile
    m["fraction_fragile"], m["fragile"] = k / 64, m["fragile"][:k] + m["null"][:max(0, k - len(m["fragile"]))]
    (s2 / "meta.json").write_text(json.dumps(m))
    if k == 0:
        tg = pd.read_csv(s2 / "targeting.csv")
        hit = tg["epsilon"] == 0.015                                  # both ε spaces
        tg.loc[hit, "percent"], tg.loc[hit, "fragile_count"] = 60.0, 6000
        tg.to_csv(s2 / "targeting.csv", index=False)
    rows = {r["id"]: r for r in summary.build("paper", root)["rows"]}
    committed = {r["id"]: r for r in json.loads((src / "summary.json").read_text())["rows"]}
    r = rows["mnist_fraction_fragile_e10"]
    assert committed[r["id"]]["ours"] == 26.56         # seed 0's share, the premise of the margins below
    margin = round(1.96 * math.sqrt(2) * statistics.stdev([1700 / 64, 1700 / 64, 100 * k / 64]), 2)
    assert f"refuted beyond ± {margin:g}" in r["rule"]
    assert f"1.96·√2·s = {margin:g}" in r["sensitivity"]["seed_margin"]["text"]
    for key in ("mnist_fraction_fragile_e10", "mnist_attacking_S_e10", "cifar10_fraction_fragile_e50",
                "cifar10_attacking_S_e50"):       # every number row at a replicated checkpoint reads its seeds
        assert rows[key]["sensitivity"]["seed_margin"]["status"] == "measured", key
    assert rows["mnist_clean_e100"]["sensitivity"]["seed_margin"]["status"] == "unavailable"
    sm = r["sensitivity"]["seed_margin"]
    if k == 21:
        assert margin == 10.0
        assert r["over_seeds"]["verdicts"] == {"0": "not reproduced", "1": "not reproduced", "2": "reproduced"}
        assert r["verdict"] == "inconclusive" and r["seed0_verdict"] == "not reproduced"
        assert r["sensitivity"]["seeds"]["flips"] is True          # seed 0 alone: not reproduced
        assert "reproduced for seed 2" in r["reason"] and "rule seed_margin" not in r["reason"]
        assert sm["verdict"] == "inconclusive" and sm["flips"] is False
    elif k == 24:
        assert margin == 17.5
        assert r["over_seeds"]["verdicts"] == {"0": "inconclusive", "1": "inconclusive", "2": "reproduced"}
        assert r["verdict"] == "inconclusive" and r["seed0_verdict"] == "inconclusive"
        assert sm["verdict"] == "inconclusive" and sm["flips"] is False
        # the verdict over seeds equals seed 0's, but the seeds disagree: the reason names them
        assert r["reason"].startswith("inconclusive for seeds 0, 1; reproduced for seed 2 (rule seeds); seed 0: ")
        assert "rule seed_margin" not in r["reason"]
    else:
        assert margin == 42.51
        assert r["over_seeds"]["verdicts"] == {"0": "inconclusive", "1": "inconclusive", "2": "inconclusive"}
        assert r["verdict"] == "inconclusive"
        assert sm["verdict"] == "not reproduced" and sm["flips"] is True
        assert "with the stated margin alone: not reproduced" in sm["over_seeds"]
        assert r["reason"].endswith("; not reproduced with the stated margin alone (rule seed_margin)")
        assert r["reason"].count("rule seed_margin") == 1
        a = rows["mnist_attacking_S_e10"]
        pixel = round(1.96 * math.sqrt(2) * statistics.stdev([0.0, 0.0, 60.0]), 2)
        norm = round(1.96 * math.sqrt(2) * statistics.stdev([2.51, 2.51, 60.0]), 2)
        assert (pixel, norm) == (96.02, 92.0)
        assert f"refuted beyond ± {pixel:g} in pixel space, ± {norm:g} in normalized space" in a["rule"]
        # every seed lies beyond ± 5 of 89 % in both spaces but within what the seeds differ by: inconclusive on each,
        # where the stated margin alone refutes on each, which the reason says
        assert a["over_seeds"]["verdicts"] == {"0": "inconclusive", "1": "inconclusive", "2": "inconclusive"}
        assert a["verdict"] == "inconclusive" and committed[a["id"]]["verdict"] == "not reproduced"
        assert a["reason"].endswith("; not reproduced with the stated margin alone (rule seed_margin)")
        # the ε-matched reading keeps the stated margin throughout: matching the spaces changes nothing here, so it
        # does not flip (judged against the row's widened verdict, it would have)
        assert a["sensitivity"]["eps_matched"]["flips"] is False and "rule eps_matched" not in a["reason"]
        assert a["sensitivity"]["seed_margin"]["seed0_verdict"] == "not reproduced"
        return
    for key in ("mnist_attacking_S_e10", "cifar10_fraction_fragile_e50", "cifar10_attacking_S_e50"):
        assert rows[key]["over_seeds"]["landed"] == 3 and rows[key]["verdict"] == committed[key]["verdict"], key
    # a row judged over seeds names them in its scope
    assert rows["mnist_attacking_S_e10"]["scope"]["seeds"] == [0, 1, 2]
    # a row whose checkpoints the replicates do not train keeps seed 0's verdict, and says no other seed will come
    o = rows["mnist_clean_e100"]["over_seeds"]
    assert o["verdict"] is None and o["planned"] is False and "do not train mnist/resnet50 @100" in o["why"], o
    assert rows["mnist_clean_e100"]["verdict"] == committed["mnist_clean_e100"]["verdict"]
    assert rows["mnist_clean_e100"]["scope"]["seeds"] == [0]
    # the same, as the rows' sensitivity entry 'seeds'
    x = rows["mnist_clean_e100"]["sensitivity"]["seeds"]
    assert x["status"] == "unavailable" and x["text"] == o["why"], x
    x = rows["mnist_attacking_S_e10"]["sensitivity"]["seeds"]
    assert x["status"] == "measured" and x["verdict"] == rows["mnist_attacking_S_e10"]["verdict"], x
    assert x["verdict"] == "not reproduced" and x["flips"] is False       # every seed, seed 0 alone too
    # so does one whose checkpoint they have trained without running its step (here: robustness, step 7)
    o = rows["beyond_filtered_pgd"]["over_seeds"]
    assert o["planned"] is False and o["why"] == "the seed replicates do not run the step this row reads", o
    assert "seed0_verdict" not in rows["filter_improves_robustness"] or \
        rows["filter_improves_robustness"]["over_seeds"]["landed"] < 3


def test_variant_provenance_reads_each_variant_folder(tmp_path):
    """summary.json's variant_provenance: each seed or schedule variant that trained something, from its own folder
    (results/paper/seed1/...), with its seed and schedule; the main runs' provenance does not list them."""
    import shutil

    from fnlib import summary
    from fnlib.results import PROJECT_ROOT
    src, root = PROJECT_ROOT / "results" / "paper", tmp_path / "paper"
    for sub in ("seed1/mnist/resnet50", "mnist/resnet50"):
        (root / sub).mkdir(parents=True)
        shutil.copy(src / sub / "train.json", root / sub / "train.json")
    got = summary.variant_provenance("paper", root)
    assert set(got) == {"paper-seed1"} and got["paper-seed1"]["seed"] == 1 and got["paper-seed1"]["schedule"] == 100
    run = got["paper-seed1"]["runs"]["mnist/resnet50"]
    assert run["seed"] == 1 and run["epochs_done"] == 10 and run["peak_memory_gib"] > 0
    assert set(summary._provenance(root)) == {"mnist/resnet50"}


def test_the_schedule_reading_is_measured_pending_or_unavailable(tmp_path):
    """Rule schedule as a sensitivity entry: a row at epoch 10 of a run that paper-sched10 trained reads that
    model's verdict (and flips where it differs); a row at 50 waits for paper-sched50; a row whose step the schedule
    variant does not run (the filter) says so instead of waiting for ever."""
    import shutil

    from fnlib import summary
    from fnlib.results import PROJECT_ROOT
    src, root = PROJECT_ROOT / "results" / "paper", tmp_path / "paper"
    shutil.copytree(src, root, ignore=shutil.ignore_patterns("seed*", "sched*", "summary.json", "*.npz"))
    own = root / "sched10" / "mnist" / "resnet50" / "e10"
    shutil.copytree(src / "mnist" / "resnet50" / "e10", own, ignore=shutil.ignore_patterns("defence*", "robustness*",
                                                                                            "clamp*"))
    m = json.loads((own / "meta.json").read_text())
    m["fraction_fragile"], m["fragile"] = 24 / 64, m["fragile"] + m["null"][:24 - len(m["fragile"])]
    (own / "meta.json").write_text(json.dumps(m))
    rows = {r["id"]: r for r in summary.build("paper", root)["rows"]}
    x = rows["mnist_fraction_fragile_e10"]["sensitivity"]["schedule"]
    assert x["status"] == "measured" and x["ours"] == 37.5 and x["verdict"] == "reproduced", x
    assert x["flips"] is (rows["mnist_fraction_fragile_e10"]["verdict"] != "reproduced")
    assert rows["mnist_fraction_fragile_e10"]["over_schedules"]["10"]["verdict"] == "reproduced"
    assert rows["cifar10_fraction_fragile_e50"]["sensitivity"]["schedule"]["status"] == "pending"
    x = rows["filter_lowers_targeting"]["sensitivity"]["schedule"]
    assert x["status"] == "unavailable" and "does not run the step" in x["text"], x
    assert "schedule" not in (rows["mnist_clean_e100"].get("sensitivity") or {})      # the main schedule's end


def test_a_checkpoint_between_two_steps_is_not_called_unreachable(tmp_path):
    """While a seed replicate's checkpoint has only its first step's files (meta.json, from step 2), a row that reads
    a later step stays pending over seeds: it must not be said that the replicates do not run that step."""
    import shutil

    from fnlib import summary
    from fnlib.results import PROJECT_ROOT
    src, root = PROJECT_ROOT / "results" / "paper", tmp_path / "paper"
    shutil.copytree(src, root, ignore=shutil.ignore_patterns("seed*", "sched*", "summary.json", "*.npz"))
    for seed in ("seed1", "seed2"):
        edir = root / seed / "mnist" / "resnet50" / "e10"
        edir.mkdir(parents=True)
        shutil.copy(src / "mnist" / "resnet50" / "e10" / "meta.json", edir / "meta.json")
    rows = {r["id"]: r for r in summary.build("paper", root)["rows"]}
    for key in ("mnist_attacking_S_e10", "beyond_filtered_pgd"):
        x = rows[key]["sensitivity"]["seeds"]
        assert x["status"] == "pending" and rows[key]["over_seeds"].get("planned") is not False, (key, x)
