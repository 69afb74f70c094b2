"""The reference every benchmark's efficiency figure is divided by: a dense matmul's rate, measured
in the same run on the same device (a datasheet peak says nothing about a shared 2-core VM)."""

from __future__ import annotations

import time


def matmul_flop_per_s(n: int, device: str = "cpu", dtype=None, threads: int | None = None,
                      repeat: int = 6) -> float:
    """Best-of-``repeat`` rate of an ``n x n`` matmul in ``dtype`` (fp32 by default), with
    ``threads`` torch threads if given (a 1-CPU replica runs one)."""
    import torch

    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        a = torch.randn(n, n, device=device, dtype=dtype or torch.float32)
        b = torch.randn(n, n, device=device, dtype=dtype or torch.float32)
        best = float("inf")
        for _ in range(repeat):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            a @ b
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - t0)
        return 2.0 * n ** 3 / best
    finally:
        torch.set_num_threads(before)
