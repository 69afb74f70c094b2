"""The settings of pre-training, apart from the code that uses them (no torch, no atlas), so
the CLI reads their defaults without importing either."""

from __future__ import annotations

from dataclasses import dataclass, field

PRECISIONS = ("auto", "fp32", "bf16")
#: Where pre-training runs: ``auto`` is CUDA when present, else CPU.
DEVICES = ("auto", "cpu", "cuda")
DEFAULT_DEVICE = "auto"


@dataclass(frozen=True)
class SamplerConfig:
    batch_size: int = 32
    max_len: int = 1600
    min_len: int = 64
    nonzero_weight: float = 4.0
    val_fraction: float = 0.05
    block_cells: int = 1024
    buffer_cells: int = 8192  # total over datasets
    seed: int = 0


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings; recorded in the checkpoint's provenance."""

    steps: int = 20000
    lr: float = 3e-4
    warmup_steps: int = 200
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    mask_ratios: tuple[float, ...] = (0.25, 0.5, 0.75)
    unmasked_weight: float = 0.5
    eval_every: int = 200
    patience: int = 6
    min_improvement: float = 1e-3  # relative improvement that resets patience
    log_every: int = 50
    seed: int = 0
    # "bf16" runs forward/backward under CUDA autocast (weights and optimizer stay fp32);
    # on a GPU that is ~2x the throughput for the same loss curve. Ignored on CPU. "auto" is
    # bf16 on CUDA and fp32 elsewhere; :func:`train` records the resolved choice.
    precision: str = "auto"


@dataclass(frozen=True)
class PretrainOptions:
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    d_ff: int = 512
    dropout: float = 0.1
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    exclude: tuple[str, ...] = ()
    val_cells_per_dataset: int = 128
    val_len: int = 512
    range_cells_per_dataset: int = 2000
