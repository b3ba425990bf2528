"""Rule seed_margin (fnlib.claims.margins): a number row refutes only beyond what two trainings of the recipe
differ by, once seeds 0, 1 and 2 of its checkpoint have landed; reproduced keeps the stated margin."""
from __future__ import annotations

import math
import statistics

import pytest

from fnlib.claims import margins
from fnlib.claims.rules import number_v1, number_verdict
from fnlib.stats import INCONCLUSIVE, NOT, REPRODUCED

CKPT = ("mnist", "resnet50", 10)


def spread(values: dict, quantity="fraction_fragile", space="", replicated=(CKPT,)) -> margins.Spread:
    eps = margins.key(*CKPT, quantity, space)[4]
    row = {"dataset": "mnist", "arch": "resnet50", "epoch": 10, "quantity": quantity, "epsilon": eps, "space": space}
    table = [row | {"schedule": 100, "values": {str(s): v for s, v in values.items()}},
             row | {"schedule": 10, "values": {"0": 90.0}}]       # another schedule: never a seed
    return margins.Spread.of(table, 100, replicated)


def test_the_grounded_margin_is_what_two_runs_differ_by_95_percent_of_the_time():
    values = {0: 26.5625, 1: 26.5625, 2: 37.5}
    assert margins.grounded(values) == round(1.96 * math.sqrt(2) * statistics.stdev(values.values()), 2) == 17.5
    assert margins.grounded({0: 26.5625, 1: 37.5}) is None          # two seeds: not yet
    assert margins.grounded({1: 1.0, 2: 2.0, 3: 3.0}) is None        # seed 0 missing
    assert margins.grounded(None) is None
    assert margins.grounded({0: 50.0, 1: 50.0, 2: 50.0}) == 0.0


def test_a_wider_refuting_margin_turns_not_reproduced_into_inconclusive_and_nothing_else():
    # paper 37 ± 5; a point value 26.6 is not reproduced, and inconclusive once refuting needs ± 17.5
    assert number_verdict(37, 26.6, margin=5) == NOT
    assert number_verdict(37, 26.6, margin=5, refute=17.5) == INCONCLUSIVE
    assert number_verdict(37, 10.0, margin=5, refute=17.5) == NOT          # beyond the wider margin too
    assert number_verdict(37, 45.0, margin=5, refute=17.5) == INCONCLUSIVE  # never reproduced outside ± 5
    assert number_verdict(37, 36.0, margin=5, refute=17.5) == REPRODUCED
    assert number_verdict(37, 36.0, 33.0, 43.0, margin=5, refute=17.5) == INCONCLUSIVE   # straddles: as before
    assert number_verdict(37, 20.0, 18.0, 22.0, margin=5, refute=17.5) == INCONCLUSIVE   # [18, 22] meets 19.5
    assert number_verdict(37, 20.0, 18.0, 22.0, margin=5, refute=2.0) == NOT             # a narrower one: unused
    assert number_v1(37, 2660, 10000, 5, 17.5) == INCONCLUSIVE and number_v1(37, 2660, 10000, 5) == NOT


def test_the_refuting_margin_is_the_larger_of_stated_and_grounded_in_every_space_or_none():
    wide, narrow = spread({0: 26.5625, 1: 26.5625, 2: 37.5}), spread({0: 26.0, 1: 26.5, 2: 27.0})
    assert margins.refuting(wide, 5.0, *CKPT, "fraction_fragile") == {"": 17.5}
    assert margins.refuting(narrow, 5.0, *CKPT, "fraction_fragile") == {"": 5.0}      # 1.39: the stated one
    assert margins.refuting(None, 5.0, *CKPT, "fraction_fragile") == {"": 5.0}
    assert margins.refuting(spread({0: 26.0, 1: 40.0}), 5.0, *CKPT, "fraction_fragile") == {"": 5.0}
    pixel = spread({0: 0.0, 1: 0.0, 2: 60.0}, "attacking_s", "pixel")
    assert margins.refuting(pixel, 5.0, *CKPT, "attacking_s", ["pixel"]) == {"pixel": 96.02}
    # the normalized space has no seeds: neither space is grounded
    assert margins.refuting(pixel, 5.0, *CKPT, "attacking_s", ["pixel", "normalized"]) == \
        {"pixel": 5.0, "normalized": 5.0}
    assert margins.widened(5.0, {"pixel": 96.02, "normalized": 5.0}) == "96.02 in pixel space, ± 5 in normalized space"
    assert margins.widened(5.0, {"": 5.0}) is None


def test_keys_take_each_numbers_epsilon_from_the_replicates():
    assert margins.key(*CKPT, "attacking_s", "pixel") == ("mnist", "resnet50", 10, "attacking_s", "0.015", "pixel")
    assert margins.key("cifar10", "resnet50", 100, "fgsm_accuracy", "pixel")[4] == "0.01"
    assert margins.key("mnist", "resnet50", 100, "fgsm_accuracy", "pixel")[4] == "0.34"
    with pytest.raises(ValueError, match="no seed-table number"):
        margins.key(*CKPT, "attacking_S")


def test_the_reading_is_pending_unavailable_or_measured():
    r = margins.reading(spread({0: 26.0, 1: 30.0}), 5.0, *CKPT, "fraction_fragile", [""], NOT, NOT)
    assert r["status"] == "pending" and "2 of 3 seeds" in r["text"]
    r = margins.reading(spread({0: 26.0}, replicated=()), 5.0, *CKPT, "fraction_fragile", [""], NOT, NOT)
    assert r["status"] == "unavailable" and "± 5 stands" in r["text"]
    assert margins.reading(None, 5.0, *CKPT, "fraction_fragile", [""], NOT, NOT) is None
    r = margins.reading(spread({0: 26.5625, 1: 26.5625, 2: 37.5}), 5.0, *CKPT, "fraction_fragile", [""], NOT,
                        INCONCLUSIVE)
    assert r["status"] == "measured" and r["verdict"] == "not reproduced" and r["flips"] is True
    assert "seeds 26.56, 26.56, 37.50, s = 6.31, 1.96·√2·s = 17.5" in r["text"]


@pytest.mark.parametrize("given, text", [({"pixel": 2.0, "normalized": 2.0}, "2"),
                                         ({"pixel": 3.1, "normalized": 2.0}, "3.1 in pixel space, ± 2 in normalized space"), ({}, "")])
def test_margins_in_words(given, text):
    assert margins.fmt(given) == text


def test_number_reason_names_each_spaces_refuting_margin_once():
    """A row judged in both ε spaces whose seed spread widened the spaces' refuting margins differently names each
    space's margin and not 'in both ε spaces' too; equal margins keep 'in both ε spaces'."""
    from fnlib.claims.fgsm import number_reason
    spaces = {"pixel": "not reproduced", "normalized": "not reproduced"}
    text = number_reason("not reproduced", 0.0, (0.0, 0.08), 89.0, 5.0, spaces=spaces, values=2.51,
                         refute={"pixel": 5.0, "normalized": 22.57})
    assert text.startswith("89.0 points from the paper's value, outside ± 5 in pixel space, ± 22.57 in normalized "
                           "space (normalized ε: 2.51 %)"), text
    assert "in both ε spaces" not in text
    same = number_reason("not reproduced", 0.0, (0.0, 0.08), 89.0, 5.0, spaces=spaces, values=2.51,
                         refute={"pixel": 10.0, "normalized": 10.0})
    assert "outside ± 10 in both ε spaces" in same, same
    stated = number_reason("not reproduced", 0.0, (0.0, 0.08), 89.0, 5.0, spaces=spaces, values=2.51,
                           refute={"pixel": 5.0, "normalized": 5.0})
    assert "outside ± 5 in both ε spaces" in stated and "refuted only beyond" not in stated, stated
