"""The ε spaces matched in pixel step size (fnlib.claims.matched, rule eps_matched; issue 33)."""
import json

import pandas as pd
import pytest

from fnlib import profiles
from fnlib.claims import fgsm, matched
from fnlib.claims.sheet import Sheet


def test_the_matched_epsilon_is_eps_over_the_mean_sigma_on_the_grid():
    assert matched.sigma("mnist") == pytest.approx(0.3081)
    assert matched.sigma("cifar10") == pytest.approx((0.2470 + 0.2435 + 0.2616) / 3)
    assert matched.matched("cifar10", 0.01, profiles.LINEAR["cifar10"]) == pytest.approx(0.04)    # 0.0399 on the grid
    assert matched.matched("mnist", 0.015, profiles.LOG) == pytest.approx(0.0464159, rel=1e-5)   # 0.0487, 4.7 % off


def test_no_grid_value_near_enough_gives_none_and_says_why():
    assert matched.matched("mnist", 0.34, profiles.LINEAR["mnist"]) is None                      # 1.10; grid ends 0.4
    assert matched.matched("cifar10", 0.015, profiles.LOG) is None                               # 0.060 vs 0.046, 0.1
    assert "within 5 % of ε/σ̄ = 1.104" in matched.find("mnist", 0.34, profiles.LINEAR["mnist"])[1]
    assert matched.find("mnist", 0.34, [])[0] is None                                            # no grid: no crash
    assert matched.matched("mnist", 0.01, [0.0, 0.0340]) is not None                            # 0.0325: 4.7 % off
    assert matched.matched("mnist", 0.01, [0.0, 0.0342]) is None                                # 5.4 % off


def _attack(path, pixel: float, normalized: dict):
    rows = [{"space": "pixel", "epsilon": 0.0, "accuracy": 80.0}, {"space": "pixel", "epsilon": 0.01, "accuracy": pixel},
            {"space": "normalized", "epsilon": 0.0, "accuracy": 80.0}]
    rows += [{"space": "normalized", "epsilon": e, "accuracy": a} for e, a in normalized.items()]
    pd.DataFrame(rows).to_csv(path / "attack.csv", index=False)
    (path / "attack.json").write_text(json.dumps({"params": {"n_images": 10000}}))


def test_a_number_row_judged_with_matched_spaces_names_a_flip(tmp_path):
    """CIFAR-10 FGSM at 0.01 (paper 58.88 ± 2): pixel space reproduces it, normalized space at 0.01 does not (the
    row: inconclusive); at the matched ε′ = 0.04 normalized space reproduces it too, so the reading flips."""
    t = Sheet(profiles.get("quick"), tmp_path)
    edir = t.edir("cifar10", t.ep[100])
    edir.mkdir(parents=True)
    _attack(edir, pixel=58.9, normalized={0.01: 75.0, 0.04: 58.5})
    fgsm.accuracies(t)
    row = next(r for r in t.rows if r["id"] == "cifar10_fgsm_0.01_e100")
    m = row["sensitivity"]["eps_matched"]
    assert row["verdict"] == "inconclusive" and m["verdict"] == "reproduced" and m["flips"] is True
    assert m["ours"] == 58.5 and "reproduced with the ε spaces matched in pixel step size (rule eps_matched)" in row["reason"]
    _attack(edir, pixel=58.9, normalized={0.01: 75.0, 0.04: 70.0})
    t.rows.clear()
    fgsm.accuracies(t)
    row = next(r for r in t.rows if r["id"] == "cifar10_fgsm_0.01_e100")
    assert row["sensitivity"]["eps_matched"]["flips"] is False and "eps_matched" not in row["reason"]
