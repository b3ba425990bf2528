"""The eq 2 row's reading with eq 4 read literally (step 13's clamp.csv; rule eq4_literal, issue 33)."""
import pandas as pd

from fnlib import profiles
from fnlib.claims import filtering
from fnlib.claims.sheet import Sheet


def _defence(path, only_filtered: int, only_original: int, n: int = 1000):
    rows = [{"model": m, "epsilon": 0.015, "accuracy": acc, "targeting_percent": 50.0, "n": n,
             "targeting_count": n // 2, "only_original": only_original, "only_filtered": only_filtered}
            for m, acc in (("original", 80.0), ("filtered", 80.0 + (only_filtered - only_original) / n * 100))]
    pd.DataFrame(rows).to_csv(path, index=False)


def _row(tmp_path, clamp: tuple[int, int] | None) -> dict:
    t = Sheet(profiles.get("smoke"), tmp_path)
    edir = t.edir("mnist", t.ep[10])
    edir.mkdir(parents=True)
    _defence(edir / "defence.csv", 60, 10)                   # the hard filter: significantly up
    if clamp is not None:
        _defence(edir / "clamp.csv", *clamp)
    filtering.eq2_row(t, edir, pd.read_csv(edir / "defence.csv"), "")
    return t.rows[-1]


def test_without_step_13_the_reading_is_pending(tmp_path):
    r = _row(tmp_path, None)["sensitivity"]["eq4_literal"]
    assert r["status"] == "pending" and r["flips"] is None


def test_a_clamp_filter_that_loses_accuracy_is_named_in_the_reason(tmp_path):
    row = _row(tmp_path, (10, 60))
    r = row["sensitivity"]["eq4_literal"]
    assert r["verdict"] == "not reproduced" and r["flips"] is True
    assert "where the hard filter's test (a) is reproduced" in r["text"]
    assert "with eq 4 read literally (clamp), test (a) judges MNIST ResNet-18 not reproduced (rule eq4_literal)" \
        in row["reason"]
    assert {"id": "eq4_literal", "version": 1} in row["rules"]


def test_a_clamp_filter_that_agrees_leaves_the_reason_alone(tmp_path):
    row = _row(tmp_path, (55, 12))
    assert row["sensitivity"]["eq4_literal"]["flips"] is False and "eq4_literal" not in row["reason"]


def test_equal_counts_are_no_flip_whatever_else_the_row_adjusts_over(tmp_path):
    """Found in review: the row's tests are Holm-adjusted over both runs; the clamp reading over the runs step 13 ran
    on. Identical hard and clamp counts on MNIST, with CIFAR-10's hard filter in the row too, must not read as a flip."""
    t = Sheet(profiles.get("smoke"), tmp_path)
    for d in ("mnist", "cifar10"):
        edir = t.edir(d, t.ep[10])
        edir.mkdir(parents=True)
        _defence(edir / "defence.csv", 28, 14)
    _defence(t.edir("mnist", t.ep[10]) / "clamp.csv", 28, 14)
    e = t.edir("mnist", t.ep[10])
    filtering.eq2_row(t, e, pd.read_csv(e / "defence.csv"), "")
    r = t.rows[-1]["sensitivity"]["eq4_literal"]
    assert r["flips"] is False and "where the hard filter" not in r["text"], r


# ---- step 13's wrapper: step 4 unchanged in a scratch work root ------------------------------------------------
import json  # noqa: E402
import os  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from fnlib import results, steps  # noqa: E402

RUN = dict(profile="smoke", dataset="mnist", arch="resnet18", epoch=1)


@pytest.fixture
def work(tmp_path, monkeypatch):
    """A work root holding a (fake) checkpoint, step 2's meta.json and step 4's defence files of RUN."""
    monkeypatch.setenv("FNLIB_WORKDIR", str(tmp_path))
    s = steps.Step(**RUN)
    ckpt = results.checkpoint(s.profile, s.dataset, s.arch, s.ckpt_dir().name, s.epoch)
    ckpt.parent.mkdir(parents=True)
    torch.save({"marker": 13}, ckpt)
    s.edir.mkdir(parents=True)
    (s.edir / "meta.json").write_text(json.dumps({"fragile": [0], "null": [1]}))
    (s.edir / "defence.csv").write_text("hard\n")
    (s.edir / "defence.json").write_text('{"mode": "hard"}')
    return s, ckpt


def fake_defence(seen: dict, fail: bool = False):
    """Step 4 as the wrapper sees it: records where it ran and what it was given, writes its two files there."""
    def run(progress=True, **kw):
        t = steps.Step(**kw)
        link = results.checkpoint(t.profile, t.dataset, t.arch, t.ckpt_dir().name, t.epoch)
        seen.update(root=os.environ["FNLIB_WORKDIR"], mode=kw["filter_mode"], ckpt=torch.load(link)["marker"],
                    meta=json.loads((t.edir / "meta.json").read_text()), link=link)
        (t.edir / "defence.csv").write_text("clamp rows\n")
        (t.edir / "defence.json").write_text('{"mode": "clamp"}')
        if fail:
            raise RuntimeError("planted")
        return "report", "rows"
    return run


def test_step_13_runs_step_4_in_clamp_mode_beside_the_real_results(work, monkeypatch, tmp_path):
    s, ckpt = work
    seen = {}
    monkeypatch.setattr(steps, "defence", fake_defence(seen))
    assert steps.clamp(progress=False, **RUN) == ("report", "rows")
    assert seen["mode"] == "clamp" and seen["ckpt"] == 13 and seen["meta"] == {"fragile": [0], "null": [1]}
    assert seen["root"] != str(tmp_path) and not os.path.exists(seen["root"])        # a scratch root, removed
    assert os.environ["FNLIB_WORKDIR"] == str(tmp_path)                               # restored
    assert (s.edir / "clamp.csv").read_text() == "clamp rows\n" and json.loads((s.edir / "clamp.json").read_text()) \
        == {"mode": "clamp"}
    assert (s.edir / "defence.csv").read_text() == "hard\n" and ckpt.exists()         # step 4's own files untouched


def test_step_13_restores_the_work_root_when_step_4_fails(work, monkeypatch, tmp_path):
    s, _ = work
    monkeypatch.setattr(steps, "defence", fake_defence({}, fail=True))
    with pytest.raises(RuntimeError, match="planted"):
        steps.clamp(progress=False, **RUN)
    assert os.environ["FNLIB_WORKDIR"] == str(tmp_path) and not (s.edir / "clamp.csv").exists()


def test_step_13_without_the_switch_names_the_fix(work):
    with pytest.raises(ValueError, match="eq4_literal True"):
        steps.clamp(progress=False, **dict(RUN, profile="quick"))


def test_clamp_detail_says_why_the_search_kept_the_layer(tmp_path):
    """Where every τ that caps a singular value collapses the model on validation images, the search keeps the layer
    unchanged (τ at the largest singular value, α = 1), and the reading says so instead of calling it a filter."""
    import json

    from fnlib.claims.filtering import clamp_detail
    sv = [4.0, 2.0, 1.0]
    grid = [{"tau": 0.5, "val_accuracy": 10.0}, {"tau": 1.5, "val_accuracy": 11.2}, {"tau": 4.0, "val_accuracy": 96.8}]
    path = tmp_path / "clamp.json"
    path.write_text(json.dumps({"singular_values_before": sv, "tau": 4.0, "alpha": 1.0, "grid": grid}))
    text = clamp_detail(path)
    assert "caps none: every τ of the grid that caps any gives at most 11.20 %" in text and "unchanged" in text, text
    path.write_text(json.dumps({"singular_values_before": sv, "tau": 1.5, "alpha": 3.5, "grid": grid}))
    text = clamp_detail(path)
    assert "caps 2 of 3 singular values" in text and "unchanged" not in text, text
