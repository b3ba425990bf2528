"""Peak memory of the processes a step starts: how much a step at this size needs of a machine.

A step runs in a Jupyter kernel that papermill starts as a child of this process, so the driver measures it
from outside: :class:`PeakMemory` watches every descendant process started while the step runs and keeps the
largest peak resident set any of them reached. On Linux that is each process's own high-water mark (``VmHWM``
in ``/proc/<pid>/status``), so a reading catches every peak up to its moment; elsewhere it is the resident set
sampled every ``every`` seconds (psutil). Either way only a peak in a process's last ``every`` seconds can slip
past the last reading; a step's kernel lives for minutes, so that gap is a second at the end of it.

A child is read only once it has exec'd its own program (its command line is no longer this process's): between
fork and exec it shares its parent's pages, and its high-water mark counts them. ``getrusage``'s record of
ended children is not used for the same reason: Linux carries a forked child's pre-``exec`` high-water
mark (the parent's memory at the fork) into it, so a large parent makes every child's record look large.
A process that runs several steps at once (a Dask worker with more than one thread) sees all their kernels: the
figure is then the largest of them.

The pipeline records the result as ``peak_rss_gib`` in the run's ledger (``steps.json``) beside each step's
seconds, so the resources declared in :mod:`fnlib.steptable` can be checked against measurements.
"""
from __future__ import annotations

import threading

import psutil

GIB = 2 ** 30


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
        self._own_cmdline = psutil.Process().cmdline()

    @property
    def peak_gib(self) -> float | None:
        return None if self.peak_bytes is None else self.peak_bytes / GIB

    def sample(self) -> None:
        """Read every new descendant's peak (or current) resident set once and keep the largest."""
        for proc in psutil.Process().children(recursive=True):
            if proc.pid in self._before_pids:
                continue
            try:
                # a child forked but not yet exec'd shares its parent's pages, which its VmHWM counts: skip it
                # (checked before reading: after exec its memory is its own and the check cannot go back)
                if proc.cmdline() == self._own_cmdline:
                    continue
                size = high_water(proc)
                if size is None:
                    size = proc.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            self.peak_bytes = size if self.peak_bytes is None else max(self.peak_bytes, size)

    def _watch(self) -> None:
        self.sample()
        while not self._stop.wait(self.every):
            self.sample()

    def __enter__(self) -> PeakMemory:
        self._before_pids = {p.pid for p in psutil.Process().children(recursive=True)}   # not the block's
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
