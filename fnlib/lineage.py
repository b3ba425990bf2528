"""Whether the results of one run folder all come from one training.

Checkpoints are not committed, so they live only on the machine that trained them. On another machine (or
after they are deleted) training starts again from epoch 1 and, on a CPU of another model or with another
thread count, makes a sibling network under the same name: same recipe, other weights. The pipeline then
redoes the analyses of every checkpoint it remakes, in order, but until it has, a run folder may hold
results of two trainings side by side — epoch-10 results of the new one beside epoch-50 results of the old
one, say — and comparisons across epochs would mix two networks.

The ledger ``steps.json`` records the digest of the weights each analysis read and each training stage
made; ``train.json`` how far the training behind ``train.csv`` got. From these two files alone (no
checkpoint needed, so on a fresh clone too) :func:`problems` names every such mix. Entries written before
digests were recorded carry none and are taken as consistent; the pipeline redoes them when it remakes
their checkpoint (:func:`fnlib.pipeline.remade_stages`).
"""
from __future__ import annotations

from pathlib import Path

from . import results
from .steps import STEP_NOTEBOOKS

TRAIN, CSG = STEP_NOTEBOOKS["train"], STEP_NOTEBOOKS["csg"]     # CSG reads the data, never the weights


def weights_by_epoch(ledger: dict) -> tuple[dict, dict]:
    """``({epoch: digest made by its training stage}, {epoch: {notebook: digest its analysis read}})`` from a
    ledger; entries without a digest are left out."""
    made, read = {}, {}
    for name, entry in ledger.items():
        stem, _, epoch = name.rpartition("_e")
        if not epoch.isdigit() or stem == CSG or not entry.get("weights"):
            continue
        if stem == TRAIN:
            made[int(epoch)] = entry["weights"]
        else:
            read.setdefault(int(epoch), {})[stem] = entry["weights"]
    return made, read


def reached(train_json: dict) -> int | None:
    """The last epoch the training behind ``train.json`` has trained: its ``epochs_done``, or further where a
    session went on (a training stage re-run on checkpoints of a later one writes only its own epochs)."""
    done = [train_json.get("epochs_done"), *(s.get("last_epoch") for s in train_json.get("sessions", []))]
    done = [d for d in done if d is not None]
    return max(done) if done else None


def problems(run: Path) -> list[str]:
    """Sentences naming each place where the results in run folder ``run`` come from more than one
    training; empty when they all come from one (or nothing says otherwise)."""
    return [sentence for _, sentence in problems_by_epoch(run)]


def problems_by_epoch(run: Path) -> list[tuple[int, str]]:
    """:func:`problems` with the checkpoint epoch each sentence is about, as data (never parsed back from the
    sentence)."""
    run = Path(run)
    ledger = results.read_json(run / "steps.json") if (run / "steps.json").exists() else {}
    done = reached(results.read_json(run / "train.json")) if (run / "train.json").exists() else None
    made, read = weights_by_epoch(ledger)
    landed = {int(p.name[1:]) for p in run.glob("e*") if p.name[1:].isdigit() and any(p.iterdir())}
    out = []
    for epoch in sorted(landed | set(read)):
        if done is not None and epoch > done:
            out.append((epoch, f"the epoch-{epoch} results come from an earlier training: the one behind train.csv "
                                f"has reached epoch {done} so far"))
        digests = read.get(epoch, {})
        if len(set(digests.values())) > 1:
            groups: dict = {}
            for stem, digest in sorted(digests.items()):
                groups.setdefault(digest, []).append(stem)
            out.append((epoch, f"the epoch-{epoch} analyses read {len(groups)} different sets of weights: "
                                + "; ".join(", ".join(stems) for stems in groups.values())))
        elif digests and epoch in made and made[epoch] not in digests.values():
            out.append((epoch, f"the epoch-{epoch} analyses read other weights than its training stage last made"))
    return out
