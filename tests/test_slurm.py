"""The Slurm executor against a real single-node Slurm (``make test-cluster`` brings it up with
tests/cluster/slurm-up.sh; skipped where there is none)."""
import json
import os
import shutil
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.cluster,
              pytest.mark.skipif(not (os.environ.get("SLURM_CONF") and shutil.which("sbatch")),
                                 reason="no Slurm here: make test-cluster brings one up")]
ARGS = ["--profile", "smoke", "--only", "mnist/resnet18", "--step", "train", "--step", "attack",
        "--set", "train_limit=256", "--set", "test_limit=64", "--set", "eval_batch=64"]


def fnlib(*args, workdir):
    return subprocess.run([sys.executable, "-m", "fnlib", "run", *args, "--workdir", str(workdir)],
                          capture_output=True, text=True, timeout=1200)


def test_the_profile_runs_on_slurm_workers_and_then_finds_everything_current(tmp_path):
    done = fnlib(*ARGS, "--executor", "slurm", "--partition", "gpu", "--jobs", "1", "--walltime", "00:30:00",
                 workdir=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    ledger = json.loads((tmp_path / "results/smoke/mnist/resnet18/steps.json").read_text())
    assert set(ledger) == {"01_train_e1", "01_train_e2", "03_attack_e1", "03_attack_e2"}
    assert {e["executor"] for e in ledger.values()} == {"slurm"}
    again = fnlib(*ARGS, "--executor", "slurm", "--partition", "gpu", "--walltime", "00:30:00", workdir=tmp_path)
    assert again.returncode == 0 and "all up to date" in again.stdout, again.stdout + again.stderr


def test_a_gpu_job_gets_the_fake_gpu(tmp_path):
    from fnlib import executors
    client = executors.client_for("slurm", partition="gpu", walltime="00:10:00", jobs=1, gpus_per_job=1)
    try:
        assert client.submit(os.getenv, "CUDA_VISIBLE_DEVICES", resources={"GPU": 1}, pure=False).result(
            timeout=120) == "0"
    finally:
        cluster = client.cluster
        client.close()
        cluster.close()


def test_slurm_needs_a_partition_and_a_walltime(tmp_path):
    done = fnlib(*ARGS, "--executor", "slurm", workdir=tmp_path)
    assert done.returncode == 2 and "--partition" in done.stderr
