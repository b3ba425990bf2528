# Two commands matter (see README): `make book` and `make test`. Both create the environment if missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# the profile the book renders. paper (default): whatever of it has landed in results/paper, missing runs
# marked pending; its runs take hours, so `make book` never starts them (python -m fnlib run --profile paper).
# quick / smoke: computed first (cached: seconds when the committed results are current), then rendered.
PROFILE ?= paper

# hermetic Jupyter/IPython/matplotlib state: nothing is written to ~
export IPYTHONDIR          := $(CURDIR)/.ipython
export JUPYTER_CONFIG_DIR  := $(CURDIR)/.jupyter
export JUPYTER_DATA_DIR    := $(CURDIR)/.jupyter/data
export JUPYTER_RUNTIME_DIR := $(CURDIR)/.jupyter/runtime
export JUPYTER_PLATFORM_DIRS := 1
export MPLCONFIGDIR        := $(CURDIR)/.cache/matplotlib
export MPLBACKEND          := Agg
export PYDEVD_DISABLE_FILE_VALIDATION := 1
export OMP_NUM_THREADS     ?= 2
# make test: pytest-xdist workers (each run's smoke notebooks in order on one; conftest.py), each with one thread
# unless OMP_NUM_THREADS is given (two workers of two threads oversubscribe two cores)
TEST_WORKERS ?= 2
TEST_THREADS := $(if $(filter environment command line,$(origin OMP_NUM_THREADS)),$(OMP_NUM_THREADS),1)

.PHONY: env book pipeline html test test-cluster unit nbval bench regen-smoke gpu-paper paper-bg clean
env: $(VENV)/.installed

$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24"
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

## make book [PROFILE=paper|quick|smoke]: build the HTML book of a profile (quick/smoke: run its notebooks first)
book: $(if $(filter paper,$(PROFILE)),env,pipeline) html

pipeline: env
	$(BIN)/python -m fnlib run --profile $(PROFILE)

html: env
	FNLIB_PROFILE=$(PROFILE) $(BIN)/jupyter-book build . --builder html --all
	@test -f _build/html/index.html && echo "book: $(CURDIR)/_build/html/index.html (profile $(PROFILE))"

## make test: unit tests + nbval regression of the committed smoke notebooks
test: env
	rm -rf tests/_work
	OMP_NUM_THREADS=$(TEST_THREADS) FNLIB_WORKDIR=$(CURDIR)/tests/_work $(BIN)/python -m pytest tests book/runs/smoke \
		--nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider -q \
		-n $(TEST_WORKERS)

## make test-cluster: the Dask executors with real engines: a LocalCluster running notebooks (a killed worker,
## a failing notebook) and a single-node Slurm that tests/cluster/slurm-up.sh brings up (root, Debian packages)
test-cluster: env
	rm -rf tests/_work /tmp/fnlib-slurm
	bash tests/cluster/slurm-up.sh /tmp/fnlib-slurm
	SLURM_CONF=/tmp/fnlib-slurm/slurm.conf FNLIB_WORKDIR=$(CURDIR)/tests/_work $(BIN)/python -m pytest \
		tests/test_executors.py tests/test_slurm.py -m cluster -q; rc=$$?; \
		bash tests/cluster/slurm-down.sh /tmp/fnlib-slurm; exit $$rc

unit: env
	$(BIN)/python -m pytest tests -q

## regenerate the committed smoke notebooks (after a change that alters their printed numbers)
regen-smoke: env
	$(BIN)/python -m fnlib run --profile smoke

bench: env
	$(BIN)/python -m pip install -q --no-deps -r benchmarks/requirements.txt
	$(BIN)/python benchmarks/bench.py --quick

## make paper-bg [ARGS="--only resnet50"]: the paper profile on this CPU in the background, at nice 19,
## resumable (re-run the same command after any interruption); progress in logs/paper.log
paper-bg: env
	@mkdir -p logs
	@if [ "$$(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null)" = 1 ]; then \
		echo "note: kernel.sched_autogroup_enabled is 1, so nice 19 does not yield to jobs started from other"; \
		echo "      sessions; as root: echo 0 > /proc/sys/kernel/sched_autogroup_enabled"; fi
	PYTHONUNBUFFERED=1 setsid nohup nice -n 19 $(BIN)/python -m fnlib run --profile paper --device cpu $(ARGS) \
		>> logs/paper.log 2>&1 < /dev/null &
	@echo "paper profile started in the background; follow it with: tail -f logs/paper.log"

## on a CUDA machine: the paper profile, then nbval over its notebooks (see .github/workflows/paper.yml)
gpu-paper: env
	$(BIN)/python -m fnlib run --profile paper
	FNLIB_WORKDIR=$(CURDIR)/tests/_work $(BIN)/python -m pytest book/runs/paper --nbval --nbval-current-env \
		--nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider -q

clean:
	rm -rf _build tests/_work .ipython .jupyter .cache
