#!/usr/bin/env bash
# Install atlasgrn into ./.venv, then run the main job on the bundled demo atlas.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python -m atlasgrn.run "$@"
