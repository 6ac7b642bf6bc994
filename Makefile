# digitrec — every target sets up .venv first (torch pinned to the CPU build, then the project).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ARGS   ?=
PORT   ?= 5000
N_TRIALS ?=
PROFILE  ?= smoke
LAUNCHER ?= local
SPLITS ?= train,test
READER ?=
LOCALIZER ?=
SERVE_PORT ?= 8000
TORCH  := torch==2.13.0
# declares optuna<3 (broken on SQLAlchemy 2); runs on the optuna 3 that pyproject.toml pins
OPTUNA_SWEEPER := hydra-optuna-sweeper==1.3.0
PIP    := $(BIN)/python -m pip install --disable-pip-version-check -q

.DEFAULT_GOAL := help
.PHONY: help install train test test-fast bench ui serve train-photo-reader sweep-mnist sweep-mnist-grid sweep-svhn reproduce-paper data-mnist data-notmnist data-svhn data-street lint clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  ARGS=\"...\" passes Hydra overrides, e.g. make train ARGS=\"model.depth=6 trainer.max_epochs=3\""
	@echo "  sweeps: N_TRIALS=, LAUNCHER=local (2 jobs at a time) | slurm; reproduce-paper: PROFILE=smoke|cpu|gpu"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing $(TORCH) (CPU build), then digitrec and its dependencies into $(VENV) ..."
	$(PIP) $(TORCH)
	$(PIP) -e ".[dev]"
	$(PIP) --no-deps $(OPTUNA_SWEEPER)
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install digitrec (torch first, pinned)

train: $(STAMP) ## train the default experiment (conf/train.yaml); ARGS= for overrides
	$(BIN)/digitrec-train $(ARGS)

test: $(STAMP) ## run the whole test suite (offline; the real-data tests read DIGITREC_DATA_DIR)
	$(BIN)/pytest $(ARGS)

test-fast: $(STAMP) ## the tests without the one-minute real-data training
	$(BIN)/pytest -m "not slow" $(ARGS)

bench: $(STAMP) ## benchmarks (pytest-benchmark): generator, model step, data loading
	$(BIN)/pytest tests/test_bench.py --benchmark-enable --benchmark-only --benchmark-columns=min,median,mean,rounds $(ARGS)

ui: $(STAMP) ## MLflow UI over the project's tracking store, on 127.0.0.1 (PORT=5000)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db --host 127.0.0.1 --port $(PORT)

serve: $(STAMP) ## web page reading uploaded photos, on 127.0.0.1 (READER=, LOCALIZER= checkpoints)
	@test -n "$(READER)" || { echo "make serve: set READER=<reader best.ckpt> (and LOCALIZER=<localizer best.ckpt>); see README 'Reading photos'" >&2; exit 2; }
	$(BIN)/digitrec-serve $(READER) $(if $(LOCALIZER),--localizer $(LOCALIZER)) --port $(SERVE_PORT)

train-photo-reader: $(STAMP) ## train the photo reader's two models: reader (SVHN crops) and localizer (scenes)
	$(BIN)/digitrec-train experiment=photo_reader $(ARGS)
	$(BIN)/digitrec-train experiment=localizer $(ARGS)

sweep-mnist: $(STAMP) ## Optuna (TPE) search on synthetic MNIST (N_TRIALS=20, ARGS= for overrides)
	$(BIN)/digitrec-train -m hparams_search=mnist_optuna launcher=$(LAUNCHER) $(if $(N_TRIALS),hydra.sweeper.n_trials=$(N_TRIALS)) $(ARGS)
	$(BIN)/digitrec-compare mnist_search --latest-sweep

sweep-mnist-grid: $(STAMP) ## grid search on synthetic MNIST: head x depth x learning rate (27 jobs)
	$(BIN)/digitrec-train -m hparams_search=mnist_grid launcher=$(LAUNCHER) $(ARGS)
	$(BIN)/digitrec-compare mnist_search --latest-sweep

sweep-svhn: $(STAMP) ## Optuna (TPE) search of the paper's SVHN recipe (N_TRIALS=20, ARGS= for overrides)
	$(BIN)/digitrec-train -m hparams_search=svhn_optuna launcher=$(LAUNCHER) $(if $(N_TRIALS),hydra.sweeper.n_trials=$(N_TRIALS)) $(ARGS)
	$(BIN)/digitrec-compare svhn_search --latest-sweep

reproduce-paper: $(STAMP) ## the paper's table beside ours: PROFILE=smoke (minutes) | cpu (hours) | gpu
	$(BIN)/digitrec-reproduce --profile $(PROFILE) $(ARGS)

data-mnist: $(STAMP) ## download and verify MNIST into DIGITREC_DATA_DIR (default .data/)
	$(BIN)/digitrec-data mnist

data-notmnist: $(STAMP) ## download notMNIST_small into DIGITREC_DATA_DIR and convert it (npz)
	$(BIN)/digitrec-data notmnist

data-svhn: $(STAMP) ## download SVHN format 1 (train, test; SPLITS=train,test,extra) and extract it
	$(BIN)/digitrec-data svhn --splits $(SPLITS)

data-street: $(STAMP) ## render the SYNTHETIC SVHN stand-in (real layouts from svhn/labels) into DIGITREC_DATA_DIR/street
	$(BIN)/digitrec-data street $(ARGS)

lint: $(STAMP) ## ruff
	$(BIN)/ruff check digitrec tests
	$(BIN)/ruff format --check digitrec tests

clean: ## remove run outputs (keeps .venv, data and the MLflow store)
	rm -rf outputs .pytest_cache .ruff_cache
