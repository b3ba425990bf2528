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
