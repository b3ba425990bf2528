"""One-time migration: carry the finished runs' ledger entries over to the code identity of ``fnlib.codeid``.

Until revision ``OLD`` a step's key hashed the bytes of a hand-kept module list (``pipeline.STEP_MODULES``,
``train.code_digest``: data, models, convgrad, train). From this change on it hashes the parsed code of every
fnlib module the step imports. Every key changes, so without this migration a fresh clone would plan every
task again, and the analyses would need checkpoints that only a retraining (25 machine-hours) makes.

A task's entry is carried over (its ``key`` and ``inputs`` replaced, the old key kept under ``adopted``) when:

1. it was current under the old scheme: ``OLD``'s own planner, run from a git worktree of ``OLD`` over this
   work tree's results, says so (key, outputs and executed notebook all present);
2. every module the new identity covers and the old one did not (``hardware`` for training, ``evaluate``
   for the attacks, ...) had its last commit before the run's training started (``train.json``'s first
   session; for CSG, which reads no weights, its own notebook's start), so the code that made the result is
   the code hashed now. (A module edited but never committed while a result was made would escape this
   check; the replay below would not.)

The modules both schemes cover and that this change edits (``train.py``, ``steps.py``, ``results.py``) are
changed in ways that compute nothing differently: training records each epoch's weight digest and each
session's peak memory, ``Step`` checks its settings through ``profiles.check``, ``results`` maps a profile
to its folder (the same for every existing profile). That is checked, not assumed: the smoke profile run
by ``OLD`` and by the new code on one machine gives the same files, and paper-profile training replayed
under the new identity must give back the weight digests recorded in ``steps.json`` (issue 31's seed-0
retraining checks each one before anything is replaced).

Run from the project root:  .venv/bin/python tools/adopt_identity_v2.py [--dry-run]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OLD = "986246ab4822463b0ea5a8c12040b1fac90f3fe1"      # the last revision with the byte-hashed module lists
PROFILES = ("smoke", "quick", "paper")
# what the old keys hashed (pipeline.STEP_MODULES and train.code_digest at OLD)
OLD_MODULES = {"train": ("data", "models", "convgrad", "train", "evaluate", "results"),
               "rank": ("data", "models", "kernels", "evaluate", "results"),
               "attack": ("data", "models", "attacks", "results"),
               "algorithm1": ("data", "models", "attacks", "targeting", "results"),
               "filter": ("data", "models", "attacks", "targeting", "defence", "evaluate", "results"),
               "controls": ("data", "models", "attacks", "targeting", "controls", "results"),
               "robustness": ("data", "models", "attacks", "pgd", "kernels", "defence", "targeting", "evaluate",
                              "robustness", "stats", "results"),
               "csg": ("data", "csg", "stats", "results"),
               "seeds": ("data", "models", "convgrad", "train", "evaluate", "attacks", "kernels", "targeting",
                         "defence", "seeds", "stats", "results"),
               "layers": ("data", "models", "attacks", "evaluate", "kernels", "targeting", "layers", "results")}
OLD_IDENTITY = ("data", "models", "convgrad", "train")       # in every key that reads weights, via ``weights``

OLD_PLANNER = """
import json, sys
from fnlib import pipeline
out = {}
for prof in sys.argv[1:]:
    for t in pipeline.plan(prof):
        out[f"{prof}/{t.dataset}/{t.arch}/{t.name}"] = {"key": t.key, "current": pipeline.is_current(t)}
print(json.dumps(out))
"""


def old_keys() -> dict:
    """``OLD``'s planner over this work tree's results: every task's old key and whether it was current."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "old"
        subprocess.run(["git", "worktree", "add", "-q", "--detach", str(tree), OLD], cwd=ROOT, check=True)
        try:
            env = dict(os.environ, PYTHONPATH=str(tree), FNLIB_WORKDIR=str(ROOT))
            done = subprocess.run([sys.executable, "-c", OLD_PLANNER, *PROFILES], cwd=tree, env=env,
                                  capture_output=True, text=True, check=True)
            return json.loads(done.stdout)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=True)


def last_commit(module: str) -> datetime:
    out = subprocess.run(["git", "log", "-1", "--format=%cI", OLD, "--", f"fnlib/{module}.py"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout.strip()
    return datetime.fromisoformat(out)


def started(t) -> datetime:
    """When the result's making began: the run's first training session, or (CSG) its notebook's start."""
    from fnlib import pipeline, results
    if pipeline.analyses_weights(t) or t.step == "train":
        info = results.read_json(results.run_dir(t.profile, t.dataset, t.arch) / "train.json")
        first = min(s["started"] for s in info["sessions"])
        return datetime.fromisoformat(first.replace("Z", "+00:00"))
    nb = json.loads(t.output.read_text())
    return datetime.fromisoformat(nb["metadata"]["papermill"]["start_time"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dry-run", action="store_true")
    a = ap.parse_args()
    from fnlib import codeid, pipeline, results
    old = old_keys()
    counts = {"adopted": 0, "current": 0, "refused": 0, "was stale": 0}
    for profile in PROFILES:
        for t in pipeline.plan(profile):
            name = f"{profile}/{t.dataset}/{t.arch}/{t.name}"
            if pipeline.is_current(t):
                counts["current"] += 1
                continue
            if not old.get(name, {}).get("current"):
                counts["was stale"] += 1
                continue
            covered = set(OLD_MODULES[t.step]) | (set(OLD_IDENTITY) if t.step != "csg" else set())
            extra = sorted(set(codeid.closure(pipeline.STEP_TABLE[t.step].function)) - covered)
            since = started(t)
            late = {m: last_commit(m).isoformat() for m in extra if last_commit(m) >= since}
            if late:
                counts["refused"] += 1
                print(f"refused {name}: {', '.join(f'{m}.py (committed {d})' for m, d in late.items())} changed "
                      f"after the run started ({since.isoformat()}); it runs again")
                continue
            counts["adopted"] += 1
            ledger = pipeline._ledger(t)
            entry = dict(ledger[t.name])
            entry["adopted"] = {"from_key": entry["key"], "by": "code identity v2 (fnlib.codeid)", "old_revision": OLD,
                                "newly_covered": {m: last_commit(m).isoformat() for m in extra},
                                "run_started": since.isoformat()}
            entry.update(key=t.key, **({"inputs": t.inputs} if pipeline.analyses_weights(t) else {}))
            ledger[t.name] = entry
            if not a.dry_run:
                results.write_json(ledger, pipeline.ledger_path(t))
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
