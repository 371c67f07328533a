#!/usr/bin/env bash
# Lint, format check and the test suite, exactly as CI runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
# The core's layers and orchestrator-neutrality (contracts in pyproject.toml).
.venv/bin/lint-imports
# Type check of trainer/ (settings in pyproject.toml).
.venv/bin/mypy
.venv/bin/python -m pytest -q "$@"
