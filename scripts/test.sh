#!/usr/bin/env bash
# Install atlasgrn with its test tools into ./.venv, then run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh dev
exec .venv/bin/python -m pytest "$@"
