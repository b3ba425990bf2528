"""How the suite runs on several pytest-xdist workers (``make test``: ``-n 2``) in the order it needs.

Each run's smoke notebooks (``book/runs/smoke/<dataset>-<arch>/``) are executed in order on one worker: a
notebook reads the checkpoints and results files of the ones before it. The smoke regression
(``tests/test_smoke_regression.py``) compares what those notebooks wrote, so it runs last, as a unit of its own
that first waits until every run's notebooks are done (:func:`smoke_notebooks_done`), on whichever worker.
Any other test file is one unit, so that its module fixtures are built once. Without xdist the order is the same:
notebooks first, regression last.

This is a scheduler of our own (``pytest_xdist_make_scheduler``) rather than ``--dist loadgroup``, whose
``xdist_group`` marks do not reach the scheduler under pytest 9 (pytest-xdist 3.8 renames ``item._nodeid``,
which pytest 9 no longer reads).
"""
from __future__ import annotations

import os
import time

import pytest

SMOKE_NOTEBOOKS = "book/runs/smoke/"
REGRESSION = "tests/test_smoke_regression.py"
LAST_CELL = pytest.StashKey[dict]()
STARTED = pytest.StashKey[float]()


def notebook_run(nodeid: str) -> str | None:
    """``book/runs/smoke/mnist-resnet18/03_attack_e1.ipynb::Cell 2`` → ``smoke/mnist-resnet18``; else None."""
    if not nodeid.startswith(SMOKE_NOTEBOOKS):
        return None
    return "smoke/" + nodeid[len(SMOKE_NOTEBOOKS):].split("/")[0]


def unit_of(nodeid: str) -> str:
    """The unit of work a worker takes whole: a run's notebooks, the regression, or one test file."""
    return notebook_run(nodeid) or nodeid.split("::", 1)[0]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class RunUnits(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return unit_of(nodeid)

    return RunUnits(config, log)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session, config, items):
    """The regression runs last; remember each run's last notebook cell (its marker is written after it)."""
    last = [i for i in items if i.nodeid.startswith(REGRESSION)]
    items[:] = [i for i in items if i not in last] + last
    config.stash[LAST_CELL] = {notebook_run(i.nodeid): i.nodeid for i in items if notebook_run(i.nodeid)}


def done_marker(run: str):
    from fnlib.results import work_root
    return work_root() / ".nbval-done" / run.replace("/", "-")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    yield
    run = notebook_run(item.nodeid)
    if run is not None and item.config.stash.get(LAST_CELL, {}).get(run) == item.nodeid:
        done_marker(run).parent.mkdir(parents=True, exist_ok=True)
        done_marker(run).write_text(f"{time.time()}\n")


@pytest.fixture(scope="session")
def smoke_notebooks_done(request) -> list[str]:
    """Wait until every collected run's notebooks have been executed in this session, here or on another worker;
    the runs still missing after an hour (a worker that died), which the caller treats as not executed."""
    runs, since = list(request.config.stash.get(LAST_CELL, {})), request.config.stash[STARTED]
    deadline = time.time() + 3600
    while True:
        missing = [r for r in runs if not (done_marker(r).exists() and float(done_marker(r).read_text()) >= since)]
        if not missing or time.time() > deadline:
            return missing
        time.sleep(2)


def pytest_sessionstart(session):
    """Before the workers start, note the session's start and decode the data sets once (``fnlib.data`` caches
    each under one name: two first readers at once would write it together)."""
    session.config.stash[STARTED] = time.time()
    if os.environ.get("PYTEST_XDIST_WORKER") or not getattr(session.config.option, "numprocesses", None):
        return
    from fnlib import data
    for name in data.DATASETS:
        data.load(name, "test", limit=1)
