"""The papermill pipeline's plan, cache keys and skip logic, and summary.json's verdict rules."""
import json
import shutil

import pytest

from fnlib import pipeline, summary
from fnlib.results import PROJECT_ROOT


def test_plan_orders_dependencies_and_covers_every_step():
    tasks = pipeline.plan("smoke")
    assert len(tasks) == 2 * (1 + 2 * 3 + 1)          # per dataset: train, 2 epochs × (rank, attack, alg1), filter
    seen = set()
    for t in tasks:
        for d in t.deps:
            assert (d.dataset, d.arch, d.name) in seen, f"{t.name} runs before its dependency {d.name}"
        seen.add((t.dataset, t.arch, t.name))
    assert len({t.key for t in tasks}) == len(tasks)


def test_keys_depend_on_parameters_code_and_upstream(monkeypatch):
    base = {(t.dataset, t.name): t.key for t in pipeline.plan("smoke")}
    monkeypatch.setattr(pipeline, "code_hash", lambda: "other code")
    changed = {(t.dataset, t.name): t.key for t in pipeline.plan("smoke")}
    assert all(base[k] != changed[k] for k in base)
    quick = {(t.dataset, t.name): t.key for t in pipeline.plan("quick")}
    assert not set(quick.values()) & set(base.values())


def test_is_current_needs_matching_key_and_outputs(tmp_path, monkeypatch):
    monkeypatch.setenv("FNLIB_WORKDIR", str(tmp_path))
    monkeypatch.setattr(pipeline, "RUNS", tmp_path / "runs")
    t = next(t for t in pipeline.plan("smoke") if t.step == "attack")
    assert not pipeline.is_current(t)
    for f in t.outputs():
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("x")
    t.output.parent.mkdir(parents=True, exist_ok=True)
    t.output.write_text("{}")
    pipeline.ledger_path(t).write_text(json.dumps({t.name: {"key": t.key}}))
    assert pipeline.is_current(t)
    pipeline.ledger_path(t).write_text(json.dumps({t.name: {"key": "stale"}}))
    assert not pipeline.is_current(t)


def test_unknown_profile_and_only_are_rejected():
    with pytest.raises(ValueError, match="smoke, quick, paper"):
        pipeline.plan("huge")
    with pytest.raises(ValueError, match="mnist/resnet18"):
        pipeline.run("smoke", only="svhn/resnet18", dry_run=True, log=lambda *_: None)


def test_number_verdicts():
    assert summary.number_verdict(75.0, 76.5) == summary.REPRODUCED
    assert summary.number_verdict(75.0, 80.0) == summary.PARTLY
    assert summary.number_verdict(75.0, 60.0) == summary.NOT
    assert summary._share([True, True]) == summary.REPRODUCED
    assert summary._share([True, False]) == summary.PARTLY
    assert summary._share([False, None]) == summary.NOT
    assert summary._share([None]) == summary.UNTESTABLE


def test_summary_of_committed_smoke_results(tmp_path):
    src = PROJECT_ROOT / "results" / "smoke"
    if not (src / "summary.json").exists():
        pytest.fail("results/smoke is committed with the repository; run `make regen-smoke`")
    shutil.copytree(src, tmp_path / "smoke")
    out = summary.build("smoke", root=tmp_path / "smoke")
    ids = [r["id"] for r in out["rows"]]
    paper = summary.paper_values()
    assert set(ids) == {k for k in paper if not k.startswith("_") and k != "claims"} | set(paper["claims"])
    clean = next(r for r in out["rows"] if r["id"] == "mnist_clean_e100")
    attack = (tmp_path / "smoke/mnist/resnet18/e2/attack.csv").read_text().splitlines()
    assert any(line.startswith(f"pixel,0,{clean['ours']:g}") for line in attack)
    assert out["reference_arch"] == "resnet18" and out["reference_epochs"]["100"] == 2


def test_stale_train_checkpoints_are_discarded_but_interrupted_ones_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("FNLIB_WORKDIR", str(tmp_path))
    from fnlib import results
    t = next(t for t in pipeline.plan("smoke") if t.step == "train")
    folder = results.checkpoint_dir(t.profile, t.dataset, t.arch)
    folder.mkdir(parents=True)
    (folder / "last.pt").write_text("x")
    assert not pipeline.discard_stale_checkpoints(t)          # no key recorded: an interrupted run resumes
    assert (folder / "last.pt").exists()
    pipeline.ledger_path(t).parent.mkdir(parents=True, exist_ok=True)
    pipeline.ledger_path(t).write_text(json.dumps({t.name: {"key": t.key}}))
    assert not pipeline.discard_stale_checkpoints(t)          # same key: nothing to discard
    pipeline.ledger_path(t).write_text(json.dumps({t.name: {"key": "made by other code"}}))
    assert pipeline.discard_stale_checkpoints(t)
    assert not folder.exists()
    rank = next(t for t in pipeline.plan("smoke") if t.step == "rank")
    assert not pipeline.discard_stale_checkpoints(rank)
