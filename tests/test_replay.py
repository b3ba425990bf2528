"""fnlib replay: a finished run's checkpoints come back by training again, checked against the recorded digests."""
import json
import shutil

from fnlib import pipeline, planner, replay

TINY = {"train_limit": 64, "test_limit": 32, "batch_size": 32}


def test_a_replay_gives_the_recorded_weights_back_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("FNLIB_WORKDIR", str(tmp_path))
    from fnlib import steps
    steps.train(profile="smoke", dataset="mnist", arch="resnet18", overrides=TINY, progress=False)
    tasks = [t for t in planner.plan("smoke", TINY) if t.dataset == "mnist" and t.step == "train"]
    ledger = {t.name: {"key": t.key, "weights": pipeline.weights_digest(t.checkpoint())} for t in tasks}
    run_dir = tasks[0].outputs()[0].parent
    (run_dir / "steps.json").write_text(json.dumps(ledger))
    train_json = json.loads((run_dir / "train.json").read_text())
    assert train_json["weights"] == {str(t.epoch): ledger[t.name]["weights"] for t in tasks}   # every epoch's digest
    assert train_json["peak_rss_gib"] > 0
    shutil.rmtree(tmp_path / "checkpoints")                      # a new machine
    before = {p: p.read_bytes() for p in run_dir.iterdir() if p.name != "steps.json"}
    out = replay.replay("smoke", "mnist", "resnet18", overrides=TINY, log=lambda *_: None)
    assert {e: o["match"] for e, o in out.items()} == {1: True, 2: True}
    assert all(p.read_bytes() == b for p, b in before.items())       # no results file touched
    assert json.loads((run_dir / "steps.json").read_text())["01_train_e1"]["replayed"]["match"] is True
    # a recorded digest that the replay does not give back is reported, never hidden
    ledger["01_train_e2"]["weights"] = "0" * 20
    (run_dir / "steps.json").write_text(json.dumps(ledger))
    shutil.rmtree(tmp_path / "checkpoints")
    lines = []
    out = replay.replay("smoke", "mnist", "resnet18", overrides=TINY, log=lines.append)
    assert out[1]["match"] and not out[2]["match"] and any("DIFFERENT" in line for line in lines)
