"""Run a whole profile: every notebook, for every (dataset, arch) and epoch, through papermill.

Training runs in stages, one per checkpoint epoch (``01_train_e10``, ``01_train_e50``, …), each resuming
where the previous one stopped, and every analysis of a checkpoint runs as soon as its stage is done: at
paper scale the epoch-10 results land hours before epoch 100.

Each task's cache key covers only what the task reads: its notebook, the code of its step and of the
modules it imports (:mod:`fnlib.codeid`), the profile values it declares (:mod:`fnlib.steptable`) and the
identity of the weights it analyses.
Work on the attacks, the defence or the book therefore never touches training's key. Checkpoints are
reused by identity (:func:`fnlib.train.identity`), never by key. A task whose key is unchanged and whose
outputs exist is skipped, so a rerun with nothing changed takes seconds.

Executed notebooks go to ``book/runs/<profile>/<dataset>-<arch>/`` under the work root (the project, or
``$FNLIB_WORKDIR``); papermill writes them in a staging folder first and they are moved into place only
when the notebook succeeded, so a failed or interrupted run never replaces a committed notebook.
"""
from __future__ import annotations

import contextlib
import csv
import fcntl
import functools
import hashlib
import itertools
import json
import os
import shutil
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import codeid, profiles, results, steps
from .steptable import NOTEBOOKS as STEP_NOTEBOOKS
from .steptable import STEPS as STEP_TABLE

ROOT = results.PROJECT_ROOT
NOTEBOOKS = ROOT / "notebooks"
STEPS = tuple(STEP_TABLE)


def runs_root() -> Path:
    return results.work_root() / "book" / "runs"


def stage_root() -> Path:
    """Where notebooks execute before they move into place, and where a run's lock lives."""
    return results.work_root() / ".stage"


def code_hash(step: str) -> str:
    """The code identity of ``step`` (:func:`fnlib.codeid.digest`: what its code imports, as parsed code)."""
    return codeid.digest(STEP_TABLE[step].function)


@dataclass
class Task:
    step: str
    profile: str
    dataset: str
    arch: str
    epoch: int
    deps: list = field(default_factory=list)
    overrides: dict = field(default_factory=dict)
    weights: str = ""          # identity key of the training run whose checkpoint e<epoch> this task reads
    key: str = ""
    inputs: str = ""           # the key without the training's name: notebook, code, settings, upstream inputs

    @property
    def name(self) -> str:
        return f"{STEP_NOTEBOOKS[self.step]}_e{self.epoch}"

    @property
    def notebook(self) -> Path:
        return NOTEBOOKS / f"{STEP_NOTEBOOKS[self.step]}.ipynb"

    @property
    def output(self) -> Path:
        return runs_root() / results.folder(self.profile) / f"{self.dataset}-{self.arch}" / f"{self.name}.ipynb"

    @property
    def parameters(self) -> dict:
        p = {"profile": self.profile, "dataset": self.dataset, "arch": self.arch, "overrides": self.overrides}
        return dict(p, until=self.epoch) if self.step == "train" else dict(p, epoch=self.epoch)

    def outputs(self) -> list[Path]:
        base = results.run_dir(self.profile, self.dataset, self.arch)
        base = base if STEP_TABLE[self.step].level == "run" else base / f"e{self.epoch}"
        return [base / f for f in STEP_TABLE[self.step].outputs]

    def checkpoint(self) -> Path:
        return results.checkpoint(self.profile, self.dataset, self.arch, self.weights, self.epoch)


def _digest(*parts) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else json.dumps(part, sort_keys=True, default=str).encode())
    return h.hexdigest()[:20]


def _torch_version() -> str:
    import torch
    return torch.__version__.split("+")[0]


def field_value(p: profiles.Profile, name: str, dataset: str):
    """What a step reads of profile field ``name`` for ``dataset`` (per-data-set grids: that data set's)."""
    if name in ("linear", "robust_eps"):
        return getattr(p, name)[dataset]
    return p.cycle if name == "schedule" else getattr(p, name)


def plan(profile: str, overrides: dict | None = None) -> list[Task]:
    """Tasks in run order (arch, then epoch, then data set; training stage first), keys filled in.

    Which steps run at which checkpoint, what they read and what they write is :data:`fnlib.steptable.STEPS`."""
    overrides = dict(overrides or {})
    p = profiles.get(profile, **overrides)
    code = {s: code_hash(s) for s in STEPS}
    torch_version = _torch_version()        # in the training's identity, so in every key; in ``inputs`` too
    by_order = sorted(STEP_TABLE.values(), key=lambda s: s.order)
    tasks = []
    for dataset, arch in p.runs():
        weights = steps.Step(profile, dataset, arch, overrides=overrides).ckpt_dir().name
        for epoch in p.run_epochs(dataset, arch):
            here: dict[str, Task] = {}
            for sd in by_order:
                if sd.name == "train" or sd.runs_at(p, arch, epoch):
                    here[sd.name] = Task(sd.name, profile, dataset, arch, epoch, deps=[here[n] for n in sd.needs],
                                         overrides=overrides, weights=weights)
            tasks += here.values()
    for t in tasks:
        values = {f: field_value(p, f, t.dataset) for f in STEP_TABLE[t.step].fields}
        upstream = [d.key for d in t.deps if d.step != "train"]   # training enters through ``weights``
        where = {k: v for k, v in t.parameters.items() if k != "overrides"}   # the overrides it reads are in values
        weights = t.weights if STEP_TABLE[t.step].reads_weights or t.step == "train" else ""
        t.key = _digest(t.notebook.read_bytes(), code[t.step], values, where, weights, upstream)
        t.inputs = _digest(t.notebook.read_bytes(), code[t.step], values, where, torch_version,
                           [d.inputs for d in t.deps if d.step != "train"])
    # breadth first over checkpoints: every data set's epoch-10 results land before any run trains on to 50
    return sorted(tasks, key=lambda t: (p.archs.index(t.arch), t.epoch, p.datasets.index(t.dataset),
                                        STEP_TABLE[t.step].order))


def ledger_path(t: Task) -> Path:
    return results.run_dir(t.profile, t.dataset, t.arch) / "steps.json"


def _read_ledger(path: Path) -> dict:
    return results.read_json(path) if path.exists() else {}


def _ledger(t: Task) -> dict:
    return _read_ledger(ledger_path(t))


def landed(t: Task) -> bool:
    """Whether ``t``'s results files exist (whatever made them)."""
    return all(f.exists() for f in t.outputs())


def is_current(t: Task) -> bool:
    entry = _ledger(t).get(t.name, {})
    return entry.get("key") == t.key and landed(t) and t.output.exists() and not weights_changed(t, entry)


@functools.lru_cache(maxsize=64)
def _digest_file(path: str, mtime_ns: int, size: int) -> str:
    import torch

    from .train import weights_digest as digest_state
    return digest_state(torch.load(path, map_location="cpu", weights_only=True)["model"])


def weights_digest(path: Path) -> str:
    """sha256 of the weights in checkpoint ``path`` (names and bytes of the model's tensors, nothing else)."""
    st = Path(path).stat()
    return _digest_file(str(path), st.st_mtime_ns, st.st_size)


def analyses_weights(t: Task) -> bool:
    """Whether ``t`` analyses a checkpoint (every step but training and CSG)."""
    return t.step != "train" and STEP_TABLE[t.step].reads_weights


def weights_changed(t: Task, entry: dict | None = None) -> bool:
    """True when ``t``'s results were computed from other weights than the checkpoint now on disk.

    A training run's identity (data, recipe, precision, code, torch) does not fix its weights bit for bit:
    retrained on another CPU model or thread count (a new machine, a lost checkpoint) it gives a sibling
    network under the same name. The ledger keeps the digest of the weights each analysis read; when the
    checkpoint on disk has another, the analysis is stale. Without the checkpoint (a fresh clone) or
    without a recorded digest (results from before this check) the results are kept. ``entry`` is ``t``'s
    ledger entry when the caller has already read it."""
    if not analyses_weights(t):
        return False
    recorded = _read_weights(t) if entry is None else entry.get("weights")
    if not recorded or not t.checkpoint().exists():
        return False
    try:
        return weights_digest(t.checkpoint()) != recorded
    except Exception:       # an unreadable checkpoint: re-run, and the step's own load names the fix
        return True


HEARTBEAT_S = 600      # how often a long notebook says it is still running


def _same_arch_first(t: Task) -> list[Path]:
    """The run folders of ``t``'s profile and arch: its own data set first, then the others."""
    p = profiles.get(t.profile, **t.overrides)
    return [results.run_dir(t.profile, d, t.arch) for d in sorted(p.datasets, key=lambda d: d != t.dataset)]


def past_seconds(t: Task) -> float | None:
    """The median time this step took in the runs recorded for the same profile and arch (this data set's
    ``steps.json`` first, else another data set's, any epoch): the basis of the time-left estimates. None
    for training (see :func:`estimate`) and for a step with no recorded run."""
    if t.step == "train":
        return None
    step = STEP_NOTEBOOKS[t.step]
    for run in _same_arch_first(t):
        ledger = _read_ledger(run / "steps.json")
        past = [float(v["seconds"]) for k, v in ledger.items() if k.rsplit("_e", 1)[0] == step and "seconds" in v]
        if past:
            return statistics.median(past)
    return None


def estimate(t: Task, from_scratch: bool = False, queued: tuple = ()) -> float | None:
    """Seconds ``t`` should take, from the run times recorded under ``results/`` (this machine's, or on a
    fresh clone the committed ones): a training stage is its epochs still to train — from the last earlier
    checkpoint on disk (none when ``from_scratch``: ``--force`` wipes them) or trained by a stage ``queued``
    before it (their epochs) — times the median epoch of ``train.csv`` (same profile and
    arch, this data set first); any other step, :func:`past_seconds`. None when nothing comparable was
    recorded or the records cannot be read: an estimate never stops a run."""
    try:
        if t.step != "train":
            return past_seconds(t)
        p = profiles.get(t.profile, **t.overrides)
        on_disk = [] if from_scratch else [e for e in p.epochs if e <= t.epoch
                                           and t.checkpoint().with_name(f"e{e}.pt").exists()]
        done = max([*on_disk, *(e for e in queued if e < t.epoch)], default=0)
        to_go = t.epoch - done
        if to_go <= 0:
            return 0.0
        for run in _same_arch_first(t):
            rows = _epochs(run / "train.csv")
            if rows:
                return to_go * statistics.median(float(r["seconds"]) for r in rows)
        return None
    except Exception:           # a damaged record: no estimate
        return None


def _epochs(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def time_left(tasks: list[Task], wiped: frozenset = frozenset()) -> tuple[float, list[Task]]:
    """The estimated seconds of ``tasks`` (:func:`estimate`) and the tasks without an estimate; the training
    runs in ``wiped`` (weights keys) have their checkpoints deleted before they train (``--force``)."""
    guesses = [(t, estimate(t, t.weights in wiped, tuple(u.epoch for u in tasks[:i] if u.step == "train"
                                                         and u.weights == t.weights)))
               for i, t in enumerate(tasks)]
    return sum(g for _, g in guesses if g is not None), [t for t, g in guesses if g is None]


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def eta_line(tasks: list[Task], wiped: frozenset = frozenset()) -> str:
    """'about 12.3 h left for 25 of 29 tasks (from the run times recorded under results/; no estimate yet
    for: …)'."""
    secs, unknown = time_left(tasks, wiped)
    known = len(tasks) - len(unknown)
    if not known:
        return f"no estimate of the time left: none of these {len(tasks)} tasks has a recorded run time yet"
    line = f"about {_hours(secs)} left for {known} of {len(tasks)} tasks (from the run times recorded under results/"
    if unknown:
        names = sorted({f"{t.arch} {STEP_NOTEBOOKS[t.step]}" for t in unknown})
        line += "; no estimate yet for: " + ", ".join(names)
    return line + ")"


@contextlib.contextmanager
def heartbeat(label: str, estimate: float | None, log=print, every: float = HEARTBEAT_S):
    """Every ``every`` seconds until the block ends, log how long ``label`` has run and, from ``estimate``
    (seconds, see :func:`past_seconds`), about how long it has left: a silent hour-long step shows it lives."""
    stop, t0 = threading.Event(), time.perf_counter()

    def beat():
        while not stop.wait(every):
            ran = time.perf_counter() - t0
            msg = f"\n… {label} running for {ran / 60:.0f} min"     # \n: off any half-written progress bar
            if estimate is None:
                msg += " (no recorded run of this step to estimate the time left from)"
            elif ran < estimate:
                msg += f", about {(estimate - ran) / 60:.0f} min left (recorded runs: {estimate / 60:.0f} min)"
            else:
                msg += f", longer than its recorded runs ({estimate / 60:.0f} min)"
            log(msg)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def execute(t: Task, stream: bool = True) -> float:
    """Run one notebook with papermill into a staging folder; move it into place and record its key on success.

    With ``stream`` the kernel's output (training progress included) is echoed to this process's stdout/stderr.
    """
    import papermill
    stage = stage_root() / "runs" / t.output.relative_to(runs_root())
    stage.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    papermill.execute_notebook(str(t.notebook), str(stage), parameters=t.parameters, kernel_name="python3",
                               cwd=str(ROOT), progress_bar=False, log_output=False,
                               stdout_file=sys.stdout if stream else None, stderr_file=sys.stderr if stream else None)
    seconds = time.perf_counter() - t0
    retitle(stage, t)
    t.output.parent.mkdir(parents=True, exist_ok=True)
    os.replace(stage, t.output)
    record(t, seconds)
    return seconds


def record(t: Task, seconds: float) -> None:
    """Enter ``t``, just run, in its run's ledger ``steps.json``: its key and run time; for an analysis the
    ``inputs`` it was made from (:func:`reusable`); the digest of the weights it read or made."""
    ledger = _ledger(t)
    ledger[t.name] = {"key": t.key, "seconds": round(seconds, 1)}
    if analyses_weights(t):
        ledger[t.name]["inputs"] = t.inputs
    if t.step != "csg" and t.checkpoint().exists():    # what the analyses read, or what training made
        with contextlib.suppress(Exception):        # the notebook read it; a digest failure only costs the check
            ledger[t.name]["weights"] = weights_digest(t.checkpoint())
    results.write_json(ledger, ledger_path(t))


def retitle(path: Path, t: Task) -> None:
    """Name the run in the executed notebook's title, so the book's appendix tells the epochs apart."""
    import nbformat
    nb = nbformat.read(str(path), as_version=4)
    first = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    what = f"until epoch {t.epoch}" if t.step == "train" else f"epoch {t.epoch}"
    tag = f" ({t.profile}: {t.dataset}/{t.arch}, {what})"
    if first is not None and first.source.startswith("# ") and tag not in first.source:
        head, _, rest = first.source.partition("\n")
        first.source = head + tag + ("\n" + rest if rest else "")
        nbformat.write(nb, str(path))


def _read_weights(t: Task) -> str | None:
    """The digest of the weights ``t``'s committed results read, as its ledger entry recorded it."""
    return _ledger(t).get(t.name, {}).get("weights")


def reusable(t: Task, kept: list[Task]) -> bool:
    """Whether ``t``'s results, stale by key, stand as they are: they were made under another training's name
    (its identity key: the training code or recipe changed) from the very weights now on disk (same digest),
    nothing else they read has changed (same ``inputs``, which include the torch version), and every step
    they read from is current or ``kept`` (none runs again, in this selection or out of it). A retraining that
    gives its weights back bit for bit — after an edit of the training code that changes no number, say —
    thus leaves its analyses valid. Results from before ``inputs`` was recorded never are."""
    if not analyses_weights(t) or not all(d in kept or is_current(d) for d in t.deps):
        return False
    if not (landed(t) and t.output.exists() and t.checkpoint().exists()):
        return False
    entry = _ledger(t).get(t.name, {})
    return bool(entry.get("weights")) and entry.get("inputs") == t.inputs and not weights_changed(t, entry)


def keep(stale: list[Task]) -> list[Task]:
    """The tasks of ``stale`` (in run order, so a step comes after those it reads) that are :func:`reusable`."""
    kept: list[Task] = []
    for t in stale:
        if reusable(t, kept):
            kept.append(t)
    return kept


def adopt(kept: list[Task], log) -> None:
    """Record the keys of ``kept`` (:func:`keep`) as those of their results, and say so."""
    for t in kept:
        ledger = _ledger(t)
        ledger[t.name] = dict(ledger.get(t.name, {}), key=t.key)
        results.write_json(ledger, ledger_path(t))
    for (dataset, arch), group in itertools.groupby(kept, key=lambda t: (t.dataset, t.arch)):
        group = list(group)
        log(f"{dataset}/{arch}: {len(group)} analyses kept (" + ", ".join(t.name for t in group) + "): they read the "
            "weights now on disk, bit for bit, and nothing else they read has changed; only the training's "
            "identity is new")


def remade_stages(tasks: list[Task], stale: list[Task]) -> list[Task]:
    """The training stages among ``tasks`` that must run although their key is current, because their
    checkpoint is not on this machine (a fresh clone, a new machine): a stale task needs their weights, or
    another stage of the same run must train without its own checkpoint. Training then starts again from
    epoch 1 and makes every stage's checkpoint anew, with other weights where the CPU model or thread count
    differs; running every such stage, in order, lets the pipeline redo each epoch's analyses right after
    its checkpoint and keeps the results of one run from two trainings. Repeated until nothing is added."""
    added: list[Task] = []
    while True:
        need = [*stale, *added]
        new = [t for t in tasks if t.step == "train" and t not in need and not t.checkpoint().exists()
               and (any(t in u.deps for u in need)
                    or any(u.step == "train" and u.weights == t.weights and not u.checkpoint().exists()
                           for u in need))]
        if not new:
            return added
        added += new


def select(tasks: list[Task], only: str | None, step: list[str] | None, p: profiles.Profile) -> list[Task]:
    if only:
        tasks = [t for t in tasks if f"{t.dataset}/{t.arch}" == only or t.dataset == only or t.arch == only]
        if not tasks:
            raise ValueError(f"--only {only!r} matches no run of profile {p.name}; runs: "
                             + ", ".join(f"{d}/{a}" for d, a in p.runs()))
    if step:
        bad = sorted(set(step) - set(STEPS))
        if bad:
            raise ValueError(f"unknown step(s) {bad}; allowed: {', '.join(STEPS)}")
        tasks = [t for t in tasks if t.step in step]
    return tasks


@contextlib.contextmanager
def exclusive(profile: str):
    """Hold ``<work root>/.stage/<profile>.lock`` for a run; a second run of the same profile on the same work
    root stops at once, naming the first one's process id."""
    path = stage_root() / f"{profile}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            pid = f.read().strip() or "?"
            raise RuntimeError(f"another run of profile {profile!r} (process {pid}) is working in "
                               f"{results.work_root()}; wait for it to end or stop it (kill {pid}), "
                               f"or give this one its own --workdir") from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        yield               # closing the file releases the lock, also on an exception


def run(profile: str, force: bool = False, only: str | None = None, dry_run: bool = False, log=print,
        step: list[str] | None = None, overrides: dict | None = None, stream: bool = True) -> dict:
    """Execute every stale task of ``profile``; rebuild ``results/<profile>/summary.json`` as results land.

    ``force`` re-runs every selected task and trains the selected runs again from scratch.
    """
    from .hardware import resolve_device
    overrides = dict(overrides or {})
    p = profiles.get(profile, **overrides)
    resolve_device(p.device)  # device 'cuda' fails here at once on a machine without a GPU
    every = plan(profile, overrides)
    tasks = select(every, only, step, p)
    stale = [t for t in tasks if force or not is_current(t)]
    kept = [] if force else keep(stale)
    stale = [t for t in stale if t not in kept]
    remade = remade_stages(tasks, stale)
    stale += remade
    stale.sort(key=lambda t: tasks.index(t))
    given = ", ".join(f"{k}={v!r}" for k, v in overrides.items())
    log(f"profile {profile}: {len(tasks)} tasks, {len(tasks) - len(stale)} up to date, {len(stale)} to run"
        + (f"; given on the command line: {given}" if given else ""))
    wiped: set = set()          # --force: the training runs whose checkpoints were deleted already

    def to_wipe() -> frozenset:     # those still to delete (for the time-left estimate)
        return frozenset(t.weights for t in stale if force and t.step == "train") - wiped
    if kept and dry_run:
        log(f"would keep {len(kept)} analyses, made under another training's name from the weights now on disk: "
            + ", ".join(f"{t.dataset}/{t.arch} {t.name}" for t in kept))
    if dry_run and any(t.step == "train" for t in stale) and any(
            analyses_weights(t) and landed(t) and _ledger(t).get(t.name, {}).get("inputs") for t in stale):
        log("(an analysis of a checkpoint still to train is kept instead of run again if the training gives "
            "back the weights it read, bit for bit: decided after training)")
    if stale:
        log(eta_line(stale, to_wipe()))
    for t in remade:
        redo = [u for u in tasks if u.weights == t.weights and u.epoch == t.epoch and analyses_weights(u)
                and u not in stale and landed(u)]
        if redo:
            log(f"{t.dataset}/{t.arch}: checkpoint e{t.epoch} is not on this machine, so training makes it again; "
                f"on another CPU model or thread count the weights differ, and then its {len(redo)} committed "
                f"analyses run again: at most about {_hours(sum(estimate(u) or 0.0 for u in redo))} more than "
                f"the estimate above")
    # two runs of one profile would write the same checkpoints
    with contextlib.nullcontext() if dry_run else exclusive(profile):
        timings, failed = {}, []
        if kept and not dry_run:
            adopt(kept, log)
        for i, t in enumerate(stale, 1):
            label = f"[{i}/{len(stale)}] {t.dataset}/{t.arch} {t.name}"
            if dry_run:
                log(f"would run {label}")
                continue
            blocked = [f for f in failed if f in t.deps or (f.step == "train" and t.weights == f.weights and t.deps)]
            if blocked:
                log(f"✗ {label} skipped: {blocked[0].name} failed")
                failed.append(t)
                continue
            if force and t.step == "train" and t.weights not in wiped:
                shutil.rmtree(t.checkpoint().parent, ignore_errors=True)   # --force: train from scratch
                wiped.add(t.weights)
            log(f"▶ {label}")
            had = t.step != "train" or t.checkpoint().exists()
            try:
                # training prints its own epochs and time left
                with heartbeat(label, estimate(t), log) if t.step != "train" else contextlib.nullcontext():
                    timings[f"{t.dataset}/{t.arch}/{t.name}"] = seconds = execute(t, stream)
            except Exception as e:      # one failed notebook does not stop the other runs of a long profile
                log(f"✗ {label} failed: {str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__}")
                failed.append(t)
                continue
            if t.step == "train":     # a checkpoint remade with other weights makes its analyses stale
                again = [u for u in tasks if u.weights == t.weights and analyses_weights(u) and u not in stale
                         and (not is_current(u) or not had and u.epoch == t.epoch and not _read_weights(u))]
                if again:
                    log(f"  the weights of {', '.join(sorted({f'e{u.epoch}' for u in again}))} differ from those "
                        f"their committed analyses read, or those recorded no weights: {len(again)} task(s) "
                        f"queued again")
                    stale[i:] = sorted(stale[i:] + again, key=tasks.index)
                kept = [] if force else keep([u for u in stale[i:] if u.weights == t.weights])
                if kept:
                    adopt(kept, log)
                    stale[i:] = [u for u in stale[i:] if u not in kept]
                outside = [u for u in every if u not in tasks and u.weights == t.weights and analyses_weights(u)
                           and landed(u) and u.checkpoint().exists() and not is_current(u)]
                same = keep(outside)                    # same weights: kept by the next full run
                outside = [u for u in outside if u not in same]
                if outside:
                    log(f"  {len(outside)} committed analyses outside this selection ("
                        + ", ".join(sorted({u.name for u in outside})) + ") read other weights than those now on "
                        "disk: run again without --step/--only to redo them")
            log(f"✓ {label} ({seconds:.0f} s); " + (eta_line(stale[i:], to_wipe()) if i < len(stale) else "last task"))
            _summarize(profile, log)
        if not dry_run and not stale:
            _summarize(profile, log)
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(stale)} notebooks failed or were skipped: "
                           + ", ".join(f"{t.dataset}/{t.arch} {t.name}" for t in failed)
                           + "; their errors are above (the executed notebook is under .stage/runs)")
    return timings


SUMMARY_TIMEOUT = 600      # seconds


def _summarize(profile: str, log) -> None:
    """Rebuild ``results/<profile>/summary.json`` in a fresh interpreter, so that it is built by the code on disk
    now: a run of many hours imported ``fnlib.summary`` once, and edits made to it since would otherwise be lost
    (a stale summary.json was committed that way once). A failure is logged, never fatal: the results are safe
    and ``python -m fnlib summary`` rebuilds it."""
    import subprocess
    from .summary import has_results, results_root
    if not has_results(results_root(profile)):
        log(f"(no summary yet: no results of profile {profile} under {results_root(profile)})")
        return
    try:            # it reads CSV and JSON files only: seconds; a hang must not stall a run of many hours
        done = subprocess.run([sys.executable, "-m", "fnlib", "summary", "--profile", profile],
                              cwd=results.PROJECT_ROOT, capture_output=True, text=True, timeout=SUMMARY_TIMEOUT)
    except subprocess.TimeoutExpired:
        log(f"warning: summary.json of {profile} was NOT rebuilt (no answer in {SUMMARY_TIMEOUT} s); "
            f"run: python -m fnlib summary --profile {profile}")
        return
    if done.returncode != 0:
        why = (done.stderr.strip() or done.stdout.strip()).splitlines()
        log(f"warning: summary.json of {profile} was NOT rebuilt (exit {done.returncode}): "
            + " | ".join(why[-5:]) + f"; fix it and run: python -m fnlib summary --profile {profile}")
