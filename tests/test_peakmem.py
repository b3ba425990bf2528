"""The peak memory a step's kernel reaches is measured from outside and recorded beside its seconds."""
import shutil
import subprocess
import sys
from pathlib import Path

from fnlib import pipeline
from fnlib.peakmem import PeakMemory

ALLOCATE = "import time; x = b'x' * (300 * 2**20); time.sleep({})"     # touches 300 MiB, then holds it


def test_the_peak_of_a_child_process_is_seen():
    with PeakMemory(every=0.05) as mem:
        subprocess.run([sys.executable, "-c", ALLOCATE.format(0.5)], check=True)
    assert mem.peak_gib is not None and 0.29 <= mem.peak_gib < 1.0, mem.peak_gib


def test_a_child_started_before_the_block_is_left_out():
    # it holds 300 MiB when the block begins and ends inside it: it is not counted (in a fresh process, so that
    # no child of the test runner is about)
    code = ("import subprocess, sys, time; from fnlib.peakmem import PeakMemory\n"
            f"before = subprocess.Popen([sys.executable, '-c', {ALLOCATE.format(30)!r}])\n"
            "time.sleep(1.5)\n"
            "with PeakMemory(every=0.05) as mem:\n"
            "    subprocess.run([sys.executable, '-c', 'import time; time.sleep(0.3)'], check=True)\n"
            "    before.kill(); before.wait()\n"
            "print(mem.peak_gib)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert float(out) < 0.2, out


def test_no_child_no_reading():
    # in a fresh process: a test runner's own worker may have children of its own (pytest-xdist does)
    code = ("from fnlib.peakmem import PeakMemory\n"
            "with PeakMemory(every=0.05) as mem:\n"
            "    pass\n"
            "print(mem.peak_gib)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "None", out


def test_the_ledger_records_the_kernel_peak(tmp_path, monkeypatch):
    import papermill
    monkeypatch.setenv("FNLIB_WORKDIR", str(tmp_path))
    t = next(t for t in pipeline.plan("smoke") if t.step == "attack")

    def fake(src, out, **kw):          # a "kernel" that needs 300 MiB, and an executed notebook
        subprocess.run([sys.executable, "-c", ALLOCATE.format(2.5)], check=True)
        shutil.copy(src, out)
    monkeypatch.setattr(papermill, "execute_notebook", fake)
    pipeline.execute(t, stream=False)
    entry = pipeline._ledger(t)[t.name]
    assert 0.29 <= entry["peak_rss_gib"] < 1.0, entry
    assert Path(t.output).exists()


def test_a_large_parent_does_not_lend_its_size_to_a_child():
    # between fork and exec a child shares its parent's pages: read then, it would look as large as the parent
    # (CI's pytest-xdist worker, about 1.2 GiB, made a 300 MiB child read 1.2 GiB); readings every millisecond
    code = ("import subprocess, sys; from fnlib.peakmem import PeakMemory\n"
            "big = b'y' * (900 * 2**20)\n"
            "worst = 0\n"
            "for _ in range(5):\n"
            "    with PeakMemory(every=0.001) as mem:\n"
            f"        subprocess.run([sys.executable, '-c', {ALLOCATE.format(0.3)!r}], check=True)\n"
            "    worst = max(worst, mem.peak_gib or 0)\n"
            "print(worst)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert 0.29 <= float(out) < 0.6, out
