"""Executors on Dask: the planner's actions carried out by a Dask cluster instead of one task at a time.

The local executor is :func:`fnlib.pipeline.run`. This module hands the same actions (:func:`fnlib.planner.decide`)
to ``dask.distributed``: a ``LocalCluster`` on this machine (``--executor dask --workers N``), a running
cluster (``--scheduler tcp://HOST:PORT``), or workers started as Slurm jobs by ``dask-jobqueue``
(``--executor slurm``). Dask, not fnlib, does the scheduling, the retries after a lost worker and the
routing of GPU tasks to workers started with ``--resources GPU=1``.

The division of labour:

- The driver (this process) alone holds the profile's lock, decides the actions, wipes checkpoints for
  ``--force``, moves executed notebooks into place and writes ``steps.json``.
- A worker runs one task (:func:`work`): it refuses a task whose code identity differs from the driver's,
  re-decides a ``recheck`` action once the training before it has run, executes the notebook with papermill
  into the staging folder, and returns a record (key, seconds, weights digest, host, device, GPU).
- The work root must be the same folder for every worker (a shared file system on a cluster): each worker
  writes a probe file there before any work and the driver checks that it sees all of them.

Dependencies: a task waits for the steps it reads and for its training stage; the stages of one training
wait for each other (they share a checkpoint folder). Each epoch's analyses depend only on their own stage,
so epoch 10's analyses run while training goes on to 50.
"""
from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

from . import profiles, results
from .planner import Task, code_hash, decide, redecide

NO_WORKERS_TIMEOUT = "60s"      # Dask waits forever by default for a task that needs a resource no worker has


class TaskError(RuntimeError):
    """A task failed on a worker; the message names the step and its staged notebook."""


def probe(work_root: str, token: str) -> str:
    """On a worker: write ``<work root>/.stage/probe/<token>/<host>-<pid>`` and return its name."""
    folder = Path(work_root) / ".stage" / "probe" / token
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{socket.gethostname()}-{os.getpid()}"
    (folder / name).write_text(name)
    return name


def work(t: Task, code: str, work_root: str, recheck: bool, made_before: int | None, *upstream: dict,
         executor: str = "dask") -> dict:
    """Run one task on a worker and return its record. ``upstream``: the records of the tasks it waited for."""
    os.environ["FNLIB_WORKDIR"] = work_root
    from .pipeline import run_notebook
    here = code_hash(t.step)
    if here != code:
        raise TaskError(f"{t.dataset}/{t.arch} {t.name} refused on {socket.gethostname()}: this worker's fnlib "
                        f"code differs from the driver's (code identity {here} ≠ {code}); install the same "
                        "checkout (the same venv) on every worker")
    record = {"name": t.name, "key": t.key, "host": socket.gethostname(), "pid": os.getpid()}
    if recheck:
        ran = [r["task"] for r in upstream if r.get("action") == "run"]
        adopted = [r["task"] for r in upstream if r.get("action") == "adopt"]
        ckpt = t.checkpoint()
        made_now = (ckpt.stat().st_mtime_ns if ckpt.exists() else None) != made_before
        action = redecide(t, made_now, adopted, ran)
        if action != "run":
            return dict(record, action=action, task=t)
    from .pipeline import where
    try:
        stage, seconds, peak = run_notebook(t, stream=False)
    except Exception as e:                  # a short, picklable message: the step, the error, its notebook
        from .pipeline import stage_path
        what = f"{e.ename}: {e.evalue}" if hasattr(e, "ename") else f"{type(e).__name__}: {e}"
        raise TaskError(f"{what[:500]} (on {socket.gethostname()}; executed notebook: {stage_path(t)})") from None
    record.update(action="run", task=t, stage=str(stage), seconds=seconds, where=dict(where(t, executor), **peak))
    return record


def check_workers(client, work_root: Path, needs_gpu: bool) -> list[str]:
    """Before any work: every worker sees the work root, and a GPU task has a worker that offers ``GPU``."""
    info = client.scheduler_info()
    workers = info.get("workers", {})
    if not workers:
        raise RuntimeError("the Dask cluster has no worker: start some (dask worker tcp://HOST:PORT --nthreads 1)")
    token = uuid.uuid4().hex
    try:
        names = client.run(probe, str(work_root), token)
    except Exception as e:
        raise RuntimeError(f"a worker could not write to the work root {work_root} ({e}); every worker must see "
                           "the same folder (a shared file system), at the same path") from None
    folder = work_root / ".stage" / "probe" / token
    seen = {p.name for p in folder.iterdir()} if folder.exists() else set()
    missing = sorted(f"{addr} ({name})" for addr, name in names.items() if name not in seen)
    for p in folder.glob("*") if folder.exists() else ():
        p.unlink()
    if folder.exists():
        folder.rmdir()
    if missing:
        raise RuntimeError(f"the driver does not see the probe files of worker(s) {', '.join(missing)} under "
                           f"{work_root}: they write to another folder. Give every worker the same work root "
                           "(a shared file system mounted at the same path, --workdir or $FNLIB_WORKDIR)")
    if needs_gpu and not any(w.get("resources", {}).get("GPU") for w in workers.values()):
        raise RuntimeError("this profile's device is cuda, but no Dask worker offers a GPU: start GPU workers with "
                           "--resources GPU=1 (Slurm: --gpus-per-job 1), or run with --device cpu")
    return list(workers)


def resources(t: Task, p: profiles.Profile) -> dict | None:
    """What ``t`` asks of a Dask worker: ``GPU=1`` where the profile's device is cuda and the step uses it."""
    from .steptable import STEPS
    return {"GPU": 1} if p.device.startswith("cuda") and STEPS[t.step].resources.gpu else None


def run(connect, profile: str, force: bool = False, only: str | None = None, step: list[str] | None = None,
        overrides: dict | None = None, log=print, executor: str = "dask", epochs: list[int] | None = None) -> dict:
    """Carry out the planner's actions on a Dask cluster; return ``{task: seconds}`` of what ran.

    ``connect``: a ``distributed.Client``, or a function that makes one (called only when there is work)."""
    import shutil

    import dask
    from distributed import as_completed

    from .pipeline import _summarize, adopt, exclusive, failures, finish
    overrides = dict(overrides or {})
    p = profiles.get(profile, **overrides)
    actions = decide(profile, overrides, only, step, force, epochs)
    refused = [a for a in actions if a.what == "refuse"]
    for a in refused:
        log(f"✗ {a.task.dataset}/{a.task.arch} {a.task.name} refused: {a.why}")
    if refused:
        raise RuntimeError(f"{len(refused)} task(s) cannot run in this selection (see above); nothing was run")
    todo = [a for a in actions if a.what == "run" or a.recheck]
    if not todo:
        log(f"profile {profile}: {len(actions)} tasks, all up to date")
        return {}
    needs_gpu = any(resources(a.task, p) for a in todo)   # "auto" uses a GPU where the worker has one: needs none
    work_root = results.work_root()
    client = connect() if callable(connect) else connect
    workers = check_workers(client, work_root, needs_gpu)
    log(f"profile {profile}: {len(actions)} tasks, {sum(a.what == 'run' for a in actions)} to run, on "
        f"{len(workers)} Dask worker(s) ({executor}); work root {work_root}")
    code = {s: code_hash(s) for s in {a.task.step for a in todo}}
    timings, failed = {}, []
    with exclusive(profile), dask.config.set({"distributed.scheduler.no-workers-timeout": NO_WORKERS_TIMEOUT}):
        adopt([a.task for a in actions if a.what == "adopt"], log)
        if force:
            for w in {a.task.weights for a in todo if a.task.step == "train"}:
                t = next(a.task for a in todo if a.task.weights == w)
                shutil.rmtree(t.checkpoint().parent, ignore_errors=True)
        futures, last_stage, token = {}, {}, uuid.uuid4().hex[:8]     # keys of this run only: no cached error
        for i, a in enumerate(todo):
            t = a.task
            waits = [futures[d.key] for d in t.deps if d.key in futures]
            if t.step == "train" and t.weights in last_stage:
                waits.append(last_stage[t.weights])             # stages of one training: in order
            ckpt = t.checkpoint()
            made_before = ckpt.stat().st_mtime_ns if ckpt.exists() else None
            fut = client.submit(work, t, code[t.step], str(work_root), a.recheck, made_before, *waits, executor=executor,
                                key=f"{t.name}-{t.dataset}-{t.arch}-{t.key}-{token}", priority=len(todo) - i,
                                resources=resources(t, p), pure=False)
            futures[t.key] = fut
            if t.step == "train":
                last_stage[t.weights] = fut
        by_future = {f.key: a for a, f in zip(todo, futures.values())}
        for fut in as_completed(list(futures.values())):
            a = by_future[fut.key]
            t = a.task
            label = f"{t.dataset}/{t.arch} {t.name}"
            try:
                rec = fut.result()
            except Exception as e:
                blocked = [f for f in failed if f in t.deps or (f.step == "train" and f.weights == t.weights)]
                why = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
                log(f"✗ {label} skipped: {blocked[0].name} failed" if blocked else f"✗ {label} failed: {why}")
                failed.append(t)
                continue
            if rec["action"] == "adopt":
                adopt([t], log)
            elif rec["action"] == "run":
                finish(t, Path(rec["stage"]), rec["seconds"], extra=rec["where"])
                timings[f"{t.dataset}/{t.arch}/{t.name}"] = rec["seconds"]
                log(f"✓ {label} ({rec['seconds']:.0f} s on {rec['where']['host']}, {rec['where']['device']})")
        _summarize(profile, log)
    if failed:
        raise failures(failed, sum(a.what == "run" for a in todo))
    return timings


def client_for(executor: str, workers: int | None = None, scheduler: str | None = None, partition: str | None = None,
               jobs: int | None = None, walltime: str | None = None, gpus_per_job: int | None = None,
               memory: str | None = None, cores: int | None = None, start_timeout: float = 300):
    """A ``distributed.Client`` for ``--executor dask`` (a LocalCluster, or ``scheduler``) or ``slurm``."""
    from distributed import Client, LocalCluster
    if executor == "dask":
        if scheduler:
            return Client(scheduler)
        cluster = LocalCluster(n_workers=workers or 2, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        return Client(cluster)
    if executor == "slurm":
        from dask_jobqueue import SLURMCluster
        memory, cores = memory or "8GB", cores or 2
        if not (partition and walltime):
            raise ValueError("--executor slurm needs --partition and --walltime")
        lifetime = _seconds(walltime) - 120        # leave the job before Slurm kills it: its task is retried
        extra = [f"--gres=gpu:{gpus_per_job}"] if gpus_per_job else []
        logs = results.work_root() / ".stage" / "slurm"          # the worker jobs' own output files
        logs.mkdir(parents=True, exist_ok=True)
        cluster = SLURMCluster(queue=partition, cores=cores, processes=1, memory=memory, walltime=walltime,
                               job_extra_directives=extra, log_directory=str(logs),
                               worker_extra_args=["--nthreads", "1", "--lifetime", f"{max(lifetime, 60)}s",
                                                  *(["--resources", f"GPU={gpus_per_job}"] if gpus_per_job else [])])
        cluster.scale(jobs=jobs or 1)
        client = Client(cluster)
        try:
            client.wait_for_workers(1, timeout=start_timeout)
        except TimeoutError:
            client.close()
            cluster.close()
            raise RuntimeError(f"no Slurm worker job started within {start_timeout} s (partition {partition}, "
                               f"{cores} cores, {memory}, walltime {walltime}"
                               + (f", {gpus_per_job} GPU(s)" if gpus_per_job else "") + "): see squeue and the "
                               "slurmctld log; a job that asks for more than a node has is refused") from None
        return client
    raise ValueError(f"unknown executor {executor!r}; allowed: local, dask, slurm")


def _seconds(hms: str) -> int:
    parts = [int(x) for x in hms.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0)
    h, m, s = parts[-3:]
    return h * 3600 + m * 60 + s
