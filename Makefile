# Fine-Tuning LLMs, hands-on. `make lab` opens the course, `make test` runs every test and notebook.
# Both set up .venv first; set-up is skipped when nothing changed since the last one.

# interpreter that creates .venv (Python >= 3.10)
PYTHON ?= python3
# the course's virtual environment
VENV ?= .venv
# installed only when no torch is importable in .venv; never unpinned (that pulls GBs of CUDA packages)
TORCH_VERSION := 2.13.0
# extra JupyterLab flags, e.g. LAB_ARGS="--no-browser --port 8899"
LAB_ARGS ?=
# extra pytest flags, e.g. PYTEST_ARGS="-k profiles -x"
PYTEST_ARGS ?=
# `make perturb`: how to compute (knobs joined by commas: native, avx2, generic, 1thread, seed+N) and which lessons
PERTURB ?= avx2
LESSONS ?=
# `make grade`: the folder of submissions (one folder of notebooks per student) and where the score tables go
SUBMISSIONS ?=
GRADES ?= build/grades

BIN := $(VENV)/bin
# JupyterLab refuses to start as root (containers, some cloud machines) unless told it may
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)
STAMP := $(VENV)/.course-installed
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb solutions/*.ipynb))
EXERCISES := $(sort $(wildcard exercises/*.ipynb))

.PHONY: help setup lab lint test notebooks perturb claims sync exercises grade clean distclean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 12

setup: $(STAMP)  ## create .venv and install the course (seconds when already done)

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "the course needs Python 3.10 or newer"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade "pip>=25.3,<26"  # the pip a new venv brings may be years old, with known advisories

$(STAMP): pyproject.toml | $(BIN)/python
	@if $(BIN)/python -c 'import torch' 2>/dev/null; then \
		echo "torch $$($(BIN)/python -c 'import torch; print(torch.__version__)') is already installed: keeping it"; \
	else \
		$(BIN)/python -m pip install "torch==$(TORCH_VERSION)"; \
	fi
	$(BIN)/python -m pip install -e ".[dev]"
	@touch $@

lab: setup  ## open the course in JupyterLab
	$(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" --LabApp.default_url=/lab/tree/notebooks $(ROOT_FLAG) $(LAB_ARGS)

lint: setup  ## check the library, tests, benchmarks and notebooks with ruff (rules in pyproject.toml)
	$(BIN)/ruff check .

test: lint  ## check the code with ruff, then run the unit tests and execute every notebook, offline
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

notebooks: setup  ## execute every notebook into build/notebooks, outputs included
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/jupyter nbconvert --to notebook --execute \
		--ExecutePreprocessor.timeout=3600 --output-dir build/notebooks $(NOTEBOOKS)

perturb: setup  ## run lessons and numeric tests as another CPU would, e.g. PERTURB=avx2,seed+1 LESSONS="03 04"
	$(BIN)/python benchmarks/perturb.py run $(PERTURB) $(LESSONS)

claims: setup  ## rewrite benchmarks/claims.md from every recorded perturb run
	$(BIN)/python benchmarks/perturb.py table

sync: setup  ## strip outputs from notebooks and rewrite their Colab badge and install cell
	$(BIN)/python -m course_lib.nbtools sync $(NOTEBOOKS) $(EXERCISES)

exercises: setup  ## regenerate exercises/ from solutions/ (nbgrader clears the solutions and hidden tests)
	$(BIN)/python -m course_lib.exercisegen

grade: setup  ## grade submitted exercises into build/grades/scores.csv and .md, e.g. SUBMISSIONS=~/collected
	@test -n "$(SUBMISSIONS)" || { echo "Set SUBMISSIONS to the folder of submissions, e.g. make grade SUBMISSIONS=~/collected"; exit 2; }
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/python -m course_lib.autograde "$(SUBMISSIONS)" --out "$(GRADES)"

clean:  ## remove build outputs and caches (keeps .venv)
	rm -rf build runs .pytest_cache
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +
	find . -name .ipynb_checkpoints -not -path './$(VENV)/*' -prune -exec rm -rf {} +

distclean: clean  ## also remove .venv
	rm -rf $(VENV) *.egg-info
