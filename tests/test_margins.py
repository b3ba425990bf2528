"""Rule seed_margin (fnlib.claims.margins): a number row's margin grounded in the spread of seeds 0, 1 and 2."""
from __future__ import annotations

import math
import statistics

import pytest

from fnlib.claims import margins

KEY = ("mnist", "resnet50", 10, "fraction_fragile", "", "")


def spread(values: dict, replicated=(("mnist", "resnet50", 10),)) -> margins.Spread:
    table = [{"dataset": "mnist", "arch": "resnet50", "schedule": 100, "epoch": 10, "quantity": "fraction_fragile",
              "epsilon": "", "space": "", "values": {str(s): v for s, v in values.items()}},
             {"dataset": "mnist", "arch": "resnet50", "schedule": 10, "epoch": 10, "quantity": "fraction_fragile",
              "epsilon": "", "space": "", "values": {"0": 90.0}}]      # another schedule: never a seed
    return margins.Spread.of(table, 100, replicated)


def test_the_grounded_margin_is_what_two_runs_differ_by_95_percent_of_the_time():
    values = {0: 26.5625, 1: 26.5625, 2: 37.5}
    assert margins.grounded(values) == round(1.96 * math.sqrt(2) * statistics.stdev(values.values()), 2) == 17.5
    assert margins.grounded({0: 26.5625, 1: 37.5}) is None          # two seeds: not yet
    assert margins.grounded(None) is None
    assert margins.grounded({0: 50.0, 1: 50.0, 2: 50.0}) == 0.0


def test_the_applied_margin_is_the_larger_of_stated_and_grounded():
    wide, narrow = spread({0: 26.5625, 1: 26.5625, 2: 37.5}), spread({0: 26.0, 1: 26.5, 2: 27.0})
    assert margins.applied(wide, 5.0, *KEY) == 17.5
    assert margins.applied(narrow, 5.0, *KEY) == 5.0                 # 1.39: the stated margin stands
    assert margins.applied(None, 5.0, *KEY) == 5.0                   # a profile without replicates
    assert margins.applied(spread({0: 26.0, 1: 40.0}), 5.0, *KEY) == 5.0   # seed 2 not landed
    assert margins.applied(wide, 5.0, "mnist", "resnet50", 10, "fraction_fragile", "", "pixel") == 5.0


def test_the_reading_is_pending_unavailable_or_measured():
    r = margins.reading(spread({0: 26.0, 1: 30.0}), 5.0, *KEY[:5], [""], "not reproduced", "not reproduced")
    assert r["status"] == "pending" and "2 of 3 seeds" in r["text"]
    r = margins.reading(spread({0: 26.0}, replicated=()), 5.0, *KEY[:5], [""], "not reproduced", "not reproduced")
    assert r["status"] == "unavailable" and "± 5 stands" in r["text"]
    assert margins.reading(None, 5.0, *KEY[:5], [""], "not reproduced", "not reproduced") is None
    r = margins.reading(spread({0: 26.5625, 1: 26.5625, 2: 37.5}), 5.0, *KEY[:5], [""], "not reproduced",
                        "reproduced")
    assert r["status"] == "measured" and r["verdict"] == "not reproduced" and r["flips"] is True
    assert "seeds 26.56, 26.56, 37.50: s = 6.31, 1.96·√2·s = 17.5" in r["text"]


@pytest.mark.parametrize("given, text", [({"pixel": 2.0, "normalized": 2.0}, "2"),
                                         ({"pixel": 3.1, "normalized": 2.0}, "pixel 3.1, normalized 2"), ({}, "")])
def test_margins_in_words(given, text):
    assert margins.fmt(given) == text
