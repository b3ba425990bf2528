"""Bring a finished run's checkpoints back by training it again, and check them against the recorded weights.

Checkpoints never travel (they are git-ignored and 45–190 MB each), so a new machine has the committed
results of a run but not the weights they were computed from. New analyses of those weights need them back.
:func:`replay` trains the run again under its identity, to epoch ``until``, writing checkpoints only (no
results file, no executed notebook is touched), and compares the digest of every checkpoint it makes with the
digest the run's ledger recorded when its analyses read it (``steps.json``). It records the outcome in the
ledger under ``replayed``. A mismatch (another CPU model, thread count or kernel set can make a sibling
network) is reported, never hidden: the analyses of that epoch then run again on the next ``fnlib run``.
"""
from __future__ import annotations

import time

from . import results
from .steps import Step
from .steptable import NOTEBOOKS


def replay(profile: str, dataset: str, arch: str, until: int | None = None, log=print,
           overrides: dict | None = None) -> dict:
    """Train ``dataset/arch`` of ``profile`` again up to ``until`` (default: its last checkpoint); return
    ``{epoch: {"recorded": digest, "replayed": digest, "match": bool}}`` for every checkpoint made."""
    from . import models
    from .hardware import describe
    from .pipeline import weights_digest
    from .train import fit, seed_everything
    s = Step(profile, dataset, arch, overrides=overrides)
    epochs = s.p.run_epochs(dataset, arch)
    until = epochs[-1] if until is None else int(until)
    if until not in epochs:
        raise ValueError(f"--until {until} is not a checkpoint of {profile} {dataset}/{arch} (epochs {epochs})")
    ledger_path = s.dir / "steps.json"
    ledger = results.read_json(ledger_path) if ledger_path.exists() else {}
    name = NOTEBOOKS["train"]
    recorded = {e: ledger.get(f"{name}_e{e}", {}).get("weights") for e in epochs if e <= until}
    if not any(recorded.values()):
        log(f"note: {ledger_path} records no weights for {dataset}/{arch}: the replay makes checkpoints but has "
            "nothing to check them against")
    device = s.device()
    x, y = s.load("train")
    xt, yt = s.load("test")
    seed_everything(s.p.seed)
    model = models.build(arch, dataset)
    ckpt_dir = s.ckpt_dir()     # once: the identity is read from the code on disk, which may change during hours
    fit(model, x, y, xt, yt, checkpoints=s.p.epochs, recipe=s.recipe(), device=device, ckpt_dir=ckpt_dir,
        ident=s.train_identity(), until=until, remake=s.remake(), log=log,
        meta={"arch": arch, "dataset": dataset, "profile": profile})
    outcome = {}
    ledger = results.read_json(ledger_path) if ledger_path.exists() else {}   # re-read: hours may have passed
    for e, want in recorded.items():
        got = weights_digest(ckpt_dir / f"e{e}.pt")
        outcome[e] = {"recorded": want, "replayed": got, "match": want == got}
        log(f"{dataset}/{arch} e{e}: replayed weights {got}, recorded {want or 'none'}: "
            + ("the same, bit for bit" if want == got else "DIFFERENT: its analyses run again on the next fnlib run"
               if want else "nothing to compare"))
        entry = ledger.setdefault(f"{name}_e{e}", {})
        entry["replayed"] = dict(outcome[e], machine=describe(device)["cpu"],
                                 utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    if ledger_path.exists():
        results.write_json(ledger, ledger_path)
    return outcome
