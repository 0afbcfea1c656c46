# distill: run `make help` for the targets.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH ?= torch==2.13.0
# uv installs the same pins as pip in seconds instead of minutes (bytecode compiled once here, not in every step);
# it reads pip's local wheel directory when one is set
UV = $(VENV)/bin/uv pip install -q --compile-bytecode --python $(PY) $(if $(PIP_FIND_LINKS),--find-links $(PIP_FIND_LINKS))
PORT ?= 5000
EP ?= simulate
ARGS ?=
export MLFLOW_TRACKING_URI ?= sqlite:///$(CURDIR)/mlruns/mlflow.db
OPTUNA_STORAGE ?= sqlite:///$(CURDIR)/mlruns/optuna.db
PGDATA ?= $(CURDIR)/mlruns/postgres
PGPORT ?= 5433
SLURMDIR ?= $(CURDIR)/mlruns/slurm-cluster
SLURMPORT ?= 6817
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
MLFLOW_RUN := mlflow run . --env-manager local

.PHONY: help venv demo test test-fast lint run ui server server-stop dashboard bench clean slurm slurm-stop

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

venv: $(VENV)/.installed ## create or refresh .venv (CPU torch 2.13.0 + this package, installed with uv)

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q uv
	$(UV) $(TORCH)
	$(UV) -e '.[dev]'
	touch $@

mlruns:
	mkdir -p mlruns

demo: venv mlruns ## the whole plan on the built-in simulator, then the report (reports/latest/report.html)
	$(MLFLOW_RUN) -e main

test: venv ## every test: fast unit tests and the slow end-to-end runs (what CI runs)
	$(PY) -m pytest

test-fast: venv ## the fast unit tests only (no real runs, servers or browser)
	$(PY) -m pytest -m "not slow"

lint: venv ## ruff and the size limits of entry points and library modules (scripts/check_sizes.py)
	$(VENV)/bin/ruff check .
	$(PY) scripts/check_sizes.py

run: venv mlruns ## one entry point: make run EP=simulate ARGS="-P n_train=500"
	$(MLFLOW_RUN) -e $(EP) $(ARGS)

ui: venv mlruns ## the MLflow UI on http://127.0.0.1:$(PORT)
	mlflow ui --backend-store-uri $(MLFLOW_TRACKING_URI) --host 127.0.0.1 --port $(PORT)

server: venv mlruns ## a team's MLflow server with basic auth on http://127.0.0.1:$(PORT): PostgreSQL (port $(PGPORT), data in $(PGDATA)) + artifacts in mlruns/artifacts
	scripts/postgres.sh start $(PGDATA) $(PGPORT)
	scripts/mlflow_server.sh $(PGDATA) $(PGPORT) $(CURDIR)/mlruns/artifacts $(PORT)

server-stop: ## stop the PostgreSQL cluster that `make server` started
	scripts/postgres.sh stop $(PGDATA)

slurm: ## a one-node Slurm on this machine for `-P executor=slurm` (state in $(SLURMDIR)); prints SLURM_CONF=... to export
	scripts/slurm.sh start $(SLURMDIR) $(SLURMPORT)

slurm-stop: ## stop the one-node Slurm that `make slurm` started
	scripts/slurm.sh stop $(SLURMDIR)

dashboard: venv mlruns ## optuna-dashboard on http://127.0.0.1:8080 for the studies of `tune` (OPTUNA_STORAGE=... for another)
	optuna-dashboard $(OPTUNA_STORAGE) --host 127.0.0.1 --port 8080

bench: venv ## calibration, speed, teacher-study and student benchmarks (about three hours on 2 cores)
	$(PY) bench/simulate_speed.py
	$(PY) bench/fisher_speed.py
	$(PY) bench/read_speed.py
	$(PY) bench/teacher_speed.py
	$(PY) bench/extract_speed.py
	$(PY) bench/teacher_study_time.py --forest-gravity false --keep mlruns/bench_study
	MLFLOW_TRACKING_URI=sqlite:///$(CURDIR)/mlruns/bench_study/mlflow.db $(PY) bench/pooling_resolution.py \
		--data mlruns/bench_study/demo_forest_gravity_false --teacher all
	$(PY) bench/probe_scale.py --n-train 32000
	$(PY) bench/calibrate_simulator.py --n-train 32000
	$(PY) bench/student_speed.py
	$(PY) bench/peer_speed.py
	$(PY) bench/student_benchmark.py --n-train 32000
	$(PY) bench/scale.py --sizes 24000,48000

clean: ## remove runs, data and the virtual environment
	rm -rf mlruns data reports $(VENV)
