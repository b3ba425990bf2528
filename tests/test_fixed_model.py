"""Every analysis step on a model that every machine makes identically, compared value by value (issue 34).

The smoke regression compares trained numbers, which move by up to 33 points between CPUs; these tests
compare the analyses of one fixed model (``tests/fixed_model.py``: the same weights on every machine), each
number with its own tolerance, calibrated under three CPU settings by ``tests/calibrate_fixed_model.py``:
one image for accuracies and shares, one for counts. ``tests/planted_bugs.md`` lists the one-line drifts
these tests catch and the rest of the suite lets through.
"""
from __future__ import annotations

import json
import math

import pytest
import torch

import fixed_model

GROUPS = ("rank", "split", "rank_val", "attack", "algorithm1", "defence", "controls", "robustness")
FIX = ("if the change is intended, re-measure with `python tests/calibrate_fixed_model.py --write` "
       "(≈ 5 min) and commit tests/fixed_model_reference.json with the reason")


@pytest.fixture(scope="module")
def reference() -> dict:
    return json.loads(fixed_model.REFERENCE.read_text())["values"]


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> dict:
    threads = torch.get_num_threads()
    try:
        return fixed_model.run(tmp_path_factory.mktemp("fixed-model"))
    finally:
        torch.set_num_threads(threads)


def test_the_fixed_model_is_the_same_on_this_machine(measured, reference):
    assert measured["model/digest"] == reference["model/digest"]["value"], (
        "the fixed model's weights differ from the reference's: something in fnlib.models, fnlib.data or "
        "tests/fixed_model.py changed what it builds (or this CPU's float64 arithmetic differs in a way the "
        "16-bit rounding did not absorb); " + FIX)


def test_every_reference_value_is_measured(measured, reference):
    assert sorted(measured) == sorted(reference), (
        f"missing: {sorted(set(reference) - set(measured))[:10]}, new: {sorted(set(measured) - set(reference))[:10]}")


def off(value, ref: dict) -> bool:
    if isinstance(ref["value"], str) or isinstance(value, str):
        return value != ref["value"]
    if math.isnan(ref["value"]) or math.isnan(value):
        return not (math.isnan(ref["value"]) and math.isnan(value))
    return abs(value - ref["value"]) > ref["tol"] + 1e-9


@pytest.mark.parametrize("group", GROUPS)
def test_the_analyses_match_the_reference(measured, reference, group):
    names = [k for k in reference if k.startswith(group + "/") and k in measured]
    assert names, f"no reference values for {group}"
    bad = [k for k in names if off(measured[k], reference[k])]
    worst = sorted(bad, key=lambda k: -abs(measured[k] - reference[k]["value"]) / max(reference[k]["tol"], 1e-12))
    assert not bad, (f"{len(bad)} of {len(names)} {group} values outside their tolerance (worst first):\n" + "\n".join(
        f"  {k}: {measured[k]:.6g}, reference {reference[k]['value']:.6g} ± {reference[k]['tol']:.3g}"
        for k in worst[:12]) + "\n" + FIX)
