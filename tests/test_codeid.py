"""Code identity (fnlib.codeid): derived from what a step imports, blind to comments, docstrings and layout.

Every test edits a copy of the package (``codeid.PACKAGE`` pointed at it), never the package itself."""
import ast
import shutil

import pytest

from fnlib import codeid, pipeline, steps
from fnlib.steptable import STEPS


@pytest.fixture
def copy(tmp_path, monkeypatch):
    """A copy of fnlib that codeid reads instead of the real one; returns an editor ``edit(module, old, new)``."""
    root = tmp_path / "fnlib"
    shutil.copytree(codeid.PACKAGE, root, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(codeid, "PACKAGE", root)

    def edit(module, old, new):
        path = root / f"{module}.py"
        text = path.read_text()
        assert old in text, f"{old!r} not in {module}.py: the planted edit no longer applies"
        path.write_text(text.replace(old, new, 1))
    return edit


def digests():
    return {name: codeid.digest(s.function) for name, s in STEPS.items()}


def test_training_imports_hardware_so_its_identity_covers_it():
    assert "hardware" in codeid.closure("train")          # train.py: from .hardware import autocast, ...
    assert {"data", "models", "convgrad", "train", "evaluate"} <= set(codeid.closure("train"))
    assert "attacks" not in codeid.closure("train") and "summary" not in codeid.closure("train")
    assert "profiles" not in codeid.closure("attack")     # configuration enters keys by value


def test_a_planted_numeric_edit_to_autocast_marks_training_stale(copy):
    """The drift of issue 30: hardware.autocast was in no hand-kept list, so an edit to it kept the checkpoints."""
    before_digests = digests()
    before_ident = steps.Step("paper", "mnist", "resnet18").train_identity()
    before_keys = {(t.dataset, t.name): t.key for t in pipeline.plan("smoke")}
    copy("hardware", "dtype=torch.bfloat16", "dtype=torch.float16")
    after = digests()
    assert after["train"] != before_digests["train"]
    assert steps.Step("paper", "mnist", "resnet18").train_identity() != before_ident      # a new checkpoint folder
    keys = {(t.dataset, t.name): t.key for t in pipeline.plan("smoke")}
    assert keys[("mnist", "01_train_e1")] != before_keys[("mnist", "01_train_e1")]
    assert all(keys[k] != before_keys[k] for k in keys if not k[1].startswith("08_csg"))   # new weights: all


def test_comments_docstrings_and_layout_do_not_count(copy):
    before = digests()
    copy("attacks", "def check_space(space: str) -> None:\n",
         "# a comment\n\n\ndef check_space(space: str) -> None:  # another\n    '''A new docstring.'''\n")
    copy("attacks", "SPACES = (", "SPACES = (  # reformatted\n    ")
    copy("hardware", "import os\n", "import os  # why not\n")
    assert digests() == before


def test_a_code_edit_reaches_exactly_the_steps_that_import_it(copy):
    before = digests()
    copy("attacks", "if not eps:", "if len(eps) == 0:")
    after = digests()
    changed = {s for s in after if after[s] != before[s]}
    assert changed == {s for s in STEPS if "attacks" in codeid.closure(STEPS[s].function)}
    assert {"attack", "algorithm1", "controls", "filter", "robustness"} <= changed
    assert not changed & {"train", "rank", "csg"}


def test_one_steps_function_is_not_anothers_code(copy):
    before = digests()
    copy("steps", "def attack(progress=True, **kw):\n", "def attack(progress=True, **kw):\n    progress = bool(progress)\n")
    after = digests()
    assert {s for s in after if after[s] != before[s]} == {"attack"}


def test_a_subpackage_is_followed_too(copy):
    """``from .claims import x`` in a step would otherwise escape the identity."""
    before = digests()
    copy("steps", "def attack(progress=True, **kw):\n",
         "def attack(progress=True, **kw):\n    from .claims import rules  # noqa: F401\n")
    with_claims = digests()
    assert "claims" in codeid.closure("attack") and with_claims["attack"] != before["attack"]
    copy("claims/rules", "\ndef ", "\ndef _planted():\n    return 2\n\n\ndef ")      # a new top-level function
    assert digests()["attack"] != with_claims["attack"]


def test_a_step_that_runs_another_steps_function_carries_its_code():
    """Step 13 (clamp) runs step 4's function: an edit to the defence, or to anything it imports, moves its key."""
    names = {n.name for n in codeid.step_nodes("clamp") if isinstance(n, ast.FunctionDef)}
    assert {"clamp", "defence"} <= names and "attack" not in names
    assert set(codeid.closure("defence")) <= set(codeid.closure("clamp"))
    assert "defence" not in {n.name for n in codeid.step_nodes("attack") if isinstance(n, ast.FunctionDef)}
