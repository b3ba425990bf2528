"""Every committed ``results/<profile>/summary.json`` is what today's ``summary.build`` makes of the committed
results files beside it. The book renders summary.json, not the results files, so a stale one shows readers a
claims table that the code no longer produces (it happened once: a run of many hours rebuilt it with the
``fnlib.summary`` it had imported at its start). Fix a failure with ``python -m fnlib summary --profile <p>``."""
import json
import shutil

import pytest

from fnlib import results, summary

COMMITTED = results.PROJECT_ROOT / "results"
PROFILES = sorted(p.name for p in COMMITTED.iterdir() if (p / "summary.json").exists()) if COMMITTED.exists() else []


@pytest.mark.parametrize("profile", PROFILES)
def test_committed_summary_is_current(tmp_path, profile):
    root = tmp_path / profile
    shutil.copytree(COMMITTED / profile, root, ignore=shutil.ignore_patterns("summary.json"))
    summary.build(profile, root=root)
    ours = json.loads((root / "summary.json").read_text())          # as build wrote it
    ref = json.loads((COMMITTED / profile / "summary.json").read_text())
    stale = [r["id"] for r in ref["rows"] if r not in ours["rows"]] + [r["id"] for r in ours["rows"]
                                                                        if r["id"] not in {x["id"] for x in ref["rows"]}]
    assert not stale, (f"results/{profile}/summary.json is stale in rows {stale}; rebuild it: "
                       f"python -m fnlib summary --profile {profile}")
    keys = sorted(k for k in ours.keys() | ref.keys() if ours.get(k) != ref.get(k))
    assert not keys, (f"results/{profile}/summary.json is stale in {keys}; rebuild it: "
                      f"python -m fnlib summary --profile {profile}")


def test_there_is_something_to_check():
    assert {"smoke", "quick", "paper"} <= set(PROFILES)
