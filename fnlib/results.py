"""Where every step writes (SPEC §4) and what it records with each result: seeds, versions, hardware.

``results/<profile>/<dataset>/<arch>/`` holds the results files, ``checkpoints/<profile>/...`` the
(git-ignored) weights. Both live under the project root, or under ``$FNLIB_WORKDIR`` when it is set
(the test suite points it at a scratch folder so that re-executions never touch committed results).
"""
from __future__ import annotations

import csv
import json
import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def work_root() -> Path:
    return Path(os.environ.get("FNLIB_WORKDIR") or PROJECT_ROOT)


def folder(profile: str) -> str:
    """Where a profile's files go under results/, checkpoints/ and book/runs/ (``paper-seed1``: ``paper/seed1``)."""
    from .profiles import PROFILES
    return PROFILES[profile].folder if profile in PROFILES else profile


def run_dir(profile: str, dataset: str, arch: str) -> Path:
    return work_root() / "results" / folder(profile) / dataset / arch


def epoch_dir(profile: str, dataset: str, arch: str, epoch: int) -> Path:
    return run_dir(profile, dataset, arch) / f"e{epoch}"


def checkpoint_dir(profile: str, dataset: str, arch: str, key: str) -> Path:
    """The checkpoints of one training run; ``key`` digests its identity (:func:`fnlib.train.identity`)."""
    return work_root() / "checkpoints" / folder(profile) / dataset / arch / key


def checkpoint(profile: str, dataset: str, arch: str, key: str, epoch: int) -> Path:
    return checkpoint_dir(profile, dataset, arch, key) / f"e{epoch}.pt"


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json(obj, path) -> Path:
    path = Path(path)
    _atomic_write(path, json.dumps(obj, indent=1, sort_keys=True, default=float) + "\n")
    return path


def read_json(path) -> dict:
    return json.loads(Path(path).read_text())


def write_csv(rows: list[dict], path, columns: list[str] | None = None) -> Path:
    """Rows of dicts as CSV; floats with 6 significant decimals so that files diff cleanly."""
    import io
    path = Path(path)
    columns = columns or list(rows[0])
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    _atomic_write(path, buf.getvalue())
    return path


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True,
                              text=True, timeout=5).stdout.strip() or "unknown"
    except Exception:
        return "unknown"


def provenance(seed: int, device) -> dict:
    """Seed, library versions and hardware, stored next to every result."""
    import numpy
    import torch
    import torchvision

    from .hardware import describe
    return {"seed": seed, **describe(device), "python": platform.python_version(), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "numpy": numpy.__version__,
            "platform": platform.platform(), "git_commit": git_commit(),
            "utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}


def glue(name: str, value, display: bool = True):
    """myst-nb's ``glue`` where it is installed (the book), a plain print elsewhere (e.g. a bare GPU machine)."""
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()            # numpy scalars glue as plain numbers, not np.float64(93.6)
    try:
        from myst_nb import glue as _glue
    except ImportError:
        print(f"{name} = {value}")
        return
    _glue(name, value, display=display)
