"""Who decides the arithmetic precision of a model call: the model's default, or its caller.

A model whose ``arch.autocast_bf16`` is set runs its matmuls in bf16 on CUDA: right for
pre-training and reconstruction, where 3 significant digits are plenty. It is wrong for the VVP
probe, whose features are *differences* between two forward passes of order 1e-4 of the outputs:
measured on an H100 with the bundled model, bf16 noise left VVP features only 0.71 Pearson-
correlated with CPU fp32 (GDT, a derivative, kept 0.9994). Probe code therefore wraps its calls
in :func:`full_precision`, which every model honours, and opts into bf16 explicitly.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

import torch

_FULL_PRECISION: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "atlasgrn_full_precision", default=False)


@contextmanager
def full_precision() -> Iterator[None]:
    """Within this block, models skip their own bf16 autocast (an outer autocast still applies)."""
    token = _FULL_PRECISION.set(True)
    try:
        yield
    finally:
        _FULL_PRECISION.reset(token)


def wants_model_autocast(device: torch.device, autocast_bf16: bool) -> bool:
    """Whether a model configured with ``autocast_bf16`` should autocast itself on ``device``."""
    return device.type == "cuda" and autocast_bf16 and not _FULL_PRECISION.get()
