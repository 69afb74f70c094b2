"""The one configuration object of a GRN build (recorded in the run manifest).

Fields split in two: those that decide *what* is computed (inputs, regulators, blocks, probe
settings) and those that only decide *how fast* (replicas, GPUs, CPUs, retries). Only the first
group enters :meth:`RunConfig.result_hash`, so a build resumed with more replicas is still "the
same run", while one with another model or grid is not and may never reuse its output directory.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..errors import AtlasgrnError

#: Fields that change only the execution, never a byte of the edges.
EXECUTION_FIELDS = frozenset({"out", "replicas", "gpus_per_replica", "cpus_per_replica",
                              "retries", "read_tasks", "progress_every_s"})
READINGS = ("uniform", "source")


@dataclass(frozen=True)
class RunConfig:
    """What to build and with which resources.

    ``model``/``translator`` None mean the bundled defaults. ``regulators`` None means the
    bundled TF list of each dataset's species; ``max_regulators`` keeps, per dataset, only the
    N candidate regulators with the highest mean expression (ties by symbol). ``background`` is "profile" (the dataset's mean
    cell in model space, method.md §2.4) or a number (a scalar background). ``vvp_grid``,
    ``gdt_levels``, ``gdt_reading`` and ``context_len`` None take the translator's recorded probe
    settings, else the model's defaults.
    """

    atlas: str
    out: str
    model: str | None = None
    translator: str | None = None
    datasets: tuple[str, ...] | None = None
    regulators: str | None = None
    max_regulators: int | None = None
    source_block: int = 32
    target_block: int = 128
    replicas: int = 1
    gpus_per_replica: float = 1.0
    cpus_per_replica: float = 1.0
    vvp_grid: tuple[float, ...] | None = None
    gdt_levels: tuple[float, ...] | None = None
    gdt_reading: str | None = None
    background: str | float | None = None
    context_len: int | None = None
    n_anchors: int | None = None
    retries: int = 2
    read_tasks: int = 0
    progress_every_s: float = 10.0
    consensus_rows_per_part: int = 5_000_000

    def validate(self) -> None:
        """Refuse settings no run can honour, naming the option to change."""
        checks = [("--source-block", self.source_block >= 1), ("--target-block",
                  self.target_block >= 1), ("--replicas", self.replicas >= 1),
                  ("--gpus-per-replica", self.gpus_per_replica >= 0),
                  ("--cpus-per-replica", self.cpus_per_replica > 0),
                  ("--retries", self.retries >= 0),
                  ("--max-regulators", self.max_regulators is None or self.max_regulators >= 1)]
        for key, ok in checks:
            if not ok:
                raise AtlasgrnError(f"{key} is out of range", key=key,
                                    remedy="pass a positive value (GPUs may be 0 or fractional)")
        if self.gdt_reading is not None and self.gdt_reading not in READINGS:
            raise AtlasgrnError(f"unknown GDT reading {self.gdt_reading!r}", key="--gdt-reading",
                                remedy="use 'uniform' or 'source'")
        if isinstance(self.background, str) and self.background != "profile":
            raise AtlasgrnError(f"unknown background {self.background!r}", key="--background",
                                remedy="use 'profile' or a number such as 0")
        if self.context_len is not None and self.context_len < 2:
            raise AtlasgrnError("--context-len must be at least 2", key="--context-len",
                                remedy="use the model's pre-training length, e.g. 256")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        known = {f.name for f in fields(cls)}
        kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in known}
        return cls(**kw)

    def result_hash(self, resolved: dict[str, Any] | None = None) -> str:
        """Hash of everything that decides the edges (plus ``resolved`` input digests)."""
        d = {k: v for k, v in self.to_dict().items() if k not in EXECUTION_FIELDS}
        payload = json.dumps({"config": d, "resolved": resolved or {}}, sort_keys=True,
                             default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ProbeSettings:
    """Resolved probe settings: exactly what every block of a run is probed with."""

    kinds: tuple[str, ...]                 # feature kinds to compute ("vvp", "gdt")
    vvp_grid: tuple[float, ...]
    gdt_levels: tuple[float, ...]
    gdt_reading: str
    background: str | float
    context_len: int
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d
