"""Thread count for training the tiny translator MLPs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch threads. Translator MLPs are tiny: on a busy 2-core machine
    one thread trained them 40x faster than two (0.15 s vs 5.9 s for 3 kinds x 15 epochs)."""
    old = torch.get_num_threads()
    torch.set_num_threads(max(1, n))
    try:
        yield
    finally:
        torch.set_num_threads(old)
