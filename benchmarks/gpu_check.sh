#!/usr/bin/env bash
# The GPU check, ready for the day a GPU is at hand: one script, under 10 minutes on one GPU.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]
#
# 1. installs atlasgrn into the Python that has CUDA torch (pip install -e ., no deps if torch
#    and ray are already there, so an offline machine with them preinstalled works too);
# 2. reduced-precision GDT against fp32 on real demo blocks (bf16, fp16 and TF32): Pearson of
#    the features and top-1% edge overlap (gate: r >= 0.999, overlap >= 0.99);
# 3. one replica's batch path for the bundled model and an scGPT-sized model (12 layers,
#    d=512) with bf16 GDT, then fp16 GDT (on CPU fp16 came closest to the gate: overlap 0.987
#    against bf16's 0.937): pairs/s,
#    MFU against the measured matmul rate in that precision, peak memory;
# 4. the job end to end on Ray with one GPU replica (fp16 GDT), batched against one block per
#    call.
# Figures print as they come and land as JSON in OUT_DIR (default: $OUT or ./gpu-check).
# Each step has its own time limit, so one slow step cannot eat the others' minutes.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${1:-${OUT:-gpu-check}}"
mkdir -p "$OUT_DIR"
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1
START=$SECONDS

if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: no CUDA device visible to $PY (torch.cuda.is_available() is False)" >&2
    exit 2
fi
"$PY" - <<'EOF'
import torch
p = torch.cuda.get_device_properties(0)
print(f"device: {p.name}, {p.total_memory / 2**30:.0f} GiB; torch {torch.__version__}, "
      f"CUDA {torch.version.cuda}")
EOF
if ! "$PY" -c "import atlasgrn" 2>/dev/null; then
    if "$PY" -c "import torch, ray, zarr, anndata" 2>/dev/null; then
        "$PY" -m pip install -q --no-deps -e . || exit 2
    else
        "$PY" -m pip install -q -e . || exit 2
    fi
fi

step() {  # step NAME SECONDS CMD...
    local name=$1 limit=$2
    shift 2
    echo "== $name (limit ${limit}s, ${SECONDS}s elapsed)"
    timeout "$limit" "$@" 2>&1 | tee "$OUT_DIR/$name.log"
    local rc=${PIPESTATUS[0]}
    [ "$rc" -eq 0 ] || echo "== $name: exit $rc"
}

step precision 100 "$PY" benchmarks/check_precision.py --device cuda --blocks 16 \
    --json "$OUT_DIR/precision.json"
step replica-bf16 120 "$PY" benchmarks/bench_replica.py --device cuda --gdt-precision bf16 \
    --blocks 32 --json "$OUT_DIR/replica-bf16.json"
step replica-fp16 120 "$PY" benchmarks/bench_replica.py --device cuda --gdt-precision fp16 \
    --blocks 32 --json "$OUT_DIR/replica-fp16.json"
step engine 180 "$PY" benchmarks/bench_engine.py --quick --gpus-per-replica 1 \
    --gdt-precision fp16 --max-regulators 128 --json "$OUT_DIR/engine.json"
echo "gpu_check: done in $((SECONDS - START))s; figures in $OUT_DIR"
