"""Where a run computes: the device, the training precision, and a description of the machine.

``resolve_device("auto")`` picks CUDA when present. ``resolve_precision("auto")`` picks bf16 autocast for
training on CUDA, and on a CPU only when the CPU reports native bf16 instructions (``avx512_bf16`` or
``amx_bf16``) and ``ONEDNN_MAX_CPU_ISA`` does not cap them; otherwise fp32 (bf16 emulated on older CPUs is
slower than fp32). A timed micro-check was tried and dropped: on a shared 2-core machine its ratio swung
from 0.1 to 7 between calls. ``make bench`` measures the real ResNet-50 ratio. Evaluation (ranking,
attacks, Algorithm 1, the defence) always runs in fp32.
"""
from __future__ import annotations

import os
import platform

import torch

PRECISIONS = ("auto", "fp32", "bf16")


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present; ``cuda`` without a GPU is an error that says so."""
    device = str(device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ValueError(f"unknown device {device!r}; allowed: auto, cpu, cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device 'cuda' but torch sees no GPU; use --device cpu (or device='cpu' / 'auto')")
    return torch.device(device)


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def native_cpu_bf16() -> bool:
    """True when this CPU has bf16 instructions that oneDNN may use (and ONEDNN_MAX_CPU_ISA allows them)."""
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
    if isa and not any(s in isa for s in ("BF16", "AMX", "ALL", "DEFAULT")):
        return False
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` → bf16 on CUDA; on CPU bf16 only where native and measured faster; else fp32."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; allowed: {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16"
    return "bf16" if native_cpu_bf16() else "fp32"


def autocast(device: torch.device, precision: str):
    """The autocast context of a training step for a resolved precision."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def describe(device) -> dict:
    """The machine, as recorded next to every result."""
    device = torch.device(device) if isinstance(device, str) else device
    info = {"device": str(device), "cpu": cpu_model(), "cpu_threads": torch.get_num_threads(),
            "native_cpu_bf16": native_cpu_bf16()}
    if os.environ.get("ONEDNN_MAX_CPU_ISA"):
        info["onednn_max_cpu_isa"] = os.environ["ONEDNN_MAX_CPU_ISA"]
    if device.type == "cuda" and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(device)
    return info
