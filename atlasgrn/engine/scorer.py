"""The model replica: a Ray Data actor holding the frozen model and the translator.

One instance per replica (``ActorPoolStrategy(size=N)``, ``num_gpus=g``): the model is loaded
once in ``__init__`` onto the replica's GPU (Ray sets ``CUDA_VISIBLE_DEVICES``; CPU when CUDA is
absent, e.g. logical GPUs in CI). Each call probes a batch of blocks together, then scores each
block and *writes its Parquet itself* under its deterministic name, atomically, and returns one
summary row per block: the driver never holds edges, and a retried block overwrites instead of
duplicating.

A block that raises is reported as ``status="failed"`` with the error, not raised, and the other
blocks of its batch are kept: the pipeline goes on and the driver retries failed blocks in a later
round. A replica process that dies
is restarted by Ray Data (pool actors get unlimited restarts and task retries) and its block is
recomputed.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from typing import Any

import numpy as np

from ..digest import model_sha256
from ..features import FeatureSpec
from ..objectstore import retries_seen_in_thread
from .output import RunOutput
from .plan import BlockSpec
from .scoring import BlockWork, edge_table_from_rows, probe_blocks
from .store import ProbeStore, StoreRef
from .watchdog import start_heartbeat

SUMMARY_COLUMNS = ("block_id", "dataset", "status", "rows", "pairs", "seconds",
                   "probe_seconds", "flops", "batch_blocks", "lock_wait_seconds", "error",
                   "gpu_ids", "pid", "device", "io_retries", "reused")


def _assigned_cpus() -> float:
    try:
        import ray
        return float(ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0))
    except Exception:  # noqa: BLE001 - outside Ray: one thread per core is the torch default
        return float(os.cpu_count() or 1)


def _gpu_ids() -> list[str]:
    try:
        import ray
        return [str(g) for g in ray.get_gpu_ids()]
    except Exception:  # noqa: BLE001
        return []


class _Metrics:
    """Ray metrics (exported by every node's metrics agent); no-ops outside a Ray worker."""

    def __init__(self) -> None:
        try:
            from ray.util.metrics import Counter, Histogram
            self.blocks = Counter("atlasgrn_blocks_total", "Blocks finished",
                                  tag_keys=("dataset", "status"))
            self.pairs = Counter("atlasgrn_pairs_total", "Gene pairs scored", tag_keys=("dataset",))
            self.seconds = Histogram("atlasgrn_block_seconds", "Seconds per block",
                                     boundaries=[0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600],
                                     tag_keys=("dataset",))
        except Exception:  # noqa: BLE001 - metrics must never fail a block
            self.blocks = self.pairs = self.seconds = None

    def record(self, dataset: str, status: str, pairs: int, seconds: float) -> None:
        if self.blocks is None:
            return
        try:
            self.blocks.inc(1, tags={"dataset": dataset, "status": status})
            if status == "ok":
                self.pairs.inc(pairs, tags={"dataset": dataset})
                self.seconds.observe(seconds, tags={"dataset": dataset})
        except Exception:  # noqa: BLE001
            pass


class BlockScorer:
    """Callable class for ``Dataset.map_batches``: a batch of blocks per call.

    The blocks of a call are probed together (stacked model calls, :mod:`atlasgrn.probes.stack`)
    while holding the replica's device lock; translator scoring and the Parquet writes happen
    after it is released. Ray Data runs two calls per replica at once
    (``max_concurrent_calls_per_actor=2``), so the next batch's probes start while this one's
    edges are written, and the device does not wait on storage.
    """

    def __init__(self, model_dir: str, translator_dir: str, spec: FeatureSpec,
                 out_uri: str, fault_marker: str | None = None, run_key: str = "",
                 gdt_precision: str = "fp32", store: StoreRef | None = None) -> None:
        """``store`` set (universal mode): the blocks are union blocks; each one's features
        and scores go to the probe store, and a block whose features are stored is rescored
        from them instead of probed. Unset: each block's edges go to its edge file."""
        import torch

        from ..models import load_model
        from ..translator import load_translator_dir

        threads = max(1, int(_assigned_cpus()))
        torch.set_num_threads(threads)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = load_model(model_dir, device=self.device)
        if model_sha256(self.model) != spec.model_sha256:  # e.g. a node-local copy differs
            raise RuntimeError(f"the model at {model_dir} on this node is not the one the "
                               f"translator's features come from ({spec.model_sha256[:12]})")
        self.translator = load_translator_dir(translator_dir)
        if self.translator.feature_spec != spec:  # the checkpoint changed under the run
            raise RuntimeError(f"translator {translator_dir} no longer carries the run's "
                               "feature spec")
        self.spec = spec
        self.gdt_precision = gdt_precision
        self.out = RunOutput(out_uri)
        self.store = ProbeStore(store) if store is not None else None
        self.fault_marker = fault_marker
        self.metrics = _Metrics()
        self.gpu_ids = ",".join(_gpu_ids())
        self.device_lock = threading.Lock()
        start_heartbeat(run_key, os.getpid())  # the driver's watchdog: this replica is alive

    def _maybe_die(self) -> None:
        """Fault injection for the engine's own tests: the first call of the run kills this
        replica's process once (the marker file records that it happened)."""
        if self.fault_marker and not os.path.exists(self.fault_marker):
            with open(self.fault_marker, "w") as fh:
                fh.write(str(os.getpid()))
            os._exit(17)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        self._maybe_die()
        work = [_block_work(batch, i) for i in range(len(batch["block_id"]))]
        kinds = self.translator.input_kinds()
        stored: dict[int, Any] = {}
        if self.store is not None:
            for i, w in enumerate(work):
                key = self.store.block_key(w.block.sources, w.block.targets)
                try:
                    if self.store.io.exists(self.store.features_path(key)):
                        rows = self.store.read_features(key, kinds)
                        if rows is not None:
                            stored[i] = rows
                except Exception:  # noqa: BLE001 - an unreadable stored block is re-probed
                    traceback.print_exc()
        to_probe = [w for i, w in enumerate(work) if i not in stored]
        t_wait = time.perf_counter()
        with self.device_lock:
            t0 = time.perf_counter()
            probed = iter(probe_blocks(self.model, self.spec, kinds, to_probe, self.gdt_precision)
                          if to_probe else [])
            if self.device == "cuda":
                import torch
                torch.cuda.synchronize()
            probe_wall = time.perf_counter() - t0
        waited = t0 - t_wait
        total_pairs = max(1, sum(w.block.n_pairs for w in to_probe))
        rows: dict[str, list[Any]] = {c: [] for c in SUMMARY_COLUMNS}
        for i, w in enumerate(work):
            reused = i in stored
            feats = None if reused else next(probed)
            share = 0.0 if reused else probe_wall * w.block.n_pairs / total_pairs
            t1 = time.perf_counter()
            retries_before = retries_seen_in_thread()
            status, error, n_rows, probe_s, flops = "ok", "", 0, 0.0, 0.0
            try:
                if isinstance(feats, Exception):
                    raise feats
                pair_rows = stored[i] if reused else feats.pair_rows()
                table = edge_table_from_rows(self.translator, *pair_rows)
                self._publish(w, table, None if reused else pair_rows)
                n_rows = table.num_rows
                if feats is not None:
                    probe_s, flops = feats.probe_seconds, feats.flops
            except Exception as exc:  # noqa: BLE001 - reported per block, retried by the driver
                status = "failed"
                error = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
                traceback.print_exception(exc)
            secs = share + time.perf_counter() - t1
            self.metrics.record(w.block.dataset, status, n_rows, secs)
            lock_share = 0.0 if reused else waited * w.block.n_pairs / total_pairs
            for col, val in (("block_id", w.block.block_id), ("dataset", w.block.dataset),
                             ("status", status), ("rows", n_rows), ("pairs", w.block.n_pairs),
                             ("seconds", secs), ("probe_seconds", probe_s), ("flops", flops),
                             ("batch_blocks", len(to_probe)),
                             ("lock_wait_seconds", lock_share),
                             ("error", error), ("gpu_ids", self.gpu_ids), ("pid", os.getpid()),
                             ("device", self.device),
                             ("io_retries", retries_seen_in_thread() - retries_before),
                             ("reused", int(reused))):
                rows[col].append(val)
        return rows

    def _publish(self, w: BlockWork, table: Any, pair_rows: Any) -> None:
        """A block's edges to its edge file; in universal mode its features (when probed
        here) and its scores to the probe store instead."""
        if self.store is None:
            self.out.write_table_atomic(self.out.edge_path(w.block), table)
            return
        key = self.store.block_key(w.block.sources, w.block.targets)
        if pair_rows is not None:
            self.store.write_features(key, *pair_rows)
        self.store.write_scores(key, table)


def _block_work(batch: dict[str, np.ndarray], i: int) -> BlockWork:
    """Row ``i`` of a datasource batch as a planned block with its anchors and profile."""
    spec = BlockSpec.from_row({k: batch[k][i] for k in
                               ("dataset", "source_block", "target_block", "sources", "targets",
                                "context") if k in batch})
    genes = [str(x) for x in batch["profile_genes"][i]]
    profile = (dict(zip(genes, (float(v) for v in batch["profile_values"][i])))
               if genes else None)
    stats = None
    if "stat_kinds" in batch and len(batch["stat_kinds"][i]):
        kinds = [str(k) for k in batch["stat_kinds"][i]]
        values = np.asarray(batch["stat_values"][i], dtype=np.float32).reshape(
            len(kinds), len(spec.sources), len(spec.targets))
        stats = dict(zip(kinds, values))
    return BlockWork(spec, [str(x) for x in batch["anchors"][i]], profile, stats)
