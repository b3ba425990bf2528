"""``results/<profile>/summary.json``: every headline number of SPEC §2, the paper's value beside ours,
its 95 % interval, the rule that decides, and the verdict; where each run was computed (provenance). It reads
only results files and ``book/paper_values.json`` (no torch). The rows are built in :mod:`fnlib.claims`, one
module per part of the paper; the statistical rules are in :mod:`fnlib.stats`.

The paper's numbers come from ResNet-50 at epochs 10/50/100. A profile without those uses its largest
arch and maps 10/50/100 to its first/middle/last checkpoint; every row names the model it was read from.
A row whose results have not landed yet is *pending*; a claim the profile cannot test (e.g. three archs)
is *not testable here*; a value we recompute but do not judge (the cited CSG complexities) has *no verdict*.
"""
from __future__ import annotations

from pathlib import Path


from . import lineage, profiles, results
from .claims import algorithm1, complexity, fgsm, filtering, fragile
from .claims.margins import Spread
from .claims.sheet import Sheet
# what the book and the tests read from here
from .claims.evidence import fmt_ci, pct, value_at  # noqa: F401
from .claims.rules import NO_VERDICT, RULES, VERDICTS  # noqa: F401
from .claims.verdict import Verdict, tally as verdict_tally  # noqa: F401
from .claims.sheet import paper_values, reference  # noqa: F401
from .stats import INCONCLUSIVE, NOT, PENDING, REPRODUCED, UNTESTABLE  # noqa: F401


def build(profile: str, root: Path | None = None, **overrides) -> dict:
    """The summary of ``profile`` (with ``overrides`` of its settings, as ``profiles.get`` takes them) from the
    results under ``root`` (default ``results/<profile>/``); writes ``summary.json`` there."""
    p = profiles.get(profile, **overrides)
    root = Path(root) if root else results_root(profile)
    if not has_results(root):
        raise FileNotFoundError(f"no results of profile {profile} under {root}; nothing written. Make them with: "
                                f"python -m fnlib run --profile {profile}")
    from . import replicates             # seed replicates and schedules beside the main runs (paper-seed1, ...)
    table = replicates.seed_table(profile, root) if replicates.variants(profile) else None
    spread = Spread.of(table, p.cycle, replicates.replicated(profile)) if table is not None else None
    t = sheet(p, root, replicate_table=table, spread=spread)
    provenance = _provenance(root)
    extra = ({"seeds": table, "schedules": replicates.schedule_table(profile, root, table=table),
              "variant_provenance": variant_provenance(profile, root)} if table is not None else {})
    if extra:                            # rules seeds and schedule: every row judged again on them
        from .claims import variants
        variants.judge(t.rows, profile, root, lambda name, sub: sheet(profiles.get(name), sub, spread=spread).rows)
    flag_mixed(t.rows, provenance)
    fill_seeds(t.rows, provenance)
    out = {"profile": profile, "description": p.description, "reference_arch": t.arch,
           "reference_epochs": {str(k): v for k, v in t.ep.items()}, "rows": t.rows, "numbers": t.numbers,
           "rules": {r.id: {"version": r.version, "title": r.title, "text": r.text,
                            "history": [{"version": v, "until": until, "text": text, "data_seen": seen, "why": why}
                                        for v, until, text, seen, why in r.history]} for r in RULES.values()},
           **extra, "provenance": provenance}
    results.write_json(out, root / "summary.json")
    return out


def sheet(p: profiles.Profile, root: Path, replicate_table: list[dict] | None = None,
          spread: Spread | None = None) -> Sheet:
    """Every claims row of profile ``p`` from the results under ``root`` (nothing written); ``replicate_table``:
    :func:`fnlib.replicates.seed_table`'s rows, when the caller has read them already; ``spread``: the main
    profile's seed values that ground the number rows' margins (:mod:`fnlib.claims.margins`), the same on every
    variant's rows."""
    t = Sheet(p, root, spread=spread)
    if replicate_table is not None:
        t.seed_tables["replicates"] = replicate_table
    # the rows in the order of the book's claims table
    fgsm.accuracies(t)                              # Sec 3.1
    fgsm.stronger_on_complex_data(t)
    for dataset, e in (("mnist", 10), ("cifar10", 50)):     # Sec 5/6, at the epoch the paper gives for each
        fragile.fraction_fragile(t, dataset, e)
        algorithm1.attacking_s(t, dataset, e)
    complexity.complexity(t)                        # Sec 3.1, cited
    fgsm.accuracy_grows(t)                          # over the checkpoints
    algorithm1.grows_with_eps(t)
    algorithm1.late_model_balanced(t)
    filtering.rows(t)                               # Sec 6, then Step 7 beyond the paper
    fragile.grows_with_depth(t)                     # Sec 5, Fig 4
    fragile.mean_drop(t)
    return t


def results_root(profile: str) -> Path:
    return results.work_root() / "results" / results.folder(profile)


def has_results(root: Path) -> bool:
    """Whether any checkpoint's results file has landed under ``root``: what :func:`build` needs to start."""
    return any(Path(root).glob("*/*/e*/*.csv"))


def flag_mixed(rows: list[dict], provenance: dict) -> None:
    """Start the evidence of every row that reads a checkpoint whose results come from more than one training
    (``provenance[run]["mixed"]``, :func:`fnlib.lineage.problems`) with that warning, so that it stands beside
    the number and not only in the page's banner. A row's runs and epochs are its ``scope`` fields (never parsed
    from display text); a row with runs but no epochs reads them all."""
    for r in rows:
        scope = r.get("scope") or {}
        epochs = set(scope.get("epochs") or [])
        for run in scope.get("runs") or []:
            for epoch, problem in (provenance.get(run) or {}).get("mixed_by_epoch") or []:
                if not epochs or epoch in epochs:
                    r["evidence"] = f"mixed trainings, {run}: {problem}" + (f"; {r['evidence']}" if r["evidence"] else "")


def fill_seeds(rows: list[dict], provenance: dict) -> None:
    """The ``seeds`` of each row's scope: the seeds whose verdicts a row judged over seeds (rule seeds) combines,
    else the training seed of every run it reads, as the provenance records it."""
    for r in rows:
        scope = r.get("scope") or {}
        o = r.get("over_seeds") or {}
        if o.get("verdict") not in (None, "pending"):      # judged over the seeds (rule seeds): every seed it read
            scope["seeds"] = sorted(int(s) for s in o["verdicts"])
            continue
        scope["seeds"] = sorted({int(provenance[run]["seed"]) for run in scope.get("runs") or []
                                 if run in provenance and provenance[run].get("seed") is not None})


def variant_provenance(profile: str, root: Path) -> dict:
    """Each seed or schedule variant of ``profile`` (paper-seed1, ...) that has trained something: its runs'
    provenance, as :func:`_provenance` reads it from the variant's own folder, with its seed and schedule."""
    from .replicates import variants
    main, out = profiles.get(profile), {}
    for name, p in variants(profile).items():
        folder = Path(root) / Path(p.folder).relative_to(main.folder)
        runs = _provenance(folder) if folder.is_dir() else {}
        if runs:
            out[name] = {"seed": p.seed, "schedule": p.cycle, "runs": runs}
    return out


def _provenance(root: Path) -> dict:
    """Seeds, versions and hardware as recorded by the training steps; ``mixed``: where a run's results come
    from more than one training (:func:`fnlib.lineage.problems`)."""
    out = {}
    for f in sorted(root.glob("*/*/train.json")):
        info = results.read_json(f)
        mixed = [(x.epoch, x.text) for x in lineage.findings(f.parent)]
        out[f"{f.parent.parent.name}/{f.parent.name}"] = {
            **info.get("provenance", {}), "train_seconds": info.get("seconds"), "precision": info.get("precision"),
            "epochs_done": info.get("epochs_done"), "sessions": len(info.get("sessions", [])),
            # the training's peak memory over every process that trained part of it (GPU memory on a GPU)
            "peak_memory_gib": info.get("peak_rss_gib", info.get("peak_gpu_memory_gib")),
            "cpus": sorted({s.get("cpu", "?") for s in info.get("sessions", [])}),
            # how the convolutions' weight gradients were computed (fnlib.convgrad; "torch" before it existed)
            "weight_grads": sorted({s.get("conv_weight_grad", "torch") for s in info.get("sessions", [])}),
            "analysed_on": _analysed_on(f.parent),
            "mixed": [m for _, m in mixed],
            "mixed_by_epoch": [[e, m] for e, m in mixed],
            "mixed_origin": {e: origin for e in sorted({e for e, _ in mixed}) if (origin := _origin(f.parent / f"e{e}"))}}
    return out


def _analysed_on(run: Path) -> dict:
    """``{epoch: [processors]}``: where each checkpoint's analyses were computed, as their JSON files record it.
    Usually the training's machine; not when a retraining gave the same weights back and the pipeline kept the
    analyses made elsewhere (:func:`fnlib.pipeline.reusable`)."""
    out = {}
    for epoch in sorted(int(d.name[1:]) for d in run.glob("e*") if d.name[1:].isdigit()):
        found = {prov.get("gpu") or prov.get("cpu") or "?" for path in sorted((run / f"e{epoch}").glob("*.json"))
                 if (prov := results.read_json(path).get("provenance"))}
        if found:
            out[epoch] = sorted(found)
    return out


def _origin(edir: Path) -> str:
    """Where the analyses in ``edir`` were computed, as their JSON files record it ('' when none does): for the
    results of a mixed run, whose training record (train.json) describes another training."""
    for path in [edir / "meta.json", *sorted(edir.glob("*.json"))]:
        prov = results.read_json(path).get("provenance") if path.exists() else None
        if prov:
            return (f"{prov.get('gpu') or prov.get('cpu', '?')}, git commit {prov.get('git_commit', '?')}, "
                    f"{str(prov.get('utc', '?'))[:10]}")
    return ""


def tally(rows: list[dict], verdict) -> int:
    """How many rows carry ``verdict`` (:class:`~fnlib.claims.verdict.Verdict` or a constant of ``stats``)."""
    return verdict_tally(rows, verdict)
