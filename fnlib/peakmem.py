"""Peak memory of the processes a step starts: how much a step at this size needs of a machine.

A step runs in a Jupyter kernel that papermill starts as a child of this process, so the driver measures it
from outside: :class:`PeakMemory` watches every descendant process while the step runs and keeps the largest
peak resident set any of them reached. On Linux that is the kernel's own high-water mark (``VmHWM`` in
``/proc/<pid>/status``), exact however short the peak; elsewhere it is the largest resident set sampled
every ``every`` seconds (psutil). Either way a process that lives less than ``every`` seconds, or peaks in its
last second, can slip between readings; where the system keeps one (``getrusage``), the largest peak of the
children that ended and were waited for during the block closes that gap whenever it exceeds every such peak
before the block and no other child of this process was running when the block began (then it could be theirs). A process that runs several steps at once (a Dask worker with more than one thread) sees
all their kernels: the figure is then the largest of them.

The pipeline records the result as ``peak_rss_gib`` in the run's ledger (``steps.json``) beside each step's
seconds, so the resources declared in :mod:`fnlib.steptable` can be checked against measurements.
"""
from __future__ import annotations

import sys
import threading

import psutil

try:
    import resource
except ImportError:                     # Windows
    resource = None

GIB = 2 ** 30


def children_peak() -> int | None:
    """The largest peak resident set (bytes) of the children this process has waited for so far, or None."""
    if resource is None:
        return None
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024          # bytes on macOS, kB elsewhere


def high_water(proc: psutil.Process) -> int | None:
    """``proc``'s peak resident set in bytes (``VmHWM``), or None where the system does not keep one."""
    try:
        with open(f"/proc/{proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024          # reported in kB
    except OSError:
        pass
    return None


class PeakMemory:
    """A context manager: ``peak_gib`` is the largest peak resident set (GiB) of any descendant process of
    this one started while the block ran (None if none was seen, e.g. a step that starts none); descendants
    that were already running when it began are left out."""

    def __init__(self, every: float = 1.0):
        self.every = every
        self.peak_bytes: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._before_pids: set[int] = set()

    @property
    def peak_gib(self) -> float | None:
        return None if self.peak_bytes is None else self.peak_bytes / GIB

    def sample(self) -> None:
        """Read every descendant's peak (or current) resident set once and keep the largest."""
        for proc in psutil.Process().children(recursive=True):
            if proc.pid in self._before_pids:
                continue
            try:
                size = high_water(proc)
                if size is None:
                    size = proc.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            self._keep(size)

    def _watch(self) -> None:
        self.sample()
        while not self._stop.wait(self.every):
            self.sample()

    def _keep(self, size: int) -> None:
        self.peak_bytes = size if self.peak_bytes is None else max(self.peak_bytes, size)

    def __enter__(self) -> PeakMemory:
        self._before = children_peak()
        self._before_pids = {p.pid for p in psutil.Process().children(recursive=True)}   # not the block's
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        after = children_peak()
        # a new record set while the block ran is the peak of a child that ended in it, and that child is the
        # block's own only if no other child was running when the block began (one could have ended meanwhile)
        if after is not None and self._before is not None and after > self._before and not self._before_pids:
            self._keep(after)
