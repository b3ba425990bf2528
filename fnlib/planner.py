"""The planner: what a run of a profile would do, and why, decided without running anything.

:func:`plan` lists a profile's tasks (one per step and checkpoint, from :mod:`fnlib.steptable`) with their
cache keys: a key covers the step's notebook, its code as :mod:`fnlib.codeid` reads it, the profile fields
the step declares and the identity of the weights it reads, and nothing else. :func:`decide` turns them into
actions from the profile, the selection, the ledgers (``steps.json``) and the files on disk, and writes
nothing:

- ``keep``: its key matches the ledger and its files exist;
- ``adopt``: stale by key only because the training has a new identity, while it read the very weights now
  on disk (same digest) and nothing else it reads changed: re-keyed, not re-run;
- ``run``: stale; or a training stage whose checkpoint is not on this machine while a stale task needs it;
- ``refuse``: it cannot run in this selection (its checkpoint is not here and no selected stage makes it).

Training a run to e10, e50 and e100 is a chain of stages on the same weights; each epoch's analyses depend
only on their own checkpoint. An analysis whose checkpoint a planned stage (re)makes is decided again once
that stage has run (``recheck``): kept or adopted if the weights came back bit for bit, else run. That
decision reads only the ledger and the checkpoint, so any executor can take it where the task runs.
"""
from __future__ import annotations

import functools
import hashlib
import json
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


def select(tasks: list[Task], only: str | None, step: list[str] | None, p: profiles.Profile,
           epochs: list[int] | None = None) -> list[Task]:
    """The tasks of ``only`` (a run, a data set or an arch), ``step`` and ``epochs`` (checkpoint epochs: the
    analyses there and the training stages up to them; a run-level step of a run that has one of them)."""
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
    if epochs:
        bad = sorted(set(epochs) - set(p.epochs))
        if bad:
            raise ValueError(f"--epoch {bad} is not a checkpoint epoch of profile {p.name} (epochs "
                             f"{', '.join(map(str, p.epochs))})")
        tasks = [t for t in tasks if (t.epoch <= max(epochs) if t.step == "train" else t.epoch in epochs)]
    return tasks


@dataclass(frozen=True)
class Action:
    task: Task
    what: str                  # run | keep | adopt | refuse
    why: str
    recheck: bool = False      # decided again after the training stage that (re)makes its checkpoint


def _why_stale(t: Task) -> str:
    entry = _ledger(t).get(t.name)
    if not entry:
        return "never ran here"
    if entry.get("key") != t.key:
        return "its key changed (code, settings, notebook or the training's identity)"
    if not landed(t) or not t.output.exists():
        return "its results or executed notebook are missing"
    return "the checkpoint on disk holds other weights than those it read"


def decide(profile: str, overrides: dict | None = None, only: str | None = None, step: list[str] | None = None,
           force: bool = False, epochs: list[int] | None = None) -> list[Action]:
    """Every selected task's action, in run order (a step after those it reads). Writes nothing."""
    overrides = dict(overrides or {})
    p = profiles.get(profile, **overrides)
    tasks = select(plan(profile, overrides), only, step, p, epochs)
    stale = [t for t in tasks if force or not is_current(t)]
    kept = [] if force else keep(stale)
    stale = [t for t in stale if t not in kept]
    remade = remade_stages(tasks, stale)
    training = {t.weights for t in [*stale, *remade] if t.step == "train"}
    made = {(t.weights, e) for t in [*stale, *remade] if t.step == "train" for e in p.epochs if e <= t.epoch}
    actions = []
    for t in tasks:
        later = analyses_weights(t) and t.weights in training and not force
        if t in remade:
            actions.append(Action(t, "run", f"checkpoint e{t.epoch} is not on this machine and a task that runs "
                                            "needs these weights: training makes it again"))
        elif t in kept:
            actions.append(Action(t, "adopt", "made under another training's name from the weights now on disk, "
                                              "bit for bit; nothing else it reads changed"))
        elif t not in stale:
            actions.append(Action(t, "keep", "current" + (" (checked again after training: run if the weights "
                                                          "change)" if later else ""), recheck=later))
        elif analyses_weights(t) and not t.checkpoint().exists() and (t.weights, t.epoch) not in made:
            actions.append(Action(t, "refuse", f"needs checkpoint e{t.epoch}, which is not on this machine and "
                                               "which no selected training stage makes: add --step train, or "
                                               "run without --step"))
        else:
            why = "--force" if force else _why_stale(t)
            if later and _ledger(t).get(t.name, {}).get("inputs"):
                why += "; kept instead if training gives back the weights it read, bit for bit"
            actions.append(Action(t, "run", why, recheck=later))
    return actions


def redecide(t: Task, made_now: bool, adopted: list[Task] = (), ran: list[Task] = ()) -> str:
    """After the training stage before it has run: ``keep``, ``adopt`` or ``run`` for a ``recheck`` action.

    ``made_now``: its checkpoint was written by this run. Results from before digests were recorded are run
    again when their checkpoint was remade, even if the same weights came back: nothing shows they did.
    ``adopted``: tasks adopted by this decision round and not yet written to the ledger; ``ran``: tasks run
    by it (a step whose upstream step ran again reads new results: it runs too)."""
    if any(d in ran for d in t.deps if d.step != "train"):
        return "run"
    entry = _ledger(t).get(t.name, {})
    if made_now and not entry.get("weights") and landed(t):
        return "run"
    if is_current(t):
        return "keep"
    return "adopt" if reusable(t, list(adopted)) else "run"
