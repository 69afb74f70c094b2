"""Throughput of the probes on one gene-pair block, against the naive per-pair implementation.

For each model config (a small default-like one and a scGPT-sized one, random weights) and one
block of S x T pairs (context = the S + T genes), prints: pairs/s of VVP and GDT (each reading,
exact and FD), the speed-up over the naive per-pair loops timed on a sample of pairs in the same
run, achieved FLOP/s (analytic count) relative to a large fp32 matmul measured in the same run,
and peak memory (process RSS on CPU, torch.cuda max allocated on GPU).

    python benchmarks/bench_probes.py                    # CPU, 64 x 64 block, 2 threads
    python benchmarks/bench_probes.py --configs small --levels 4   # scale down
    python benchmarks/bench_probes.py --device cuda --size 512     # GPU
Prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from atlasgrn.models.interface import ArchConfig  # noqa: E402
from atlasgrn.probes import gdt, vvp  # noqa: E402
from atlasgrn.probes.flops import flops_per_cell  # noqa: E402
from atlasgrn.probes.reference import gdt_naive, vvp_naive  # noqa: E402

CONFIGS = {
    "small": dict(d_model=128, n_layers=4, n_heads=4, d_ff=256),
    "scgpt": dict(d_model=512, n_layers=12, n_heads=8, d_ff=512),
}


def build_model(name: str, vocab_size: int, levels: int, device: str):
    """The real ScGPTModel when atlasgrn.models provides it, else the test transformer."""
    sizes = CONFIGS[name]
    try:
        from atlasgrn.models.factory import new_model
        from atlasgrn.models.values import native_value_space

        arch = ArchConfig(vocab_size=vocab_size, dropout=0.0, max_len=max(1600, vocab_size),
                          **sizes)
        vocab = {"<pad>": 0, **{f"G{k}": k for k in range(1, vocab_size)}}
        model = new_model(arch, native_value_space(6.0, n_grid=levels), vocab, seed=0)
        kind = "atlasgrn.models.ScGPTModel"
    except ImportError:
        from tests.probe_models import ProbeTransformer, log1p_space

        model = ProbeTransformer(vocab_size=vocab_size, dtype=torch.float32, seed=0, **sizes)
        grid = tuple(float(x) for x in torch.linspace(0.5, 4.0, levels).tolist())
        import dataclasses
        model.config = dataclasses.replace(model.config, values=dataclasses.replace(
            log1p_space(), vvp_grid=grid, gdt_levels=grid))
        kind = "tests.probe_models.ProbeTransformer"
    return model.to(device).eval(), kind


class PeakMemory:
    """Peak memory during a block: the process's RSS sampled every 5 ms on CPU (absolute, since
    the allocator reuses freed pages and growth alone reads 0), allocator peak on CUDA."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.peak = 0

    def __enter__(self) -> PeakMemory:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            import psutil
            self.proc = psutil.Process(os.getpid())
            self.base = 0
            self.stop = False
            self.thread = threading.Thread(target=self._sample, daemon=True)
            self.thread.start()
        return self

    def _sample(self) -> None:
        while not self.stop:
            self.peak = max(self.peak, self.proc.memory_info().rss - self.base)
            time.sleep(0.005)

    def __exit__(self, *exc: object) -> None:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self.base
        else:
            self.stop = True
            self.thread.join()


def timed(fn: Callable[[], object], device: str, repeat: int = 1) -> tuple[float, int, object]:
    """Best-of-``repeat`` seconds, peak memory bytes, and the last result."""
    best, peak, out = float("inf"), 0, None
    for _ in range(repeat):
        with PeakMemory(device) as mem:
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            out = fn()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - t0)
        peak = max(peak, mem.peak)
    return best, peak, out


def matmul_flops(device: str, n: int = 2048) -> float:
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    secs, _, _ = timed(lambda: a @ b, device)  # warm-up
    secs, _, _ = timed(lambda: a @ b, device, repeat=3)
    return 2.0 * n ** 3 / secs


def bench_config(name: str, args: argparse.Namespace, peak_matmul: float) -> None:
    size, dev = args.size, args.device
    k = args.big_levels if (name == "scgpt" and args.big_levels) else args.levels
    model, kind = build_model(name, vocab_size=size + 1, levels=k, device=dev)
    arch = model.config.arch
    ctx = torch.arange(1, size + 1)
    src, tgt = ctx[: size // 2], ctx[size // 2:]
    n_s, n_t, n_pairs = src.numel(), tgt.numel(), src.numel() * tgt.numel()
    fl = flops_per_cell(arch, size)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"\n== {name}: {kind}  d={arch.d_model} layers={arch.n_layers} heads={arch.n_heads} "
          f"d_ff={arch.d_ff}  params={n_params / 1e6:.1f}M  context={size}  block={n_s}x{n_t}  "
          f"M=K={k}  forward={fl.forward / 1e9:.2f} GFLOP/cell")
    kw = dict(max_batch=args.max_batch) if args.max_batch else {}
    runs = {
        # name: (callable, analytic FLOPs)
        "VVP": (lambda: vvp(model, ctx, src, tgt, **kw), (n_s * k + 1) * fl.forward),
        "GDT uniform exact (vjp rows)": (
            lambda: gdt(model, ctx, src, tgt, reading="uniform", uniform_mode="vjp", **kw),
            k * (fl.forward + n_t * fl.ad)),
        "GDT uniform exact (jvp cols)": (
            lambda: gdt(model, ctx, src, tgt, reading="uniform", uniform_mode="jvp", **kw),
            k * (fl.forward + n_s * fl.ad)),
        "GDT source exact (jvp)": (
            lambda: gdt(model, ctx, src, tgt, reading="source", **kw),
            n_s * k * (fl.forward + fl.ad)),
        "GDT uniform fd": (
            lambda: gdt(model, ctx, src, tgt, reading="uniform", method="fd", **kw),
            2 * n_s * k * fl.forward),
        "GDT source fd": (
            lambda: gdt(model, ctx, src, tgt, reading="source", method="fd", **kw),
            2 * n_s * k * fl.forward),
    }
    if args.skip_jvp_cols or (name == "scgpt" and dev == "cpu"):
        runs.pop("GDT uniform exact (jvp cols)")  # same cost as vjp rows for a square block
    # the naive implementation on a sample of pairs: same cells, one forward(+backward) per entry
    sample_s, sample_t = src[: args.naive_pairs], tgt[: 1]
    naive = {
        "VVP": lambda: vvp_naive(model, ctx, sample_s, sample_t),
        "uniform": lambda: gdt_naive(model, ctx, sample_s, sample_t, reading="uniform"),
        "source": lambda: gdt_naive(model, ctx, sample_s, sample_t, reading="source"),
    }
    naive_rate = {}
    for key, fn in naive.items():
        secs, _, _ = timed(fn, dev)
        naive_rate[key] = sample_s.numel() / secs
    print("naive per-pair pairs/s: " + ", ".join(f"{k_}={v:.2f}" for k_, v in naive_rate.items()))
    results = {}
    for label, (fn, flops) in runs.items():
        secs, peak, out = timed(fn, dev, repeat=args.repeat)
        results[label] = (secs, out)
        family = "VVP" if label == "VVP" else ("uniform" if "uniform" in label else "source")
        base = naive_rate[family]
        rate = n_pairs / secs
        achieved = flops / secs
        print(f"{label:30s} {secs:8.2f} s  {rate:9.0f} pairs/s ({rate * k:8.0f} pair-levels/s)  "
              f"x{rate / base:6.0f} vs naive  "
              f"{achieved / 1e9:7.1f} GFLOP/s = {achieved / peak_matmul:5.2f} of matmul  "
              f"peak mem {peak / 2 ** 20:8.1f} MiB")
    t_exact_u = min(v[0] for key, v in results.items() if key.startswith("GDT uniform exact"))
    t_exact_s = results["GDT source exact (jvp)"][0]
    print(f"FD/exact speed: uniform x{t_exact_u / results['GDT uniform fd'][0]:.2f}  "
          f"source x{t_exact_s / results['GDT source fd'][0]:.2f} (>1: FD faster)")
    for reading in ("uniform", "source"):
        exact = [v[1] for key, v in results.items() if key.startswith(f"GDT {reading} exact")][0]
        fd = results[f"GDT {reading} fd"][1]
        off = ~(src[:, None] == tgt[None, :])
        err = ((fd - exact)[off].norm() / exact[off].norm()).item()
        print(f"FD vs exact, {reading} reading: relative L2 error of cross-gene entries {err:.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", default="small,scgpt")
    parser.add_argument("--size", type=int, default=128,
                        help="context genes; the block is size/2 x size/2")
    parser.add_argument("--levels", type=int, default=8, help="grid values M and levels K")
    parser.add_argument("--big-levels", type=int, default=None,
                        help="M and K for the scgpt config (default: 2 on CPU to fit ~5 min, "
                             "--levels on GPU); per-level rates are printed too")
    parser.add_argument("--naive-pairs", type=int, default=2, help="pairs timed naively")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--max-batch", type=int, default=None)
    parser.add_argument("--skip-jvp-cols", action="store_true")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    if args.big_levels is None and args.device == "cpu":
        args.big_levels = 2
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    peak = matmul_flops(args.device)
    print(f"torch {torch.__version__}  device={args.device}  threads={torch.get_num_threads()}  "
          f"2048^2 fp32 matmul: {peak / 1e9:.1f} GFLOP/s")
    t0 = time.perf_counter()
    for name in args.configs.split(","):
        bench_config(name.strip(), args, peak)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
