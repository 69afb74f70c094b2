"""A Ray Data datasource of gene-pair blocks: read tasks carry descriptors, never data.

``ray.data.read_zarr`` only reads Zarr v2 with zarr-python 2 (design §4), and a block of work is
a (sources, targets) descriptor anyway. Each read task holds a list of block descriptors and the
atlas URL; when it runs it opens the atlas itself and attaches, per block, the dataset's anchors
and its background profile restricted to the genes the block's context can contain. The profile
is read lazily (per-gene statistics cached in the store) and memoised per dataset inside the
task, so a task of many blocks of one dataset reads it once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa
from ray.data import Datasource, ReadTask
from ray.data.block import BlockMetadata

from .plan import BlockSpec

BLOCK_SCHEMA = pa.schema([
    ("block_id", pa.string()), ("dataset", pa.string()), ("source_block", pa.int32()),
    ("target_block", pa.int32()), ("sources", pa.list_(pa.string())),
    ("targets", pa.list_(pa.string())), ("anchors", pa.list_(pa.string())),
    ("profile_genes", pa.list_(pa.string())), ("profile_values", pa.list_(pa.float64())),
])


def _profiles_for(atlas_uri: str, vocab: Mapping[str, int]) -> Any:
    """A per-dataset memo of mean profiles (vocabulary symbol -> model-space value)."""
    from ..atlas import open_atlas
    from .inputs import mean_profile

    memo: dict[str, dict[str, float]] = {}
    atlas = None

    def get(dataset: str) -> dict[str, float]:
        nonlocal atlas
        if dataset not in memo:
            if atlas is None:
                atlas = open_atlas(atlas_uri, writable=False)
            memo[dataset] = mean_profile(atlas.dataset(dataset), vocab)
        return memo[dataset]

    return get


def _read_blocks(atlas_uri: str, specs: Sequence[BlockSpec], anchors: Mapping[str, list[str]],
                 vocab: Mapping[str, int], with_profile: bool, context_len: int
                 ) -> Iterator[pa.Table]:
    get_profile = _profiles_for(atlas_uri, vocab) if with_profile else None
    for spec in specs:
        anc = anchors[spec.dataset][:context_len]
        genes: list[str] = []
        values: list[float] = []
        if get_profile is not None:
            prof = get_profile(spec.dataset)
            genes = sorted(set(spec.sources) | set(spec.targets) | set(anc))
            values = [prof[g] for g in genes]
        row = {"block_id": [spec.block_id], "dataset": [spec.dataset],
               "source_block": [spec.source_block], "target_block": [spec.target_block],
               "sources": [list(spec.sources)], "targets": [list(spec.targets)],
               "anchors": [list(anc)], "profile_genes": [genes], "profile_values": [values]}
        yield pa.table(row, schema=BLOCK_SCHEMA)


class BlockDatasource(Datasource):
    """Blocks of one run, split into at most ``parallelism`` read tasks (contiguous groups,
    so one task mostly covers one dataset and reads its profile once)."""

    def __init__(self, atlas_uri: str, specs: Sequence[BlockSpec],
                 anchors: Mapping[str, Sequence[str]], vocab: Mapping[str, int],
                 with_profile: bool, context_len: int) -> None:
        super().__init__()
        self._atlas = atlas_uri
        self._specs = list(specs)
        self._anchors = {k: list(v) for k, v in anchors.items()}
        # only the genes a block can name travel with the tasks, not a 60k-token vocabulary
        used = set().union(*self._anchors.values()) if self._anchors else set()
        for s in self._specs:
            used.update(s.sources)
            used.update(s.targets)
        self._vocab = {g: vocab[g] for g in used if g in vocab}
        self._with_profile = with_profile
        self._context_len = context_len

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
            anchors = {d: self._anchors[d] for d in {s.dataset for s in group}}
            vocab = self._vocab
            atlas, with_profile, ctx = self._atlas, self._with_profile, self._context_len

            def read_fn(group=group, anchors=anchors) -> Iterator[pa.Table]:
                return _read_blocks(atlas, group, anchors, vocab, with_profile, ctx)

            meta = BlockMetadata(num_rows=len(group), size_bytes=64 * 1024 * len(group),
                                 exec_stats=None, input_files=None)
            tasks.append(ReadTask(read_fn, meta, schema=BLOCK_SCHEMA,
                                  per_task_row_limit=per_task_row_limit))
        return tasks
