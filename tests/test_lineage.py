"""fnlib.lineage: a run folder whose results come from two trainings is named as such, on a fresh clone too."""
import json

from fnlib import lineage, summary


def _run(tmp_path, ledger: dict, epochs_done=None, landed=(10, 50)):
    run = tmp_path / "paper" / "cifar10" / "resnet50"
    for e in landed:
        (run / f"e{e}").mkdir(parents=True)
        (run / f"e{e}" / "attack.csv").write_text("epsilon,accuracy\n0,50\n")
    (run / "steps.json").write_text(json.dumps(ledger))
    if epochs_done is not None:
        (run / "train.json").write_text(json.dumps({"epochs_done": epochs_done, "seconds": 1.0}))
    return run


def _entry(weights=None):
    return {"key": "k", "seconds": 1.0, **({"weights": weights} if weights else {})}


ONE = {"01_train_e10": _entry("A10"), "02_rank_kernels_e10": _entry("A10"), "03_attack_e10": _entry("A10"),
       "01_train_e50": _entry("A50"), "02_rank_kernels_e50": _entry("A50"), "03_attack_e50": _entry("A50"),
       "08_csg_e10": _entry()}


def test_one_training_is_consistent(tmp_path):
    assert lineage.problems(_run(tmp_path, ONE, epochs_done=50)) == []
    # results from before digests were recorded (no "weights" anywhere) are taken as consistent
    old = {k: _entry() for k in ONE}
    assert lineage.problems(_run(tmp_path / "old", old, epochs_done=50)) == []
    # training stages from before they recorded what they made: the analyses still agree with each other
    no_train = {k: v for k, v in ONE.items() if not k.startswith("01_train")}
    assert lineage.problems(_run(tmp_path / "nt", no_train, epochs_done=50)) == []


def test_results_of_an_earlier_training_are_named(tmp_path):
    # a new machine: training started again and has reached 10; epoch 50's results are the old training's
    ledger = dict(ONE, **{"01_train_e10": _entry("B10"), "02_rank_kernels_e10": _entry("B10"),
                          "03_attack_e10": _entry("B10")})
    found = lineage.problems(_run(tmp_path, ledger, epochs_done=10))
    assert found == ["the epoch-50 results come from an earlier training: the one behind train.csv has reached "
                     "epoch 10 so far"]


def test_analyses_of_one_epoch_that_read_different_weights_are_named(tmp_path):
    # epoch 10 retrained (B), rank redone, attack not yet
    ledger = dict(ONE, **{"01_train_e10": _entry("B10"), "02_rank_kernels_e10": _entry("B10")})
    found = lineage.problems(_run(tmp_path, ledger, epochs_done=50))
    assert found == ["the epoch-10 analyses read 2 different sets of weights: 02_rank_kernels; 03_attack"]
    # none redone yet: they agree with each other but not with what training made
    ledger = dict(ONE, **{"01_train_e10": _entry("B10")})
    found = lineage.problems(_run(tmp_path / "b", ledger, epochs_done=50))
    assert found == ["the epoch-10 analyses read other weights than its training stage last made"]


def test_summary_provenance_carries_the_mix(tmp_path):
    _run(tmp_path, dict(ONE, **{"01_train_e10": _entry("B10")}), epochs_done=50)
    prov = summary._provenance(tmp_path / "paper")
    assert prov["cifar10/resnet50"]["mixed"] == ["the epoch-10 analyses read other weights than its training "
                                                 "stage last made"]


def test_a_stage_rerun_on_later_checkpoints_is_no_mix(tmp_path):
    # the stage to 10 re-ran (its key changed) on the same machine after training had reached 50: train.json
    # holds 10 epochs, but its sessions say the training went on to 50
    run = _run(tmp_path, ONE, epochs_done=50)
    (run / "train.json").write_text(json.dumps({"epochs_done": 10, "sessions": [{"first_epoch": 1, "last_epoch": 34},
                                                                                {"first_epoch": 35, "last_epoch": 50}]}))
    assert lineage.problems(run) == []
    assert lineage.reached({"epochs_done": 10, "sessions": [{"first_epoch": 1}]}) == 10
    assert lineage.reached({}) is None
