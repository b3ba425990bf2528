"""The split made on validation images against step 2's on test images (fnlib.valrank, issue 33)."""
import math

import pytest

from fnlib import kernels, valrank


def split(acc):
    """Sec 3.3's split, as the steps make it."""
    return kernels.Ranking(list(acc), 100.0, "weights").fragile


def agree(test, val):
    return valrank.agreement(split(test), split(val), test, val)


def test_the_same_accuracies_agree_fully():
    acc = [90.0, 95.0, 80.0, 99.0, 97.0]
    assert agree(acc, acc) == {"overlap": 2, "jaccard": 1.0, "moved": [], "spearman": pytest.approx(1.0)}


def test_a_reversed_ranking_shares_no_fragile_kernel():
    a = agree([1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0])
    assert a["overlap"] == 0 and a["jaccard"] == 0.0 and a["moved"] == [0, 1, 2, 3]
    assert a["spearman"] == pytest.approx(-1.0)


def test_the_sets_are_the_steps_own_not_recomputed_from_the_accuracies():
    """Found in review: kernel_drop.csv keeps 6 significant digits, so a kernel at the mean could change side if the
    split were redone from it; the agreement takes each step's own fragile set."""
    a = valrank.agreement([0, 1], [0, 2], [1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert a["overlap"] == 1 and a["moved"] == [1, 2] and a["jaccard"] == pytest.approx(1 / 3)


def test_no_fragile_kernel_on_either_side_gives_nan_not_an_error():
    a = agree([5.0, 5.0], [5.0, 5.0])
    assert a["overlap"] == 0 and math.isnan(a["jaccard"]) and math.isnan(a["spearman"])


def test_rankings_of_different_layers_are_refused():
    with pytest.raises(ValueError, match="same layer"):
        valrank.agreement([0], [0], [1.0, 2.0], [1.0, 2.0, 3.0])


# ---- the claims rows that read step 12 (rule val_ranking) ---------------------------------------------------
import json  # noqa: E402

import pandas as pd  # noqa: E402

from fnlib import profiles  # noqa: E402
from fnlib.claims import algorithm1, fragile  # noqa: E402
from fnlib.claims.sheet import Sheet  # noqa: E402


def _sheet(tmp_path, test_fragile: int, val_fragile: int | None) -> Sheet:
    """The smoke profile's MNIST reference checkpoint (standing in for epoch 10) with ``test_fragile`` kernels
    fragile on test images and, unless None, ``val_fragile`` on validation images."""
    t = Sheet(profiles.get("smoke"), tmp_path)
    edir = t.edir("mnist", t.ep[10])
    edir.mkdir(parents=True)
    (edir / "meta.json").write_text(json.dumps({"fraction_fragile": test_fragile / 64, "fragile": list(range(test_fragile))}))
    if val_fragile is not None:
        (edir / "rank_val.json").write_text(json.dumps({
            "fraction_fragile": val_fragile / 64, "fragile": list(range(val_fragile)), "params": {"n_val": 200},
            "overlap": min(test_fragile, val_fragile), "jaccard": 0.5, "moved": [1, 2]}))
    return t


def test_the_fragile_share_row_says_when_validation_ranking_flips_its_verdict(tmp_path):
    t = _sheet(tmp_path, test_fragile=24, val_fragile=10)        # 37.5 % vs 15.6 %; the paper: 37 ± 5
    fragile.fraction_fragile(t, "mnist", 10)
    row = t.rows[-1]
    val = row["sensitivity"]["val_ranking"]
    assert row["verdict"] == "reproduced" and val["verdict"] == "not reproduced" and val["flips"] is True
    assert val["ours"] == 15.62 and "not reproduced with S ranked on validation images (rule val_ranking)" in row["reason"]
    assert {"id": "val_ranking", "version": 1} in row["rules"]


def test_an_agreeing_validation_ranking_leaves_the_reason_alone(tmp_path):
    t = _sheet(tmp_path, test_fragile=24, val_fragile=23)
    fragile.fraction_fragile(t, "mnist", 10)
    row = t.rows[-1]
    assert row["sensitivity"]["val_ranking"]["flips"] is False and "val_ranking" not in row["reason"]


def test_without_step_12_the_reading_is_pending(tmp_path):
    t = _sheet(tmp_path, test_fragile=24, val_fragile=None)
    fragile.fraction_fragile(t, "mnist", 10)
    val = t.rows[-1]["sensitivity"]["val_ranking"]
    assert val["status"] == "pending" and val["verdict"] is None and val["flips"] is None


def _targeting(path, pixel: int, normalized: int, n: int = 1000):
    pd.DataFrame([{"space": s, "epsilon": 0.015, "n": n, "fragile_count": k, "percent": 100 * k / n, "layer": "conv1"}
                  for s, k in (("pixel", pixel), ("normalized", normalized))]).to_csv(path, index=False)


def test_the_attacking_s_row_judges_the_validation_ranked_share_in_both_spaces(tmp_path):
    t = _sheet(tmp_path, test_fragile=24, val_fragile=24)
    edir = t.edir("mnist", t.ep[10])
    _targeting(edir / "targeting.csv", 890, 890)            # the paper's 89 %: reproduced in both spaces
    _targeting(edir / "targeting_val.csv", 890, 400)        # validation-ranked: normalized space far off
    algorithm1.attacking_s(t, "mnist", 10)
    row = t.rows[-1]
    val = row["sensitivity"]["val_ranking"]
    assert row["verdict"] == "reproduced" and val["verdict"] == "inconclusive" and val["ours"] == 89.0
    assert "inconclusive with S ranked on validation images" in row["reason"]
    _targeting(edir / "targeting_val.csv", 100, 100)
    algorithm1.attacking_s(t, "mnist", 10)
    assert t.rows[-1]["sensitivity"]["val_ranking"]["verdict"] == "not reproduced"
