"""Training from scratch with checkpoints at chosen epochs, resumable after an interruption.

The recipe is ours (the paper gives none): SGD with Nesterov momentum 0.9 and weight decay 5e-4,
batch 512, a one-cycle learning rate peaking at 0.1 after 15 % of the steps, no augmentation
(SPEC §1). The whole data set stays on the device as uint8 and batches are cut from it by index, so
there are no DataLoader workers; activations are channels_last (twice as fast on CPU too). The forward
pass runs in bf16 autocast where :func:`fnlib.hardware.resolve_precision` finds it native and faster.
Training in fp32 on a CPU computes the convolutions' weight gradients as one matrix product
(:mod:`fnlib.convgrad`): 1.6–2.5× faster training on a CPU without AVX-512, the same gradients up to rounding.

A run is identified by everything that makes its weights (:func:`identity`): the data, its split and
limit, the seed, the recipe (the schedule's length included), the precision setting, the code of the
training step as :mod:`fnlib.codeid` reads it (every fnlib module it imports: ``hardware`` too) and the torch
version. Checkpoints live in a folder named by that identity's digest, so weights made by anything else are
never resumed or reused. ``last.pt`` records every session that trained part of the run (with its peak
memory) and, per epoch, the real time it took and the digest of the weights it ended with.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .convgrad import gemm_weight_grad
from .evaluate import accuracy
from .hardware import autocast, describe, resolve_device, resolve_precision


def _print(line: str) -> None:
    print(line, flush=True)


@dataclass(frozen=True)
class Recipe:
    epochs: int = 100            # length of the one-cycle schedule (the last checkpoint epoch)
    batch_size: int = 512
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    pct_start: float = 0.15
    seed: int = 0
    precision: str = "fp32"      # fp32 | bf16 | auto (decided by fnlib.hardware.resolve_precision)

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch; CPU runs with the same seed and thread count repeat bit for bit."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resident(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Move a uint8 data set onto ``device`` when it fits in a quarter of the free memory."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        if x.numel() * x.element_size() < free // 4:
            return x.to(device, non_blocking=True)
    return x  # too large: batches are pinned one at a time in _batch


def _batch(x: torch.Tensor, idx: torch.Tensor, device: torch.device) -> torch.Tensor:
    xb = x[idx.to(x.device)]
    if device.type == "cuda" and xb.device.type == "cpu":
        xb = xb.pin_memory()
    xb = xb.to(device, non_blocking=True).float().div_(255)
    return xb.contiguous(memory_format=torch.channels_last)


def _save(obj, path: Path) -> None:
    tmp = path.with_suffix(".part")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def code_digest() -> str:
    """The code identity of the training step (:func:`fnlib.codeid.digest`): its part of ``steps.py`` and every
    fnlib module it imports, as parsed code."""
    from .codeid import digest
    return digest("train")


def weights_digest(state: dict) -> str:
    """sha256 (20 hex) of a model's ``state_dict``: the names and bytes of its tensors, nothing else."""
    h = hashlib.sha256()
    for name in sorted(state):
        h.update(name.encode())
        h.update(state[name].detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:20]


def _peak_memory_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def identity(arch: str, dataset: str, recipe: "Recipe", train_limit: int | None) -> dict:
    """Everything that makes a run's weights; equal identities give interchangeable checkpoints."""
    from .data import VAL_PER_CLASS, source_key
    return {"arch": arch, "dataset": dataset, "data": source_key(dataset), "split": "train",
            "val_per_class": VAL_PER_CLASS, "train_limit": train_limit, "recipe": asdict(recipe),
            "code": code_digest(), "torch": torch.__version__.split("+")[0]}


def identity_key(ident: dict) -> str:
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:12]


def _load(path: Path, remake: str):
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise ValueError(f"checkpoint {path} cannot be read ({type(e).__name__}); it was cut short or altered. "
                         f"Remake it from scratch with: {remake}") from None


def _eta(history, done: int, total: int) -> str:
    recent = [r["seconds"] for r in history[-3:]]
    if not recent or done >= total:
        return ""
    left = sum(recent) / len(recent) * (total - done)
    when = f"{int(left // 3600)} h {int(left % 3600 // 60):02d} min" if left >= 3600 else f"{left / 60:.1f} min"
    return f", {total - done} epoch{'s' * (total - done > 1)} left ≈ {when}"


def fit(model, x_train, y_train, x_test=None, y_test=None, *, checkpoints=(), ckpt_dir=None,
        recipe: Recipe = Recipe(), device="auto", progress: bool = True, meta: dict | None = None,
        ident: dict | None = None, until: int | None = None, remake: str = "delete the checkpoint folder",
        log=_print, weight_grad: str = "auto"):
    """Train ``model`` up to epoch ``until`` (default: ``recipe.epochs``); return the history up to there.

    Writes ``ckpt_dir/e<E>.pt`` for every E in ``checkpoints`` and ``ckpt_dir/last.pt`` after every
    epoch. A call that finds ``last.pt`` of the same ``ident`` (default: arch, dataset and recipe) resumes
    after its epoch, so an interrupted run loses at most one epoch and a finished run returns at once;
    ``last.pt`` of anything else is an error naming the folder. ``log`` gets one line per epoch with the
    time left (``progress=False`` silences it). ``weight_grad``: "gemm" computes the convolutions' weight
    gradients by :func:`fnlib.convgrad.weight_grad`, "torch" by PyTorch's kernels; "auto" (default) takes
    "gemm" for fp32 training on a CPU, "torch" otherwise (bf16 autocast, CUDA). Each session records it.
    """
    if weight_grad not in ("auto", "gemm", "torch"):
        raise ValueError(f"weight_grad={weight_grad!r}; allowed: auto, gemm, torch")
    device = resolve_device(device) if isinstance(device, str) else device
    checkpoints = sorted(set(int(e) for e in checkpoints))
    if any(e < 1 or e > recipe.epochs for e in checkpoints):
        raise ValueError(f"checkpoint epochs {checkpoints} must lie in 1..{recipe.epochs}")
    until = recipe.epochs if until is None else int(until)
    if not 1 <= until <= recipe.epochs:
        raise ValueError(f"until={until} must lie in 1..{recipe.epochs}")
    if len(x_train) != len(y_train) or len(x_train) == 0:
        raise ValueError("x_train and y_train must be non-empty and of equal length")
    meta = dict(meta or {}, recipe=asdict(recipe))
    ident = ident or {"arch": meta.get("arch"), "dataset": meta.get("dataset"), "recipe": asdict(recipe)}
    ckpt_dir = Path(ckpt_dir) if ckpt_dir else None
    model.to(device, memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                          nesterov=recipe.nesterov, weight_decay=recipe.weight_decay)
    steps = (len(x_train) + recipe.batch_size - 1) // recipe.batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.lr, epochs=recipe.epochs,
                                                steps_per_epoch=steps, pct_start=recipe.pct_start)
    history, start, sessions, precision = [], 0, [], None
    last = ckpt_dir / "last.pt" if ckpt_dir else None
    if last is not None and last.exists():
        state = _load(last, remake)
        if state.get("ident") != ident:
            raise ValueError(f"{last} was written by another recipe, model or data ({state.get('ident')}); delete "
                             f"{ckpt_dir} to train afresh, or give this run its own checkpoint folder")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        history, start = state["history"], state["epoch"]
        sessions, precision = state.get("sessions", []), state.get("precision")
        missing = [e for e in checkpoints if e <= start and not (ckpt_dir / f"e{e}.pt").exists()]
        if missing:
            raise ValueError(f"{ckpt_dir} has trained past epoch(s) {missing} without saving them; a checkpoint "
                             f"there cannot be made without training again: {remake}")
    if precision is None or recipe.precision != "auto":
        precision = resolve_precision(recipe.precision, device)
    if start >= until:
        model.eval()
        return history[:until]
    xs, ys = resident(x_train, device), y_train.to(device)
    amp = autocast(device, precision)
    if weight_grad == "auto":
        weight_grad = "gemm" if device.type == "cpu" and precision == "fp32" else "torch"
    if weight_grad == "gemm" and precision != "fp32":
        raise ValueError(f'weight_grad="gemm" needs fp32 training; this run trains in {precision}')
    name = f"{meta.get('dataset', '')}/{meta.get('arch', '')}"
    session = dict(describe(device), precision=precision, conv_weight_grad=weight_grad, first_epoch=start + 1,
                   started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    sessions = sessions + [session]
    for epoch in range(start + 1, until + 1):
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(len(xs), generator=torch.Generator().manual_seed(recipe.seed * 100003 + epoch))
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        with gemm_weight_grad(model, weight_grad == "gemm"):    # weight gradients by one GEMM (convgrad)
            for i in range(0, len(perm), recipe.batch_size):
                idx = perm[i:i + recipe.batch_size]
                xb, yb = _batch(xs, idx, device), ys[idx.to(ys.device)]
                with amp:
                    out = model(xb)
                    loss = F.cross_entropy(out, yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                loss_sum += loss.detach().float() * len(idx)
                correct += (out.argmax(1) == yb).sum()
        row = {"epoch": epoch, "train_loss": loss_sum.item() / len(xs),
               "train_acc": 100.0 * correct.item() / len(xs),
               "test_acc": accuracy(model, x_test, y_test) if x_test is not None else float("nan")}
        if device.type == "cuda":
            torch.cuda.synchronize()
        row["seconds"] = time.perf_counter() - t0
        row["weights"] = weights_digest(model.state_dict())
        history.append(row)
        session.update(last_epoch=epoch, seconds=sum(r["seconds"] for r in history[session["first_epoch"] - 1:]),
                       peak_memory_gib=round(_peak_memory_gib(device), 3))
        if progress:
            log(f"[{name}] epoch {epoch}/{recipe.epochs}: loss {row['train_loss']:.3f}, train {row['train_acc']:.2f} %, "
                f"test {row['test_acc']:.2f} %, {row['seconds']:.0f} s ({precision})"
                + _eta(history, epoch, recipe.epochs))
        if ckpt_dir is not None:
            ckpt_dir.mkdir(parents=True, exist_ok=True)
            if epoch in checkpoints:
                _save({"model": model.state_dict(), "meta": dict(meta, epoch=epoch, test_acc=row["test_acc"],
                                                                 precision=precision), "ident": ident},
                      ckpt_dir / f"e{epoch}.pt")
            _save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                   "epoch": epoch, "history": history, "recipe_key": recipe.key(), "meta": meta, "ident": ident,
                   "precision": precision, "sessions": sessions}, last)
    model.eval()
    return history


def run_record(ckpt_dir) -> dict:
    """What ``last.pt`` says about the run that made the weights: precision, sessions, seconds."""
    state = _load(Path(ckpt_dir) / "last.pt", "delete the folder and train again")
    return {"precision": state.get("precision"), "sessions": state.get("sessions", []),
            "epochs_done": state["epoch"], "seconds": sum(r["seconds"] for r in state["history"])}
