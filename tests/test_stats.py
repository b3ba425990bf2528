"""Intervals, tests and every verdict rule of the claims table, on inputs whose right verdict is known."""
import numpy as np
import pandas as pd
import pytest

from fnlib import results, stats, summary
from fnlib.claims import fgsm, filtering, rules, spaces
from fnlib.claims.verdict import Verdict as V
from fnlib.stats import INCONCLUSIVE, NOT, PENDING, REPRODUCED, UNTESTABLE


def test_wilson_known_values():
    lo, hi = stats.wilson(50, 100)
    assert (round(lo, 2), round(hi, 2)) == (40.38, 59.62)
    assert stats.wilson(0, 10)[0] == 0 and stats.wilson(10, 10)[1] == pytest.approx(100)
    lo, hi = stats.wilson(981, 1000)                       # narrow near 100 %, never above it
    assert 96.9 < lo < 98.1 < hi < 98.9


def test_mcnemar_and_two_proportion_tests():
    assert stats.mcnemar_greater(10, 0) == pytest.approx(0.5 ** 10)
    assert stats.mcnemar_greater(0, 10) == pytest.approx(1.0)
    assert stats.mcnemar_greater(5, 5) > 0.5 and stats.mcnemar_greater(0, 0) == 1.0
    assert stats.proportion_greater(60, 100, 40, 100) == pytest.approx(0.00234, abs=1e-4)   # z = 2.83
    assert stats.proportion_greater(40, 100, 60, 100) > 0.99


def test_equivalence_rule_three_ways():
    assert stats.equivalence(75.87, 74.5, 77.0, 2) == REPRODUCED
    assert stats.equivalence(75.87, 60.0, 63.0, 2) == NOT
    assert stats.equivalence(75.87, 72.0, 76.0, 2) == INCONCLUSIVE
    # the margin counts: an interval beside the paper's value but inside its margin, and one just outside it
    assert stats.equivalence(90.0, 90.5, 92.5, 3) == REPRODUCED
    assert stats.equivalence(90.0, 93.5, 95.0, 3) == NOT
    assert stats.accuracy_margin(99.42) == pytest.approx(0.29)
    assert stats.accuracy_margin(75.87) == 2.0


def test_all_up_and_combine():
    assert stats.all_up([1, 1]) == REPRODUCED
    assert stats.all_up([1, 0]) == INCONCLUSIVE
    assert stats.all_up([1, -1]) == NOT
    # a run still training: a step down already refutes; all up so far is not yet a reproduction
    assert rules.all_up_so_far([1], complete=False) == PENDING
    assert rules.all_up_so_far([1, 0], complete=False) == PENDING
    assert rules.all_up_so_far([1, -1], complete=False) == NOT
    assert rules.all_up_so_far([1, 1], complete=True) == REPRODUCED
    assert rules.all_up_so_far([1, 0], complete=True) == INCONCLUSIVE
    assert stats.combine([REPRODUCED, INCONCLUSIVE]) == INCONCLUSIVE
    assert stats.combine([REPRODUCED, NOT]) == NOT
    assert stats.combine([PENDING]) == stats.UNTESTABLE


# ---- the claims of summary.build on hand-made results files (quick profile: epochs 1, 3, 5) -----------------
N = 1000
EPS_LOG = [0.0001, 0.001, 0.015, 0.1]


def write_epoch(root, dataset, epoch, clean=70.0, fgsm=50.0, mean=60.0, fragile=24, small=50.0, large=90.0,
                seed=0, n_rank=N, arch="resnet18", nested=False, fgsm_normalized=None):
    """One checkpoint's results files; FGSM in pixel space only, unless ``fgsm_normalized`` gives its accuracy
    with ε taken in normalized space too."""
    d = root / dataset / arch / f"e{epoch}"
    rng = np.random.default_rng(seed + epoch)
    eps = [0.0, 0.01, 0.015, 0.34]
    spaces = {"pixel": fgsm} if fgsm_normalized is None else {"pixel": fgsm, "normalized": fgsm_normalized}
    results.write_csv([{"space": sp, "epsilon": e, "accuracy": clean if e == 0 else acc}
                       for sp, acc in spaces.items() for e in eps], d / "attack.csv")
    results.write_json({"params": {"n_images": N}}, d / "attack.json")
    order = rng.permutation(N)
    packed = {}
    for sp, acc in spaces.items():
        bits = [np.zeros(N, bool) for _ in eps]
        for j, e in enumerate(eps):   # per-image correctness whose means are the accuracies above, random order
            k = round((clean if e == 0 else acc) * N / 100)
            # nested: an image FGSM gets right was right clean (as in a real attack); else independent draws
            bits[j][(order if nested or e == 0 else rng.permutation(N))[:k]] = True
        packed[sp] = np.packbits(np.stack(bits), axis=1)
    np.savez(d / "attack_correct.npz", epsilons=np.array(eps), n=N, **packed)
    results.write_csv([{"space": "pixel", "epsilon": e, "n": N, "fragile_count": round((small if e <= 1e-3 else large) * N / 100),
                        "percent": small if e <= 1e-3 else large, "layer": "conv1"} for e in EPS_LOG],
                      d / "targeting.csv")
    fragile = list(range(fragile)) if isinstance(fragile, int) else sorted(fragile)
    results.write_json({"mean": mean, "fraction_fragile": len(fragile) / 64, "fragile": fragile,
                        "null": sorted(set(range(64)) - set(fragile)), "params": {"n_images": n_rank}}, d / "meta.json")
    return d


def write_defence(d, only_filtered=60, only_original=20, orig_t=(0.0, 60.0, 80.0), filt_t=(0.0, 40.0, 60.0)):
    rows = []
    for model, t in (("original", orig_t), ("filtered", filt_t)):
        for e, pct in zip([0.0, 0.015, 0.1], t):
            rows.append({"model": model, "epsilon": e, "accuracy": 90.0 if e == 0 else 70.0, "targeting_percent": pct,
                         "n": N, "targeting_count": round(pct * N / 100), "only_original": only_original,
                         "only_filtered": only_filtered})
    results.write_csv(rows, d / "defence.csv")


def write_control(d, only_model=60, only_original=20, eps=0.015):
    """Step 7's BatchNorm control only: the filtered model against the original, both with recomputed statistics."""
    from fnlib import stats as st
    results.write_csv([
        {"model": "original_bn", "baseline": "original", "attack": "fgsm", "epsilon": eps, "n": N, "accuracy": 70.0,
         "low": 67.0, "high": 73.0, "only_original": 10, "only_model": 40, "p_better": st.mcnemar_greater(40, 10),
         "p_worse": st.mcnemar_greater(10, 40)},
        {"model": "filtered_bn", "baseline": "original_bn", "attack": "fgsm", "epsilon": eps, "n": N,
         "accuracy": 70.0 + 100 * (only_model - only_original) / N, "low": 67.0, "high": 73.0,
         "only_original": only_original, "only_model": only_model, "p_better": st.mcnemar_greater(only_model, only_original),
         "p_worse": st.mcnemar_greater(only_original, only_model)}], d / "robustness.csv")


def build(tmp_path, cifar=None, mnist=None, defence=None, landed=(1, 3, 5), cifar_defence=None, control=None,
          cifar_control=None, step7=("mnist", "cifar10")):
    """The quick profile's results, hand-made: the filter step and Step 7's control at epoch 1 of both runs (the
    same pairs on CIFAR-10 as on MNIST unless ``cifar_defence`` / ``cifar_control`` say otherwise)."""
    root = tmp_path / "quick"
    for dataset, per_epoch in (("cifar10", cifar or {}), ("mnist", mnist or {})):
        for e in landed:
            d = write_epoch(root, dataset, e, **per_epoch.get(e, {}))
            if e == 1:
                write_defence(d, **((cifar_defence if dataset == "cifar10" and cifar_defence is not None else defence) or {}))
                if dataset in step7 and not (d / "robustness.csv").exists():    # a test's own Step 7 wins
                    write_control(d, **((cifar_control if dataset == "cifar10" and cifar_control is not None
                                            else control) or {}))
    return {r["id"]: r for r in summary.build("quick", root=root)["rows"]}


def test_accuracy_grows_three_ways(tmp_path):
    up = {1: dict(clean=50, fgsm=30), 3: dict(clean=60, fgsm=40), 5: dict(clean=70, fgsm=50)}
    assert build(tmp_path / "a", cifar=up)["accuracy_grows"]["verdict"] == REPRODUCED
    flat = {1: dict(clean=50, fgsm=30), 3: dict(clean=60, fgsm=40), 5: dict(clean=60.5, fgsm=40.5)}
    assert build(tmp_path / "b", cifar=flat)["accuracy_grows"]["verdict"] == INCONCLUSIVE
    down = {1: dict(clean=50, fgsm=30), 3: dict(clean=60, fgsm=40), 5: dict(clean=50, fgsm=40)}
    assert build(tmp_path / "c", cifar=down)["accuracy_grows"]["verdict"] == NOT


def test_a_step_down_decides_accuracy_grows_before_the_last_checkpoint(tmp_path):
    down = {1: dict(clean=50, fgsm=40), 3: dict(clean=60, fgsm=30)}
    row = build(tmp_path, cifar=down, landed=(1, 3))["accuracy_grows"]
    assert row["verdict"] == NOT, row
    assert "significantly down; McNemar +" in row["evidence"] and "p↓ " in row["evidence"], row["evidence"]
    assert "(epoch 5 pending; a step down already decides the row)" in row["evidence"], row["evidence"]


def test_accuracy_grows_is_judged_in_both_eps_spaces(tmp_path):
    """The paper does not say in which space its ε lives: a verdict that turns on it is inconclusive."""
    up_both = {1: dict(clean=50, fgsm=30, fgsm_normalized=35), 3: dict(clean=60, fgsm=40, fgsm_normalized=45),
               5: dict(clean=70, fgsm=50, fgsm_normalized=55)}
    assert build(tmp_path / "a", cifar=up_both)["accuracy_grows"]["verdict"] == REPRODUCED
    split = {1: dict(clean=50, fgsm=30, fgsm_normalized=35), 3: dict(clean=60, fgsm=25, fgsm_normalized=45),
             5: dict(clean=70, fgsm=35, fgsm_normalized=55)}
    row = build(tmp_path / "b", cifar=split)["accuracy_grows"]
    assert row["verdict"] == INCONCLUSIVE, row
    assert "depends on the ε space: pixel space not reproduced, normalized space reproduced" in row["evidence"], row["evidence"]
    assert "ε=0.01 normalized @1→@3: 35.0→45.0 (significantly up" in row["evidence"], row["evidence"]
    row = build(tmp_path / "c", cifar={e: split[e] for e in (1, 3)}, landed=(1, 3))["accuracy_grows"]
    assert row["verdict"] == V.PENDING and "the ε spaces disagree so far" in row["evidence"], row   # not refuted yet
    down_clean = {1: dict(clean=60, fgsm=30, fgsm_normalized=35), 3: dict(clean=50, fgsm=40, fgsm_normalized=45)}
    assert build(tmp_path / "d", cifar=down_clean, landed=(1, 3))["accuracy_grows"]["verdict"] == NOT   # both spaces


def test_fgsm_stronger_is_judged_in_both_eps_spaces(tmp_path):
    key = "fgsm_stronger_on_complex_data"
    both = build(tmp_path / "a", cifar={5: dict(clean=70, fgsm=40, fgsm_normalized=45)},
                 mnist={5: dict(clean=90, fgsm=85, fgsm_normalized=88)})[key]
    assert both["verdict"] == REPRODUCED and "normalized space, accuracy lost" in both["evidence"], both
    split = build(tmp_path / "b", cifar={5: dict(clean=70, fgsm=40, fgsm_normalized=68)},
                  mnist={5: dict(clean=90, fgsm=85, fgsm_normalized=60)})[key]
    assert split["verdict"] == INCONCLUSIVE and "depends on the ε space" in split["evidence"], split
    assert "judged in both ε spaces" in split["rule"]
    one = build(tmp_path / "c", cifar={5: dict(clean=70, fgsm=40)}, mnist={5: dict(clean=90, fgsm=85)})[key]
    assert one["rule"].endswith("pixel space (the results hold no other)"), one["rule"]   # says what was judged


def test_targeting_grows_is_judged_in_pixel_space_at_a_linear_layer(tmp_path):
    """At conv1 Algorithm 1 is flat in ε in normalized space by construction: that space cannot decide."""
    root = tmp_path / "quick"
    for e in (1, 3, 5):
        for dataset in ("cifar10", "mnist"):
            d = write_epoch(root, dataset, e)
        tg = pd.read_csv(d.parent.parent.parent / "cifar10" / "resnet18" / f"e{e}" / "targeting.csv")
        flat = tg.assign(space="normalized", percent=50.0, fragile_count=round(0.5 * N))
        results.write_csv(pd.concat([tg, flat]).to_dict("records"), root / "cifar10" / "resnet18" / f"e{e}" / "targeting.csv")
    row = {r["id"]: r for r in summary.build("quick", root=root)["rows"]}["targeting_grows_with_eps"]
    assert row["verdict"] == REPRODUCED, row                      # pixel: 50 → 90 % at every epoch
    assert "normalized" not in row["evidence"] and "pixel space only" in row["rule"], row
    row = {r["id"]: r for r in summary.build("quick", root=root, layer="relu")["rows"]}["targeting_grows_with_eps"]
    assert row["verdict"] == INCONCLUSIVE and "normalized @1" in row["evidence"], row    # a non-linear layer: both


def test_a_mixed_run_is_flagged_in_the_rows_that_read_it(tmp_path):
    rows = build(tmp_path / "a", landed=(1, 3))
    assert not any(r["evidence"].startswith("mixed") for r in rows.values())
    root = tmp_path / "a" / "quick" / "cifar10" / "resnet18"
    results.write_json({"epochs_done": 1}, root / "train.json")            # the training behind it reached 1 only
    meta = results.read_json(root / "e3" / "meta.json")
    results.write_json(dict(meta, provenance={"cpu": "Some CPU", "git_commit": "abc1234", "utc": "2026-12-02T05:24:22Z"}),
                       root / "e3" / "meta.json")
    out = summary.build("quick", root=tmp_path / "a" / "quick")
    assert out["provenance"]["cifar10/resnet18"]["mixed_origin"] == {3: "Some CPU, git commit abc1234, 2026-12-02"}
    assert out["provenance"]["cifar10/resnet18"]["analysed_on"] == {3: ["Some CPU"]}     # the others record none
    rows = {r["id"]: r for r in out["rows"]}
    flagged = sorted(k for k, r in rows.items() if r["evidence"].startswith("mixed trainings, cifar10/resnet18: the epoch-3"))
    assert "accuracy_grows" in flagged and "targeting_grows_with_eps" in flagged, flagged
    assert not any(k.startswith("mnist") for k in flagged), flagged


def test_the_filter_gain_row_gives_the_paired_gain_and_its_interval(tmp_path):
    row = build(tmp_path / "a", defence=dict(only_filtered=60, only_original=20))["filter_improves_robustness"]
    assert row["ours"] == pytest.approx(4.0) and row["n"] == N, row                  # (60 − 20) / 1,000 images
    lo, hi = row["ci"]                    # Wald on the paired differences: SE = √(80 − 1000·0.04²)/1000 = 0.885 points
    se = np.sqrt(80 - 1000 * 0.04 ** 2) / 10
    assert lo == pytest.approx(4.0 - 1.96 * se, abs=0.01) and hi == pytest.approx(4.0 + 1.96 * se, abs=0.01)
    assert filtering.paired_gain_interval(5, 5, 100) == pytest.approx((-stats.Z * np.sqrt(10), stats.Z * np.sqrt(10)))


def test_a_paper_number_at_an_eps_is_judged_in_both_spaces(tmp_path):
    key = "cifar10_fgsm_0.01_e100"                  # paper 58.88 %; 1,000 images cannot show equivalence within 2 points
    row = build(tmp_path / "a", cifar={5: dict(clean=70, fgsm=58.9, fgsm_normalized=20.0)})[key]
    assert row["verdict"] == NOT, row                # inconclusive in pixel space, refuted in normalized space
    assert "pixel space 58.90 %" in row["evidence"] and "normalized space 20.00 %" in row["evidence"], row["evidence"]
    assert "judged in both ε spaces" in row["rule"] and row["ours"] == 58.9, row
    row = build(tmp_path / "b", cifar={5: dict(clean=70, fgsm=58.9, fgsm_normalized=59.0)})[key]
    assert row["verdict"] == INCONCLUSIVE, row
    clean = build(tmp_path / "b", cifar={5: dict(clean=70, fgsm=58.9, fgsm_normalized=59.0)})["cifar10_clean_e100"]
    assert "judged in both" not in clean["rule"], clean                  # no attack, no space


def test_across_spaces():
    assert spaces.across_spaces({"pixel": NOT, "normalized": NOT}) == (NOT, "")
    assert spaces.across_spaces({"pixel": NOT, "normalized": REPRODUCED})[0] == INCONCLUSIVE
    assert spaces.across_spaces({"pixel": NOT, "normalized": PENDING})[0] == PENDING
    assert spaces.across_spaces({"pixel": INCONCLUSIVE}) == (INCONCLUSIVE, "")
    # supported in no space and refuted in one (Algorithm 1 is flat in normalized space by construction)
    assert spaces.across_spaces({"pixel": NOT, "normalized": INCONCLUSIVE})[0] == NOT
    assert spaces.across_spaces({"pixel": REPRODUCED, "normalized": INCONCLUSIVE})[0] == INCONCLUSIVE


def test_rows_reading_a_mixed_checkpoint_say_so_in_their_evidence():
    """Which rows read a mixed checkpoint comes from their scope (runs, epochs), never from display text."""
    def r(runs, epochs, evidence):
        return {"scope": {"runs": runs, "epochs": epochs}, "evidence": evidence, "model": "display text, not parsed"}
    rows = [r(["cifar10/resnet50"], [10, 50], "a"), r(["cifar10/resnet50"], [10], "b"),
            r(["cifar10/resnet50", "mnist/resnet50"], [50], ""), r(["mnist/resnet50"], [50], "d"),
            r(["cifar10/resnet18"], [50], "e"), r(["cifar10/resnet50", "cifar10/resnet18"], [], "f")]
    prov = {"cifar10/resnet50": {"mixed_by_epoch": [[50, "the epoch-50 results come from an earlier training"]]},
            "mnist/resnet50": {"mixed_by_epoch": []}, "cifar10/resnet18": {}}
    summary.flag_mixed(rows, prov)
    flagged = [r["evidence"].startswith("mixed trainings, cifar10/resnet50: the epoch-50") for r in rows]
    assert flagged == [True, False, True, False, False, True], rows
    assert rows[0]["evidence"].endswith("; a") and rows[2]["evidence"].endswith("training"), rows


def test_the_bn_control_of_a_transfer_attack_reads_the_originals_white_box_row():
    rob = pd.DataFrame([dict(model="original_bn", baseline="original", attack="fgsm_transfer", epsilon=0.015, n=100,
                             accuracy=96.0, only_original=1, only_model=5, p_better=0.1, p_worse=0.9)])
    assert filtering.bn_alone(rob, 0.015, "fgsm_transfer") == ""        # no white-box row of the original: no text
    rob.loc[1] = dict(model="original", baseline="", attack="fgsm", epsilon=0.015, n=100, accuracy=92.0,
                      only_original=0, only_model=0, p_better=1.0, p_worse=1.0)
    text = filtering.bn_alone(rob, 0.015, "fgsm_transfer")
    assert "original 92.00 → 96.00 %" in text and "+5/−1" in text, text


def test_accuracy_grows_needs_two_checkpoints_in_the_profile(tmp_path):
    root = tmp_path / "quick"
    for dataset in ("cifar10", "mnist"):
        write_epoch(root, dataset, 1)
    rows = {r["id"]: r for r in summary.build("quick", root=root, epochs=(1,))["rows"]}
    assert rows["accuracy_grows"]["verdict"] == V.NO_VERDICT, rows["accuracy_grows"]


def test_pct_never_rounds_a_share_inside_0_100_to_either_end():
    assert summary.pct(99.99) == "99.99" and summary.pct(99.949) == "99.9" and summary.pct(100.0) == "100.0"
    assert summary.pct(0.01) == "0.01" and summary.pct(0.0) == "0.0" and summary.pct(59.87) == "59.9"
    assert summary.pct(99.9999) == "99.9999"


def test_mean_drop_saturates_needs_a_plateau(tmp_path):
    still_rising = {1: dict(mean=21.8), 3: dict(mean=41.0), 5: dict(mean=53.0)}      # the example
    assert build(tmp_path / "a", cifar=still_rising)["mean_drop_cifar_saturates"]["verdict"] == NOT
    plateau = {e: dict(mean=m, n_rank=10000) for e, m in ((1, 40.0), (3, 55.0), (5, 55.2))}   # paper's n
    assert build(tmp_path / "b", cifar=plateau)["mean_drop_cifar_saturates"]["verdict"] == REPRODUCED
    small_n = {1: dict(mean=40.0), 3: dict(mean=55.0), 5: dict(mean=55.2)}   # 1,000 images cannot show a plateau
    assert build(tmp_path / "d", cifar=small_n)["mean_drop_cifar_saturates"]["verdict"] == INCONCLUSIVE
    unclear = {1: dict(mean=40.0), 3: dict(mean=55.0), 5: dict(mean=57.5)}
    assert build(tmp_path / "c", cifar=unclear)["mean_drop_cifar_saturates"]["verdict"] == INCONCLUSIVE


def test_mean_drop_claims_hold_for_every_arch_that_has_landed(tmp_path):
    """Sec 5 says it of the models trained on CIFAR-10, not of one: each arch with three checkpoints is judged."""
    def verdict(sub, per_arch):
        root = tmp_path / sub / "paper"
        for a, means in per_arch.items():
            for e, m in zip((10, 50, 100), means):
                write_epoch(root, "cifar10", e, mean=m, n_rank=10000, arch=a)
        return {r["id"]: r for r in summary.build("paper", root=root)["rows"]}["mean_drop_cifar_saturates"]
    plateau, rising = (40.0, 55.0, 55.2), (21.8, 41.0, 53.0)
    alone = verdict("a", {"resnet50": plateau})                 # reproduced so far: pending until every arch lands
    assert alone["verdict"] == V.PENDING and "resnet50: reproduced" in alone["evidence"], alone["evidence"]
    assert "(resnet18, resnet101 pending)" in alone["evidence"], alone["evidence"]
    both = verdict("b", {"resnet50": plateau, "resnet18": rising})
    assert both["verdict"] == NOT and both["model"].startswith("cifar10/resnet50+resnet18"), both
    assert verdict("c", {"resnet50": plateau, "resnet18": plateau, "resnet101": plateau})["verdict"] == REPRODUCED


def test_an_interrupted_attack_step_leaves_a_buildable_summary(tmp_path):
    """attack.csv written, attack.json and attack_correct.npz not (killed in between): no test, no crash."""
    build(tmp_path / "a")
    for f in ("attack.json", "attack_correct.npz"):
        (tmp_path / "a" / "quick" / "cifar10" / "resnet18" / "e3" / f).unlink()
    rows = {r["id"]: r for r in summary.build("quick", root=tmp_path / "a" / "quick")["rows"]}
    assert rows["accuracy_grows"]["verdict"] == INCONCLUSIVE


def test_mean_drop_rises_then_falls(tmp_path):
    rf = {1: dict(mean=80.0), 3: dict(mean=95.0), 5: dict(mean=90.0)}
    assert build(tmp_path / "a", mnist=rf)["mean_drop_mnist_rises_falls"]["verdict"] == REPRODUCED
    rising = {1: dict(mean=80.0), 3: dict(mean=90.0), 5: dict(mean=95.0)}
    assert build(tmp_path / "b", mnist=rising)["mean_drop_mnist_rises_falls"]["verdict"] == NOT
    flat_end = {1: dict(mean=80.0), 3: dict(mean=95.0), 5: dict(mean=94.8)}
    assert build(tmp_path / "c", mnist=flat_end)["mean_drop_mnist_rises_falls"]["verdict"] == INCONCLUSIVE


def test_filter_claims(tmp_path):
    rows = build(tmp_path / "a")
    assert rows["filter_improves_robustness"]["verdict"] == REPRODUCED          # 60 vs 20 discordant pairs, every test
    assert rows["filter_improves_robustness"]["earlier"] is None                # v1 agrees: nothing to show beside it
    assert rows["filter_lowers_targeting"]["verdict"] == REPRODUCED
    assert "lower at 2" in rows["filter_lowers_targeting"]["evidence"]             # ε = 0 is not counted
    rows = build(tmp_path / "b", defence=dict(only_filtered=20, only_original=60, filt_t=(0.0, 80.0, 95.0)))
    assert rows["filter_improves_robustness"]["verdict"] == NOT
    assert rows["filter_lowers_targeting"]["verdict"] == NOT
    rows = build(tmp_path / "c", defence=dict(only_filtered=22, only_original=20, filt_t=(0.0, 59.0, 79.0)))
    assert rows["filter_improves_robustness"]["verdict"] == INCONCLUSIVE
    assert rows["filter_lowers_targeting"]["verdict"] == INCONCLUSIVE


def test_fgsm_stronger_on_the_more_complex_data_set(tmp_path):
    key = "fgsm_stronger_on_complex_data"          # Sec 3.1, at the reference (last) epoch, ε = 0.01
    row = build(tmp_path / "a", cifar={5: dict(clean=70, fgsm=40)}, mnist={5: dict(clean=90, fgsm=85)})[key]
    assert row["verdict"] == REPRODUCED and "CIFAR-10 30.00" in row["evidence"], row["evidence"]
    assert build(tmp_path / "b", cifar={5: dict(clean=70, fgsm=65)}, mnist={5: dict(clean=90, fgsm=60)})[key]["verdict"] == NOT
    close = build(tmp_path / "c", cifar={5: dict(clean=70, fgsm=60)}, mnist={5: dict(clean=90, fgsm=81)})[key]
    assert close["verdict"] == INCONCLUSIVE, close["evidence"]                 # 10 vs 9 points on 1,000 images each
    assert build(tmp_path / "d", cifar={1: dict(clean=70, fgsm=10)}, mnist={1: dict(clean=90, fgsm=89)},
                 landed=(1,))[key]["verdict"] == V.PENDING                      # the last epoch has not landed
    # per-image losses: with real (nested) correctness a 10- vs 6-point loss is significant on 1,000 images each;
    # without attack_correct.npz the two accuracies are treated as independent, which cannot show it
    paired = dict(cifar={5: dict(clean=70, fgsm=60, nested=True)}, mnist={5: dict(clean=90, fgsm=84, nested=True)})
    assert build(tmp_path / "e", **paired)[key]["verdict"] == REPRODUCED
    rows_f = build(tmp_path / "f", **paired)
    assert "smallest grid ε losing ≥ 20 points (pixel space): CIFAR-10 beyond the grid, MNIST beyond the grid" \
        in rows_f[key]["evidence"]
    for npz in (tmp_path / "f" / "quick").glob("*/resnet18/e5/attack_correct.npz"):
        npz.unlink()
    rows_f = {r["id"]: r for r in summary.build("quick", root=tmp_path / "f" / "quick")["rows"]}
    assert rows_f[key]["verdict"] == INCONCLUSIVE, rows_f[key]["evidence"]
    att = pd.DataFrame({"space": "pixel", "epsilon": [0.0, 0.01, 0.02, 0.03], "accuracy": [90.0, 80.0, 70.0, 50.0]})
    assert fgsm.first_eps_losing(att, 20.0) == 0.02 and fgsm.first_eps_losing(att, 50.0) is None


def depth_verdict(tmp_path, fragile_sets):
    """fragile_grows_with_depth of the paper profile (ResNet-18/50/101 at 10/50/100) from {arch: [sets per epoch]}."""
    root = tmp_path / "paper"
    for arch, sets in fragile_sets.items():
        for e, fragile in zip((10, 50, 100), sets):
            write_epoch(root, "cifar10", e, fragile=fragile, arch=arch)
    return {r["id"]: r for r in summary.build("paper", root=root)["rows"]}["fragile_grows_with_depth"]


def test_fragile_grows_with_depth_counts_the_kernels_fragile_at_every_checkpoint(tmp_path):
    # many fragile kernels per checkpoint but few of them at every one (red circles), growing with depth
    grows = {"resnet18": [{1, 2, 3}, {1, 4, 5}, {1, 6, 7}],                  # 1 persistent, 3 per epoch
             "resnet50": [{1, 2}, {1, 2}, {1, 2}],                             # 2 persistent, 2 per epoch
             "resnet101": [{1, 2, 3}, {1, 2, 3}, {1, 2, 3}]}                   # 3 persistent
    row = depth_verdict(tmp_path / "a", grows)
    assert row["verdict"] == REPRODUCED, row["evidence"]              # the mean count per epoch (3, 2, 3) would not be
    assert "resnet18 1, resnet50 2, resnet101 3" in row["evidence"]
    shrinks = {"resnet18": [{1, 2}] * 3, "resnet50": [{1}] * 3}               # ResNet-101 not landed yet
    assert depth_verdict(tmp_path / "b", shrinks)["verdict"] == NOT           # a step down refutes at once
    so_far = {"resnet18": [{1}] * 3, "resnet50": [{1, 2}] * 3}
    assert depth_verdict(tmp_path / "c", so_far)["verdict"] == V.PENDING        # up so far, ResNet-101 to come
    flat = {a: [{1, 2}] * 3 for a in ("resnet18", "resnet50", "resnet101")}
    assert depth_verdict(tmp_path / "d", flat)["verdict"] == INCONCLUSIVE


def test_targeting_and_balance_claims(tmp_path):
    rows = build(tmp_path / "a", cifar={1: dict(small=80.0), 5: dict(small=52.0)})
    assert rows["targeting_grows_with_eps"]["verdict"] == REPRODUCED
    assert rows["late_model_balanced"]["verdict"] == REPRODUCED
    rows = build(tmp_path / "b", cifar={1: dict(small=52.0), 5: dict(small=80.0)})
    assert rows["late_model_balanced"]["verdict"] == NOT
    rows = build(tmp_path / "c", cifar={1: dict(small=55.0), 5: dict(small=53.0)})
    assert rows["late_model_balanced"]["verdict"] == INCONCLUSIVE
    # the small ε are the same N images each time: the interval is over N, not over N × (number of small ε)
    rows = build(tmp_path / "e", cifar={1: dict(small=56.0), 5: dict(small=50.5)})
    assert rows["late_model_balanced"]["verdict"] == INCONCLUSIVE, "pooled the same images as if independent"
    rows = build(tmp_path / "d", cifar={e: dict(small=90.0, large=20.0) for e in (1, 3, 5)})
    assert rows["targeting_grows_with_eps"]["verdict"] == NOT


def test_number_rows_use_intervals_and_margins(tmp_path):
    rows = build(tmp_path / "a", cifar={5: dict(clean=75.5, fgsm=58.9)}, mnist={5: dict(clean=98.0)})
    r = rows["cifar10_clean_e100"]
    assert r["verdict"] == INCONCLUSIVE and r["ci"][0] < 75.5 < r["ci"][1] and r["n"] == N   # ±2.7 > margin 2
    assert rows["mnist_clean_e100"]["verdict"] == NOT        # 98.0 %: 3.4× the paper's error rate
    rows = build(tmp_path / "b", mnist={5: dict(clean=99.4)})
    assert rows["mnist_clean_e100"]["verdict"] == INCONCLUSIVE   # n = 1000 cannot resolve 0.29 points
    assert rows["mnist_fraction_fragile_e10"]["verdict"] == REPRODUCED      # 24/64 = 37.5 %, paper 37 ± 5
    rows = build(tmp_path / "c", mnist={1: dict(fragile=40)})
    assert rows["mnist_fraction_fragile_e10"]["verdict"] == NOT             # 62.5 %


# ---- rules beyond the paper: CSG, the defence under stronger tests, the seed study ------------------------------
def write_csg(root, dataset, summary_rows):
    results.write_json({"params": {"n_images": 10000, "resamples": 10, "m": 250, "k": 3},
                        "summary": [dict(embedding="pca", dim=d, mean=m, low=lo, high=hi) for d, m, lo, hi in summary_rows]},
                       root / "quick" / dataset / "resnet18" / "csg.json")


def test_csg_rows_and_the_order_of_the_data_sets(tmp_path):
    write_csg(tmp_path / "a", "cifar10", [(4, 6.0, 5.8, 6.2), (64, 1.1, 0.9, 1.3)])
    write_csg(tmp_path / "a", "mnist", [(4, 0.7, 0.6, 0.8), (64, 0.3, 0.2, 0.4)])
    rows = build(tmp_path / "a")
    assert rows["csg_cifar10"]["verdict"] == V.NO_VERDICT and rows["csg_cifar10"]["ours"] == 1.1   # largest dim
    assert rows["csg_mnist"]["ci"] == [0.2, 0.4]
    assert rows["csg_order"]["verdict"] == REPRODUCED and rows["csg_order"]["kind"] == "claim"
    write_csg(tmp_path / "b", "cifar10", [(4, 6.0, 5.8, 6.2), (64, 0.3, 0.1, 0.5)])
    write_csg(tmp_path / "b", "mnist", [(4, 0.7, 0.6, 0.8), (64, 0.3, 0.2, 0.4)])
    assert build(tmp_path / "b")["csg_order"]["verdict"] == INCONCLUSIVE          # overlapping at dim 64
    write_csg(tmp_path / "c", "cifar10", [(4, 0.2, 0.1, 0.3), (64, 1.1, 0.9, 1.3)])
    write_csg(tmp_path / "c", "mnist", [(4, 0.7, 0.6, 0.8), (64, 0.3, 0.2, 0.4)])
    assert build(tmp_path / "c")["csg_order"]["verdict"] == NOT                   # below at dim 4
    assert build(tmp_path / "d")["csg_cifar10"]["verdict"] == V.PENDING             # no csg.json
    write_csg(tmp_path / "e", "cifar10", [(4, 6.0, 5.8, 6.2)])
    write_csg(tmp_path / "e", "mnist", [(64, 0.3, 0.2, 0.4)])
    assert build(tmp_path / "e")["csg_order"]["verdict"] == V.PENDING               # no dimension in common


def write_robustness(root, only_model, only_original, acc=None):
    d = root / "quick" / "mnist" / "resnet18" / "e1"
    rows = []
    for model, base in (("original", "original"), ("filtered", "original"), ("filtered_val", "original"),
                        ("original_bn", "original"), ("filtered_bn", "original_bn")):
        for attack in ("fgsm", "pgd") + (("fgsm_transfer", "pgd_transfer") if model != "original" else ()):
            om, oo = (0, 0) if model == "original" else (only_model, only_original)
            rows.append({"model": model, "baseline": base, "attack": attack, "epsilon": 0.015, "n": N,
                         "accuracy": (acc or {}).get(model, 70.0),
                         "low": 67.0, "high": 73.0, "only_original": oo, "only_model": om,
                         "p_better": stats.mcnemar_greater(om, oo), "p_worse": stats.mcnemar_greater(oo, om)})
    results.write_csv(rows, d / "robustness.csv")


@pytest.mark.parametrize("only_model,only_original,verdict", [(60, 20, REPRODUCED), (20, 60, NOT), (22, 20, INCONCLUSIVE)])
def test_beyond_rows_follow_mcnemar_against_their_baseline(tmp_path, only_model, only_original, verdict):
    write_robustness(tmp_path, only_model, only_original)
    rows = build(tmp_path)
    for key in ("beyond_filtered_pgd", "beyond_filtered_fgsm_transfer", "beyond_filtered_val_fgsm",
                "beyond_filtered_bn_fgsm"):
        assert rows[key]["verdict"] == verdict and rows[key]["kind"] == "beyond", key
    assert "BatchNorm statistics recomputed" in rows["beyond_filtered_bn_fgsm"]["rule"] and "Holm" in rows["beyond_filtered_pgd"]["rule"]


@pytest.mark.parametrize("only_model,only_original", [(0, 0), (0, 1)])
def test_a_filter_right_on_no_extra_image_is_not_a_gain(tmp_path, only_model, only_original):
    """Right on no image the baseline misses: the gain is 0 or a loss, never 'inconclusive' (and +0/−1, a worse
    result, must not read milder than +0/−0)."""
    write_robustness(tmp_path, only_model, only_original)
    rows = build(tmp_path)
    assert rows["beyond_filtered_bn_fgsm"]["verdict"] == NOT, rows["beyond_filtered_bn_fgsm"]
    assert ("no discordant pair" in rows["beyond_filtered_bn_fgsm"]["evidence"]) == (only_original == 0)
    assert filtering.gain_verdict(1, 0, 0.5, 1.0) == INCONCLUSIVE       # one image for the filter: still open
    rows = build(tmp_path / "eq2", defence=dict(only_filtered=0, only_original=1))
    assert rows["filter_improves_robustness"]["verdict"] == NOT, rows["filter_improves_robustness"]


def test_the_eq2_row_says_what_recomputed_statistics_do_alone(tmp_path):
    write_robustness(tmp_path, 43, 18, acc={"original": 94.65, "original_bn": 95.9})
    rows = build(tmp_path)
    for key in ("filter_improves_robustness", "beyond_filtered_bn_fgsm"):
        assert "BatchNorm statistics recomputed alone, without the filter" in rows[key]["evidence"], key
        assert "original 94.65 → 95.90 % (McNemar +43/−18, p↑ " in rows[key]["evidence"], rows[key]["evidence"]
    write_robustness(tmp_path / "worse", 18, 43)
    assert "McNemar +18/−43, p↓ " in build(tmp_path / "worse")["filter_improves_robustness"]["evidence"]
    assert "recomputed alone" not in build(tmp_path / "none")["filter_improves_robustness"]["evidence"]


def test_holm_adjusts_step_down():
    adj = stats.holm({"a": 0.01, "b": 0.04, "c": 0.03})
    assert adj == pytest.approx({"a": 0.03, "c": 0.06, "b": 0.06})          # 3×0.01, max(2×0.03, ·), max(1×0.04, 0.06)


def test_across_seeds_is_reported_beside_the_row(tmp_path):
    d = tmp_path / "quick" / "mnist" / "resnet18"
    results.write_csv([{"epoch": 1, "quantity": "fraction_fragile", "epsilon": "", "space": "", "seeds": 3, "mean": 40.0,
                        "low": 30.0, "high": 50.0, "min": 35.0, "max": 45.0},
                       {"epoch": 1, "quantity": "filter_gain", "epsilon": 0.015, "space": "pixel", "seeds": 3,
                        "mean": 0.5, "low": -1.0, "high": 2.0, "min": 0.0, "max": 1.0}], d / "seeds_summary.csv")
    rows = build(tmp_path)
    assert rows["mnist_fraction_fragile_e10"]["across_seeds"] == "40.00 [30.00, 50.00] (3 seeds, range 35.00–45.00)"
    assert rows["filter_improves_robustness"]["across_seeds"] == "0.50 [-1.00, 2.00] (3 seeds, range 0.00–1.00)"
    assert rows["cifar10_clean_e100"]["across_seeds"] is None                          # no cifar10 seed study written
    # each data set's row reads its own table (they are read once per build, by data set)
    results.write_csv([{"epoch": e, "quantity": "fraction_fragile", "epsilon": "", "space": "", "seeds": 2,
                        "mean": 10.0 + e, "low": 5.0, "high": 15.0, "min": 9.0, "max": 11.0} for e in (1, 3)],
                      tmp_path / "quick" / "cifar10" / "resnet18" / "seeds_summary.csv")
    rows = build(tmp_path)
    assert rows["cifar10_fraction_fragile_e50"]["across_seeds"] == "13.00 [5.00, 15.00] (2 seeds, range 9.00–11.00)"
    assert rows["mnist_fraction_fragile_e10"]["across_seeds"] == "40.00 [30.00, 50.00] (3 seeds, range 35.00–45.00)"


def test_tally_counts_enum_verdicts_and_refuses_display_text():
    rows = [{"verdict": "pending"}, {"verdict": stats.PENDING}, {"verdict": "reproduced"},
            {"verdict": stats.INCONCLUSIVE}, {"verdict": stats.UNTESTABLE}]
    assert summary.tally(rows, V.PENDING) == 2 and summary.tally(rows, stats.PENDING) == 2   # the stats constant maps
    assert summary.tally(rows, V.REPRODUCED) == 1
    assert summary.tally(rows, V.INCONCLUSIVE) == 1
    assert summary.tally(rows, V.NO_VERDICT) == 1            # "not testable here" is a missing verdict
    assert summary.tally(rows, V.NOT) == 0
    with pytest.raises(ValueError):                          # a verdict with prose glued on is not a verdict
        summary.tally([{"verdict": "reproduced (within the margin)"}], V.REPRODUCED)


def test_a_run_still_training_gets_no_early_reproduced(tmp_path):
    up = {1: dict(clean=50, fgsm=30), 3: dict(clean=60, fgsm=40)}
    rows = build(tmp_path / "a", cifar=up, landed=(1, 3))                    # epoch 5 not trained yet
    assert rows["accuracy_grows"]["verdict"] == V.PENDING                       # up so far, the last step unknown
    assert rows["targeting_grows_with_eps"]["verdict"] == V.PENDING             # up at 1 and 3
    assert "(epoch 5 pending)" in rows["targeting_grows_with_eps"]["evidence"]
    assert rows["targeting_grows_with_eps"]["model"].endswith("@[1, 3]")
    down = {1: dict(clean=50, fgsm=30, small=90.0, large=20.0), 3: dict(clean=40, fgsm=20)}
    rows = build(tmp_path / "b", cifar=down, landed=(1, 3))
    assert rows["accuracy_grows"]["verdict"] == NOT                           # a step down: refuted already
    assert rows["targeting_grows_with_eps"]["verdict"] == NOT                 # down at epoch 1


def test_value_at_picks_the_row_at_epsilon_and_never_ignores_a_filter():
    df = pd.DataFrame({"epsilon": [0.0, 0.01, 0.01], "space": ["pixel", "pixel", "normalized"],
                       "accuracy": [90.0, 40.0, 60.0]})
    assert summary.value_at(df, 0.01, "accuracy", space="normalized") == 60.0
    assert summary.value_at(df, 0.01 + 1e-12, "accuracy", space="pixel") == 40.0
    assert summary.value_at(df, 0.02, "accuracy", space="pixel") is None
    assert summary.value_at(None, 0.01, "accuracy") is None
    with pytest.raises(KeyError):                 # a table without the column: an error, not the first row
        summary.value_at(df.drop(columns="space"), 0.01, "accuracy", space="normalized")


def test_eq2_row_reads_every_run_and_the_batchnorm_control(tmp_path):
    """Rule filter_gain v2: every run of the filter step, as written and with BatchNorm statistics recomputed on
    both models; v1 (the paper's model, as written) is shown beside a verdict it would give otherwise."""
    key = "filter_improves_robustness"
    bn_only = build(tmp_path / "a", control=dict(only_model=0, only_original=0))[key]     # the control erases the gain
    assert bn_only["verdict"] == V.NOT, bn_only
    assert bn_only["earlier"] == [{"verdict": "reproduced", "rule": {"id": "filter_gain", "version": 1}}], bn_only
    assert "not once BatchNorm statistics are recomputed" in bn_only["reason"], bn_only["reason"]
    down = build(tmp_path / "b", cifar_defence=dict(only_filtered=20, only_original=60))[key]   # CIFAR-10 loses
    assert down["verdict"] == V.NOT and "lowers FGSM accuracy on CIFAR-10" in down["reason"], down["reason"]
    flat = build(tmp_path / "c", cifar_defence=dict(only_filtered=22, only_original=20))[key]
    assert flat["verdict"] == V.INCONCLUSIVE, flat
    # the reason is the paper's model (and runs where the filter hurts); what the other runs say is the detail
    assert "does not significantly change FGSM accuracy on CIFAR-10" in flat["detail"], flat
    assert "CIFAR-10" not in flat["reason"] and flat["reason"].startswith("on MNIST ResNet-18"), flat["reason"]
    waiting = build(tmp_path / "d", step7=("mnist",))[key]                 # CIFAR-10's control has not landed
    assert waiting["verdict"] == V.PENDING and "pending" in waiting["reason"], waiting
    assert set(waiting["scope"]["runs"]) == {"mnist/resnet18", "cifar10/resnet18"}, waiting["scope"]
    assert [r["id"] for r in waiting["rules"]] == ["filter_gain", "change", "eq4_literal"] and waiting["rules"][0]["version"] == 2


def test_the_earlier_eps_rule_is_shown_beside_a_verdict_it_changed(tmp_path):
    """Rule eps_spaces v2 replaced v1 (pixel space alone) after data had been seen: a row v1 would judge otherwise
    carries v1's verdict."""
    cifar = {e: dict(clean=c, fgsm=f, fgsm_normalized=g) for e, c, f, g in ((1, 50, 40, 40), (3, 60, 30, 45), (5, 70, 40, 50))}
    row = build(tmp_path, cifar=cifar)["accuracy_grows"]
    assert row["verdict"] == V.INCONCLUSIVE and row["earlier"] == [
        {"verdict": V.NOT.value, "rule": {"id": "eps_spaces", "version": 1}}], row
    agree = build(tmp_path / "b")["accuracy_grows"]                         # one space only: nothing changed
    assert agree["earlier"] is None


def test_intervals_print_without_rounding_to_the_bounds():
    from fnlib.claims import evidence, sheet
    assert evidence.fmt_ci(99.96, 99.998) == "[99.96, 99.998]"          # not [100.00, 100.00]
    assert evidence.fmt_ci(0.0, 0.04) == "[0.00, 0.04]" and evidence.fmt_ci(99.96, 100.0) == "[99.96, 100.00]"
    assert sheet.round_ci(99.9612, 99.9981) == [99.96, 99.998]
    assert sheet.clip_t(-3.0, 104.0, "fgsm_accuracy") == (0.0, 100.0)   # a seed t interval stays in [0, 100]
    assert sheet.clip_t(-3.0, 4.0, "filter_gain") == (-3.0, 4.0)        # a gain may be negative


def test_the_fragile_share_row_says_how_the_split_moves_with_the_test_images(tmp_path):
    """Rule fragile_share v2: the bootstrap of step 11 stands beside the verdict (24 of 64 kernels, 37.5 %: within
    the paper's 37 ± 5; 20 kernels, 31.25 %, would be outside) and changes none."""
    rows = build(tmp_path, mnist={1: dict(fragile=24)})
    key = "mnist_fraction_fragile_e10"
    assert rows[key]["verdict"] == REPRODUCED and rows[key]["sensitivity"]["test_images"]["status"] == "pending", rows[key]
    counts = [24] * 900 + [20] * 100
    results.write_json({"counts": counts, "count_low": 20.0, "count_high": 24.0},
                       tmp_path / "quick" / "mnist" / "resnet18" / "e1" / "split.json")
    row = {r["id"]: r for r in summary.build("quick", root=tmp_path / "quick")["rows"]}[key]
    assert row["verdict"] == REPRODUCED, row
    assert "the fragile count spans [20, 24] (95 %), and the verdict flips in 10.0 % of them" in row["reason"], row
    assert row["sensitivity"]["test_images"]["flip_percent"] == 10.0 and row["sensitivity"]["test_images"]["flips"] is None


def test_eq2_reason_keeps_the_paper_models_readings_in_the_reason():
    """The eq 2 row's reason holds the paper's model (its BatchNorm control and a pending state included) and the
    other runs where the filter significantly changes FGSM accuracy; the detail holds the rest."""
    from types import SimpleNamespace as P
    from fnlib.claims.filtering import eq2_reason
    pair = lambda old, new, up, down: P(acc_old=old, acc_new=new, only_new=up, only_old=down)  # noqa: E731
    ref, c, r18 = "mnist/resnet50", "cifar10/resnet50", "mnist/resnet18"
    pairs = {(ref, "literal"): None, (ref, "control"): None,
             (c, "literal"): pair(60.0, 62.0, 300, 100), (c, "control"): pair(60.0, 60.0, 0, 0),
             (r18, "literal"): pair(90.0, 90.1, 11, 10), (r18, "control"): pair(90.0, 90.0, 0, 0)}
    tests = {(ref, "literal"): V.PENDING, (ref, "control"): V.PENDING, (c, "literal"): V.REPRODUCED,
             (c, "control"): V.NOT, (r18, "literal"): V.INCONCLUSIVE, (r18, "control"): V.NOT}
    reason, detail = eq2_reason(pairs, tests, V.NOT, ref)
    assert reason.startswith("MNIST ResNet-50, the paper's model, pending"), reason
    assert "it raises FGSM accuracy on CIFAR-10 ResNet-50 (+2.00 points)" in reason, reason
    assert "does not significantly change FGSM accuracy on MNIST ResNet-18" in detail, detail
    assert "gains nothing on CIFAR-10 ResNet-50 (+0.00 points), MNIST ResNet-18" in detail, detail
    # the paper's model landed, eq 2 inconclusive and its BatchNorm control lost: both said in the reason
    pairs[(ref, "literal")], pairs[(ref, "control")] = pair(96.0, 96.5, 40, 30), pair(95.9, 95.9, 0, 0)
    tests[(ref, "literal")], tests[(ref, "control")] = V.INCONCLUSIVE, V.NOT
    reason, detail = eq2_reason(pairs, tests, V.NOT, ref)
    assert reason.startswith("on MNIST ResNet-50, the paper's model, eq 2 as written is inconclusive (+0.50 points), "
                             "and with BatchNorm statistics recomputed on both models the filter gains nothing "
                             "(+0.00 points)"), reason
    assert "MNIST ResNet-50" not in detail, detail
