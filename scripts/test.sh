#!/usr/bin/env bash
# Lint, format check and the test suite, exactly as CI runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
command -v chromium >/dev/null || { command -v apt-get >/dev/null && [ "$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } || echo "test.sh: no chromium here: the browser test of the HTML report will be skipped" >&2
.venv/bin/ruff check .
.venv/bin/ruff format --check .
# The core's layers and orchestrator-neutrality (contracts in pyproject.toml).
.venv/bin/lint-imports
# Type check of trainer/ (settings in pyproject.toml).
.venv/bin/mypy
.venv/bin/python -m pytest -q "$@"
