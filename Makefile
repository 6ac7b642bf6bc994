# digitrec — every target sets up .venv first (torch pinned to the CPU build, then the lock, then the project).
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
MNIST_READER ?=
SERVE_PORT ?= 8000
STUDY  ?= mnist_search
TORCH  := torch==2.13.0
PIP    := $(BIN)/python -m pip install --disable-pip-version-check -q
# make test runs the test files in TEST_WORKERS processes (pytest-xdist, a file per worker at a
# time, so module fixtures are built once; the files with the longest tests first, as
# tests/conftest.py orders them), each with one torch thread; TEST_WORKERS=0: in this process
NPROC        := $(shell nproc 2>/dev/null || echo 2)
TEST_WORKERS ?= $(shell n=$(NPROC); [ $$n -gt 4 ] && n=4; echo $$n)
XDIST        := $(if $(filter 0,$(TEST_WORKERS)),-p no:xdist,-n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder)
TEST_ENV     := $(if $(filter 0,$(TEST_WORKERS)),,OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1})
# the lock: every dependency pinned (dev extras included) for Linux x86-64 with the CPU torch,
# one file per Python version; make install uses the one for the venv's Python, make lock
# refreshes them (uv pip compile; UPGRADE=1 moves every pin to the newest version allowed)
UV     := uv==0.13.9
# the lock is installed by uv (seconds, where pip takes minutes); uv reads UV_INDEX_URL and
# UV_EXTRA_INDEX_URL, not pip.conf: INSTALLER=pip installs it with pip and its configuration
INSTALLER ?= uv
LOCK_PYTHONS ?= 3.11 3.12
UPGRADE ?=
PYVER  := $(shell $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON)) -c 'import sys; print("%d%d" % sys.version_info[:2])')
LOCK   := requirements/lock-linux-py$(PYVER).txt

.DEFAULT_GOAL := help
.PHONY: help install lock train test test-fast bench ui ui-screenshot serve demo train-photo-reader train-two-stage peers sweep-mnist sweep-mnist-grid sweep-svhn reproduce-paper data-mnist data-notmnist data-svhn data-fonts data-street lint docs clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  ARGS=\"...\" passes Hydra overrides, e.g. make train ARGS=\"model.depth=6 trainer.max_epochs=3\""
	@echo "  tests: TEST_WORKERS=$(TEST_WORKERS) processes (0: pytest in this process)"
	@echo "  sweeps: N_TRIALS=, LAUNCHER=local (2 jobs at a time) | slurm; reproduce-paper: PROFILE=smoke|cpu|gpu"
	@echo "  the lock: make install installs $(LOCK); after editing pyproject.toml's dependencies run"
	@echo "  make lock (UPGRADE=1: every pin to the newest allowed; LOCK_PYTHONS=\"$(LOCK_PYTHONS)\") and commit requirements/"

$(STAMP): pyproject.toml $(LOCK)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing $(TORCH) (CPU build), then the locked dependencies ($(LOCK)) with $(INSTALLER), then digitrec into $(VENV) ..."
	$(PIP) $(TORCH)
ifeq ($(INSTALLER),uv)
	$(PIP) $(UV)
	$(BIN)/uv pip install --python $(BIN)/python --quiet --compile-bytecode -r $(LOCK)
	$(BIN)/uv pip install --python $(BIN)/python --quiet --no-deps -e .
else
	$(PIP) -r $(LOCK)
	$(PIP) --no-deps -e .
endif
	@# the Optuna sweeper is digitrec's own now: the old plugin (optuna<3) must not linger
	@$(BIN)/python -m pip uninstall -y -q hydra-optuna-sweeper 2>/dev/null || true
	$(BIN)/python -m pip check
	@touch $(STAMP)

requirements/lock-linux-py%.txt:
	@echo "no lock file for this Python ($@): make lock LOCK_PYTHONS=\"$(LOCK_PYTHONS) <major.minor>\"" >&2; exit 2

install: $(STAMP) ## create .venv and install digitrec: torch (CPU) first, then the lock, then digitrec

lock: ## refresh requirements/lock-linux-py3*.txt from pyproject.toml (LOCK_PYTHONS=, UPGRADE=1)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) $(UV)
	@mkdir -p requirements
	@for v in $(LOCK_PYTHONS); do \
	  out=requirements/lock-linux-py$$(echo $$v | tr -d .).txt; echo "locking Python $$v: $$out"; \
	  echo "$(TORCH)" | $(BIN)/uv pip compile --quiet pyproject.toml - --extra dev \
	    --python-version $$v --python-platform x86_64-manylinux_2_28 $(if $(UPGRADE),--upgrade) \
	    --custom-compile-command "make lock" --output-file $$out || exit 1; \
	done

train: $(STAMP) ## train the default experiment (conf/train.yaml); ARGS= for overrides
	$(BIN)/digitrec-train $(ARGS)

test: $(STAMP) ## run the whole test suite (offline; the real-data tests read DIGITREC_DATA_DIR)
	$(TEST_ENV) $(BIN)/pytest $(XDIST) --durations=10 $(ARGS)

test-fast: $(STAMP) ## the tests without the one-minute real-data training
	$(TEST_ENV) $(BIN)/pytest $(XDIST) -m "not slow" $(ARGS)

bench: $(STAMP) ## benchmarks (pytest-benchmark): generator, model step, data loading
	$(BIN)/pytest tests/bench --benchmark-enable --benchmark-only --benchmark-columns=min,median,mean,rounds $(ARGS)

ui: $(STAMP) ## MLflow UI over the project's tracking store, on 127.0.0.1 (PORT=5000)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db --host 127.0.0.1 --port $(PORT)

ui-screenshot: $(STAMP) ## PNG of a study's latest sweep compared in the MLflow UI (STUDY=mnist_search; headless Chromium)
	$(BIN)/python experiments/mlflow_ui/screenshot.py $(STUDY) --uri sqlite:///$(CURDIR)/mlflow.db

serve: $(STAMP) ## web page reading uploaded photos, on 127.0.0.1 (the shipped models, or READER= [LOCALIZER=])
	$(BIN)/digitrec-serve $(READER) $(if $(LOCALIZER),--localizer $(LOCALIZER)) --port $(SERVE_PORT)

demo: $(STAMP) ## the live page: photo, camera and draw modes with the models found, else the shipped ones (MNIST_READER=, READER=, LOCALIZER=)
	$(BIN)/digitrec-demo --train-if-missing --port $(SERVE_PORT) $(if $(MNIST_READER),--mnist-reader $(MNIST_READER)) $(if $(READER),--reader $(READER)) $(if $(LOCALIZER),--localizer $(LOCALIZER))

# the photo reader end to end: the digit detector (experiment=detector) on the real street photos of
# curtin_numbers/train, real SVHN train (svhn/real) when present and photo scenes rendered on the
# fly, then packed as the shipped model would be: $(PHOTO)/pretrained/detector.ckpt (compare it
# with digitrec/pretrained/detector.ckpt; its card says how that one was made). The older two-stage
# reader (reader + localizer on a rendered stand-in): make train-two-stage.
DATA   ?= $(or $(DIGITREC_DATA_DIR),.data)
STREET ?= .data/street-v2
REAL   ?= $(DATA)/svhn/real
PHOTO  ?= outputs/photo_reader
train-photo-reader: $(STAMP) ## the photo reader end to end: fonts, the detector on real photos + scenes (at most 1 h 50 min), packed
	@test -f $(DATA)/curtin_numbers/train/labels.json || { echo "make train-photo-reader: no $(DATA)/curtin_numbers/train (set DIGITREC_DATA_DIR=)" >&2; exit 2; }
	$(BIN)/digitrec-data fonts --data-dir $(DATA)
	$(BIN)/digitrec-train experiment=detector $(if $(firstword $(wildcard $(REAL)/train/*.png)),data.svhn_root=$(REAL)) \
	    $(if $(wildcard $(DATA)/chars74k_digits/labels.csv),data.chars74k_root=$(DATA)/chars74k_digits) hydra.run.dir=$(PHOTO)/detector $(ARGS)
	$(BIN)/digitrec-pretrained pack $(PHOTO)/detector/checkpoints/best.ckpt detector --out-dir $(PHOTO)/pretrained

train-two-stage: $(STAMP) ## the older two-stage reader: stand-in, reader, localizer, real fine-tunes (~1 h)
	$(BIN)/digitrec-data fonts --data-dir $(DATA)
	test -f $(STREET)/test/digitStruct.mat || $(BIN)/digitrec-data street --data-dir $(DATA) --out $(STREET) \
	    $(if $(firstword $(wildcard $(REAL)/train/*.png)),--set backgrounds=$(REAL)/train)
	$(BIN)/digitrec-train experiment=photo_reader data.root=$(STREET) hydra.run.dir=$(PHOTO)/reader $(ARGS)
	$(BIN)/digitrec-train experiment=localizer data.root=$(STREET) hydra.run.dir=$(PHOTO)/localizer $(ARGS)
	@if [ -n "$(firstword $(wildcard $(REAL)/train/*.png))" ]; then \
	  $(BIN)/digitrec-train experiment=photo_reader_real data.root=$(REAL) init_from=$(PHOTO)/reader/checkpoints/best.ckpt hydra.run.dir=$(PHOTO)/reader_real $(ARGS) && \
	  $(BIN)/digitrec-train experiment=localizer_real data.root=$(REAL) init_from=$(PHOTO)/localizer/checkpoints/best.ckpt hydra.run.dir=$(PHOTO)/localizer_real $(ARGS); \
	else echo "no real SVHN training images in $(REAL)/train: the stand-in models are the photo reader"; fi

peers: $(STAMP) ## digitrec beside RapidOCR and Tesseract on the real images (the shipped detector, or READER= [LOCALIZER=]; installs the peers)
	test -x .venv-peers/bin/python || $(PYTHON) -m venv .venv-peers
	.venv-peers/bin/python -m pip install --disable-pip-version-check -q rapidocr-onnxruntime==1.4.4 pytesseract==0.3.13
	command -v tesseract >/dev/null || apt-get install -y -q tesseract-ocr >/dev/null || { echo "make peers: install Tesseract 5 (Debian: apt-get install tesseract-ocr)" >&2; exit 2; }
	mkdir -p $(PHOTO)/peers
	$(BIN)/python experiments/photo_reader/peers.py read --engine digitrec $(if $(READER),--reader $(READER)) $(if $(LOCALIZER),--localizer $(LOCALIZER)) --out $(PHOTO)/peers/digitrec.json
	.venv-peers/bin/python experiments/photo_reader/peers.py read --engine rapidocr --out $(PHOTO)/peers/rapidocr.json
	.venv-peers/bin/python experiments/photo_reader/peers.py read --engine tesseract --out $(PHOTO)/peers/tesseract.json
	$(BIN)/python experiments/photo_reader/peers.py table $(PHOTO)/peers/digitrec.json $(PHOTO)/peers/rapidocr.json $(PHOTO)/peers/tesseract.json

sweep-mnist: $(STAMP) ## Optuna (TPE) search on synthetic MNIST (N_TRIALS=20, ARGS= for overrides)
	$(BIN)/digitrec-train -m hparams_search=mnist_optuna launcher=$(LAUNCHER) $(if $(N_TRIALS),hydra.sweeper.n_trials=$(N_TRIALS)) $(ARGS)
	$(BIN)/digitrec-compare mnist_search --latest-sweep

sweep-mnist-grid: $(STAMP) ## grid search on synthetic MNIST: head x depth x learning rate (27 jobs)
	$(BIN)/digitrec-train -m hparams_search=mnist_grid launcher=$(LAUNCHER) $(ARGS)
	$(BIN)/digitrec-compare mnist_search --latest-sweep

sweep-svhn: $(STAMP) ## Optuna (TPE) search of the paper's SVHN recipe (N_TRIALS=20, ARGS= for overrides)
	$(BIN)/digitrec-train -m hparams_search=svhn_optuna launcher=$(LAUNCHER) $(if $(N_TRIALS),hydra.sweeper.n_trials=$(N_TRIALS)) $(ARGS)
	$(BIN)/digitrec-compare svhn_search --latest-sweep

reproduce-paper: $(STAMP) ## the paper's table beside ours: PROFILE=smoke (12-19 min) | cpu (70-80 min) | gpu; run again to resume
	$(BIN)/digitrec-reproduce --profile $(PROFILE) $(ARGS)

data-mnist: $(STAMP) ## download and verify MNIST into DIGITREC_DATA_DIR (default .data/)
	$(BIN)/digitrec-data mnist

data-notmnist: $(STAMP) ## download notMNIST_small into DIGITREC_DATA_DIR and convert it (npz)
	$(BIN)/digitrec-data notmnist

data-svhn: $(STAMP) ## download SVHN format 1 (train, test; SPLITS=train,test,extra) and extract it
	$(BIN)/digitrec-data svhn --splits $(SPLITS)

data-fonts: $(STAMP) ## fetch the renderer's 67 font families (npm registry, sha512-checked) into DIGITREC_DATA_DIR/fonts
	$(BIN)/digitrec-data fonts

data-street: $(STAMP) ## render the SYNTHETIC SVHN stand-in (real layouts from svhn/labels) into DIGITREC_DATA_DIR/street
	$(BIN)/digitrec-data street $(ARGS)

lint: $(STAMP) ## ruff (lint and format) and the import contracts (lint-imports: the layering in pyproject.toml)
	$(BIN)/ruff check digitrec tests experiments
	$(BIN)/ruff format --check digitrec tests experiments
	$(BIN)/lint-imports

# the documentation site (docs/, mkdocs.yml): --strict fails on a broken link or a failing
# generator (docs/gen/: every console script's --help, conf/, the API, experiments/); open
# site/index.html, or .venv/bin/mkdocs serve while editing
docs: $(STAMP) ## build the docs site into site/ (mkdocs --strict; the reference is generated from the code)
	DISABLE_MKDOCS_2_WARNING=true NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

clean: ## remove run outputs (keeps .venv, data and the MLflow store)
	rm -rf outputs .pytest_cache .ruff_cache
