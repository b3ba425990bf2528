#!/usr/bin/env python
"""Every compute step of one profile's run, called through ``fnlib.steps`` on one device, without papermill.

A check that each step runs on a device (say a lent GPU with its own torch and no Jupyter stack) and what
it gives there, step by step, with its time. Results go to a scratch FNLIB_WORKDIR, never to the project's
results/. Run from the repository root:

    python benchmarks/steps_on_device.py --device cuda --out /tmp/steps-cuda
    python benchmarks/steps_on_device.py --device cpu  --out /tmp/steps-cpu      # the same on this CPU

It writes OUT/steps-<device>.json (per step: ok, seconds, the end of any traceback; the machine) and
OUT/steps-<device>-results.tar.gz (the results files, SPEC §4, to compare between devices), then removes
the scratch folder (``--keep`` keeps it). It needs the real data set in data/ or the mirror. The exit
status is 1 when any step failed.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tarfile
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def plan(profile: str, dataset: str, arch: str) -> list[tuple[str, int, dict]]:
    """One run's steps in the pipeline's own order: (fnlib.steps function, epoch, extra keyword arguments)."""
    from fnlib import pipeline
    try:
        tasks = [t for t in pipeline.plan(profile) if (t.dataset, t.arch) == (dataset, arch)]
    except ValueError as e:                           # an unknown profile: its message lists the allowed ones
        sys.exit(f"error: {e}")
    if not tasks:
        sys.exit(f"error: the {profile} profile has no run {dataset}/{arch}")
    return [(pipeline.STEP_TABLE[t.step].function, t.epoch, {"until": t.epoch} if t.step == "train" else {})
            for t in tasks]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda", help="cuda (default) | cpu | auto")
    ap.add_argument("--profile", default="smoke", help="default smoke (seconds on a GPU, ~3 min on 2 CPU cores)")
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--out", required=True, help="folder for the JSON record and the results archive")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder (results and checkpoints)")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    import torch
    from fnlib import hardware, steps
    try:
        device = hardware.resolve_device(args.device)
    except ValueError as e:                           # before any work: say what to pass instead
        sys.exit(f"error: {e}")
    todo = plan(args.profile, args.dataset, args.arch)
    from fnlib import data
    try:                                              # the data before any work: a missing file names its fix
        data.load(args.dataset, "test", limit=10)
    except data.DataError as e:
        sys.exit(f"error: {e}")
    work = Path(tempfile.mkdtemp(prefix=f"fnlib-steps-{device.type}-"))
    os.environ["FNLIB_WORKDIR"] = str(work)          # read at every call (fnlib.results): scratch results, weights
    where = dict(profile=args.profile, dataset=args.dataset, arch=args.arch, device=str(device))
    record, t_all = [], time.perf_counter()
    for name, epoch, extra in todo:
        t0 = time.perf_counter()
        try:
            getattr(steps, name)(progress=False, epoch=epoch, **where, **extra)
            err = ""
        except Exception:
            err = traceback.format_exc()
        dt = time.perf_counter() - t0
        record.append(dict(step=name, epoch=epoch, ok=not err, seconds=round(dt, 2), error=err[-3000:]))
        print(f"{'PASS' if not err else 'FAIL'} {name} e{epoch} {dt:.1f} s", flush=True)
        if err:
            print(err, flush=True)
    info = dict(where, machine=hardware.describe(device), torch=torch.__version__,
                total_seconds=round(time.perf_counter() - t_all, 2), steps=record)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"steps-{device.type}.json").write_text(json.dumps(info, indent=1))
    if (work / "results").is_dir():                 # absent when every step failed before writing
        with tarfile.open(out / f"steps-{device.type}-results.tar.gz", "w:gz") as tf:
            tf.add(work / "results", arcname="results")
    if args.keep:
        print(f"scratch folder kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    passed = sum(r["ok"] for r in record)
    print(f"{passed}/{len(record)} steps passed in {info['total_seconds']:.0f} s; wrote {out}")
    return 0 if passed == len(record) else 1


if __name__ == "__main__":
    sys.exit(main())
