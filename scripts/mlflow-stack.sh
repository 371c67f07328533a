#!/usr/bin/env bash
# Register a local, offline MLflow experiment tracker and a stack that uses it, then
# make that stack active. Runs of `finetune_pipeline` on it log parameters, the loss /
# learning-rate / grad-norm curves, evaluation metrics and the model card to MLflow.
#
#   bash scripts/mlflow-stack.sh            # register (idempotent) and activate
#   bash scripts/mlflow-stack.sh ui         # open the MLflow UI on http://127.0.0.1:5000
#   zenml stack set default                 # back to the plain local stack
#
# The MLflow store is a SQLite file under mlruns/ (gitignored); run artifacts (the model
# card) land in mlruns/<experiment id>/ of the directory the pipeline runs from: run
# pipelines from the repository root, where `zenml init` created .zen/.
# Nothing here reaches the network: do not use `zenml integration install mlflow`; the
# `mlflow` extra of pyproject.toml installs what the tracker needs.
set -euo pipefail
cd "$(dirname "$0")/.."

MLFLOW_DIR="${MLFLOW_DIR:-$PWD/mlruns}"
TRACKER="${MLFLOW_TRACKER_NAME:-mlflow_local}"
STACK="${MLFLOW_STACK_NAME:-local-mlflow}"
PORT="${MLFLOW_PORT:-5000}"
TRACKING_URI="sqlite:///${MLFLOW_DIR}/mlflow.db"

if [[ "${1:-}" == "ui" ]]; then
  # `mlflow ui` is `mlflow server` bound to localhost; no telemetry, no network.
  export MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true
  exec mlflow ui --backend-store-uri "$TRACKING_URI" --host 127.0.0.1 --port "$PORT"
fi

mkdir -p "$MLFLOW_DIR"
if zenml experiment-tracker describe "$TRACKER" >/dev/null 2>&1; then
  zenml experiment-tracker update "$TRACKER" --tracking_uri="$TRACKING_URI"
else
  zenml experiment-tracker register "$TRACKER" --flavor=mlflow --tracking_uri="$TRACKING_URI"
fi
if ! zenml stack describe "$STACK" >/dev/null 2>&1; then
  zenml stack register "$STACK" -o default -a default -e "$TRACKER"
fi
zenml stack set "$STACK"
echo "Active stack: $STACK (MLflow store: $TRACKING_URI)"
echo "Open the MLflow UI with: bash scripts/mlflow-stack.sh ui"
