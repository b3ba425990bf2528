"""The book's provenance line (``book/_helpers.where_computed``): it names where a run's analyses were computed
when that is not where the run was trained — the case the pipeline creates when a retraining gives the same
weights back and it keeps the analyses made on another machine (:func:`fnlib.pipeline.reusable`)."""
import importlib
import sys

import pytest

from fnlib import results


@pytest.fixture(scope="module")
def helpers(tmp_path_factory):
    pytest.importorskip("myst_nb")
    sys.path.insert(0, str(results.PROJECT_ROOT / "book"))
    try:
        yield importlib.import_module("_helpers")
    finally:
        sys.path.remove(str(results.PROJECT_ROOT / "book"))


def test_analyses_computed_on_another_processor_are_named(helpers):
    info = {"analysed_on": {"10": ["Xeon"], "50": ["EPYC"], "100": ["EPYC", "Xeon"]}, "mixed_origin": {}}
    assert helpers.elsewhere(info, ["EPYC"]) == ("; the epoch-10 analyses ran on Xeon"
                                                 "; the epoch-100 analyses ran on EPYC and Xeon (some steps on each; every results JSON file names its processor)")
    assert helpers.elsewhere(info, ["EPYC", "Xeon"]) == ""               # trained on both: nothing to add
    comma = {"analysed_on": {"10": ["Vendor CPU, rev 2"]}, "mixed_origin": {}}      # a name with a comma
    assert helpers.elsewhere(comma, ["Vendor CPU, rev 2"]) == "", "a processor's name was split at its comma"
    # a mixed run's epoch is already named with its training ('the epoch-10 results were computed on …')
    assert helpers.elsewhere({**info, "mixed_origin": {"10": "Xeon, git commit abc, 2026-12-01"}}, ["EPYC"]) == \
        "; the epoch-100 analyses ran on EPYC and Xeon (some steps on each; every results JSON file names its processor)"


def test_the_gpu_is_where_a_gpu_run_was_trained(helpers, monkeypatch):
    info = {"gpu": "NVIDIA H100", "cpus": ["AMD EPYC"], "analysed_on": {"10": ["NVIDIA H100"]}, "mixed_origin": {},
            "epochs_done": 10, "train_seconds": 60.0, "precision": "bf16", "cpu_threads": 2}
    monkeypatch.setattr(helpers, "SUMMARY", {"provenance": {"mnist/resnet50": info}})
    monkeypatch.setattr(helpers, "PROFILE_SPEC", None)
    line = helpers.where_computed()
    assert "on NVIDIA H100 (bf16 training" in line and "analyses ran on" not in line, line
    info["analysed_on"] = {"10": ["AMD EPYC"]}
    assert "; the epoch-10 analyses ran on AMD EPYC" in helpers.where_computed()
