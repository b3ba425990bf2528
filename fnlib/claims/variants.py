"""Every claims row judged again on the seed replicates and on the separately trained schedules (rules ``seeds``
and ``schedule`` of :mod:`.rules`, frozen on 2026-12-07 before any replicate or schedule result existed).

The row builders are the main profile's, run unchanged on each variant's results folder (``results/paper/seed1``,
``results/paper/sched10``, ...), so a row means the same thing on every network. Then:

* **seeds** -- once seeds 0, 1 and 2 of a row's checkpoints have all landed, the row's verdict is the verdict
  over the three networks: reproduced if the row's rule reproduces the claim on each, not reproduced if on none,
  inconclusive otherwise. Seed 0's verdict stays beside it (``seed0_verdict``). Until then the row keeps seed 0's
  verdict and ``over_seeds`` says how many seeds have landed.
* **schedule** -- a row that reads epoch E is judged again on the model trained on a schedule of E epochs
  (``over_schedules``); where that verdict differs, the row's reason says so. It never replaces the main verdict.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from .. import profiles
from . import sensitivity
from .verdict import Verdict

SEEDS = (0, 1, 2)


def over_seeds(verdicts: dict[int, str]) -> Verdict:
    """The ``seeds`` rule: unanimity over the seeds of :data:`SEEDS`; pending while any has no verdict yet."""
    vs = {s: Verdict.of(verdicts[s]) for s in SEEDS if s in verdicts}
    if len(vs) < len(SEEDS) or any(not v.decided for v in vs.values()):
        return Verdict.PENDING
    if all(v is Verdict.REPRODUCED for v in vs.values()):
        return Verdict.REPRODUCED
    if all(v is Verdict.NOT for v in vs.values()):
        return Verdict.NOT
    return Verdict.INCONCLUSIVE


def _same_scope(a: dict, b: dict) -> bool:
    sa, sb = a.get("scope") or {}, b.get("scope") or {}
    return bool(sa.get("epochs")) and sa.get("epochs") == sb.get("epochs") and sa.get("runs") == sb.get("runs")


def _seeds_text(verdicts: dict[int, str]) -> str:
    by: dict[str, list[int]] = {}
    for s in sorted(verdicts):
        by.setdefault(Verdict.of(verdicts[s]).value, []).append(s)
    return "; ".join(f"{v} for seed{'s' if len(ss) > 1 else ''} {', '.join(map(str, ss))}" for v, ss in by.items())


def seeds_reading(r: dict) -> None:
    """Row ``r``'s ``seeds`` entry in its sensitivity (rule seeds), from its ``over_seeds``: measured once three
    seeds have judged it, pending while they (or the row's own results) land, unavailable where no other seed
    will judge it (why), or for a row without a verdict to compare. Unlike the other entries, whose ``flips``
    compares with the row's verdict, this one compares the verdict over the seeds (now the row's) with seed 0's
    alone."""
    o = r.get("over_seeds")
    if not o and Verdict.of(r["verdict"]) is Verdict.PENDING:
        reading = sensitivity.pending("seeds", "pending: the row's own results have not landed")
    elif not o:
        reading = sensitivity.unavailable("seeds", "no verdict to judge again on other seeds" if not
                                          Verdict.of(r["verdict"]).decided else "it reads no trained network"
                                          if not (r.get("scope") or {}).get("epochs") else
                                          "no seed replicate has judged it")
    elif o.get("planned") is False:
        reading = sensitivity.unavailable("seeds", o["why"])
    else:
        per = ", ".join(f"seed {s} {v}" for s, v in o["verdicts"].items())
        if o["verdict"] == Verdict.PENDING.value:
            reading = sensitivity.pending("seeds", f"{per}; pending ({o['landed']} of {len(SEEDS)} seeds landed)")
        else:
            reading = sensitivity.reading("seeds", f"{per}; over the seeds: {o['verdict']}", verdict=o["verdict"],
                                          row_verdict=r.get("seed0_verdict", r["verdict"]))
    r["sensitivity"] = (r.get("sensitivity") or {}) | {"seeds": reading}


def schedule_reading(r: dict, own: dict[int, dict], sched_profiles: dict[int, tuple]) -> None:
    """Row ``r``'s ``schedule`` entry in its sensitivity (rule schedule), for a row that reads one checkpoint E of
    runs that a schedule variant of E epochs trains (``sched_profiles``: E → (profile, results folder)): measured
    where that variant's row has a verdict (``own``), pending until its checkpoints land, unavailable where they
    have landed without what the row reads (the variant does not run that step). Rows reading several
    checkpoints, or a checkpoint no variant ends at, get none."""
    scope = r.get("scope") or {}
    epochs, runs = scope.get("epochs") or [], scope.get("runs") or []
    if len(epochs) != 1 or epochs[0] not in sched_profiles or not runs:
        return
    c, (p, folder) = epochs[0], sched_profiles[epochs[0]]
    if not all(tuple(run.split("/")) in set(p.runs()) for run in runs):
        return
    label = f"trained on a {c}-epoch schedule of its own"
    if c in own:
        x = own[c]
        ours = f" ours {x['ours']:g}," if x.get("ours") is not None else ""
        reading = sensitivity.reading("schedule", f"{label}:{ours} {Verdict.of(x['verdict']).value}",
                                      verdict=x["verdict"], ours=x.get("ours"), row_verdict=r["verdict"])
    elif all(landed(p, folder, *run.split("/"), c) for run in runs):
        reading = sensitivity.unavailable("schedule", f"{label}: {p.name} does not run the step this row reads")
    else:
        reading = sensitivity.pending("schedule", f"{label}: pending ({p.name} has not landed "
                                                  f"{', '.join(runs)} @{c})")
    r["sensitivity"] = (r.get("sensitivity") or {}) | {"schedule": reading}


def landed(p: profiles.Profile, folder: Path, dataset: str, arch: str, epoch: int) -> bool:
    """Whether every step that variant ``p`` runs at checkpoint ``epoch`` of ``dataset/arch`` has written all its
    files under ``folder`` (not only the first ones: a row must not be called unreachable between two steps)."""
    from ..steptable import STEPS
    edir = Path(folder) / dataset / arch / f"e{epoch}"
    return all((edir / out).exists() for st in STEPS.values() if st.level == "epoch" and st.runs_at(p, arch, epoch)
               for out in st.outputs)


def _not_planned(r: dict, trained: set, seed_folders: dict[int, tuple]) -> str | None:
    """Why no other seed will ever judge row ``r``, or None while one may: the seed replicates do not train one of
    its checkpoints, or every step they run has landed at all of them (:func:`landed`) and still gives the row no
    verdict (they do not run the step it reads, such as the filter). ``seed_folders``: seed → (profile, folder)."""
    scope = r.get("scope") or {}
    points = [(*run.split("/"), e) for run in scope.get("runs") or [] for e in scope.get("epochs") or []]
    if not points:
        return None
    missing = [f"{d}/{a} @{e}" for d, a, e in points if (d, a, e) not in trained]
    if missing:
        return f"the seed replicates do not train {', '.join(missing)}"
    if seed_folders and all(landed(p, f, d, a, e) for p, f in seed_folders.values() for d, a, e in points):
        return "the seed replicates do not run the step this row reads"
    return None


def stated_over_seeds(r: dict, seed_rows: dict[int, dict], v: Verdict) -> None:
    """A row judged over the seeds (rule ``seeds``) whose refuting margin the seed spread grounds (rule
    ``seed_margin``): its reading becomes the ``seeds`` verdict with the stated margin alone (each seed's own
    reading), compared with the verdict over the seeds; the reason's clause is rebuilt from it."""
    reading = (r.get("sensitivity") or {}).get("seed_margin")
    if not reading or reading["status"] != "measured":
        return
    seed0 = sensitivity.flip_reason({"seed_margin": reading})     # seed 0's own clause, judged against seed 0
    r["reason"] = r["reason"].replace(seed0, "") if seed0 else r["reason"]
    stated = {s: ((x.get("sensitivity") or {}).get("seed_margin") or {}).get("verdict") for s, x in seed_rows.items()}
    if any(x is None for x in stated.values()):
        reading["flips"] = None          # no verdict over the seeds to set beside the row's
        return
    vs = over_seeds(stated)
    reading.update(seed0_verdict=reading["verdict"], verdict=vs.value, flips=vs.decided and v.decided and vs is not v,
                   over_seeds=f"over seeds {', '.join(map(str, sorted(stated)))} with the stated margin alone: "
                              f"{vs.value}")
    r["reason"] += sensitivity.flip_reason({"seed_margin": reading})


def judge(rows: list[dict], profile: str, root: Path, rows_of: Callable[[str, Path], list[dict]]) -> None:
    """Add ``over_seeds`` / ``seed0_verdict`` and ``over_schedules`` to the main ``rows`` of ``profile`` (in place).

    ``rows_of(name, folder)`` builds the rows of variant profile ``name`` from its results folder."""
    from ..replicates import replicated, variants
    main = profiles.get(profile)
    seed_rows, sched_rows, seed_folders, sched_profiles = {main.seed: {r["id"]: r for r in rows}}, {}, {}, {}
    for name, p in variants(profile).items():
        folder = Path(root) / Path(p.folder).relative_to(main.folder)
        got = {r["id"]: r for r in rows_of(name, folder)} if folder.is_dir() else {}
        if p.cycle == main.cycle and p.seed != main.seed:
            seed_rows[p.seed], seed_folders[p.seed] = got, (p, folder)
        elif p.cycle != main.cycle and p.seed == main.seed:
            sched_rows[p.cycle], sched_profiles[p.cycle] = got, (p, folder)
    trained = replicated(profile)
    for r in rows:
        verdicts = {s: got[r["id"]]["verdict"] for s, got in seed_rows.items()
                    if r["id"] in got and _same_scope(got[r["id"]], r) and Verdict.of(got[r["id"]]["verdict"]).decided}
        if Verdict.of(r["verdict"]).decided and verdicts:
            v = over_seeds(verdicts)
            r["over_seeds"] = {"verdicts": {str(s): Verdict.of(x).value for s, x in sorted(verdicts.items())},
                               "landed": len(verdicts), "verdict": v.value}
            if v is Verdict.PENDING and (why := _not_planned(r, trained, seed_folders)):
                r["over_seeds"].update(verdict=None, planned=False, why=why)
            if v is not Verdict.PENDING:
                r["seed0_verdict"] = r["verdict"]
                r["verdict"] = v.value
                # the seeds' verdicts in the reason wherever they are not all seed 0's (a verdict over seeds that
                # happens to equal seed 0's can still rest on seeds that disagree)
                if len({Verdict.of(x) for x in verdicts.values()}) > 1 or v is not Verdict.of(r["seed0_verdict"]):
                    r["reason"] = f"{_seeds_text(verdicts)} (rule seeds); seed 0: {r['reason']}"
                stated_over_seeds(r, {s: got[r["id"]] for s, got in seed_rows.items() if s in verdicts}, v)
        seeds_reading(r)
        own = {c: got[r["id"]] for c, got in sched_rows.items()
               if r["id"] in got and (got[r["id"]].get("scope") or {}).get("epochs") == [c] == (r.get("scope") or {}).get("epochs")
               and (got[r["id"]].get("scope") or {}).get("runs") == (r.get("scope") or {}).get("runs")
               and Verdict.of(got[r["id"]]["verdict"]).decided}
        schedule_reading(r, own, sched_profiles)
        if own and Verdict.of(r["verdict"]).decided:
            r["over_schedules"] = {str(c): {"verdict": Verdict.of(x["verdict"]).value, "ours": x.get("ours")}
                                   for c, x in sorted(own.items())}
            differ = [c for c, x in own.items() if Verdict.of(x["verdict"]) is not Verdict.of(r["verdict"])]
            if differ:
                r["reason"] += "; " + "; ".join(
                    f"{Verdict.of(own[c]['verdict']).value} when trained on a {c}-epoch schedule of its own "
                    f"(rule schedule)" for c in sorted(differ))
