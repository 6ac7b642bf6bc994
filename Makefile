# digitrec — every target sets up .venv first (torch pinned to the CPU build, then the project).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ARGS   ?=
PORT   ?= 5000
SPLITS ?= train,test
TORCH  := torch==2.13.0
PIP    := $(BIN)/python -m pip install --disable-pip-version-check -q

.DEFAULT_GOAL := help
.PHONY: help install train test test-fast bench ui data-mnist data-notmnist data-svhn data-street lint clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  ARGS=\"...\" passes Hydra overrides, e.g. make train ARGS=\"model.depth=6 trainer.max_epochs=3\""

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing $(TORCH) (CPU build), then digitrec and its dependencies into $(VENV) ..."
	$(PIP) $(TORCH)
	$(PIP) -e ".[dev]"
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
