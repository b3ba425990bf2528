"""Command line: ``python -m fnlib run --profile quick`` runs a profile; ``summary`` rebuilds summary.json."""
import argparse
import sys


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m fnlib", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="execute the notebooks of a profile with papermill (skipping up-to-date steps)")
    r.add_argument("--profile", default="quick", help="smoke | quick | paper (default quick)")
    r.add_argument("--force", action="store_true", help="re-run every step even if nothing changed")
    r.add_argument("--only", help="restrict to one run, e.g. mnist/resnet18 or mnist")
    r.add_argument("--dry-run", action="store_true", help="list the steps that would run")
    s = sub.add_parser("summary", help="rebuild results/<profile>/summary.json from the results files")
    s.add_argument("--profile", default="quick")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "run":
            from .pipeline import run
            timings = run(a.profile, force=a.force, only=a.only, dry_run=a.dry_run)
            if timings:
                print(f"ran {len(timings)} notebooks in {sum(timings.values()):.0f} s")
        else:
            from .summary import build
            out = build(a.profile)
            print(f"wrote summary of {a.profile}: {len(out['rows'])} rows")
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
