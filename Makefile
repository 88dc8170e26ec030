# Learning Deep Learning: the two commands a newcomer needs.
#   make test          create .venv, install ldl with its dev extras, run the whole suite
#   make execute-all   run every notebook (PROFILE=smoke|cpu|gpu|auto, NOTEBOOKS="notebooks/00_*.ipynb")
#   make site          the course website from the executed run in build/ (after execute-all)
#   make compat        the same course in an environment pinned like Colab (CI runs it too)
# Both create the environment themselves on first use.

# The first Python 3.10 or newer (with its venv module) on PATH: python3, then python3.13 ...
# python3.10. Name another with `make test PYTHON=/path/to/python3.12`.
PYTHON ?= $(shell for p in python3 python3.13 python3.12 python3.11 python3.10; do \
	$$p -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 10))' >/dev/null 2>&1 && { command -v $$p; break; }; done)
VENV   ?= .venv
PY     := $(VENV)/bin/python
PROFILE ?= auto
NOTEBOOKS ?=
BUILD  ?= build
PYTEST_ARGS ?=

.PHONY: test execute-all site install clean-build clean benchmarks compat

# The stamp is remade whenever pyproject.toml changes, so dependencies stay in step.
$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || test -n "$(PYTHON)" || { echo "make: found no Python 3.10 or newer with its venv module (tried python3, python3.13 ... python3.10). Install one (Debian/Ubuntu: sudo apt install python3 python3-venv) or name it: make test PYTHON=/path/to/python3" >&2; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e ".[dev,weights]"
	touch $@

install: $(VENV)/.installed

test: $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS)

execute-all: $(VENV)/.installed
	$(PY) -m ldl.course execute-all --profile $(PROFILE) --build $(BUILD) $(if $(NOTEBOOKS),--notebooks $(NOTEBOOKS),)

# Never runs a notebook: it shows the run execute-all left in $(BUILD) (build/site/index.html).
site: $(VENV)/.installed
	$(PY) -m ldl.site --build $(BUILD)

benchmarks: $(VENV)/.installed
	$(PY) benchmarks/trainer_overhead.py
	$(PY) benchmarks/data_path.py
	$(PY) benchmarks/offline_vs_on_the_fly.py
	$(PY) benchmarks/playground_redraw.py
	$(PY) benchmarks/tensorboard_overhead.py
	$(PY) benchmarks/finetune_throughput.py
	$(PY) benchmarks/finetune_epoch_split.py
	$(PY) benchmarks/channels_last.py
	$(PY) benchmarks/decoders.py

# A second environment pinned like Colab (Python 3.13, torch 2.11, ipywidgets 7.7.1, ...):
# the resolver check, the unit tests and lessons 1 and 3 there (compat/README.md).
compat:
	bash compat/run.sh

clean-build:
	rm -rf $(BUILD)

clean: clean-build
	rm -rf $(VENV) .venv-colab
