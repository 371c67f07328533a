#!/usr/bin/env bash
# Create .venv (if needed) and install the project with its dev tools, pinned by
# constraints.txt.
#
# torch goes first, alone, at the version constraints.txt pins; the project's install then
# finds it satisfied and keeps it. Where it comes from:
#   1. TORCH_INDEX_URL, when set: that index (e.g. https://download.pytorch.org/whl/cu128);
#      set but empty: the default index (PyPI);
#   2. a wheel pip finds without any index (find-links, e.g. an offline wheel folder);
#   3. Linux without an NVIDIA GPU (no working nvidia-smi): the PyTorch CPU index; PyPI's
#      Linux x86_64 wheel is a CUDA build that pulls several GB of CUDA libraries;
#   4. otherwise the default index (PyPI): the CUDA build on a GPU machine, the CPU one on macOS.
# To switch builds later, delete .venv (an installed torch of the pinned version is kept).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
CPU_INDEX_URL="https://download.pytorch.org/whl/cpu"

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
if ! .venv/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "install.sh: Python >= 3.11 needed, .venv has $(.venv/bin/python -V 2>&1);" \
    "remove .venv and run again with PYTHON=python3.11 (or newer)" >&2
  exit 1
fi
pip_install() { .venv/bin/python -m pip install --quiet "$@"; }
pip_install --upgrade -c constraints.txt pip

TORCH_VERSION="$(sed -n 's/^torch==//p' constraints.txt)"
installed="$(.venv/bin/python -c 'from importlib.metadata import version; print(version("torch"))' 2>/dev/null || true)"
if [ -n "$installed" ] && [ "${installed%%+*}" = "$TORCH_VERSION" ]; then
  echo "torch $installed: already installed"
elif [ -n "${TORCH_INDEX_URL+set}" ]; then
  echo "torch $TORCH_VERSION: from ${TORCH_INDEX_URL:-the default index} (TORCH_INDEX_URL)"
  pip_install --no-deps ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} "torch==$TORCH_VERSION"
elif pip_install --dry-run --no-deps --no-index "torch==$TORCH_VERSION" >/dev/null 2>&1; then
  echo "torch $TORCH_VERSION: local wheel (found without an index)"
  pip_install --no-deps --no-index "torch==$TORCH_VERSION"
elif [ "$(uname -s)" = Linux ] && ! { command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; }; then
  echo "torch $TORCH_VERSION: CPU build from $CPU_INDEX_URL (no NVIDIA GPU found; TORCH_INDEX_URL overrides)"
  pip_install --no-deps --index-url "$CPU_INDEX_URL" "torch==$TORCH_VERSION"
else
  echo "torch $TORCH_VERSION: from the default index (TORCH_INDEX_URL overrides)"
  pip_install --no-deps "torch==$TORCH_VERSION"
fi

pip_install -c constraints.txt -e ".[dev]"
