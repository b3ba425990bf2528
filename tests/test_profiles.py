"""Profiles (SPEC §3): the ε grids hold the paper's values, unknown names are refused."""
import pytest

from fnlib import profiles


def all_profiles():
    return [profiles.get(name) for name in profiles.PROFILES]


@pytest.mark.parametrize("name", list(profiles.PROFILES))
def test_eps_grids_contain_paper_values(name):
    p = profiles.get(name)
    assert set(p.linear) == {"mnist", "cifar10"}
    for ds, grid in p.linear.items():
        assert 0.01 in grid and 0.015 in grid, (ds, grid)
        assert grid[0] == 0.0
        assert list(grid) == sorted(set(grid))
    assert 0.34 in p.linear["mnist"]
    assert p.linear["cifar10"][-1] == pytest.approx(0.05)
    assert p.linear["mnist"][-1] == pytest.approx(0.4)
    assert 0.01 in p.log and 0.015 in p.log
    assert p.log[0] == pytest.approx(1e-4) and p.log[-1] == pytest.approx(1.0)
    assert all(e > 0 for e in p.log)
    assert list(p.log) == sorted(set(p.log))
    assert p.filter_eps == 0.015
    assert p.filter_eps in p.log and all(p.filter_eps in g for g in p.linear.values())


def test_profile_table_matches_spec():
    smoke, quick, paper = (profiles.get(n) for n in ("smoke", "quick", "paper"))
    assert smoke.archs == quick.archs == ("resnet18",)
    assert set(paper.archs) == {"resnet18", "resnet50", "resnet101"} and paper.archs[0] == "resnet50"
    assert paper.epochs == (10, 50, 100) and paper.train_limit is None and paper.test_limit is None
    assert all(set(p.datasets) == {"mnist", "cifar10"} for p in (smoke, quick, paper))
    assert smoke.precision == quick.precision == "fp32" and paper.precision == "auto"
    assert smoke.epochs == (1, 2)
    assert paper.filter_epoch == 10
    assert all(list(p.epochs) == sorted(p.epochs) for p in all_profiles())
    assert len(smoke.runs()) == 2 and len(paper.runs()) == 6


def test_unknown_profile_lists_allowed():
    with pytest.raises(ValueError, match="smoke, quick, paper"):
        profiles.get("nope")


def test_overrides():
    p = profiles.get("smoke", seed=7, drop=None, filter_mode="clamp")
    assert p.seed == 7 and p.filter_mode == "clamp"
    assert p.drop == profiles.get("smoke").drop             # None means "keep the profile's value"
    assert profiles.PROFILES["smoke"].seed == 0             # the table itself is not modified
    with pytest.raises(ValueError, match="epsilon"):
        profiles.get("smoke", epsilon=0.1)
    assert profiles.get("quick").as_dict()["name"] == "quick"


def test_single_values_work_wherever_a_list_is_accepted():
    from fnlib import steps
    assert steps.floats(0.1) == [0.1] and steps.floats("0.1") == [0.1] and steps.floats([0, 0.5]) == [0.0, 0.5]
    assert steps.ints(5) == [5] and steps.words("pixel") == ["pixel"]
    s = steps.Step("smoke", "mnist", "resnet18", epsilons=0.1, epochs=2, spaces="pixel")
    assert s.linear() == [0.1] and s.p.epochs == (2,) and s.p.spaces == ("pixel",)


def test_advice_for_a_missing_or_unknown_epoch_names_a_working_command(tmp_path, monkeypatch):
    from fnlib import steps
    monkeypatch.setenv("FNLIB_WORKDIR", str(tmp_path))
    s = steps.Step("smoke", "mnist", "resnet18", epoch=7)
    with pytest.raises(FileNotFoundError, match=r"epoch 7 is not a checkpoint.*--set epochs=1,2,7"):
        s.model()
    s = steps.Step("smoke", "mnist", "resnet18", epoch=2)
    with pytest.raises(FileNotFoundError, match=r"--only mnist/resnet18 --step train"):
        s.model()


def test_every_field_is_declared_with_its_type_and_range():
    assert set(profiles.FIELDS) == set(profiles.Profile.__dataclass_fields__)
    for name in profiles.PROFILES:
        profiles.get(name)                                  # every shipped profile passes its own checks


@pytest.mark.parametrize("setting, message", [
    ("lr=-1", "lr=-1.0 is out of range"), ("train_limit=0", "train_limit=0 is out of range"),
    ("epochs=5,1", "distinct and increasing"), ("batch_size=0", "out of range"), ("spaces=pixel,fourier", "unknown spaces"),
    ("drop=all", "unknown drop"), ("precision=fp16", "unknown precision"), ("schedule=1", "shorter than the last"),
    ("filter_eps=0", "out of range"), ("robust_eps=1", "not a setting"),
])
def test_bad_settings_are_refused_before_any_work(setting, message):
    with pytest.raises(ValueError, match=message):
        profiles.get("paper", **profiles.parse_settings([setting]))


def test_the_command_line_refuses_a_bad_setting_without_planning(capsys):
    from fnlib.__main__ import main
    assert main(["run", "--profile", "paper", "--dry-run", "--set", "lr=-1"]) == 2
    assert "lr=-1.0 is out of range" in capsys.readouterr().err
    assert main(["run", "--profile", "paper", "--dry-run", "--set", "train_limit=0"]) == 2


def test_replicate_and_schedule_profiles_have_their_own_identity_and_folder():
    from fnlib import steps
    main = steps.Step("paper", "mnist", "resnet18")
    seed1 = steps.Step("paper-seed1", "mnist", "resnet18")
    sched10 = steps.Step("paper-sched10", "mnist", "resnet18")
    assert seed1.recipe().seed == 1 and seed1.recipe().epochs == 100 and sched10.recipe().epochs == 10
    assert len({main.ckpt_dir().name, seed1.ckpt_dir().name, sched10.ckpt_dir().name}) == 3
    assert seed1.dir.parts[-5:] == ("results", "paper", "seed1", "mnist", "resnet18")
    assert main.dir != seed1.dir
    # ResNet-50 replicates stop early on the 100-epoch schedule (the checkpoints the claims read)
    assert profiles.get("paper-seed1").run_epochs("mnist", "resnet50") == (10,)
    assert profiles.get("paper-seed1").run_epochs("cifar10", "resnet50") == (10, 50)
    assert steps.Step("paper-seed1", "mnist", "resnet50").recipe().epochs == 100


def test_an_analysis_seed_never_names_another_training():
    """Issue 30: 07_robustness's ``-p seed 1`` (PGD's random start) looked for another training's checkpoint."""
    from fnlib import steps
    main = steps.Step("smoke", "mnist", "resnet18")
    pgd = steps.Step("smoke", "mnist", "resnet18", seed=1)
    assert pgd.seed == 1 and main.seed == 0
    assert pgd.ckpt_dir() == main.ckpt_dir()                          # the same training's weights
    assert steps.Step("smoke", "mnist", "resnet18", overrides={"seed": 1}).ckpt_dir() != main.ckpt_dir()


def test_a_switch_reads_true_or_false_and_nothing_else():
    assert profiles.parse_settings(["eq4_literal=true"]) == {"eq4_literal": True}
    assert profiles.parse_settings(["eq4_literal=off"]) == {"eq4_literal": False}     # not bool("off")
    with pytest.raises(ValueError, match="'maybe' is not a true or false"):
        profiles.parse_settings(["eq4_literal=maybe"])
    with pytest.raises(ValueError, match="eq4_literal: 1 is not a bool"):
        profiles.get("smoke", eq4_literal=1)
