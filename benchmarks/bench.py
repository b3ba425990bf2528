#!/usr/bin/env python
"""Throughput benchmarks for fnlib, each measured side by side with the conventional way in one run.

(a) training: ``fnlib.train.fit`` (uint8 data resident on the device, batches cut by index, channels_last,
    bf16 autocast on CUDA, fp32 with weight gradients by one GEMM on CPU) against a loop over
    ``torch.utils.data.DataLoader`` on a torchvision-style Dataset (PIL image -> ``transforms.ToTensor()``
    per image, worker processes, fp32 NCHW), same architecture, initial weights, optimizer, schedule, batch
    size and images. Also the achieved FLOP rate (forward FLOPs from ``FlopCounterMode`` × 3) and, against
    a matmul peak measured in the same run, its fraction (bf16 on CUDA, fp32 on CPU).
(b) FGSM: ``fnlib.attacks.fgsm`` against ``torchattacks.FGSM`` on the same model and batch: images/s of
    each, the largest absolute difference between their adversarial examples and the fraction of pixels
    that differ (ours sums the cross-entropy, torchattacks averages it; the signs agree unless a
    gradient component underflows or rounds differently). torchattacks is optional: see
    benchmarks/requirements.txt.

Run from the repository root:  python benchmarks/bench.py --quick   (see benchmarks/README.md)
"""
from __future__ import annotations

import argparse
import copy
import datetime as _dt
import json
import os
import platform
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout where fnlib is not pip-installed
    sys.path.insert(0, str(ROOT))

from fnlib import attacks as fattacks  # noqa: E402
from fnlib import data as fdata  # noqa: E402
from fnlib import models as fmodels  # noqa: E402
from fnlib import evaluate as fevaluate  # noqa: E402
from fnlib import hardware as fhardware  # noqa: E402
from fnlib import train as ftrain  # noqa: E402

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}      # the labels used in output → torch dtypes

TORCHATTACKS_HINT = ("pip install --no-deps -r benchmarks/requirements.txt   "
                     "(--no-deps: torchattacks 3.5.1 pins requests~=2.25.1 but never imports it; "
                     "its real runtime needs, torch, numpy and scipy, are fnlib's own)")


# ----------------------------------------------------------------------------------------------- helpers

def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_name()} ({torch.get_num_threads()} torch threads, {os.cpu_count()} logical CPUs)"


def fmt_rate(flops_per_s: float) -> str:
    return f"{flops_per_s / 1e12:.1f} TFLOP/s" if flops_per_s >= 1e12 else f"{flops_per_s / 1e9:.1f} GFLOP/s"


# ------------------------------------------------------------------------------------------------- data

def load_data(dataset: str, n_train: int, n_attack: int, synthetic: bool, seed: int):
    """(x_train, y_train, x_attack, y_attack, source): real data through fnlib.data, else random uint8."""
    if not synthetic:
        try:
            xtr, ytr = fdata.load(dataset, "train", limit=n_train)
            xte, yte = fdata.load(dataset, "test", limit=n_attack)
            return xtr, ytr, xte, yte, f"{dataset} (fnlib.data: class-balanced train/test subsets)"
        except fdata.DataError as e:
            print(f"note: real {dataset} not available ({str(e).split('. ')[0]}); using random uint8 images "
                  f"of the same shape instead (throughput does not depend on pixel values)")
        except ValueError as e:
            sys.exit(f"error: {e}")
    g = torch.Generator().manual_seed(seed)
    shape = (1, 28, 28) if dataset == "mnist" else (3, 32, 32)
    xtr = torch.randint(0, 256, (n_train, *shape), dtype=torch.uint8, generator=g)
    xte = torch.randint(0, 256, (n_attack, *shape), dtype=torch.uint8, generator=g)
    ytr = torch.randint(0, 10, (n_train,), generator=g)
    yte = torch.randint(0, 10, (n_attack,), generator=g)
    return xtr, ytr, xte, yte, f"synthetic uint8 {dataset}-shaped images"


def make_torchvision_dataset(x: torch.Tensor, y: torch.Tensor):
    """A Dataset that does exactly what torchvision.datasets.CIFAR10 / MNIST do per item, on the same arrays.

    CIFAR10 keeps ``data`` as a uint8 (N, H, W, C) array and ``targets`` as a list of ints, and its
    ``__getitem__`` makes a PIL image and applies the transform (here ``transforms.ToTensor()``).
    """
    from PIL import Image
    from torchvision import transforms
    from torchvision.datasets import VisionDataset

    class InMemoryVisionDataset(VisionDataset):
        def __init__(self, data: np.ndarray, targets: list, transform):
            super().__init__(root=None, transform=transform)
            self.data, self.targets = data, targets

        def __len__(self):
            return len(self.data)

        def __getitem__(self, index):
            img, target = self.data[index], self.targets[index]
            img = Image.fromarray(img)  # HWC uint8 -> RGB, HW uint8 -> L (as MNIST's mode="L")
            if self.transform is not None:
                img = self.transform(img)
            return img, target

    arr = x.numpy()
    data = np.ascontiguousarray(arr[:, 0] if arr.shape[1] == 1 else arr.transpose(0, 2, 3, 1))
    return InMemoryVisionDataset(data, [int(t) for t in y], transforms.ToTensor())


# ---------------------------------------------------------------------------------------------- models

class Conventional(nn.Module):
    """The same layers as fnlib's PaperResNet, without its channels_last conversion (plain NCHW)."""

    def __init__(self, paper: nn.Module):
        super().__init__()
        self.normalize = copy.deepcopy(paper.normalize)
        self.body = copy.deepcopy(paper.body)

    def forward(self, x):
        return self.body(self.normalize(x))


def make_optimizer(model: nn.Module, recipe: ftrain.Recipe, steps: int):
    """The optimizer and schedule of fnlib.train.fit, for one epoch of ``steps`` steps."""
    opt = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                          nesterov=recipe.nesterov, weight_decay=recipe.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.lr, epochs=1, steps_per_epoch=steps,
                                                pct_start=recipe.pct_start)
    return opt, sched


# ------------------------------------------------------------------------------------------- training

def time_fit(model, x, y, recipe, device, **fit_args) -> dict:
    """One call of fnlib.train.fit(epochs=1): wall time of the whole call, and fit's own epoch timer."""
    sync(device)
    t0 = time.perf_counter()
    hist = ftrain.fit(model, x, y, recipe=recipe, device=device, progress=False, **fit_args)
    sync(device)
    wall = time.perf_counter() - t0
    return {"seconds": wall, "epoch_seconds": hist[-1]["seconds"], "images": len(x)}


def conventional_epoch(model, dataset, recipe, device, workers, max_steps=None, memory_format=None,
                       autocast=False) -> dict:
    """One epoch of the textbook loop; timed from creating the DataLoader iterator (workers start each epoch).

    Loss and accuracy are accumulated on the device, as fit does, so neither loop syncs per step.
    """
    loader = torch.utils.data.DataLoader(dataset, batch_size=recipe.batch_size, shuffle=True,
                                         num_workers=workers, pin_memory=device.type == "cuda")
    steps = len(loader) if max_steps is None else min(max_steps, len(loader))
    opt, sched = make_optimizer(model, recipe, steps)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if autocast and device.type == "cuda" else nullcontext()
    model.train()
    sync(device)
    t0 = time.perf_counter()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    n = 0
    for step, (xb, yb) in enumerate(loader):
        if step >= steps:
            break
        xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
        if memory_format is not None:
            xb = xb.contiguous(memory_format=memory_format)
        with amp:
            out = model(xb)
            loss = F.cross_entropy(out, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        loss_sum += loss.detach() * len(yb)
        correct += (out.argmax(1) == yb).sum()
        n += len(yb)
    loss_sum.item()
    sync(device)
    return {"seconds": time.perf_counter() - t0, "images": n}


def forward_flops_per_image(model, x_u8, batch, device) -> float:
    """Forward FLOPs per image (matmul/conv only, 2 per multiply-add) counted on one batch."""
    from torch.utils.flop_counter import FlopCounterMode
    xb = x_u8[:batch].to(device).float().div_(255)
    was = model.training
    model.eval()  # keep BatchNorm running statistics untouched
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(xb)
    model.train(was)
    return counter.get_total_flops() / len(xb)


def matmul_peak(device, dtype, n, iters, tf32: bool = False) -> dict:
    """Median FLOP/s of an n×n×n matmul in ``dtype`` on ``device`` (the practical peak of this run).

    ``tf32=True`` (fp32 on CUDA only) lets the matmul use TF32 tensor cores, as cuDNN's fp32 convolutions
    do by default (``torch.backends.cudnn.allow_tf32``), so that fp32 training is held against the peak of
    the arithmetic it actually uses; the result is then labelled "tf32".
    """
    tf32 = tf32 and device.type == "cuda" and dtype == torch.float32
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    try:
        res = _matmul_peak(device, dtype, n, iters)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before
    if tf32:
        res["dtype"] = "tf32"
    return res


def _matmul_peak(device, dtype, n, iters) -> dict:
    g = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, device=device, dtype=dtype, generator=g)
    b = torch.randn(n, n, device=device, dtype=dtype, generator=g)
    c = torch.empty(n, n, device=device, dtype=dtype)
    for _ in range(3 if device.type == "cuda" else 1):
        torch.mm(a, b, out=c)
    sync(device)
    times = []
    for _ in range(iters):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            torch.mm(a, b, out=c)
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        else:
            t0 = time.perf_counter()
            torch.mm(a, b, out=c)
            times.append(time.perf_counter() - t0)
    del a, b, c
    return {"dtype": str(dtype).replace("torch.", ""), "n": n, "iters": iters,
            "flops_per_s": 2 * n ** 3 / statistics.median(times)}


def bench_training(args, device, xtr, ytr) -> tuple[dict, nn.Module]:
    recipe = ftrain.Recipe(epochs=1, batch_size=args.batch, seed=args.seed,
                           precision="bf16" if device.type == "cuda" else "fp32")
    ftrain.seed_everything(args.seed)
    paper = fmodels.build(args.arch, args.dataset)
    conv = Conventional(paper).to(device, memory_format=torch.contiguous_format)
    rows = {"fnlib": {"label": "fnlib.train.fit (uint8 resident, index batches, channels_last"
                               + (", bf16 autocast)" if device.type == "cuda" else ", fp32, GEMM weight grads)")},
            "dataloader": {"label": f"DataLoader + ToTensor ({args.workers} workers"
                                    + (", pin_memory" if device.type == "cuda" else "") + ", fp32 NCHW)"}}
    if args.ablate:
        ablated = Conventional(paper).to(device, memory_format=torch.channels_last)
        rows["dataloader_cl"] = {"label": "DataLoader + ToTensor, channels_last"
                                          + (" + bf16 autocast" if device.type == "cuda" else " fp32")}
    dataset = make_torchvision_dataset(xtr, ytr)
    paper.to(device)

    # warm-up: a short fit and a few DataLoader steps at full batch size (kernels, allocator, oneDNN caches)
    nw = min(len(xtr), args.warmup_steps * args.batch)
    print(f"warm-up: fit on {nw} images, {args.warmup_steps} DataLoader steps", flush=True)
    ftrain.fit(paper, xtr[:nw], ytr[:nw], recipe=recipe, device=device, progress=False)
    conventional_epoch(conv, dataset, recipe, device, args.workers, max_steps=args.warmup_steps)
    if args.ablate:
        conventional_epoch(ablated, dataset, recipe, device, args.workers, max_steps=args.warmup_steps,
                           memory_format=torch.channels_last, autocast=True)

    loops = {"fnlib": lambda: time_fit(paper, xtr, ytr, recipe, device),
             "dataloader": lambda: conventional_epoch(conv, dataset, recipe, device, args.workers)}
    if args.ablate:
        loops["dataloader_cl"] = lambda: conventional_epoch(ablated, dataset, recipe, device, args.workers,
                                                            memory_format=torch.channels_last, autocast=True)
    runs = {k: [] for k in rows}
    for r in range(args.repeats):  # interleaved, order alternating, so drifting load hits all loops alike
        for k in (list(loops) if r % 2 == 0 else list(loops)[::-1]):
            runs[k].append(loops[k]())
        msg = ", ".join(f"{k} {v[-1]['images'] / v[-1]['seconds']:.0f} img/s" for k, v in runs.items())
        print(f"  repeat {r + 1}/{args.repeats}: {msg}", flush=True)
    for k, v in runs.items():
        secs = statistics.median(x["seconds"] for x in v)
        rows[k].update(images=v[0]["images"], seconds=secs, images_per_s=v[0]["images"] / secs,
                       all_seconds=[x["seconds"] for x in v])
    fe = statistics.median(x["epoch_seconds"] for x in runs["fnlib"])
    rows["fnlib"]["epoch_loop_seconds"] = fe
    rows["fnlib"]["epoch_loop_images_per_s"] = len(xtr) / fe

    fwd = forward_flops_per_image(paper, xtr, args.batch, device)
    train_flops = 3 * fwd
    for row in rows.values():
        row["flops_per_s"] = train_flops * row["images_per_s"]
    if device.type == "cuda":
        peak = matmul_peak(device, torch.bfloat16, args.matmul_n, args.matmul_iters)
    else:
        peak = matmul_peak(device, torch.float32, args.matmul_n, args.matmul_iters)
    for row in rows.values():
        row["fraction_of_peak"] = row["flops_per_s"] / peak["flops_per_s"]
    out = {"recipe": {"batch_size": args.batch, "optimizer": "SGD nesterov momentum 0.9 wd 5e-4",
                      "schedule": "OneCycleLR max_lr 0.1 pct_start 0.15 over one epoch"},
           "images": len(xtr), "forward_flops_per_image": fwd, "train_flops_per_image": train_flops,
           "matmul_peak": peak, "loops": rows,
           "speedup": rows["fnlib"]["images_per_s"] / rows["dataloader"]["images_per_s"]}
    return out, paper


# ------------------------------------------------------------------------------ paper-scale precision

def bench_precision(args, device, xtr, ytr) -> dict:
    """ResNet-50 training in plain fp32 and on the path the paper profile takes here (its precision and, in
    fp32 on a CPU, weight gradients by one GEMM), interleaved; eval in fp32 (and bf16)."""
    chosen = fhardware.resolve_precision("auto", device)
    chosen_grad = "gemm" if device.type == "cpu" and chosen == "fp32" else "torch"
    paths = {"fp32": ("fp32", "torch")}                     # label: (precision, weight_grad)
    if device.type == "cpu":
        paths["fp32+gemm"] = ("fp32", "gemm")
    if chosen == "bf16":
        paths["bf16"] = ("bf16", "torch")
    chosen_label = next(k for k, v in paths.items() if v == (chosen, chosen_grad))
    n = min(len(xtr), args.precision_n)
    x, y = xtr[:n], ytr[:n]
    out = {"arch": "resnet50", "images": n, "batch": args.batch, "chosen": chosen, "chosen_path": chosen_label,
           "native_cpu_bf16": fhardware.native_cpu_bf16(), "paths": paths, "train": {}, "eval": {}}
    models_, runs = {}, {k: [] for k in paths}
    for label, (prec, grad) in paths.items():
        ftrain.seed_everything(args.seed)
        models_[label] = fmodels.build("resnet50", args.dataset)
        recipe = ftrain.Recipe(epochs=1, batch_size=args.batch, seed=args.seed, precision=prec)
        ftrain.fit(models_[label], x[:args.batch], y[:args.batch], recipe=recipe, device=device, progress=False,
                   weight_grad=grad)                                                         # warm-up
    for r in range(args.repeats):     # interleaved, order alternating, so drifting load hits all paths alike
        for label in (list(paths) if r % 2 == 0 else list(paths)[::-1]):
            prec, grad = paths[label]
            recipe = ftrain.Recipe(epochs=1, batch_size=args.batch, seed=args.seed, precision=prec)
            secs = time_fit(models_[label], x, y, recipe, device, weight_grad=grad)["epoch_seconds"]
            runs[label].append(n / secs)
    model = models_["fp32"]
    for label in paths:
        out["train"][label] = statistics.median(runs[label])
    fwd = forward_flops_per_image(model, x, min(64, n), device)
    model.eval()
    for prec in PRECISIONS:
        with fhardware.autocast(device, prec):
            fevaluate.predict(model, x[:args.batch], batch_size=args.batch)                   # warm-up
            sync(device)
            t0 = time.perf_counter()
            fevaluate.predict(model, x, batch_size=500)
            sync(device)
        out["eval"][prec] = n / (time.perf_counter() - t0)
    tf32 = device.type == "cuda" and torch.backends.cudnn.allow_tf32     # cuDNN's fp32 convolutions use TF32
    peak_runs = {d: matmul_peak(device, dtype, args.matmul_n, args.matmul_iters, tf32=tf32)
                 for d, dtype in PRECISIONS.items()}
    peaks = {d: r["flops_per_s"] for d, r in peak_runs.items()}
    out["peak_dtypes"] = {d: "tf32" if r["dtype"] == "tf32" else d for d, r in peak_runs.items()}
    out.update(train_flops_per_image=3 * fwd, peaks=peaks,
               ratio=out["train"][chosen_label] / out["train"]["fp32"],
               fraction_of_peak={k: 3 * fwd * r / peaks[paths[k][0]] for k, r in out["train"].items()})
    return out


def print_precision(pr: dict) -> None:
    print(f"\n(c) ResNet-50 / paper profile path here: {pr['chosen_path']} (precision {pr['chosen']}; native CPU "
          f"bf16: {pr['native_cpu_bf16']}); {pr['images']} images, batch {pr['batch']}")
    for k, r in pr["train"].items():
        prec, grad = pr["paths"][k]
        what = "weight gradients by one GEMM (fnlib.convgrad)" if grad == "gemm" else "PyTorch's own gradients"
        peak = pr.get("peak_dtypes", {}).get(prec, prec)
        if peak == "tf32":
            what += "; cuDNN runs its fp32 convolutions in TF32"
        print(f"  train {k:<9} {r:8.1f} img/s   {100 * pr['fraction_of_peak'][k]:5.1f} % of the {peak} matmul peak "
              f"({fmt_rate(pr['peaks'][prec])}); {what}")
    print(f"  chosen / plain fp32 training ratio: {pr['ratio']:.2f}x")
    for p, r in pr["eval"].items():
        print(f"  eval  {p:<9} {r:8.1f} img/s" + ("   (the steps evaluate in fp32)" if p == "fp32" else ""))


# ---------------------------------------------------------------------------------------------- attack

def bench_attack(args, device, model, x_u8, y) -> dict:
    try:
        import torchattacks
    except ImportError:
        print(f"\n(b) skipped: torchattacks is not installed. Install it with:\n    {TORCHATTACKS_HINT}")
        return {"skipped": "torchattacks not installed", "install": TORCHATTACKS_HINT}
    model.eval()
    x = x_u8.to(device).float().div_(255)
    y = y.to(device)
    eps = args.eps
    atk = torchattacks.FGSM(model, eps=eps)

    def ours():
        return fattacks.fgsm(model, x, y, eps)

    def theirs():
        return atk(x, y)

    a_ours, a_theirs = ours(), theirs()  # warm-up, and the examples compared below
    a_ours2 = ours()
    sync(device)
    times = {"fnlib": [], "torchattacks": []}
    for r in range(args.attack_repeats):
        order = (("fnlib", ours), ("torchattacks", theirs))
        for name, fn in (order if r % 2 == 0 else order[::-1]):
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - t0)

    d = (a_ours - a_theirs).abs()
    # why they differ: the two gradients (summed vs mean CE) computed the way each attack does
    xg = x.detach().clone().requires_grad_(True)
    (g_sum,) = torch.autograd.grad(F.cross_entropy(model(xg), y, reduction="sum"), xg)
    xg = x.detach().clone().requires_grad_(True)
    (g_mean,) = torch.autograd.grad(F.cross_entropy(model(xg), y), xg)
    flips = g_sum.sign() != g_mean.sign()
    res = {"torchattacks_version": getattr(torchattacks, "__version__", "?"), "images": len(x), "eps": eps,
           "batch": len(x), "repeats": args.attack_repeats}
    for name, t in times.items():
        s = statistics.median(t)
        res[name] = {"seconds": s, "images_per_s": len(x) / s, "all_seconds": t}
    res["ratio"] = res["fnlib"]["images_per_s"] / res["torchattacks"]["images_per_s"]
    res["max_abs_diff"] = d.max().item()
    res["fraction_pixels_differing"] = (d > 0).float().mean().item()
    res["self_max_abs_diff"] = (a_ours - a_ours2).abs().max().item()
    res["sign_flips"] = int(flips.sum().item())
    res["sign_flips_where_mean_grad_is_zero"] = int((flips & (g_mean == 0)).sum().item())
    res["pixels"] = d.numel()
    return res


# ----------------------------------------------------------------------------------------------- report

def print_training(t: dict, device) -> None:
    print(f"\n(a) training, {t['images']} images, batch {t['recipe']['batch_size']}, same init/optimizer/schedule")
    w = max(len(r["label"]) for r in t["loops"].values())
    for r in t["loops"].values():
        extra = ""
        if "epoch_loop_images_per_s" in r:
            extra = f"   (fit's own epoch timer: {r['epoch_loop_images_per_s']:.0f} img/s)"
        print(f"  {r['label']:<{w}}  {r['images_per_s']:9.1f} img/s  {r['seconds']:7.2f} s{extra}")
    print(f"  speed-up fnlib / DataLoader: {t['speedup']:.2f}x")
    p = t["matmul_peak"]
    print(f"  FLOPs per image: forward {t['forward_flops_per_image'] / 1e9:.4f} GFLOP (FlopCounterMode), "
          f"training ×3 = {t['train_flops_per_image'] / 1e9:.4f} GFLOP")
    print(f"  measured {p['dtype']} matmul peak ({p['n']}³, median of {p['iters']}): {fmt_rate(p['flops_per_s'])}")
    for r in t["loops"].values():
        print(f"  {r['label']:<{w}}  {fmt_rate(r['flops_per_s'])}  = {100 * r['fraction_of_peak']:.1f} % "
              f"of the {p['dtype']} matmul peak")


def print_attack(a: dict) -> None:
    if "skipped" in a:
        return
    print(f"\n(b) FGSM, eps = {a['eps']:.6g}, one batch of {a['images']} images, median of {a['repeats']} "
          f"(torchattacks {a['torchattacks_version']})")
    for k in ("fnlib", "torchattacks"):
        print(f"  {k:<13} {a[k]['images_per_s']:9.1f} img/s  {1e3 * a[k]['seconds']:8.1f} ms")
    print(f"  throughput ratio fnlib / torchattacks: {a['ratio']:.2f}x")
    print(f"  max |x'_fnlib - x'_torchattacks| = {a['max_abs_diff']:.6g}; pixels differing: "
          f"{100 * a['fraction_pixels_differing']:.4f} % of {a['pixels']} "
          f"(fnlib vs itself: max {a['self_max_abs_diff']:.3g})")
    print(f"  gradient sign differs (sum vs mean CE) at {a['sign_flips']} pixels, "
          f"{a['sign_flips_where_mean_grad_is_zero']} of them where the mean-CE gradient is exactly 0")


def print_summary(res: dict) -> None:
    t, a, m = res["training"], res["attack"], res["meta"]
    L = t["loops"]
    p = t["matmul_peak"]
    rows = [("device", m["device_name"]),
            ("torch / torchvision", f"{m['torch']} / {m['torchvision']}"),
            ("model / data", f"{m['arch']} / {m['data']}"),
            ("train fnlib.fit", f"{L['fnlib']['images_per_s']:.1f} img/s"),
            ("train DataLoader", f"{L['dataloader']['images_per_s']:.1f} img/s"),
            ("train speed-up", f"{t['speedup']:.2f}x")]
    if "dataloader_cl" in L:
        rows.insert(5, ("train DataLoader+ch_last", f"{L['dataloader_cl']['images_per_s']:.1f} img/s"))
    rows += [(f"{p['dtype']} matmul peak", fmt_rate(p["flops_per_s"])),
             ("train fnlib achieved", f"{fmt_rate(L['fnlib']['flops_per_s'])} "
                                      f"({100 * L['fnlib']['fraction_of_peak']:.1f} % of peak)"),
             ("train DataLoader achieved", f"{fmt_rate(L['dataloader']['flops_per_s'])} "
                                           f"({100 * L['dataloader']['fraction_of_peak']:.1f} % of peak)")]
    if "skipped" in a:
        rows.append(("fgsm vs torchattacks", "skipped (torchattacks not installed)"))
    else:
        rows += [("fgsm fnlib", f"{a['fnlib']['images_per_s']:.1f} img/s"),
                 ("fgsm torchattacks", f"{a['torchattacks']['images_per_s']:.1f} img/s"),
                 ("fgsm ratio", f"{a['ratio']:.2f}x"),
                 ("fgsm max |diff|", f"{a['max_abs_diff']:.4g}"),
                 ("fgsm pixels differing", f"{100 * a['fraction_pixels_differing']:.4f} %")]
    w = max(len(k) for k, _ in rows)
    print("\nsummary")
    print("  " + "-" * (w + 50))
    for k, v in rows:
        print(f"  {k:<{w}}  {v}")
    print("  " + "-" * (w + 50))


# ------------------------------------------------------------------------------------------------- main

QUICK = dict(arch="resnet18", dataset="cifar10", n_train=1024, batch=256, attack_n=64, repeats=1,
             warmup_steps=1, attack_repeats=3, matmul_n=2048, matmul_iters=5, precision_n=512)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto", help="auto (default) | cpu | cuda")
    p.add_argument("--arch", default=None, choices=fmodels.ARCHS, help="default resnet18")
    p.add_argument("--dataset", default=None, choices=fdata.DATASETS, help="default cifar10")
    p.add_argument("--n-train", type=int, default=None,
                   help="training images timed per loop (default 20480 on CUDA, 2048 on CPU; --quick 1024)")
    p.add_argument("--batch", type=int, default=None, help="batch size (default 512; --quick 256)")
    p.add_argument("--workers", type=int, default=2, help="DataLoader num_workers of the baseline (default 2)")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed epochs per loop, median reported (default 3 on CUDA, 1 on CPU)")
    p.add_argument("--warmup-steps", type=int, default=None, help="warm-up steps per loop (default 5; --quick 1)")
    p.add_argument("--ablate", action="store_true",
                   help="add a third loop: DataLoader with channels_last (+ bf16 autocast on CUDA)")
    p.add_argument("--attack-n", type=int, default=None,
                   help="FGSM batch (test images; default 1024 on CUDA, 256 on CPU; --quick 64)")
    p.add_argument("--attack-repeats", type=int, default=None, help="timed FGSM calls each (default 10; --quick 3)")
    p.add_argument("--eps", type=float, default=8 / 255, help="FGSM step in pixel units (default 8/255)")
    p.add_argument("--matmul-n", type=int, default=None, help="peak matmul size (default 8192 CUDA, 2048 CPU)")
    p.add_argument("--matmul-iters", type=int, default=None, help="peak matmul repeats (default 20 CUDA, 5 CPU)")
    p.add_argument("--synthetic", action="store_true", help="random uint8 images instead of the real data set")
    p.add_argument("--seed", type=int, default=0, help="default 0")
    p.add_argument("--quick", action="store_true",
                   help="resnet18, cifar10, 1024 images, batch 256, 64 attack images, 1 repeat "
                        "(~7 min on 2 AMD EPYC cores, most of it (c))")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON to PATH")
    p.add_argument("--precision-n", type=int, default=None,
                   help="images for (c), ResNet-50 fp32 vs the paper profile's precision (default 1024; --quick 512)")
    p.add_argument("--no-precision", action="store_true", help="skip (c)")
    return p.parse_args(argv)


def fill_defaults(args, device):
    cuda = device.type == "cuda"
    normal = dict(arch="resnet18", dataset="cifar10", n_train=20480 if cuda else 2048, batch=512,
                  attack_n=1024 if cuda else 256, repeats=3 if cuda else 1, warmup_steps=5,
                  attack_repeats=10, matmul_n=8192 if cuda else 2048, matmul_iters=20 if cuda else 5,
                  precision_n=8192 if cuda else 1024)
    preset = dict(normal, **QUICK) if args.quick else normal
    if args.quick and cuda:
        preset.update(matmul_n=8192, matmul_iters=10)
    for k, v in preset.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    for k in ("n_train", "batch", "attack_n", "repeats", "attack_repeats", "matmul_n", "matmul_iters"):
        if getattr(args, k) < 1:
            sys.exit(f"error: --{k.replace('_', '-')} must be ≥ 1")
    if args.warmup_steps < 1 or args.workers < 0:
        sys.exit("error: --warmup-steps must be ≥ 1 and --workers ≥ 0")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    try:
        device = fhardware.resolve_device(args.device)
    except ValueError as e:
        sys.exit(f"error: {e}")
    args = fill_defaults(args, device)
    t_start = time.perf_counter()
    import torchvision
    meta = {"date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"), "device": str(device),
            "device_name": device_name(device), "torch": torch.__version__, "torchvision": torchvision.__version__,
            "python": platform.python_version(), "torch_threads": torch.get_num_threads(),
            "arch": args.arch, "dataset": args.dataset, "args": vars(args)}
    print(f"fnlib benchmark  {meta['date']}\n  device: {meta['device_name']}\n"
          f"  torch {meta['torch']}, torchvision {meta['torchvision']}, python {meta['python']}\n"
          f"  {args.arch} / {args.dataset}: {args.n_train} training images, batch {args.batch}, "
          f"{args.repeats} timed epoch(s) per loop; FGSM on {args.attack_n} images", flush=True)

    xtr, ytr, xte, yte, source = load_data(args.dataset, args.n_train, args.attack_n, args.synthetic, args.seed)
    meta["data"] = source
    print(f"  data: {source}", flush=True)

    training, model = bench_training(args, device, xtr, ytr)
    print_training(training, device)
    attack = bench_attack(args, device, model, xte, yte)
    print_attack(attack)
    precision = None if args.no_precision else bench_precision(args, device, xtr, ytr)
    if precision:
        print_precision(precision)
    meta["total_seconds"] = time.perf_counter() - t_start
    res = {"meta": meta, "training": training, "attack": attack, "precision": precision}
    print_summary(res)
    print(f"total {meta['total_seconds']:.0f} s")
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(res, indent=2))
        print(f"wrote {path}")
    return res


if __name__ == "__main__":
    main()
