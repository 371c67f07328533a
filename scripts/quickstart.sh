#!/usr/bin/env bash
# The quickstart on a fresh clone: install, initialise ZenML, run the fine-tuning
# pipeline on the local stack (SQLite, offline), then print where the results are.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
# shellcheck disable=SC1091
source .venv/bin/activate
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false ZENML_AUTO_OPEN_DASHBOARD=false
[ -d .zen ] || zenml init
zenml pipeline run pipelines.finetune.finetune_pipeline -c configs/quickstart.yaml
python - <<'PY'
import json
from pathlib import Path

evaluation = json.loads(Path("outputs/quickstart/evaluation.json").read_text())
metric = evaluation["primary_metric"]
print(f"\n{metric}: base {evaluation['base'][metric]:.4f} -> fine-tuned {evaluation['finetuned'][metric]:.4f}")
print("evaluation summary: outputs/quickstart/evaluation.json")
print("fine-tuned model:   outputs/quickstart/model  (SentenceTransformer('outputs/quickstart/model'))")
PY
