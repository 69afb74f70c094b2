"""``--plan``: what a build would cost, from the plan and one real block timed here.

The calibration runs the engine's own block scoring (probes + translator, no Ray, no write) on
the run's first block on this machine, so the figure is only as good as the similarity between
this machine and the replicas: a CPU calibration of a GPU run says so in its output.
"""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow.parquet as pq

from ..models import load_model
from .job import Prepared
from .plan import DatasetPlan
from .scoring import score_block

AUTO_NOTE = " (auto: on a cluster with GPUs; CPU replicas otherwise)"
#: Parquet bytes of one consensus row relative to one edge row (3 floats + int vs 3 floats).
CONSENSUS_ROW_RATIO = 1.0


@dataclass(frozen=True)
class PlanEstimate:
    blocks: int
    pairs: int
    consensus_rows: int
    calibration_block: str
    calibration_pairs: int
    calibration_seconds: float
    calibration_device: str
    seconds_per_pair: float
    replica_hours: float
    gpu_hours: float
    edge_bytes_per_row: float
    output_bytes: int
    gpus_per_replica: float
    gpus_auto: bool = False

    def lines(self, replicas: int) -> list[str]:
        gpus_per_replica = self.gpus_per_replica
        wall = self.replica_hours / max(1, replicas)
        out = [f"blocks: {self.blocks:,}; pairs: {self.pairs:,}; consensus rows: "
               f"{self.consensus_rows:,}",
               f"calibration: block {self.calibration_block} ({self.calibration_pairs:,} pairs) "
               f"took {self.calibration_seconds:.2f}s on {self.calibration_device} "
               f"({1 / max(self.seconds_per_pair, 1e-12):,.0f} pairs/s)",
               f"estimate: {self.replica_hours:.3f} replica-hours = {self.gpu_hours:.3f} GPU-hours "
               f"at {gpus_per_replica:g} GPU/replica{AUTO_NOTE if self.gpus_auto else ''}"
               f"; ~{wall:.3f} h wall with {replicas} "
               f"replica(s)",
               f"output: ~{self.output_bytes / 2**20:,.1f} MiB "
               f"({self.edge_bytes_per_row:.1f} bytes per edge row, zstd Parquet)"]
        if self.calibration_device == "cpu" and gpus_per_replica > 0:
            out.append("note: calibrated on CPU; GPU replicas will be faster (re-run --plan on a "
                       "GPU node for a GPU figure)")
        return out


def consensus_rows(plans: Sequence[DatasetPlan]) -> int:
    """Distinct (source, target) pairs over datasets, without enumerating the pairs.

    A source's targets are the union of the genes of the datasets where it is a regulator;
    sources sharing the same set of datasets share the union size (few distinct sets).
    """
    genes = {p.dataset: frozenset(p.genes) for p in plans}
    where: dict[str, set[str]] = {}
    for p in plans:
        for s in p.sources:
            where.setdefault(s, set()).add(p.dataset)
    union_size: dict[frozenset[str], int] = {}
    total = 0
    for s, ds in where.items():
        key = frozenset(ds)
        if key not in union_size:
            union_size[key] = len(frozenset().union(*(genes[d] for d in key)))
        total += union_size[key] - 1
    return total


def estimate(prep: Prepared, device: str = "cpu") -> PlanEstimate:
    """Time the first block for real and extrapolate to the whole plan."""
    specs = prep.specs
    spec = max(specs[: max(1, len(prep.plans))], key=lambda b: b.n_pairs)
    model = prep.model if device == "cpu" else load_model(prep.model_dir, device=device)
    ds = next(d for d in prep.datasets if d.name == spec.dataset)
    profile = prep.profiles.get(ds.name)  # computed once, in prepare()
    anchors = list(ds.anchors)
    score_block(model, prep.translator, prep.spec, spec, anchors, profile)  # warm-up
    t0 = time.perf_counter()
    table, _ = score_block(model, prep.translator, prep.spec, spec, anchors, profile)
    secs = time.perf_counter() - t0
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    per_row = buf.tell() / max(1, table.num_rows)
    per_pair = secs / max(1, spec.n_pairs)
    pairs = prep.n_pairs
    cons = consensus_rows(prep.plans)
    replica_h = per_pair * pairs / 3600
    requested = prep.config.gpus_per_replica
    gpus = 1.0 if requested == "auto" else float(requested)  # auto: a GPU each on a GPU cluster
    return PlanEstimate(blocks=len(specs), pairs=pairs, consensus_rows=cons,
                        calibration_block=spec.block_id, calibration_pairs=spec.n_pairs,
                        calibration_seconds=secs, calibration_device=device,
                        seconds_per_pair=per_pair, replica_hours=replica_h,
                        gpu_hours=replica_h * gpus,
                        edge_bytes_per_row=per_row,
                        output_bytes=int(per_row * (pairs + CONSENSUS_ROW_RATIO * cons)),
                        gpus_per_replica=gpus, gpus_auto=requested == "auto")
