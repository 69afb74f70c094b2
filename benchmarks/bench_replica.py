"""What one model replica sustains: a batch of blocks through the engine's own batch path
(``engine.scoring.probe_blocks``, the stacked probes), for the bundled model and an scGPT-sized
one, on the device at hand (prints figures; not a test).

Per model: pairs/s, achieved FLOP/s (analytic probe FLOPs, :mod:`atlasgrn.probes.flops`), that
rate as a fraction of this device's measured matmul rate in the GDT's precision (MFU against a
measured, not a datasheet, peak), and peak memory (CUDA allocator peak; process RSS on CPU).
Blocks are the engine's default shape (32 regulators x 128 targets, 256-token contexts, 8 VVP
values, 8 GDT levels) over random genes, with the bundled translator's kinds (VVP + uniform GDT).
The scGPT-sized model (12 layers, d=512, 8 heads) has random weights: throughput does not depend
on what the weights learned. No Ray, no writes: the engine's end-to-end figures are
``bench_engine.py``'s.

    python benchmarks/bench_replica.py --device cuda --gdt-precision bf16 --blocks 32
    python benchmarks/bench_replica.py --quick                   # CPU smoke run, ~1 min
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from matmul_rate import matmul_flop_per_s  # noqa: E402  (beside this script)

SCGPT_SIZE = {"d_model": 512, "n_layers": 12, "n_heads": 8, "d_ff": 512}


def models(device: str, which: list[str]):
    from atlasgrn.models import load_model
    from atlasgrn.models.checkpoint import bundled_model_dir
    from atlasgrn.models.factory import new_model
    from atlasgrn.models.interface import ArchConfig

    bundled = load_model(str(bundled_model_dir()), device=device)
    if "bundled" in which:
        yield "bundled (d=128, 4 layers)", bundled
    if "scgpt" in which:
        arch = ArchConfig(vocab_size=bundled.config.arch.vocab_size, dropout=0.0,
                          max_len=bundled.config.arch.max_len, **SCGPT_SIZE)
        big = new_model(arch, bundled.config.values, dict(bundled.vocab), seed=0)
        yield "scGPT-sized (d=512, 12 layers)", big.to(device).eval()


def requests(model, n_blocks: int, n_src: int, n_tgt: int, seed: int = 0):
    import random

    from atlasgrn.features.compute import BlockRequest

    genes = sorted(g for g in model.vocab if not g.startswith("<"))
    rng = random.Random(seed)
    rng.shuffle(genes)
    anchors = tuple(genes[-1000:])
    out = []
    for b in range(n_blocks):
        src = tuple(genes[b * n_src:(b + 1) * n_src])
        start = n_blocks * n_src + b * n_tgt
        out.append(BlockRequest(src, tuple(genes[start:start + n_tgt]), anchors))
    return out


def peak_memory_reset(device: str) -> None:
    import torch
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def peak_memory(device: str) -> int:
    import resource

    import torch
    if device == "cuda":
        return int(torch.cuda.max_memory_allocated())
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)


def bench_model(label: str, model, args: argparse.Namespace, rates: dict) -> dict:
    import torch

    from atlasgrn.features import FeatureSpec
    from atlasgrn.features.compute import blocks_features

    spec = FeatureSpec.for_model(model, kinds=("vvp", "gdt_uniform"),
                                 source_block=args.source_block, target_block=args.target_block)
    reqs = requests(model, args.blocks, spec.source_block, spec.target_block)
    blocks_features(model, spec, reqs[:1], gdt_precision=args.gdt_precision)  # warm-up
    peak_memory_reset(args.device)
    if args.device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    feats = blocks_features(model, spec, reqs, gdt_precision=args.gdt_precision)
    if args.device == "cuda":
        torch.cuda.synchronize()
    secs = time.perf_counter() - t0
    failed = [f for f in feats if isinstance(f, Exception)]
    if failed:
        raise failed[0]
    pairs = sum(len(f.sources) * len(f.targets) for f in feats)
    flops = sum(f.flops for f in feats)
    reference = rates[args.gdt_precision]
    row = {"model": label, "blocks": len(feats), "pairs": pairs, "seconds": round(secs, 3),
           "pairs_per_s": round(pairs / secs, 1), "flop_per_s": flops / secs,
           "mfu_vs_measured_matmul": round(flops / secs / reference, 3),
           "peak_memory_mib": round(peak_memory(args.device) / 2 ** 20)}
    print(f"{label}: {row['blocks']} blocks, {pairs:,} pairs in {secs:.2f}s = "
          f"{row['pairs_per_s']:,.0f} pairs/s; {flops / secs / 1e12:.3f} TFLOP/s = "
          f"{row['mfu_vs_measured_matmul']:.2f} of the {args.gdt_precision} matmul rate; peak "
          f"memory {row['peak_memory_mib']:,} MiB")
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--gdt-precision", default="fp32", choices=("fp32", "bf16", "fp16", "tf32"))
    ap.add_argument("--blocks", type=int, default=16)
    ap.add_argument("--source-block", type=int, default=32)
    ap.add_argument("--target-block", type=int, default=128)
    ap.add_argument("--models", default="bundled,scgpt")
    ap.add_argument("--quick", action="store_true", help="CPU smoke run: 2 small blocks, "
                                                         "the bundled model")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if args.quick:
        args.blocks, args.source_block, args.target_block, args.models = 2, 8, 32, "bundled"
    import torch

    if args.device == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)
    n = 8192 if args.device == "cuda" else 1024
    rates = {"fp32": matmul_flop_per_s(n, args.device, torch.float32)}
    rates["tf32"] = rates["fp32"]
    if args.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        rates["tf32"] = matmul_flop_per_s(n, args.device, torch.float32)
        torch.backends.cuda.matmul.allow_tf32 = False
    rates["bf16"] = matmul_flop_per_s(n, args.device, torch.bfloat16)
    rates["fp16"] = matmul_flop_per_s(n, args.device, torch.float16)
    print("measured matmul rates: " + ", ".join(f"{k} {v / 1e12:.1f} TFLOP/s"
                                                for k, v in rates.items()))
    rows = [bench_model(label, m, args, rates)
            for label, m in models(args.device, args.models.split(","))]
    if args.json:
        Path(args.json).write_text(json.dumps({"device": args.device,
                                               "gdt_precision": args.gdt_precision,
                                               "matmul_rates": rates, "models": rows},
                                              indent=2) + "\n")


if __name__ == "__main__":
    main()
