#!/usr/bin/env bash
# A larger backbone, ready for the day a GPU is lent: one script (issue 16, item 6).
#
#   bash benchmarks/gpu_pretrain_larger.sh [OUT_DIR]
#
# 1. pre-trains scGPT's architecture at d=192, 6 layers (about 10.5M parameters) on every real
#    cell of the pre-training atlas, 12,000 steps (the bundled model: d=128, 4 layers, 4,500);
# 2. stores its weights in bf16, so the model fits the 25 MB package cap (fp32 would be ~42 MB),
#    and refuses to go on if it does not;
# 3. compares it with the bundled model on held-out cells (atlasgrn model-eval);
# 4. trains the default translator recipe with it (scripts/train_default_translator.py) and
#    prints the held-out-gene AUROC of its best model beside the bundled translator's: ship the
#    new model (copy OUT/model and OUT/translator over atlasgrn/data/...) only if it wins there;
# 5. with BENCH=1, the 64-TF BEELINE bench with the new model (docs/benchmark.md's command).
#
# Settings come from the environment (defaults in brackets), so the same script smoke-tests on
# a CPU with a tiny model: ALLOW_CPU=1 STEPS=20 D_MODEL=32 LAYERS=1 HEADS=2 D_FF=64 MAX_LEN=256
# ATLAS=atlasgrn/data/demo_atlas.zarr MAX_EPOCHS=5 bash benchmarks/gpu_pretrain_larger.sh /tmp/x
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${1:-${OUT:-gpu-pretrain}}"
PY="${PYTHON:-.venv/bin/python}"
ATLAS="${ATLAS:-atlases/pretrain.zarr}"
DATA="${DATA:-../shared/data/beeline_genelink}"
STEPS="${STEPS:-12000}"; D_MODEL="${D_MODEL:-192}"; LAYERS="${LAYERS:-6}"; HEADS="${HEADS:-6}"
D_FF="${D_FF:-768}"; MAX_LEN="${MAX_LEN:-1600}"; BATCH="${BATCH:-64}"
CAP_MB="${CAP_MB:-25}"
export PYTHONUNBUFFERED=1

if [ "${ALLOW_CPU:-0}" != 1 ] && ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_pretrain_larger: no CUDA device visible to $PY (set ALLOW_CPU=1 for a CPU smoke test)" >&2
    exit 2
fi
if [ ! -d "$ATLAS" ]; then
    echo "gpu_pretrain_larger: building the pre-training atlas at $ATLAS" >&2
    "$PY" scripts/build_pretrain_atlas.py --out "$ATLAS"
fi
if [ -e "$OUT_DIR/model" ]; then
    echo "gpu_pretrain_larger: $OUT_DIR/model exists: choose a new OUT_DIR" >&2
    exit 2
fi
mkdir -p "$OUT_DIR"

echo "== 1. pre-training d=$D_MODEL, $LAYERS layers, $STEPS steps"
start=$SECONDS
"$PY" -m atlasgrn pretrain "$ATLAS" --out "$OUT_DIR/model" --steps "$STEPS" \
    --d-model "$D_MODEL" --layers "$LAYERS" --heads "$HEADS" --d-ff "$D_FF" \
    --max-len "$MAX_LEN" --min-len 64 --batch-size "$BATCH" --lr 1e-3 \
    --eval-every "$(( STEPS / 20 > 10 ? STEPS / 20 : 10 ))" --patience 8 --seed 0 --device auto
rm -rf "$OUT_DIR/model/train_state"
echo "pre-training took $(( SECONDS - start )) s"

echo "== 2. bf16 weights under the ${CAP_MB} MB cap"
"$PY" - "$OUT_DIR/model" "$CAP_MB" <<'EOF'
import sys
from pathlib import Path

from atlasgrn.models import load_model, save_model

folder, cap = Path(sys.argv[1]), float(sys.argv[2])
save_model(load_model(folder), folder, weights_dtype="bfloat16")
size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file()) / 1e6
print(f"model directory: {size:.1f} MB (cap {cap:.0f} MB)")
sys.exit(0 if size <= cap else 3)
EOF

echo "== 3. held-out cells: new model, then the bundled one"
"$PY" -m atlasgrn model-eval "$ATLAS" --model "$OUT_DIR/model" --cells 64 --lengths 256 \
    --json "$OUT_DIR/heldout_new.json" --device auto
"$PY" -m atlasgrn model-eval "$ATLAS" --cells 64 --lengths 256 \
    --json "$OUT_DIR/heldout_bundled.json" --device auto

echo "== 4. the default translator recipe with the new model"
"$PY" scripts/train_default_translator.py --data "$DATA" --model "$OUT_DIR/model" \
    --out "$OUT_DIR/translator" --cache none ${MAX_EPOCHS:+--max-epochs "$MAX_EPOCHS"}
"$PY" - "$OUT_DIR/translator/translator.json" atlasgrn/data/translators/default/translator.json \
    "$OUT_DIR/decision.json" <<'EOF'
import json
import sys

def best(path):
    scores = json.load(open(path))["provenance"]["ensemble"]["candidates_unseen_gene_auroc"]
    name = max(scores, key=scores.get)
    return name, scores[name]

new, old = best(sys.argv[1]), best(sys.argv[2])
ship = new[1] > old[1]
print(f"held-out-gene AUROC: new model {new[0]} {new[1]:.3f}, bundled {old[0]} {old[1]:.3f} -> "
      + ("ship the new model" if ship else "keep the bundled model"))
json.dump({"new": new, "bundled": old, "ship": ship}, open(sys.argv[3], "w"), indent=1)
EOF

if [ "${BENCH:-0}" = 1 ]; then
    echo "== 5. BEELINE bench, 64 TFs, 3 seeds, with the new model"
    "$PY" -m atlasgrn bench beeline --data "$DATA" --out "$OUT_DIR/bench64" --network STRING \
        --network Non-Specific --size 500 --seeds 3 --tf-sample 64 --train-dataset mESC \
        --model "$OUT_DIR/model" --device auto
fi
echo "done in $SECONDS s: $OUT_DIR"
