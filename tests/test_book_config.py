"""The book build executes the chapter pages and renders the stored notebooks under book/runs/ as they are."""
from pathlib import Path, PurePosixPath

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _excluded(path: str, patterns) -> bool:
    return any(PurePosixPath(path).match(p) for p in patterns)     # as myst-nb matches them


def test_stored_notebooks_are_never_executed_and_chapters_always_are():
    patterns = yaml.safe_load((ROOT / "_config.yml").read_text())["execute"]["exclude_patterns"]
    stored = sorted((ROOT / "book" / "runs").rglob("*.ipynb"))
    assert stored, "no stored notebooks to check"
    assert [str(p) for p in stored if not _excluded(str(p), patterns)] == []
    # a replicate's notebook one folder deeper, and chapter pages of checkouts under folders named like these
    assert _excluded("/x/book/runs/paper/seed1/mnist-resnet50/01_train_e10.ipynb", patterns)
    for root in (ROOT, Path("/home/u/runs/ci/proj"), Path("/runs/a/b/proj"), Path("/srv/runs/proj")):
        for page in sorted((ROOT / "book").glob("*.md")):
            assert not _excluded(str(root / "book" / page.name), patterns), (root, page.name)
