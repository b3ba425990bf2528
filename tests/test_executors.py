"""The Dask executors, with the real engine: a LocalCluster of one-thread worker processes.

The quick tests run in ``make test``; the ones marked ``cluster`` execute notebooks on several workers and run
in ``make test-cluster`` (with the single-node Slurm)."""
import json
import os
import shutil
import socket

import pytest

from fnlib import executors, pipeline, planner

distributed = pytest.importorskip("distributed")
SLICE = dict(only="mnist/resnet18", step=["train", "attack"],
             overrides={"train_limit": 256, "test_limit": 64, "eval_batch": 64})


@pytest.fixture
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c, \
            distributed.Client(c) as client:
        yield client


@pytest.fixture
def notebook_env(tmp_path, monkeypatch):
    """A work root of its own, and the hermetic Jupyter folders the Makefile sets (inherited by the workers)."""
    for var, sub in (("IPYTHONDIR", ".ipython"), ("JUPYTER_CONFIG_DIR", ".jupyter"),
                     ("JUPYTER_DATA_DIR", ".jupyter/data"), ("JUPYTER_RUNTIME_DIR", ".jupyter/runtime"),
                     ("MPLCONFIGDIR", ".mpl")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")          # as Dask's workers: the same numbers bit for bit
    monkeypatch.setenv("FNLIB_WORKDIR", str(tmp_path / "work"))
    return tmp_path / "work"


def test_a_worker_that_cannot_see_the_work_root_stops_the_run(cluster, tmp_path, monkeypatch):
    monkeypatch.setattr(executors, "probe", lambda root, token: "somewhere-else")   # a worker elsewhere
    with pytest.raises(RuntimeError, match="does not see the probe files"):
        executors.check_workers(cluster, tmp_path, needs_gpu=False)
    monkeypatch.undo()
    assert len(executors.check_workers(cluster, tmp_path, needs_gpu=False)) == 2
    assert not (tmp_path / ".stage" / "probe").exists() or not any((tmp_path / ".stage" / "probe").iterdir())


def test_a_gpu_task_without_a_gpu_worker_fails_at_once(cluster, tmp_path):
    with pytest.raises(RuntimeError, match="no Dask worker offers a GPU"):
        executors.check_workers(cluster, tmp_path, needs_gpu=True)
    p = planner.profiles.get("smoke", device="cuda")
    t = next(t for t in planner.plan("smoke", {"device": "cuda"}) if t.step == "train")
    assert executors.resources(t, p) == {"GPU": 1}
    assert executors.resources(t, planner.profiles.get("smoke")) is None


def test_gpu_tasks_go_to_the_worker_that_offers_one(tmp_path):
    """A fake GPU: a second worker started as on a GPU node (``dask worker --resources GPU=1``, with
    CUDA_VISIBLE_DEVICES set); tasks that ask for it go there and nowhere else."""
    import subprocess
    import sys
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as c, \
            distributed.Client(c) as client:
        gpu_worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", c.scheduler_address,
                                       "--nthreads", "1", "--resources", "GPU=1", "--no-dashboard"],
                                      env=dict(os.environ, CUDA_VISIBLE_DEVICES="0"), stderr=subprocess.DEVNULL)
        try:
            client.wait_for_workers(2, timeout=60)
            executors.check_workers(client, tmp_path, needs_gpu=True)          # now there is one
            t = next(t for t in planner.plan("smoke", {"device": "cuda"}) if t.step == "train")
            p = planner.profiles.get("smoke", device="cuda")
            where = [client.submit(os.getenv, "CUDA_VISIBLE_DEVICES", resources=executors.resources(t, p),
                                   pure=False) for _ in range(4)]
            assert client.gather(where) == ["0"] * 4
            plain = [client.submit(os.getenv, "CUDA_VISIBLE_DEVICES", pure=False, workers=[
                w for w, info in client.scheduler_info()["workers"].items() if not info.get("resources")])
                for _ in range(2)]
            assert client.gather(plain) == [None, None]                      # the other worker has none
        finally:
            gpu_worker.terminate()
            gpu_worker.wait(timeout=30)


def test_a_worker_with_other_code_refuses_the_task(tmp_path, monkeypatch):
    t = next(t for t in planner.plan("smoke") if t.step == "attack")
    with pytest.raises(executors.TaskError, match="code differs from the driver's"):
        executors.work(t, "another code identity", str(tmp_path), False, None)


@pytest.mark.cluster
def test_dask_runs_the_same_tasks_as_the_local_executor(tmp_path, notebook_env, cluster, monkeypatch):
    logs = []
    ran = executors.run(cluster, "smoke", log=logs.append, **SLICE)
    assert sorted(ran) == sorted(f"mnist/resnet18/{n}" for n in
                                 ("01_train_e1", "01_train_e2", "03_attack_e1", "03_attack_e2")), logs
    dask_ledger = json.loads((notebook_env / "results/smoke/mnist/resnet18/steps.json").read_text())
    assert {e["executor"] for e in dask_ledger.values()} == {"dask"}
    assert all(e["host"] == socket.gethostname() and e["device"] == "cpu" for e in dask_ledger.values())
    # a second run finds everything current: no task, no worker needed
    assert executors.run(lambda: pytest.fail("connected"), "smoke", log=logs.append, **SLICE) == {}
    # the local executor on another work root: the same tasks, the same keys, the same numbers
    monkeypatch.setenv("FNLIB_WORKDIR", str(tmp_path / "local"))
    local = pipeline.run("smoke", log=logs.append, stream=False, **SLICE)
    assert sorted(local) == sorted(ran)
    local_ledger = json.loads((tmp_path / "local/results/smoke/mnist/resnet18/steps.json").read_text())
    assert {k: v["key"] for k, v in local_ledger.items()} == {k: v["key"] for k, v in dask_ledger.items()}
    assert {k: v.get("weights") for k, v in local_ledger.items()} == {k: v.get("weights") for k, v in dask_ledger.items()}
    for f in ("e1/attack.csv", "e2/attack.csv"):
        assert (tmp_path / "local/results/smoke/mnist/resnet18" / f).read_text() == \
            (notebook_env / "results/smoke/mnist/resnet18" / f).read_text()


@pytest.mark.cluster
def test_a_failing_notebook_is_named_and_only_it_runs_again(notebook_env, cluster):
    logs = []
    executors.run(cluster, "smoke", log=logs.append, **SLICE)
    run_dir = notebook_env / "results/smoke/mnist/resnet18"
    t = next(t for t in planner.plan("smoke", SLICE["overrides"]) if t.name == "03_attack_e1")
    good = t.checkpoint().read_bytes()
    t.checkpoint().write_bytes(b"cut short")                        # its input is damaged
    ledger = json.loads((run_dir / "steps.json").read_text())
    for name in ("03_attack_e1", "03_attack_e2"):
        ledger[name].update(key="edited", inputs="edited")         # both must run again
    (run_dir / "steps.json").write_text(json.dumps(ledger))
    logs.clear()
    with pytest.raises(RuntimeError, match="1 of 2 task.s. failed"):
        executors.run(cluster, "smoke", log=logs.append, **SLICE)
    assert any("✗ mnist/resnet18 03_attack_e1 failed: ValueError: checkpoint" in line and "cannot be read" in line
               and "03_attack_e1.ipynb" in line for line in logs), logs
    assert any("✓ mnist/resnet18 03_attack_e2" in line for line in logs), logs      # the other task finished
    t.checkpoint().write_bytes(good)
    ran = executors.run(cluster, "smoke", log=logs.append, **SLICE)
    assert list(ran) == ["mnist/resnet18/03_attack_e1"]


@pytest.mark.cluster
def test_a_killed_worker_loses_nothing_finished(notebook_env, cluster):
    """A worker killed mid-task (as at a Slurm walltime): Dask runs the task again elsewhere."""
    import threading
    import time
    logs, out, errors = [], {}, []

    def drive():
        try:
            out.update(executors.run(cluster, "smoke", log=logs.append, **SLICE))
        except Exception as e:          # noqa: BLE001 - reported by the assertion below
            errors.append(e)
    thread = threading.Thread(target=drive)
    thread.start()
    killed = None
    for _ in range(600):
        busy = [w for w, tasks in cluster.processing().items() if any("01_train" in str(k) for k in tasks)]
        if busy:
            time.sleep(3)                                         # mid-training
            pid = cluster.run(os.getpid, workers=busy[:1])[busy[0]]
            os.kill(pid, 9)
            killed = busy[0]
            break
        time.sleep(0.2)
    thread.join(timeout=900)
    assert killed and not thread.is_alive()
    assert not errors and len(out) == 4, (errors, logs)
    assert planner.decide("smoke", SLICE["overrides"], SLICE["only"], SLICE["step"])[0].what == "keep"
    assert {a.what for a in planner.decide("smoke", SLICE["overrides"], SLICE["only"], SLICE["step"])} == {"keep"}
