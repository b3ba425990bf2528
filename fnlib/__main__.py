"""Command line of fnlib: run a profile's notebooks, list the profiles, rebuild a summary."""
import argparse
import os
import sys

from .steptable import NOTEBOOKS as STEP_NOTEBOOKS

EPILOG = """\
environment variables:
  FNLIB_WORKDIR       write results, checkpoints and executed notebooks under this folder instead of the
                      project (same as --workdir); the committed files are then never touched
  FNLIB_DATA_MIRROR   the offline data mirror (default: ../shared/data beside the project)
  FNLIB_PROFILE       the profile the book renders (make html / jupyter-book build)
  OMP_NUM_THREADS     CPU threads (the Makefile sets 2); results depend on it in the last digits
  ONEDNN_MAX_CPU_ISA  cap oneDNN's instruction set, e.g. AVX2 (also turns bf16 training off)

where outputs go (under the work root: the project, or --workdir):
  results/<profile>/<dataset>/<arch>/...        results files (SPEC §4) and summary.json
  checkpoints/<profile>/<dataset>/<arch>/<id>/  weights (git-ignored), <id> names everything that made them
  book/runs/<profile>/<dataset>-<arch>/         executed notebooks (the book's appendix)

examples:
  python -m fnlib run --profile quick
  python -m fnlib run --profile paper --device cpu --only cifar10/resnet50
  python -m fnlib run --profile smoke --set filter_mode=clamp --step filter --workdir /tmp/try
  python -m fnlib profiles
"""


def main(argv=None) -> int:
    for stream in (sys.stdout, sys.stderr):   # progress shows at once, also through a pipe or into a log file
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(line_buffering=True)
    ap = argparse.ArgumentParser(prog="python -m fnlib", description=__doc__, epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="execute a profile's notebooks with papermill (skipping up-to-date steps)",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("--profile", default="quick", help="smoke | quick | paper (default quick)")
    r.add_argument("--device", help="auto | cpu | cuda (default: the profile's, auto)")
    r.add_argument("--workdir", help="write everything under this folder (also $FNLIB_WORKDIR)")
    r.add_argument("--step", action="append", help="run only this step (repeatable): "
                                                    + ", ".join(STEP_NOTEBOOKS))
    r.add_argument("--only", help="restrict to one run, e.g. mnist/resnet18, or a data set or an arch")
    r.add_argument("--epoch", action="append", type=int, help="restrict to this checkpoint epoch (repeatable): "
                                                              "its analyses, and training up to it")
    r.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="change one profile setting, e.g. --set test_limit=200 --set epochs=1,2 "
                        "(see python -m fnlib profiles); only the steps that read it re-run")
    r.add_argument("--force", action="store_true", help="re-run the selected steps; training starts from scratch")
    r.add_argument("--dry-run", action="store_true", help="print every task's action (run, keep, adopt, refuse) "
                                                          "and why; run nothing")
    x = r.add_argument_group("executors", "where the tasks run (default: here, one at a time)")
    x.add_argument("--executor", choices=("local", "dask", "slurm"), default="local",
                   help="local: one task at a time in this process; dask: a Dask cluster (a LocalCluster of "
                        "--workers, or --scheduler); slurm: Dask workers as Slurm jobs (dask-jobqueue)")
    x.add_argument("--workers", type=int, help="dask: workers of the LocalCluster (default 2), one task each")
    x.add_argument("--scheduler", help="dask: join a running cluster, e.g. tcp://HOST:8786")
    x.add_argument("--partition", help="slurm: the partition of the worker jobs")
    x.add_argument("--jobs", type=int, help="slurm: worker jobs (default 1)")
    x.add_argument("--walltime", help="slurm: HH:MM:SS of each worker job")
    x.add_argument("--gpus-per-job", type=int, help="slurm: GPUs of each worker job (its worker offers GPU=N)")
    x.add_argument("--job-memory", help="slurm: memory of each worker job (default 8GB)")
    x.add_argument("--job-cores", type=int, help="slurm: cores of each worker job (default 2)")
    rp = sub.add_parser("replay", help="train a finished run again to bring back its checkpoints, and check each "
                                       "against the weights digest its analyses recorded (no results file is touched)")
    rp.add_argument("--profile", default="paper")
    rp.add_argument("--only", required=True, help="the run, e.g. mnist/resnet18")
    rp.add_argument("--until", type=int, help="the last checkpoint epoch to make (default: the run's last)")
    rp.add_argument("--workdir", help="as for run")
    sub.add_parser("profiles", help="print every profile's settings")
    s = sub.add_parser("summary", help="rebuild results/<profile>/summary.json from the results files")
    s.add_argument("--profile", default="quick")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "profiles":
            from .profiles import PROFILES, describe
            print("\n\n".join(describe(p) for p in PROFILES.values()))
        elif a.cmd == "run":
            if a.workdir:
                os.environ["FNLIB_WORKDIR"] = os.path.abspath(a.workdir)
            from . import results
            from .pipeline import run
            from .profiles import parse_settings
            overrides = parse_settings(a.set)
            if a.device:
                overrides["device"] = a.device
            if a.executor != "local" and not a.dry_run:
                from .executors import client_for
                from .executors import run as run_on
                if a.workers is not None and a.workers < 1:
                    raise ValueError("--workers must be ≥ 1")
                if a.executor == "slurm" and not (a.partition and a.walltime):
                    raise ValueError("--executor slurm needs --partition P and --walltime HH:MM:SS")
                clients = []

                def connect():
                    clients.append(client_for(a.executor, workers=a.workers, scheduler=a.scheduler,
                                              partition=a.partition, jobs=a.jobs, walltime=a.walltime,
                                              gpus_per_job=a.gpus_per_job, memory=a.job_memory,
                                              cores=a.job_cores))
                    return clients[-1]
                try:
                    timings = run_on(connect, a.profile, force=a.force, only=a.only, step=a.step,
                                     overrides=overrides, executor=a.executor, epochs=a.epoch)
                finally:
                    for c in clients:
                        cluster = getattr(c, "cluster", None)
                        c.close()
                        if cluster is not None:
                            cluster.close()
            else:
                timings = run(a.profile, force=a.force, only=a.only, dry_run=a.dry_run, step=a.step,
                              overrides=overrides, epochs=a.epoch)
            root = results.work_root()
            print(f"ran {len(timings)} notebooks in {sum(timings.values()):.0f} s" if timings else
                  "dry run: nothing executed" if a.dry_run else "nothing to run")
            if not a.dry_run:
                print(f"results:   {root / 'results' / a.profile}\nnotebooks: {root / 'book' / 'runs' / a.profile}\n"
                      f"weights:   {root / 'checkpoints' / a.profile}")
        elif a.cmd == "replay":
            if a.workdir:
                os.environ["FNLIB_WORKDIR"] = os.path.abspath(a.workdir)
            from .replay import replay
            if a.only.count("/") != 1:
                raise ValueError(f"--only wants dataset/arch, e.g. mnist/resnet18; got {a.only!r}")
            outcome = replay(a.profile, *a.only.split("/"), until=a.until)
            return 0 if all(o["match"] or not o["recorded"] for o in outcome.values()) else 1
        else:
            from .summary import build
            out = build(a.profile)
            print(f"wrote summary of {a.profile}: {len(out['rows'])} rows")
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
