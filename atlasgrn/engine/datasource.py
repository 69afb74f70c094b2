"""A Ray Data datasource of gene-pair blocks: read tasks carry descriptors, never data.

``ray.data.read_zarr`` only reads Zarr v2 with zarr-python 2 (design §4), and a block of work is
a (sources, targets) descriptor anyway. Each read task holds a list of block descriptors; when
it runs it attaches, per block, the dataset's anchors and its mean profile restricted to the
genes the block's context can contain. Profiles are computed once on the driver and reach the
tasks by object reference (``ray.put``): no task opens the atlas or recomputes statistics.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
from ray.data import Datasource, ReadTask
from ray.data.block import BlockMetadata

from .plan import BlockSpec

BLOCK_SCHEMA = pa.schema([
    ("block_id", pa.string()), ("dataset", pa.string()), ("source_block", pa.int32()),
    ("target_block", pa.int32()), ("sources", pa.list_(pa.string())),
    ("targets", pa.list_(pa.string())), ("context", pa.string()),
    ("anchors", pa.list_(pa.string())),
    ("profile_genes", pa.list_(pa.string())), ("profile_values", pa.list_(pa.float64())),
    ("stat_kinds", pa.list_(pa.string())), ("stat_values", pa.list_(pa.float32())),
])


def block_statistics(stats: Mapping[str, np.ndarray], regulators: Sequence[str],
                     genes: Sequence[str], spec: BlockSpec) -> tuple[list[str], np.ndarray]:
    """The block's cells of a network's rank statistics: (kinds, ``[kinds, S, T]`` flattened)."""
    row = {g: i for i, g in enumerate(regulators)}
    col = {g: i for i, g in enumerate(genes)}
    r = np.asarray([row[g] for g in spec.sources], dtype=np.int64)
    c = np.asarray([col[g] for g in spec.targets], dtype=np.int64)
    kinds = sorted(stats)
    return kinds, np.stack([stats[k][np.ix_(r, c)] for k in kinds]).astype(np.float32).ravel()


def _read_blocks(specs: Sequence[BlockSpec], anchors: Mapping[str, list[str]],
                 profile_refs: Mapping[str, Any], stat_refs: Mapping[str, Any],
                 networks: Mapping[str, Any]) -> Iterator[pa.Table]:
    import ray

    profiles: dict[str, Mapping[str, float]] = {}
    stats: dict[str, Mapping[str, np.ndarray]] = {}
    for spec in specs:
        anc = anchors[spec.network]
        genes: list[str] = []
        values: list[float] = []
        ref = profile_refs.get(spec.network)
        if ref is not None:
            if spec.network not in profiles:
                profiles[spec.network] = ray.get(ref)
            prof = profiles[spec.network]
            genes = sorted(set(spec.sources) | set(spec.targets) | set(anc))
            values = [prof[g] for g in genes]
        stat_kinds: list[str] = []
        stat_values = np.zeros(0, dtype=np.float32)
        sref = stat_refs.get(spec.network)
        if sref is not None:
            if spec.network not in stats:
                stats[spec.network] = ray.get(sref)
            net = networks[spec.network]
            stat_kinds, stat_values = block_statistics(stats[spec.network], net.regulators,
                                                       net.genes, spec)
        row = {k: [v] for k, v in spec.to_row().items()}
        row.update({"anchors": [list(anc)], "profile_genes": [genes],
                    "profile_values": [values], "stat_kinds": [stat_kinds],
                    "stat_values": [stat_values]})
        yield pa.table(row, schema=BLOCK_SCHEMA)


class BlockDatasource(Datasource):
    """Blocks of one run, split into at most ``parallelism`` read tasks (contiguous groups,
    so one task mostly covers one dataset and reads its profile once)."""

    def __init__(self, specs: Sequence[BlockSpec], anchors: Mapping[str, Sequence[str]],
                 profile_refs: Mapping[str, Any], stat_refs: Mapping[str, Any] | None = None,
                 networks: Mapping[str, Any] | None = None) -> None:
        """``anchors``: per network (dataset, or dataset/context), the fill order already cut
        to the context length; ``profile_refs``: per network, an object reference to its
        profile (none when the features need no profile); ``stat_refs``: the same for its rank
        statistics over ``networks[name].regulators x .genes``."""
        super().__init__()
        self._specs = list(specs)
        self._anchors = {k: list(v) for k, v in anchors.items()}
        self._profile_refs = dict(profile_refs)
        self._stat_refs = dict(stat_refs or {})
        self._networks = dict(networks or {})

    def estimate_inmemory_data_size(self) -> int | None:
        return 64 * 1024 * max(1, len(self._specs))

    def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None,
                       data_context: Any = None) -> list[ReadTask]:
        n = len(self._specs)
        if n == 0:
            return []
        k = max(1, min(n, parallelism if parallelism > 0 else n))
        bounds = [round(i * n / k) for i in range(k + 1)]
        tasks = []
        for i in range(k):
            group = self._specs[bounds[i]:bounds[i + 1]]
            if not group:
                continue
            used = {s.network for s in group}
            anchors = {d: self._anchors[d] for d in used}
            refs = {d: r for d, r in self._profile_refs.items() if d in used}
            srefs = {d: r for d, r in self._stat_refs.items() if d in used}
            nets = {d: n for d, n in self._networks.items() if d in srefs}

            def read_fn(group=group, anchors=anchors, refs=refs, srefs=srefs,
                        nets=nets) -> Iterator[pa.Table]:
                return _read_blocks(group, anchors, refs, srefs, nets)

            meta = BlockMetadata(num_rows=len(group), size_bytes=64 * 1024 * len(group),
                                 exec_stats=None, input_files=None)
            tasks.append(ReadTask(read_fn, meta, schema=BLOCK_SCHEMA,
                                  per_task_row_limit=per_task_row_limit))
        return tasks
