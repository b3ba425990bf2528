"""Run a whole profile: every notebook, for every (dataset, arch) and epoch, through papermill (the local executor).

What runs, and why, is :mod:`fnlib.planner`'s decision; this module carries it out one task at a time.

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
import itertools
import os
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path

from . import profiles, results
from .planner import (NOTEBOOKS, ROOT, STEP_NOTEBOOKS, STEP_TABLE, STEPS, Action, Task, _digest_file,  # noqa: F401
                      _ledger, _read_ledger, _read_weights, _torch_version, analyses_weights, code_hash, decide,
                      field_value, is_current, keep, landed, ledger_path, plan, redecide, remade_stages, reusable,
                      runs_root, select, weights_changed, weights_digest)




def stage_root() -> Path:
    """Where notebooks execute before they move into place, and where a run's lock lives."""
    return results.work_root() / ".stage"


HEARTBEAT_S = 600      # how often a long notebook says it is still running


def _same_arch_first(t: Task) -> list[Path]:
    """The run folders of ``t``'s profile and arch: its own data set first, then the others; then, for a seed
    replicate or schedule of another profile (its folder under that one's, e.g. ``paper/seed1``), that profile's,
    whose steps take about as long on the same arch."""
    p = profiles.get(t.profile, **t.overrides)
    order = sorted(p.datasets, key=lambda d: d != t.dataset)
    parents = [q.name for q in profiles.PROFILES.values()
               if "/" in p.folder and q.folder == p.folder.rsplit("/", 1)[0]]
    return [results.run_dir(name, d, t.arch) for name in (t.profile, *parents) for d in order]


def past_seconds(t: Task) -> float | None:
    """The median time this step took in the runs recorded for the same profile and arch (this data set's
    ``steps.json`` first, else another data set's, any epoch; then the main profile's, for a replicate): the basis
    of the time-left estimates. None for training (see :func:`estimate`) and for a step with no recorded run."""
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
    stage, seconds, peak = run_notebook(t, stream)
    finish(t, stage, seconds, dict(where(t, "local"), **peak))
    return seconds


def where(t: Task, executor: str) -> dict:
    """Where ``t`` ran, as its ledger entry records it: the executor, the host, the device and the GPU model."""
    import socket

    from .hardware import resolve_device
    device = resolve_device(profiles.get(t.profile, **t.overrides).device)
    out = {"executor": executor, "host": socket.gethostname(), "device": str(device)}
    if device.type == "cuda":
        import torch
        out["gpu"] = torch.cuda.get_device_name(device)
    return out


def run_notebook(t: Task, stream: bool = True) -> tuple[Path, float, dict]:
    """Execute ``t``'s notebook into the staging folder (where a worker runs it); return the path, the seconds
    and ``{"peak_rss_gib": …}``, the kernel's peak resident memory (:mod:`fnlib.peakmem`; empty if unread)."""
    import papermill

    from .peakmem import PeakMemory
    stage = stage_path(t)
    stage.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with PeakMemory() as mem:
        papermill.execute_notebook(str(t.notebook), str(stage), parameters=t.parameters, kernel_name="python3",
                                   cwd=str(ROOT), progress_bar=False, log_output=False,
                                   stdout_file=sys.stdout if stream else None,
                                   stderr_file=sys.stderr if stream else None)
    seconds = time.perf_counter() - t0
    retitle(stage, t)
    return stage, seconds, ({} if mem.peak_gib is None else {"peak_rss_gib": round(mem.peak_gib, 2)})


def settled(text: str) -> str:
    """``text`` as a terminal leaves it: of each line, what follows its last carriage return. A progress bar
    that redraws itself hundreds of times in a captured stream becomes its final state, one line."""
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))


def settle_streams(nb) -> bool:
    """Merge each cell's consecutive outputs of one stream (a kernel sends every redraw of a progress bar as its
    own message) and keep their :func:`settled` text; whether anything changed."""
    changed = False
    for cell in nb.cells:
        merged = []
        for out in cell.get("outputs", []):
            last = merged[-1] if merged else None
            if out.get("output_type") == "stream" and last is not None and last.get("output_type") == "stream" \
                    and last.name == out.name and "\r" in last.text + out.text:
                last.text, changed = last.text + out.text, True
            else:
                merged.append(out)
        for out in merged:
            if out.get("output_type") == "stream" and "\r" in out.text:
                out.text, changed = settled(out.text), True
        if changed:
            cell.outputs = merged
    return changed


def stage_path(t: Task) -> Path:
    """Where ``t``'s notebook executes before it moves into place (and stays, with its error, if it fails)."""
    return stage_root() / "runs" / t.output.relative_to(runs_root())


def finish(t: Task, stage: Path, seconds: float, extra: dict | None = None) -> None:
    """Move an executed notebook into place and enter it in the ledger (the driver's part of a task)."""
    t.output.parent.mkdir(parents=True, exist_ok=True)
    os.replace(stage, t.output)
    record(t, seconds, extra)


def record(t: Task, seconds: float, extra: dict | None = None) -> None:
    """Enter ``t``, just run, in its run's ledger ``steps.json``: its key and run time; for an analysis the
    ``inputs`` it was made from (:func:`reusable`); the digest of the weights it read or made; ``extra``
    (where it ran: executor, host, device, GPU)."""
    ledger = _ledger(t)
    ledger[t.name] = {"key": t.key, "seconds": round(seconds, 1), **(extra or {})}
    if analyses_weights(t):
        ledger[t.name]["inputs"] = t.inputs
    if t.step != "csg" and t.checkpoint().exists():    # what the analyses read, or what training made
        with contextlib.suppress(Exception):        # the notebook read it; a digest failure only costs the check
            ledger[t.name]["weights"] = weights_digest(t.checkpoint())
    results.write_json(ledger, ledger_path(t))


def retitle(path: Path, t: Task) -> None:
    """Name the run in the executed notebook's title, so the book's appendix tells the epochs apart; leave each
    progress bar in its final state (:func:`settle_streams`)."""
    import nbformat
    nb = nbformat.read(str(path), as_version=4)
    changed = settle_streams(nb)
    first = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    what = f"until epoch {t.epoch}" if t.step == "train" else f"epoch {t.epoch}"
    tag = f" ({t.profile}: {t.dataset}/{t.arch}, {what})"
    if first is not None and first.source.startswith("# ") and tag not in first.source:
        head, _, rest = first.source.partition("\n")
        first.source, changed = head + tag + ("\n" + rest if rest else ""), True
    if changed:
        nbformat.write(nb, str(path))


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
        step: list[str] | None = None, overrides: dict | None = None, stream: bool = True,
        epochs: list[int] | None = None) -> dict:
    """Carry out :func:`fnlib.planner.decide`'s actions one task at a time (the local executor); rebuild
    ``results/<profile>/summary.json`` as results land. ``dry_run`` prints the actions and runs nothing.

    ``force`` re-runs every selected task and trains the selected runs again from scratch.
    """
    from .hardware import resolve_device
    overrides = dict(overrides or {})
    p = profiles.get(profile, **overrides)
    resolve_device(p.device)  # device 'cuda' fails here at once on a machine without a GPU
    actions = decide(profile, overrides, only, step, force, epochs)
    tasks = [a.task for a in actions]
    todo = [a for a in actions if a.what == "run" or a.recheck]
    stale = [a.task for a in actions if a.what == "run"]
    adopted = [a.task for a in actions if a.what == "adopt"]
    refused = [a for a in actions if a.what == "refuse"]
    given = ", ".join(f"{k}={v!r}" for k, v in overrides.items())
    log(f"profile {profile}: {len(tasks)} tasks, {len(tasks) - len(stale)} up to date, {len(stale)} to run"
        + (f"; given on the command line: {given}" if given else ""))
    for a in refused:
        log(f"✗ {a.task.dataset}/{a.task.arch} {a.task.name} refused: {a.why}")
    if refused and not dry_run:
        raise RuntimeError(f"{len(refused)} task(s) cannot run in this selection (see above); nothing was run")
    if adopted and dry_run:
        log(f"would keep {len(adopted)} analyses, made under another training's name from the weights now on disk: "
            + ", ".join(f"{t.dataset}/{t.arch} {t.name}" for t in adopted))
    if dry_run and any(a.recheck and a.what == "run" and "kept instead" in a.why for a in actions):
        log("(an analysis of a checkpoint still to train is kept instead of run again if the training gives "
            "back the weights it read, bit for bit: decided after training)")
    wiped: set = set()          # --force: the training runs whose checkpoints were deleted already

    def to_wipe() -> frozenset:     # those still to delete (for the time-left estimate)
        return frozenset(t.weights for t in stale if force and t.step == "train") - wiped
    if stale:
        log(eta_line(stale, to_wipe()))
    for a in actions:
        t = a.task
        if a.what == "run" and "not on this machine" in a.why:
            redo = [u for u in tasks if u.weights == t.weights and u.epoch == t.epoch and analyses_weights(u)
                    and u not in stale and landed(u)]
            if redo:
                log(f"{t.dataset}/{t.arch}: checkpoint e{t.epoch} is not on this machine, so training makes it again; "
                    f"on another CPU model or thread count the weights differ, and then its {len(redo)} committed "
                    f"analyses run again: at most about {_hours(sum(estimate(u) or 0.0 for u in redo))} more than "
                    f"the estimate above")
    if dry_run:
        whys = {a.task.key: a.why for a in actions}
        for i, t in enumerate(stale, 1):
            log(f"would run [{i}/{len(stale)}] {t.dataset}/{t.arch} {t.name}: {whys[t.key]}")
        counts = {w: sum(a.what == w for a in actions) for w in ("keep", "adopt", "run", "refuse")}
        log("plan: " + ", ".join(f"{w} {n}" for w, n in counts.items()))
        return {}
    before = {str(t.checkpoint()): _mtime(t.checkpoint()) for t in tasks}    # to tell checkpoints made by this run
    timings, failed, pending, executed = {}, [], [], []
    with exclusive(profile):            # two runs of one profile would write the same checkpoints
        if adopted:
            adopt(adopted, log)
        n = 0
        for a in todo:
            t = a.task
            if a.recheck:
                what = redecide(t, _mtime(t.checkpoint()) != before[str(t.checkpoint())], pending, executed)
                if what == "adopt":
                    pending.append(t)
                    continue
                if what == "keep":
                    continue
                if a.what != "run":
                    stale.append(t)
                    log(f"  the weights of e{t.epoch} differ from those {t.name} read, or it recorded none: "
                        "queued again")
            if pending:
                adopt(pending, log)
                pending = []
            n += 1
            label = f"[{n}/{len(stale)}] {t.dataset}/{t.arch} {t.name}"
            blocked = [f for f in failed if f in t.deps or (f.step == "train" and t.weights == f.weights and t.deps)]
            if blocked:
                log(f"✗ {label} skipped: {blocked[0].name} failed")
                failed.append(t)
                continue
            if force and t.step == "train" and t.weights not in wiped:
                shutil.rmtree(t.checkpoint().parent, ignore_errors=True)   # --force: train from scratch
                wiped.add(t.weights)
            log(f"▶ {label}")
            try:
                # training prints its own epochs and time left
                with heartbeat(label, estimate(t), log) if t.step != "train" else contextlib.nullcontext():
                    timings[f"{t.dataset}/{t.arch}/{t.name}"] = seconds = execute(t, stream)
                executed.append(t)
            except Exception as e:      # one failed notebook does not stop the other runs of a long profile
                log(f"✗ {label} failed: {str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__}")
                failed.append(t)
                continue
            if t.step == "train":
                _report_outside(t, tasks, log)
            rest = [u.task for u in todo[todo.index(a) + 1:] if u.what == "run"]
            peak = _ledger(t).get(t.name, {}).get("peak_rss_gib")
            log(f"✓ {label} ({seconds:.0f} s" + (f", peak memory {peak:.2f} GiB" if peak else "") + "); "
                + (eta_line(rest, to_wipe()) if rest else "last task"))
            _summarize(profile, log)
        if pending:
            adopt(pending, log)
        if not stale:
            _summarize(profile, log)
    if failed:
        raise failures(failed, len(stale))
    return timings


def failures(failed: list[Task], total: int) -> RuntimeError:
    """The error that ends a run in which tasks failed (or were skipped after a failure), naming them."""
    return RuntimeError(f"{len(failed)} of {total} task(s) failed or were skipped: "
                        + ", ".join(f"{t.dataset}/{t.arch} {t.name}" for t in failed)
                        + f"; their errors are above (their executed notebooks are under {stage_root() / 'runs'}); "
                          "the next run re-runs only what failed")


def _mtime(path: Path) -> int | None:
    return path.stat().st_mtime_ns if path.exists() else None


def _report_outside(t: Task, tasks: list[Task], log) -> None:
    """After training stage ``t``: say which committed analyses outside the selection now read other weights."""
    every = plan(t.profile, t.overrides)
    outside = [u for u in every if u.key not in {v.key for v in tasks} and u.weights == t.weights
               and analyses_weights(u) and landed(u) and u.checkpoint().exists() and not is_current(u)]
    same = keep(outside)                    # the same weights: kept by the next full run
    outside = [u for u in outside if u not in same]
    if outside:
        log(f"  {len(outside)} committed analyses outside this selection ("
            + ", ".join(sorted({u.name for u in outside})) + ") read other weights than those now on "
            "disk: run again without --step/--only to redo them")


SUMMARY_TIMEOUT = 600      # seconds


def _summarize(profile: str, log) -> None:
    """Rebuild ``results/<profile>/summary.json`` in a fresh interpreter, so that it is built by the code on disk
    now: a run of many hours imported ``fnlib.summary`` once, and edits made to it since would otherwise be lost
    (a stale summary.json was committed that way once). A failure is logged, never fatal: the results are safe
    and ``python -m fnlib summary`` rebuilds it."""
    import subprocess
    from .summary import has_results, results_root
    if results.folder(profile) != profile:      # a replicate or schedule: its numbers go into the main summary
        from .profiles import PROFILES
        parent = results.folder(profile).rsplit("/", 1)[0]
        main = next((n for n, p in PROFILES.items() if p.folder == parent), None)
        if main is None:
            log(f"(profile {profile} is a variant under results/{results.folder(profile)}: no summary of its own)")
            return
        log(f"(profile {profile} is a variant of {main}: rebuilding {main}'s summary, which carries its numbers)")
        profile = main
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
