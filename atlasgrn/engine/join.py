"""Universal mode's second step: each dataset's edge files cut from the stored union scores.

A dataset block is its union block restricted to the dataset's regulators and genes
(:func:`.plan.plan_universal`), so its edge file is a filter of the stored score file, never a
probe: the store's rows are already sorted by (source, target), and a filter keeps that order,
so the bytes are those a direct build would write. Ray Data runs the joins as light tasks (no
model is loaded); each writes its file atomically under the block's name and returns a summary
row like a replica's, so resume and failure reporting work the same way.
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..objectstore import retries_seen_in_thread
from .output import RunOutput
from .plan import BlockSpec
from .store import ProbeStore, StoreRef

JOIN_COLUMNS = ("block_id", "dataset", "status", "rows", "pairs", "error", "io_retries")


def restrict(table: pa.Table, sources: Sequence[str], targets: Sequence[str]) -> pa.Table:
    """The rows of ``table`` whose source and target are in the given sets (order kept)."""
    mask = pc.and_(pc.is_in(table["source"], value_set=pa.array(list(sources), pa.string())),
                   pc.is_in(table["target"], value_set=pa.array(list(targets), pa.string())))
    return table.filter(mask)


def join_block(store: ProbeStore, out: RunOutput, block: BlockSpec, parent: BlockSpec) -> int:
    """Write one dataset block's edge file from its union block's stored scores."""
    scores = store.read_scores(store.block_key(parent.sources, parent.targets))
    edges = restrict(scores, block.sources, block.targets)
    if edges.num_rows != block.n_pairs:
        raise RuntimeError(f"the stored block holds {edges.num_rows} of the {block.n_pairs} "
                           f"pairs of {block.block_id}")
    out.write_table_atomic(out.edge_path(block), edges)
    return edges.num_rows


def join_rows(batch: dict[str, np.ndarray], store: StoreRef, out_uri: str
              ) -> dict[str, list[Any]]:
    """``map_batches`` function: join a batch of dataset blocks, one summary row each."""
    probe_store, out = ProbeStore(store), RunOutput(out_uri)
    rows: dict[str, list[Any]] = {c: [] for c in JOIN_COLUMNS}
    for i in range(len(batch["block_id"])):
        block = BlockSpec.from_row({k: batch[k][i] for k in ("dataset", "source_block",
                                                              "target_block", "sources",
                                                              "targets", "context")})
        parent = BlockSpec("", 0, 0, tuple(str(s) for s in batch["parent_sources"][i]),
                           tuple(str(t) for t in batch["parent_targets"][i]))
        status, error, n = "ok", "", 0
        retries_before = retries_seen_in_thread()
        try:
            n = join_block(probe_store, out, block, parent)
        except Exception as exc:  # noqa: BLE001 - reported per block, like a replica's
            status, error = "failed", f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
            traceback.print_exception(exc)
        for col, val in (("block_id", block.block_id), ("dataset", block.dataset),
                         ("status", status), ("rows", n), ("pairs", block.n_pairs),
                         ("error", error),
                         ("io_retries", retries_seen_in_thread() - retries_before)):
            rows[col].append(val)
    return rows


def run_joins(blocks: Sequence[BlockSpec], parents: dict[str, BlockSpec], store: StoreRef,
              out_uri: str, concurrency: int = 2) -> list[dict[str, Any]]:
    """Join every block on the Ray cluster; returns the summary rows (one per block)."""
    import ray

    items = [{**b.to_row(), "parent_sources": list(parents[b.block_id].sources),
              "parent_targets": list(parents[b.block_id].targets)} for b in blocks]
    if not items:
        return []
    ds = ray.data.from_items(items, override_num_blocks=min(len(items), 4 * concurrency))
    ds = ds.map_batches(join_rows, batch_size=16, num_cpus=0.5,
                        compute=ray.data.TaskPoolStrategy(size=concurrency),
                        fn_kwargs={"store": store, "out_uri": out_uri})
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
            for row in ds.iter_rows()]
