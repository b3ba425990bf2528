"""Run a whole profile: every notebook, for every (dataset, arch) and epoch, through papermill.

Each task's cache key hashes its notebook, the fnlib code it runs, its parameters and the keys of the
tasks it depends on. A task whose key is unchanged and whose results files exist is skipped, so a rerun
with nothing changed takes seconds. Executed notebooks go to ``book/runs/<profile>/<dataset>-<arch>/``
where the book's appendix (and, for the smoke profile, the nbval regression test) reads them.
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import profiles, results
from .steps import STEP_NOTEBOOKS

ROOT = results.PROJECT_ROOT
NOTEBOOKS = ROOT / "notebooks"
RUNS = ROOT / "book" / "runs"
# modules whose code decides the numbers (plots, summary and the pipeline itself do not)
COMPUTE_MODULES = ("data", "models", "train", "kernels", "attacks", "targeting", "defence", "profiles",
                   "results", "steps")
OUTPUTS = {"train": ["train.csv"], "rank": ["kernel_drop.csv", "meta.json"], "attack": ["attack.csv"],
           "algorithm1": ["targeting.csv"], "filter": ["defence.csv", "defence.json"]}


def code_hash() -> str:
    h = hashlib.sha256()
    for name in COMPUTE_MODULES:
        h.update((ROOT / "fnlib" / f"{name}.py").read_bytes())
    return h.hexdigest()


@dataclass
class Task:
    step: str
    profile: str
    dataset: str
    arch: str
    epoch: int | None = None
    deps: list = field(default_factory=list)
    key: str = ""

    @property
    def name(self) -> str:
        return STEP_NOTEBOOKS[self.step] + (f"_e{self.epoch}" if self.epoch is not None else "")

    @property
    def notebook(self) -> Path:
        return NOTEBOOKS / f"{STEP_NOTEBOOKS[self.step]}.ipynb"

    @property
    def output(self) -> Path:
        return RUNS / self.profile / f"{self.dataset}-{self.arch}" / f"{self.name}.ipynb"

    @property
    def parameters(self) -> dict:
        p = {"profile": self.profile, "dataset": self.dataset, "arch": self.arch}
        return p if self.epoch is None else dict(p, epoch=self.epoch)

    def outputs(self) -> list[Path]:
        base = results.run_dir(self.profile, self.dataset, self.arch)
        base = base / f"e{self.epoch}" if self.epoch is not None else base
        return [base / f for f in OUTPUTS[self.step]]


def plan(profile: str) -> list[Task]:
    """Tasks in dependency order, keys filled in."""
    p = profiles.get(profile)
    code = code_hash()
    tasks = []
    for dataset, arch in p.runs():
        train = Task("train", profile, dataset, arch)
        tasks.append(train)
        for epoch in p.epochs:
            rank = Task("rank", profile, dataset, arch, epoch, [train])
            tasks += [rank, Task("attack", profile, dataset, arch, epoch, [train]),
                      Task("algorithm1", profile, dataset, arch, epoch, [train, rank])]
            if epoch == p.filter_epoch:
                tasks.append(Task("filter", profile, dataset, arch, epoch, [train, rank]))
    for t in tasks:
        h = hashlib.sha256()
        for part in (t.notebook.read_bytes(), code.encode(), json.dumps(t.parameters, sort_keys=True).encode(),
                     json.dumps(p.as_dict(), sort_keys=True, default=str).encode(), *(d.key.encode() for d in t.deps)):
            h.update(part)
        t.key = h.hexdigest()[:20]
    order = {"train": 0, "rank": 1, "attack": 2, "filter": 3, "algorithm1": 4}
    return sorted(tasks, key=lambda t: (p.datasets.index(t.dataset), p.archs.index(t.arch), t.epoch or 0,
                                        order[t.step]))


def ledger_path(t: Task) -> Path:
    return results.run_dir(t.profile, t.dataset, t.arch) / "steps.json"


def _ledger(t: Task) -> dict:
    path = ledger_path(t)
    return json.loads(path.read_text()) if path.exists() else {}


def is_current(t: Task) -> bool:
    return _ledger(t).get(t.name, {}).get("key") == t.key and all(f.exists() for f in t.outputs()) \
        and t.output.exists()


def discard_stale_checkpoints(t: Task) -> bool:
    """Before a train task whose recorded key differs (code or parameters changed), delete its checkpoints.

    fit() resumes from ``last.pt``, which is right after an interruption (no key recorded yet) but would
    silently keep weights made by other code or parameters. Returns True when checkpoints were removed.
    """
    import shutil
    recorded = _ledger(t).get(t.name, {}).get("key")
    folder = results.checkpoint_dir(t.profile, t.dataset, t.arch)
    if t.step != "train" or recorded in (None, t.key) or not folder.exists():
        return False
    shutil.rmtree(folder)
    return True


def execute(t: Task) -> float:
    """Run one notebook with papermill; record its key in the ledger when it succeeds."""
    import papermill
    discard_stale_checkpoints(t)
    t.output.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    papermill.execute_notebook(str(t.notebook), str(t.output), parameters=t.parameters, kernel_name="python3",
                               cwd=str(ROOT), progress_bar=False, log_output=False)
    seconds = time.perf_counter() - t0
    retitle(t.output, t)
    ledger = _ledger(t)
    ledger[t.name] = {"key": t.key, "seconds": round(seconds, 1)}
    results.write_json(ledger, ledger_path(t))
    return seconds


def retitle(path: Path, t: Task) -> None:
    """Name the run in the executed notebook's title, so the book's appendix tells the epochs apart."""
    import nbformat
    nb = nbformat.read(str(path), as_version=4)
    first = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    tag = f" ({t.profile}: {t.dataset}/{t.arch}" + (f", epoch {t.epoch})" if t.epoch is not None else ")")
    if first is not None and first.source.startswith("# ") and tag not in first.source:
        head, _, rest = first.source.partition("\n")
        first.source = head + tag + ("\n" + rest if rest else "")
        nbformat.write(nb, str(path))


def run(profile: str, force: bool = False, only: str | None = None, dry_run: bool = False, log=print) -> dict:
    """Execute every stale task of ``profile``; then write ``results/<profile>/summary.json``."""
    from tqdm import tqdm

    from .train import resolve_device
    p = profiles.get(profile)
    resolve_device(p.device)  # the paper profile fails here at once on a machine without CUDA
    tasks = plan(profile)
    if only:
        tasks = [t for t in tasks if f"{t.dataset}/{t.arch}" == only or t.dataset == only]
        if not tasks:
            raise ValueError(f"--only {only!r} matches no run of profile {profile}; runs: "
                             + ", ".join(f"{d}/{a}" for d, a in p.runs()))
    stale = [t for t in tasks if force or not is_current(t)]
    # a fresh clone has results but no checkpoints: retrain only if a later task needs the weights
    for t in tasks:
        if t.step == "train" and t not in stale:
            needs = [u for u in stale if u.dataset == t.dataset and u.arch == t.arch]
            ckpts = [results.checkpoint(profile, t.dataset, t.arch, e) for e in p.epochs]
            if needs and not all(c.exists() for c in ckpts):
                stale.insert(stale.index(needs[0]), t)
    log(f"profile {profile}: {len(tasks)} tasks, {len(tasks) - len(stale)} up to date, {len(stale)} to run")
    timings = {}
    bar = tqdm(stale, desc=f"{profile}", unit="notebook", disable=dry_run, file=sys.stderr)
    for t in bar:
        bar.set_postfix_str(f"{t.dataset}/{t.arch} {t.name}")
        if dry_run:
            log(f"would run {t.dataset}/{t.arch} {t.name}")
            continue
        timings[f"{t.dataset}/{t.arch}/{t.name}"] = execute(t)
    if not dry_run and not only:
        from .summary import build
        build(profile)
    return timings
