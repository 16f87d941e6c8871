#!/usr/bin/env bash
# `make test`: install, pull models, the layers contract, unit tests, end-to-end tests, LangChain's suite — and how long each phase took.
# pytest's exit code 5 (no tests collected) fails its phase: "nothing ran" must never pass as green.
set -uo pipefail
BIN=${BIN:-.venv/bin}
MAKE=${MAKE:-make}
timings=()

phase() {  # phase NAME COMMAND...
  local name=$1 start rc=0
  shift
  start=$(date +%s)
  echo "==> $name"
  "$@" || rc=$?
  timings+=("$name $(( $(date +%s) - start )) s")
  if [ "$rc" -eq 5 ]; then echo "phase '$name': pytest collected no tests"; fi
  if [ "$rc" -ne 0 ]; then
    echo "phase '$name' failed (exit $rc); timings: ${timings[*]}"
    exit "$rc"
  fi
}

phase install "$MAKE" --no-print-directory install
phase models "$MAKE" --no-print-directory models
# The layers contract (pyproject.toml, [tool.importlinter]): an upward import fails CI like a failing test.
phase layers "$BIN/lint-imports" --no-cache
phase unit "$BIN/python" -m pytest -m "not e2e and not langchain" -q
phase e2e "$BIN/python" -m pytest -m e2e -q
# LangChain's standard chat-model tests need pytest-asyncio's auto mode with a session-scoped loop, which
# clashes with the anyio tests above: their own run, against their own gateway.
phase langchain "$BIN/python" -m pytest tests/langchain -m langchain -q -p no:cacheprovider \
  -o asyncio_mode=auto -o asyncio_default_fixture_loop_scope=session -o asyncio_default_test_loop_scope=session
echo "phase timings: $(IFS=,; echo "${timings[*]}" | sed 's/,/, /g')"
