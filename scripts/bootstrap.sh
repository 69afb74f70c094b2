#!/usr/bin/env bash
# Create ./.venv if needed and install atlasgrn into it with what this machine needs.
# Usage: bash scripts/bootstrap.sh [extra]   (extra: "dev" adds the test tools)
# torch: the CPU build where no NVIDIA GPU is visible (a plain `torch` requirement would pull
# several GB of CUDA wheels), the default build where one is.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install -q --upgrade pip >/dev/null
if ! python -c "import torch" >/dev/null 2>&1; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    pip install -q torch
  else
    pip install -q torch==2.13.0 || pip install -q torch
  fi
fi
target="."
if [ "${1:-}" = "dev" ]; then target=".[dev]"; fi
pip install -q -e "$target"
