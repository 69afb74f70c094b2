"""``--plan``: what a build would cost, from the plan and one real block timed here.

The calibration runs the engine's own batch scoring (probes + translator, no Ray, no write) on
one batch of the run's blocks (as many as a replica probes per call) on this machine, so the figure is only as good as the similarity between
this machine and the replicas: a CPU calibration of a GPU run says so in its output.
"""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..models import load_model
from .job import Prepared
from .plan import BlockSpec, DatasetPlan, plan_dataset
from .scoring import BlockWork, edge_table_of, probe_blocks

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
    mode: str = "context"
    #: pairs written to edge files (in universal mode, cut from the probed union blocks)
    edge_pairs: int = 0
    #: what probing each dataset on its own would cost (today's engine before universal mode)
    per_dataset_blocks: int = 0
    per_dataset_pairs: int = 0

    def lines(self, replicas: int) -> list[str]:
        gpus_per_replica = self.gpus_per_replica
        wall = self.replica_hours / max(1, replicas)
        out = [f"mode: {self.mode}; probe blocks: {self.blocks:,}; probed pairs: "
               f"{self.pairs:,}; edge rows: {self.edge_pairs:,}; consensus rows: "
               f"{self.consensus_rows:,}",
               f"calibration: {self.calibration_block} ({self.calibration_pairs:,} pairs) "
               f"took {self.calibration_seconds:.2f}s on {self.calibration_device} "
               f"({1 / max(self.seconds_per_pair, 1e-12):,.0f} pairs/s)",
               f"estimate: {self.replica_hours:.3f} replica-hours = {self.gpu_hours:.3f} GPU-hours "
               f"at {gpus_per_replica:g} GPU/replica{AUTO_NOTE if self.gpus_auto else ''}"
               f"; ~{wall:.3f} h wall with {replicas} "
               f"replica(s)",
               f"output: ~{self.output_bytes / 2**20:,.1f} MiB "
               f"({self.edge_bytes_per_row:.1f} bytes per edge row, zstd Parquet)"]
        if self.mode == "universal":
            ratio = self.per_dataset_blocks / max(1, self.blocks)
            out.append(f"universal mode probes the union of the datasets' genes once: probing "
                       f"each dataset on its own would take {self.per_dataset_blocks:,} blocks "
                       f"({self.per_dataset_pairs:,} pairs), {ratio:.1f}x the blocks")
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
    """Time one batch of blocks for real, as a replica on ``device`` probes them (the run's
    blocks per call, from the largest dataset), and extrapolate to the whole plan."""
    specs = list(prep.union.blocks) if prep.union is not None else prep.specs
    first = max(specs[: max(1, len(prep.plans))], key=lambda b: b.n_pairs)
    per_call = prep.config.blocks_per_call_for(
        _gpus_per_replica(prep.config.gpus_per_replica, device))
    batch = [b for b in specs if b.network == first.network][:per_call]
    model = prep.model if device == "cpu" else load_model(prep.model_dir, device=device)
    if prep.store is not None:
        anchors, profile = list(prep.store.anchors), None
    else:
        ds = next(d for d in prep.datasets if d.network == first.network)
        anchors, profile = list(ds.anchors), prep.profiles.get(ds.network)
    work = [BlockWork(b, anchors, profile, _statistics(prep, b)) for b in batch]

    def run_batch() -> list[pa.Table]:
        feats = probe_blocks(model, prep.spec, prep.kinds, work,
                             prep.config.gdt_precision)
        for f in feats:
            if isinstance(f, Exception):
                raise f
        tables = [edge_table_of(prep.translator, f) for f in feats]
        if device.startswith("cuda"):
            import torch
            torch.cuda.synchronize()
        return tables

    run_batch()  # warm-up
    t0 = time.perf_counter()
    tables = run_batch()
    secs = time.perf_counter() - t0
    buf = io.BytesIO()
    pq.write_table(tables[0], buf, compression="zstd")
    per_row = buf.tell() / max(1, tables[0].num_rows)
    batch_pairs = sum(b.n_pairs for b in batch)
    per_pair = secs / max(1, batch_pairs)
    pairs = sum(b.n_pairs for b in specs)
    cons = consensus_rows(prep.plans)
    alone = [plan_dataset(p.dataset, p.genes, p.sources, prep.spec.source_block,
                          prep.spec.target_block, p.context) for p in prep.plans]
    replica_h = per_pair * pairs / 3600
    requested = prep.config.gpus_per_replica
    gpus = 1.0 if requested == "auto" else float(requested)  # auto: a GPU each on a GPU cluster
    label = (f"block {first.block_id}" if len(batch) == 1
             else f"blocks {first.block_id} + {len(batch) - 1} more")
    return PlanEstimate(blocks=len(specs), pairs=pairs, consensus_rows=cons,
                        calibration_block=label, calibration_pairs=batch_pairs,
                        calibration_seconds=secs, calibration_device=device,
                        seconds_per_pair=per_pair, replica_hours=replica_h,
                        gpu_hours=replica_h * gpus,
                        edge_bytes_per_row=per_row,
                        output_bytes=int(per_row * (prep.n_pairs + CONSENSUS_ROW_RATIO * cons
                                                    + (pairs if prep.store else 0))),
                        gpus_per_replica=gpus, gpus_auto=requested == "auto", mode=prep.mode,
                        edge_pairs=prep.n_pairs,
                        per_dataset_blocks=sum(len(p.blocks) for p in alone),
                        per_dataset_pairs=sum(p.n_pairs for p in alone))


def _statistics(prep: Prepared, block: BlockSpec) -> dict[str, np.ndarray] | None:
    """The block's cells of its network's rank statistics, as a read task attaches them."""
    from .datasource import block_statistics

    stats = prep.stats.get(block.network)
    if not stats:
        return None
    net = next(d for d in prep.datasets if d.network == block.network)
    kinds, flat = block_statistics(stats, net.regulators, net.genes, block)
    cube = flat.reshape(len(kinds), len(block.sources), len(block.targets))
    return dict(zip(kinds, cube))


def _gpus_per_replica(requested: float | str, device: str) -> float:
    """GPUs a replica would hold, for choosing its blocks per call: ``auto`` follows the
    device the calibration runs on."""
    if requested == "auto":
        return 1.0 if device.startswith("cuda") else 0.0
    return float(requested)
