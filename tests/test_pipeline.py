"""The papermill pipeline's plan, cache keys and skip logic, and summary.json's verdict rules."""
import json
import os
from pathlib import Path
import shutil

import pytest

from fnlib import pipeline, planner, results, summary
from fnlib.claims import rules
from fnlib.results import PROJECT_ROOT


def test_plan_orders_dependencies_and_covers_every_step():
    tasks = pipeline.plan("smoke")
    # per data set: 2 epochs × (train stage, rank, split, rank_val, attack, alg1, controls), filter, clamp, robustness,
    # csg, layers, seeds
    assert len(tasks) == 2 * (2 * 7 + 2 + 4)
    seen = set()
    for t in tasks:
        for d in t.deps:
            assert (d.dataset, d.arch, d.name) in seen, f"{t.name} runs before its dependency {d.name}"
        seen.add((t.dataset, t.arch, t.name))
    assert len({t.key for t in tasks}) == len(tasks)
    # breadth first: every data set's first checkpoint is analysed before any run trains on
    names = [(t.dataset, t.name) for t in tasks]
    assert names.index(("cifar10", "05_algorithm1_e1")) < names.index(("mnist", "01_train_e2"))
    paper = pipeline.plan("paper")
    assert [(t.dataset, t.arch, t.name) for t in paper[:3]] == [("cifar10", "resnet50", "08_csg_e10"),   # data only
                                                                 ("cifar10", "resnet50", "01_train_e10"),
                                                                 ("cifar10", "resnet50", "02_rank_kernels_e10")]


def keys(profile="smoke", **overrides):
    return {(t.dataset, t.name): t.key for t in pipeline.plan(profile, overrides)}


def changed(before, after):
    return sorted({name.split("_e")[0] for (_, name), k in after.items() if before[(_, name)] != k})


def test_each_key_covers_only_what_its_step_reads(monkeypatch):
    base = keys()
    # step 7 reads the filter (its key includes step 4's) and step 9 recomputes the headline numbers
    assert changed(base, keys(filter_mode="clamp")) == ["04_filter", "07_robustness", "09_seeds"]
    assert changed(base, keys(layer="bn1")) == ["04_filter", "05_algorithm1", "06_controls", "07_robustness", "09_seeds",
                                                "12_rank_val", "13_clamp"]
    assert changed(base, keys(drop="activation")) == ["02_rank_kernels", "04_filter", "05_algorithm1", "06_controls",
                                                      "07_robustness", "09_seeds", "11_split", "12_rank_val", "13_clamp"]
    assert changed(base, keys(spaces=("pixel",))) == ["03_attack", "04_filter", "05_algorithm1", "06_controls",
                                                      "07_robustness", "09_seeds", "12_rank_val", "13_clamp"]
    assert changed(base, keys(n_sets=5)) == ["06_controls"]
    assert changed(base, keys(pgd_steps=25)) == changed(base, keys(robust_limit=100)) == ["07_robustness"]
    assert changed(base, keys(csg_m=50)) == ["08_csg"]
    assert changed(base, keys(seeds=(0, 3))) == ["09_seeds"]
    assert changed(base, keys(layer_limit=10)) == ["10_layers"]
    assert changed(base, keys(split_resamples=10)) == ["11_split"]
    assert changed(base, keys(rank_val=100)) == ["12_rank_val"]
    assert changed(base, keys(n_sigma=5)) == ["04_filter", "07_robustness", "09_seeds", "13_clamp"]
    every = ["01_train", "02_rank_kernels", "03_attack", "04_filter", "05_algorithm1", "06_controls", "07_robustness",
             "09_seeds", "10_layers", "11_split", "12_rank_val", "13_clamp"]                    # all but CSG, which reads the data only
    assert changed(base, keys(lr=0.03)) == every                    # new weights: everything downstream
    assert changed(base, keys(device="cpu")) == []                  # where it runs is not what it computes
    # code: an edit to the attacks leaves training (and the ranking) alone; one to training changes all
    real = pipeline.code_hash
    monkeypatch.setattr(planner, "code_hash", lambda step: "edited" if step == "attack" else real(step))
    assert changed(base, keys()) == ["03_attack"]
    monkeypatch.setattr(planner.steps.Step, "train_identity", lambda self: {"code": "edited"})
    assert changed(base, keys()) == every
    quick = keys("quick")
    assert not set(quick.values()) & set(base.values())


def test_is_current_needs_matching_key_and_outputs(tmp_path, monkeypatch):
    monkeypatch.setenv("FNLIB_WORKDIR", str(tmp_path))
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
    assert rules.number_verdict(75.0, 76.5, margin=2) == summary.REPRODUCED          # no interval: point rule
    assert rules.number_verdict(75.0, 80.0, margin=2) == summary.NOT
    assert rules.number_verdict(75.0, 75.5, 73.5, 77.5, margin=2) == summary.INCONCLUSIVE
    assert rules.number_verdict(75.0, None) == summary.PENDING


def test_summary_of_committed_smoke_results(tmp_path):
    src = PROJECT_ROOT / "results" / "smoke"
    if not (src / "summary.json").exists():
        pytest.fail("results/smoke is committed with the repository; run `make regen-smoke`")
    shutil.copytree(src, tmp_path / "smoke")
    out = summary.build("smoke", root=tmp_path / "smoke")
    ids = [r["id"] for r in out["rows"]]
    paper = summary.paper_values()
    beyond = {"csg_order", "beyond_filtered_pgd", "beyond_filtered_fgsm_transfer", "beyond_filtered_val_fgsm",
              "beyond_filtered_bn_fgsm"}                                   # rows of our own tests, not the paper's
    assert set(ids) == {k for k in paper if not k.startswith("_") and k != "claims"} | set(paper["claims"]) | beyond
    clean = next(r for r in out["rows"] if r["id"] == "mnist_clean_e100")
    attack = (tmp_path / "smoke/mnist/resnet18/e2/attack.csv").read_text().splitlines()
    assert any(line.startswith(f"pixel,0,{clean['ours']:g}") for line in attack)
    assert out["reference_arch"] == "resnet18" and out["reference_epochs"]["100"] == 2


def test_unknown_steps_and_settings_are_rejected():
    from fnlib import profiles
    with pytest.raises(ValueError, match="train, rank, split, rank_val, clamp, attack, filter, algorithm1, controls"):
        pipeline.run("smoke", step=["attak"], dry_run=True, log=lambda *_: None)
    with pytest.raises(ValueError, match="not a setting"):
        profiles.parse_settings(["colour=red"])
    with pytest.raises(ValueError, match="not a int"):
        profiles.parse_settings(["test_limit=many"])
    assert profiles.parse_settings(["epochs=1,2", "lr=0.5", "spaces=pixel"]) == \
        {"epochs": (1, 2), "lr": 0.5, "spaces": ("pixel",)}


def test_summary_of_a_profile_without_results_fails_and_writes_nothing(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m fnlib run --profile paper"):
        summary.build("paper", root=tmp_path / "paper")
    assert not (tmp_path / "paper").exists()


def test_the_pipeline_rebuilds_summary_json_with_the_code_on_disk(tmp_path, monkeypatch):
    """_summarize runs ``python -m fnlib summary`` in a fresh interpreter (a run of many hours must not keep the
    fnlib.summary it imported at its start); nothing landed yet, or a build that fails, is logged, not raised."""
    monkeypatch.setenv("FNLIB_WORKDIR", str(tmp_path))
    logs = []
    pipeline._summarize("smoke", logs.append)
    assert len(logs) == 1 and logs[0].startswith("(no summary yet: no results of profile smoke")
    shutil.copytree(PROJECT_ROOT / "results" / "smoke", tmp_path / "results" / "smoke",
                    ignore=shutil.ignore_patterns("summary.json"))
    def stale(*a, **k):
        raise AssertionError("the summary code imported into this process was used")
    monkeypatch.setattr(summary, "build", stale)      # what a long run holds after fnlib/summary.py has changed
    pipeline._summarize("smoke", logs.append)
    assert len(logs) == 1 and (tmp_path / "results" / "smoke" / "summary.json").exists()     # built, nothing logged
    (tmp_path / "results" / "smoke" / "mnist" / "resnet18" / "e2" / "attack.csv").write_text("x,y\n1,2\n")
    pipeline._summarize("smoke", logs.append)
    assert "summary.json of smoke was NOT rebuilt" in logs[-1] and "KeyError" in logs[-1], logs[-1]


def test_a_failed_notebook_never_replaces_the_committed_one(tmp_path, monkeypatch):
    import papermill
    monkeypatch.setenv("FNLIB_WORKDIR", str(tmp_path))
    t = next(t for t in pipeline.plan("smoke") if t.step == "attack")
    t.output.parent.mkdir(parents=True)
    t.output.write_text("committed")

    def fail(src, out, **kw):
        Path(out).write_text("half-written, with an error")
        raise RuntimeError("kernel died")
    monkeypatch.setattr(papermill, "execute_notebook", fail)
    with pytest.raises(RuntimeError, match="kernel died"):
        pipeline.execute(t, stream=False)
    assert t.output.read_text() == "committed" and not pipeline.ledger_path(t).exists()
    # run(): without the checkpoints, analyses alone are refused before any work, naming the fix
    logs = []
    with pytest.raises(RuntimeError, match="cannot run in this selection"):
        pipeline.run("smoke", only="mnist/resnet18", step=["attack", "algorithm1"], log=logs.append, stream=False)
    assert any("03_attack_e1 refused" in line and "add --step train" in line for line in logs)
    # with them: the failure is reported, later tasks of the same weights are skipped, the command fails
    for e in (1, 2):
        _fake_checkpoint(t.checkpoint().with_name(f"e{e}.pt"), e)
    logs = []
    with pytest.raises(RuntimeError, match="failed or were skipped"):
        pipeline.run("smoke", only="mnist/resnet18", step=["attack", "algorithm1"], log=logs.append, stream=False)
    assert any("✗" in line and "03_attack_e1 failed" in line for line in logs)


def test_workdir_keeps_every_output_out_of_the_project(tmp_path, monkeypatch):
    monkeypatch.setenv("FNLIB_WORKDIR", str(tmp_path))
    for t in pipeline.plan("smoke"):
        for path in [t.output, t.checkpoint(), pipeline.ledger_path(t), *t.outputs()]:
            assert tmp_path in path.parents, path


def test_a_second_run_of_a_profile_stops_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setenv("FNLIB_WORKDIR", str(tmp_path))
    ran = []
    monkeypatch.setattr(pipeline, "execute", lambda t, stream=True: ran.append(t) or 0.0)
    with pipeline.exclusive("smoke"):            # the first run holds the profile
        with pytest.raises(RuntimeError, match=rf"process {os.getpid()}\b.*kill"):
            pipeline.run("smoke", step=["csg"], log=lambda *_: None)
    assert ran == []
    assert (tmp_path / ".stage" / "smoke.lock").exists()
    pipeline.run("smoke", step=["csg"], log=lambda *_: None)   # released: the next run goes ahead
    assert ran and all(t.step == "csg" for t in ran)


def test_a_long_step_says_it_lives_and_how_long_it_has_left(tmp_path, monkeypatch):
    monkeypatch.setenv("FNLIB_WORKDIR", str(tmp_path))
    tasks = pipeline.plan("smoke")
    t = next(t for t in tasks if t.step == "attack" and t.dataset == "mnist")
    assert pipeline.past_seconds(t) is None                     # never ran: nothing to estimate from
    other = next(u for u in tasks if u.step == "attack" and u.dataset == "cifar10")
    pipeline.ledger_path(other).parent.mkdir(parents=True, exist_ok=True)
    pipeline.ledger_path(other).write_text(json.dumps({other.name: {"key": "k", "seconds": 600.0},
                                                       "01_train_e1": {"key": "k", "seconds": 5.0}}))
    assert pipeline.past_seconds(t) == 600.0                    # the same step of the other data set
    pipeline.ledger_path(t).parent.mkdir(parents=True, exist_ok=True)
    pipeline.ledger_path(t).write_text(json.dumps({"03_attack_e9": {"key": "k", "seconds": 120.0}}))
    assert pipeline.past_seconds(t) == 120.0                    # its own data set first
    assert pipeline.past_seconds(next(u for u in tasks if u.step == "train")) is None
    # a seed replicate that has not run the step yet estimates from its main profile's runs of the same arch
    rep = next(u for u in pipeline.plan("paper-seed1") if u.step == "attack" and u.arch == "resnet50")
    assert pipeline.past_seconds(rep) is None
    main = next(u for u in pipeline.plan("paper") if u.step == "attack" and u.arch == "resnet50"
                and u.dataset == rep.dataset)
    pipeline.ledger_path(main).parent.mkdir(parents=True, exist_ok=True)
    pipeline.ledger_path(main).write_text(json.dumps({"03_attack_e10": {"key": "k", "seconds": 807.0}}))
    assert pipeline.past_seconds(rep) == 807.0
    logs = []
    with pipeline.heartbeat("[1/1] mnist 03_attack_e1", 120.0, logs.append, every=0.05):
        import time
        time.sleep(0.3)
    n = len(logs)
    time.sleep(0.2)
    assert n >= 2 and len(logs) == n                             # it beats while the step runs, then stops
    assert all("03_attack_e1 running for 0 min, about 2 min left (recorded runs: 2 min)" in m for m in logs)


def test_time_left_comes_from_what_already_ran(tmp_path, monkeypatch):
    monkeypatch.setenv("FNLIB_WORKDIR", str(tmp_path))
    tasks = pipeline.plan("smoke")                            # checkpoints at epochs 1 and 2
    train = {(t.dataset, t.epoch): t for t in tasks if t.step == "train"}
    assert pipeline.estimate(train[("mnist", 2)]) is None     # nothing trained yet
    assert pipeline.eta_line(tasks).startswith("no estimate of the time left")
    results.write_csv([{"epoch": 1, "seconds": 30.0}, {"epoch": 2, "seconds": 10.0}, {"epoch": 3, "seconds": 12.0}],
                      results.run_dir("smoke", "cifar10", "resnet18") / "train.csv")
    # mnist has no checkpoint: epochs to train × cifar10's median epoch (12 s)
    assert pipeline.estimate(train[("mnist", 1)]) == 12.0
    assert pipeline.estimate(train[("mnist", 2)]) == 24.0                  # from scratch
    assert pipeline.estimate(train[("mnist", 2)], queued=(1,)) == 12.0     # after the stage to epoch 1
    _fake_checkpoint(train[("cifar10", 2)].checkpoint(), 1.0)
    assert pipeline.estimate(train[("cifar10", 2)]) == 0.0                 # its checkpoint exists
    assert pipeline.estimate(train[("cifar10", 2)], from_scratch=True) == 24.0   # --force deletes it
    results.write_csv([{"epoch": 1, "seconds": 100.0}], results.run_dir("smoke", "mnist", "resnet18") / "train.csv")
    assert pipeline.estimate(train[("mnist", 2)], queued=(1,)) == 100.0    # its own history first
    secs, unknown = pipeline.time_left([train[("mnist", 1)], train[("mnist", 2)]])
    assert secs == 200.0 and unknown == []                                 # the second stage starts at epoch 1
    attack = [t for t in tasks if t.step == "attack"]
    pipeline.ledger_path(attack[0]).write_text(json.dumps({"03_attack_e1": {"key": "k", "seconds": 60.0},
                                                           "03_attack_e2": {"key": "k", "seconds": 80.0}}))
    assert pipeline.estimate(attack[0]) == 70.0                            # the median of the recorded runs
    line = pipeline.eta_line(attack)
    assert line.startswith(f"about {round(70 * len(attack) / 60)} min left for {len(attack)} of {len(attack)} tasks")
    (results.run_dir("smoke", "mnist", "resnet18") / "train.csv").write_text("epoch,seconds\n1,\n")
    assert pipeline.estimate(train[("mnist", 2)]) is None                  # a damaged record: no estimate, no error


def _fake_checkpoint(path, value):
    import torch
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": {"conv1.weight": torch.full((2, 3), float(value))}, "meta": {"epoch": 1}}, path)


def _fake_execute(monkeypatch, machine, ran, keep_existing=False):
    """Stand-in for pipeline.execute: every task lands placeholder outputs and its name goes to ``ran``; a training
    stage saves checkpoints e1..e<epoch> (smoke: epochs 1, 2) with weights ``machine["weights"] + e``, keeping
    any already on disk with ``keep_existing``."""
    def fake_execute(t, stream=True):
        ran.append(t.name)
        if t.step == "train":            # training from scratch saves every checkpoint epoch it passes
            for e in (1, 2):
                path = t.checkpoint().with_name(f"e{e}.pt")
                if e <= t.epoch and not (keep_existing and path.exists()):
                    _fake_checkpoint(path, machine["weights"] + e)
        _land(t)
        return 0.0
    monkeypatch.setattr(pipeline, "execute", fake_execute)
    monkeypatch.setattr(pipeline, "_summarize", lambda *a: None)


def _land(t):
    """Write ``t``'s outputs and record it in the ledger as execute() does."""
    for f in [t.output, *t.outputs()]:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("{}" if f.suffix == ".json" else "x")
    pipeline.record(t, 1.0)


def test_analyses_of_a_remade_checkpoint_are_stale(tmp_path, monkeypatch):
    monkeypatch.setenv("FNLIB_WORKDIR", str(tmp_path))
    tasks = [t for t in pipeline.plan("smoke") if t.dataset == "mnist" and t.epoch == 1]
    train, attack = (next(t for t in tasks if t.step == s) for s in ("train", "attack"))
    _fake_checkpoint(train.checkpoint(), 1.0)
    for t in tasks:
        _land(t)
    assert pipeline.is_current(attack) and pipeline._ledger(attack)["03_attack_e1"]["weights"]
    _fake_checkpoint(train.checkpoint(), 1.0)                    # the same weights saved again: still current
    pipeline._digest_file.cache_clear()
    assert pipeline.is_current(attack)
    _fake_checkpoint(train.checkpoint(), 2.0)                    # retrained elsewhere: other weights
    assert not pipeline.is_current(attack) and pipeline.is_current(train)
    train.checkpoint().write_bytes(b"truncated")                 # unreadable: stale, the step's load names the fix
    assert not pipeline.is_current(attack)
    train.checkpoint().unlink()                                  # a fresh clone: no checkpoint, results kept
    assert pipeline.is_current(attack)
    # run(): training remakes the checkpoint with other weights; the committed analyses are queued again
    ran = []

    def fake_execute(t, stream=True):
        ran.append(t.name)
        if t.step == "train":            # training from scratch saves every checkpoint epoch it passes
            for e in (1, 2):
                if e <= t.epoch:
                    _fake_checkpoint(t.checkpoint().with_name(f"e{e}.pt"), 3.0)
        _land(t)
        return 0.0
    monkeypatch.setattr(pipeline, "execute", fake_execute)
    monkeypatch.setattr(pipeline, "_summarize", lambda *a: None)      # the outputs here are placeholders
    logs = []
    pipeline.run("smoke", only="mnist/resnet18", step=["train", "attack", "rank"], log=logs.append)
    # epoch 1's results are committed and trusted without a checkpoint, but the stage to epoch 2 must train
    # and would remake e1.pt on its way: the stage to epoch 1 runs first, then epoch 1's analyses (other
    # weights now), then the stage to epoch 2 and its analyses — one run's results never mix two trainings
    assert ran == ["01_train_e1", "02_rank_kernels_e1", "03_attack_e1", "01_train_e2", "02_rank_kernels_e2",
                   "03_attack_e2"]
    assert any("checkpoint e1 is not on this machine" in line for line in logs)
    assert any("queued again" in line for line in logs)
    ran.clear()
    pipeline.run("smoke", only="mnist/resnet18", step=["train", "attack", "rank"], log=logs.append)
    assert ran == []                                             # now everything read the weights on disk


def test_a_lost_checkpoint_remakes_every_stage_in_order(tmp_path, monkeypatch):
    """A new machine: every result has landed, no checkpoint is here. Whatever stale analysis needs weights,
    training runs again stage by stage from epoch 1, and each epoch's analyses are redone right after its
    checkpoint, so that one run's results never come from two trainings (fnlib.lineage finds none)."""
    from fnlib import lineage
    monkeypatch.setenv("FNLIB_WORKDIR", str(tmp_path))
    sel = dict(only="mnist/resnet18", step=["train", "attack", "rank"])
    tasks = pipeline.select(pipeline.plan("smoke"), sel["only"], sel["step"], None)
    machine = {"weights": 1.0}
    ran, logs = [], []
    _fake_execute(monkeypatch, machine, ran, keep_existing=True)
    pipeline.run("smoke", log=logs.append, **sel)
    run_dir = results.run_dir("smoke", "mnist", "resnet18")
    order = ["01_train_e1", "02_rank_kernels_e1", "03_attack_e1", "01_train_e2", "02_rank_kernels_e2", "03_attack_e2"]
    assert ran == order and lineage.problems(run_dir) == []

    def new_machine(stale_task: str):
        shutil.rmtree(tmp_path / "checkpoints", ignore_errors=True)
        machine["weights"] += 10                                   # another CPU: a sibling network
        ledger = json.loads((run_dir / "steps.json").read_text())
        if stale_task:
            ledger[stale_task].update(key="edited", inputs="edited")   # e.g. its code changed
        (run_dir / "steps.json").write_text(json.dumps(ledger))
        ran.clear(), logs.clear()
        pipeline.run("smoke", log=logs.append, **sel)

    new_machine("")
    assert ran == []                                               # all landed, nothing stale: nothing trains
    new_machine("03_attack_e2")                # the last stage must train: the first is remade before it
    assert ran == order and lineage.problems(run_dir) == []
    assert any("checkpoint e1 is not on this machine" in line for line in logs)
    new_machine("03_attack_e1")                # the first stage must train: the later ones are remade too
    assert ran == order and lineage.problems(run_dir) == []
    # results from before digests were recorded: redone when their checkpoint is remade, even with the same weights
    ledger = json.loads((run_dir / "steps.json").read_text())
    del ledger["02_rank_kernels_e1"]["weights"]
    (run_dir / "steps.json").write_text(json.dumps(ledger))
    machine["weights"] -= 10                                       # the same machine as before: same weights
    new_machine("03_attack_e2")
    assert ran == ["01_train_e1", "02_rank_kernels_e1", "01_train_e2", "03_attack_e2"]
    # an analysis outside --step is not redone, but the log says so
    shutil.rmtree(tmp_path / "checkpoints", ignore_errors=True)
    machine["weights"] += 10
    ran.clear(), logs.clear()
    pipeline.run("smoke", only="mnist/resnet18", step=["train", "rank"], force=False, log=logs.append)
    assert ran == []                                               # nothing stale in the selection
    ledger = json.loads((run_dir / "steps.json").read_text())
    ledger["02_rank_kernels_e2"].update(key="edited", inputs="edited")
    (run_dir / "steps.json").write_text(json.dumps(ledger))
    pipeline.run("smoke", only="mnist/resnet18", step=["train", "rank"], log=logs.append)
    assert ran == ["01_train_e1", "02_rank_kernels_e1", "01_train_e2", "02_rank_kernels_e2"]
    assert any("outside this selection (03_attack_e1)" in line for line in logs)
    assert lineage.problems(run_dir) == ["the epoch-1 analyses read 2 different sets of weights: 02_rank_kernels; "
                                         "03_attack", "the epoch-2 analyses read 2 different sets of weights: "
                                         "02_rank_kernels; 03_attack"]


def test_a_retraining_that_gives_the_weights_back_keeps_their_analyses(tmp_path, monkeypatch):
    """An edit of the training code that changes no number gives the training a new identity, so it trains
    again, but the same weights bit for bit: the analyses that read them, with nothing else they read changed,
    are kept (re-keyed, not re-run). Other weights, an analysis whose own inputs changed, or one whose upstream
    step runs again, are re-run."""
    from fnlib import train as train_mod
    monkeypatch.setenv("FNLIB_WORKDIR", str(tmp_path))
    sel = dict(only="mnist/resnet18", step=["train", "rank", "attack", "algorithm1"])
    machine = {"weights": 1.0, "code": "original"}
    monkeypatch.setattr(train_mod, "code_digest", lambda: machine["code"])

    ran, logs = [], []
    _fake_execute(monkeypatch, machine, ran)

    def run(**kw):
        ran.clear(), logs.clear()
        pipeline.run("smoke", log=logs.append, **{**sel, **kw})
    analyses = ["02_rank_kernels_e1", "03_attack_e1", "05_algorithm1_e1",
                "02_rank_kernels_e2", "03_attack_e2", "05_algorithm1_e2"]
    run()
    assert ran == ["01_train_e1", *analyses[:3], "01_train_e2", *analyses[3:]]
    run_dir = results.run_dir("smoke", "mnist", "resnet18")
    ledger = lambda: json.loads((run_dir / "steps.json").read_text())   # noqa: E731
    # the training code changes, its numbers do not: trains again, keeps every analysis, re-keyed
    machine["code"] = "comment edited"
    run()
    assert ran == ["01_train_e1", "01_train_e2"], ran
    assert sum("analyses kept" in line for line in logs) == 2, logs
    keys = {t.name: t.key for t in pipeline.select(pipeline.plan("smoke"), sel["only"], sel["step"], None)}
    assert all(ledger()[a]["key"] == keys[a] for a in analyses)
    run()
    assert ran == []                                                 # current now, also on a fresh clone
    # trained elsewhere under a new identity: other weights, every analysis runs again
    machine.update(code="edited again", weights=11.0)
    run()
    assert ran == ["01_train_e1", *analyses[:3], "01_train_e2", *analyses[3:]]
    # the weights come back, but attack's own code changed and rank's results are gone: those two run again,
    # and Algorithm 1, which reads rank's results, with them
    machine["code"] = "and again"
    led = ledger()
    led["03_attack_e1"]["inputs"] = "its code changed"
    (run_dir / "steps.json").write_text(json.dumps(led))
    (run_dir / "e2" / "kernel_drop.csv").unlink()
    run()
    assert ran == ["01_train_e1", "03_attack_e1", "01_train_e2", "02_rank_kernels_e2", "05_algorithm1_e2"], ran
    # training alone first (as a run stopped after a training stage leaves it): the next run keeps the analyses
    # at once, and a dry run says it would; an analysis outside --step is not reported as reading other weights
    machine["code"] = "once more"
    run(step=["train"])
    assert ran == ["01_train_e1", "01_train_e2"] and not any("outside this selection" in line for line in logs), \
        "\n".join(logs)
    run(dry_run=True)
    assert ran == [] and any(line.startswith("would keep 6 analyses") for line in logs), logs
    run()
    assert ran == [] and any("6 analyses kept" in line for line in logs), logs
    results_before = {a: ledger()[a] for a in analyses}
    run()
    assert ran == [] and {a: ledger()[a] for a in analyses} == results_before
    # --force keeps nothing: every selected task runs again
    run(force=True)
    assert ran == ["01_train_e1", *analyses[:3], "01_train_e2", *analyses[3:]]
    # a new torch: the same weights, but the analyses are computed by other code, so they run again
    machine["code"] = "torch upgraded"
    monkeypatch.setattr(planner, "_torch_version", lambda: "99.0")
    run()
    assert ran == ["01_train_e1", *analyses[:3], "01_train_e2", *analyses[3:]]
    # an analysis whose upstream step is stale and outside the selection is not kept: after a new identity,
    # --step algorithm1 runs Algorithm 1 again rather than trust rank's results, stale by key
    machine["code"] = "selection"
    run(step=["train"])
    run(step=["algorithm1"])
    assert ran == ["05_algorithm1_e1", "05_algorithm1_e2"], ran


def test_a_variant_profile_rebuilds_the_main_summary(monkeypatch):
    """paper-sched10's results feed paper's summary.json (its seed and schedule tables): the pipeline rebuilds that."""
    import subprocess

    from fnlib import pipeline, summary
    calls, lines = [], []
    monkeypatch.setattr(summary, "has_results", lambda root: True)
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(cmd) or
                        subprocess.CompletedProcess(cmd, 0, "", ""))
    pipeline._summarize("paper-sched10", lines.append)
    assert calls and calls[0][-2:] == ["--profile", "paper"], calls
    assert "variant of paper" in lines[0]
    calls.clear()
    pipeline._summarize("smoke", lines.append)
    assert calls[0][-2:] == ["--profile", "smoke"]


def test_a_landed_notebook_keeps_each_progress_bar_in_its_final_state():
    import nbformat
    bar = "\rdrop (weights):   0%|          | 0/64\rdrop (weights):  50%|█████     | 32/64\r" \
          "drop (weights): 100%|██████████| 64/64 [01:02<00:00]\n"
    redraws = ["\r" + part for part in bar.split("\r")[1:]]        # one output per redraw, as a kernel sends them
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=[
        *(nbformat.v4.new_output("stream", name="stderr", text=part) for part in redraws),
        nbformat.v4.new_output("stream", name="stdout", text="fragile 21 of 64\n\nmean 63.5\n")])])
    assert pipeline.settle_streams(nb)
    assert len(nb.cells[0].outputs) == 2
    err, out = nb.cells[0].outputs
    assert err.text == "drop (weights): 100%|██████████| 64/64 [01:02<00:00]\n"
    assert out.text == "fragile 21 of 64\n\nmean 63.5\n"          # printed lines, blank ones too, are kept
    assert not pipeline.settle_streams(nb)                        # nothing left to settle
