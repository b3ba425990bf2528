"""The planner decides every task's action and its reason from the files alone, and writes nothing."""
import json

import pytest

from fnlib import pipeline, planner


def tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _land(t, weights=None):
    for f in [t.output, *t.outputs()]:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("{}" if f.suffix == ".json" else "x")
    ledger = planner._ledger(t)
    ledger[t.name] = {"key": t.key, "inputs": t.inputs, **({"weights": weights} if weights else {})}
    planner.ledger_path(t).write_text(json.dumps(ledger))


def _checkpoint(path, value):
    import torch
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": {"w": torch.full((2,), float(value))}}, path)


def test_a_fresh_work_root_runs_everything_and_the_plan_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("FNLIB_WORKDIR", str(tmp_path))
    actions = planner.decide("smoke")
    assert {a.what for a in actions} == {"run"} and all(a.why == "never ran here" for a in actions)
    assert [a.task for a in actions] == planner.plan("smoke")
    assert tree(tmp_path) == []                                       # no file, no folder


def test_actions_follow_the_ledger_the_files_and_the_selection(tmp_path, monkeypatch):
    monkeypatch.setenv("FNLIB_WORKDIR", str(tmp_path))
    sel = dict(only="mnist/resnet18", step=["train", "rank", "attack"])
    tasks = planner.select(planner.plan("smoke"), sel["only"], sel["step"], None)
    train1 = tasks[0]
    for e in (1, 2):
        _checkpoint(train1.checkpoint().with_name(f"e{e}.pt"), e)
    for t in tasks:
        _land(t, planner.weights_digest(t.checkpoint()) if planner.analyses_weights(t) else None)
    before = tree(tmp_path)
    assert {a.what for a in planner.decide("smoke", **sel)} == {"keep"}
    # an edited step: only it runs, and it says why
    ledger = json.loads(planner.ledger_path(train1).read_text())
    ledger["03_attack_e2"].update(key="edited", inputs="edited")          # its code changed
    planner.ledger_path(train1).write_text(json.dumps(ledger))
    acts = {a.task.name: a for a in planner.decide("smoke", **sel)}
    assert [n for n, a in acts.items() if a.what != "keep"] == ["03_attack_e2"]
    assert "key changed" in acts["03_attack_e2"].why
    # a new machine: no checkpoint; the stale analysis needs e2, so both stages train again, and every analysis
    # of those weights is decided again after its stage (kept if the weights come back bit for bit)
    import shutil
    shutil.rmtree(tmp_path / "checkpoints")
    acts = {a.task.name: a for a in planner.decide("smoke", **sel)}
    assert acts["01_train_e1"].what == acts["01_train_e2"].what == "run"
    assert "not on this machine" in acts["01_train_e1"].why
    assert acts["02_rank_kernels_e1"].what == "keep" and acts["02_rank_kernels_e1"].recheck
    assert acts["03_attack_e2"].what == "run" and acts["03_attack_e2"].recheck
    # analyses alone cannot make their checkpoint: refused, with the fix
    acts = planner.decide("smoke", only="mnist/resnet18", step=["attack"])
    assert [a.what for a in acts] == ["keep", "refuse"] and "add --step train" in acts[1].why
    # --force runs everything
    assert {a.what for a in planner.decide("smoke", force=True, **sel)} == {"run"}
    assert tree(tmp_path) == [p for p in before if not p.startswith("checkpoints")]   # nothing written


def test_redecide_after_training(tmp_path, monkeypatch):
    monkeypatch.setenv("FNLIB_WORKDIR", str(tmp_path))
    tasks = planner.select(planner.plan("smoke"), "mnist/resnet18", ["train", "rank", "algorithm1"], None)
    train, rank, alg1 = tasks[:3]
    _checkpoint(train.checkpoint(), 1)
    for t in (train, rank, alg1):
        _land(t, planner.weights_digest(train.checkpoint()) if t is not train else None)
    assert planner.redecide(rank, made_now=True) == "keep"            # same weights came back
    assert planner.redecide(alg1, made_now=True, ran=[rank]) == "run"  # its upstream step ran again
    planner._digest_file.cache_clear()
    _checkpoint(train.checkpoint(), 2)
    assert planner.redecide(rank, made_now=True) == "run"             # other weights
    ledger = json.loads(planner.ledger_path(rank).read_text())
    del ledger[rank.name]["weights"]
    planner.ledger_path(rank).write_text(json.dumps(ledger))
    assert planner.redecide(rank, made_now=True) == "run"             # no digest recorded: nothing shows it
    assert planner.redecide(rank, made_now=False) == "keep"           # ... unless its checkpoint was not remade


def test_the_dry_run_prints_each_action_with_its_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("FNLIB_WORKDIR", str(tmp_path))
    logs = []
    pipeline.run("smoke", only="mnist/resnet18", step=["train"], dry_run=True, log=logs.append)
    assert "would run [1/2] mnist/resnet18 01_train_e1: never ran here" in logs
    assert logs[-1] == "plan: keep 0, adopt 0, run 2, refuse 0"
    assert tree(tmp_path) == []


def test_epoch_selects_a_checkpoints_analyses_and_the_training_up_to_it():
    """--epoch 1 on the smoke profile: every analysis at e1 and the first training stage; nothing at e2."""
    from fnlib import planner, profiles
    p = profiles.get("smoke")
    tasks = planner.select(planner.plan("smoke"), None, None, p, [1])
    assert tasks and {t.epoch for t in tasks} == {1}
    assert {t.step for t in tasks if t.step == "train"} == {"train"}
    every = planner.select(planner.plan("smoke"), None, None, p)
    assert {t.name for t in every if t.epoch == 1} == {t.name for t in tasks}
    with pytest.raises(ValueError, match="not a checkpoint epoch of profile smoke"):
        planner.select(planner.plan("smoke"), None, None, p, [3])
