"""One GRN build, end to end: inputs -> plan -> Ray Data pipeline -> consensus -> publish.

The driver does the cheap, fallible work first (resolve inputs, plan, check the output
directory), so bad input fails in a second with one line and nothing written. The blocks then
flow ``BlockDatasource -> map_batches(BlockScorer, ActorPoolStrategy(size=N))``; replicas write
edge files themselves and return small summary rows, which the driver streams for progress.
Blocks that fail are retried in further rounds; only when every block has its file is the
consensus written, then ``manifest.json``, then ``_SUCCESS`` last (design §3.4).
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..digest import dir_sha256, file_sha256, model_sha256
from ..errors import AtlasgrnError
from ..features import FeatureSpec, vocabulary_anchors
from ..models import load_model
from ..models.checkpoint import bundled_model_dir
from ..models.interface import GeneModel
from ..objectstore import check_bucket, retries_seen, with_retries
from ..outdir import check_writable
from ..translator import Translator
from ..translator.bundled import bundled_translator_dir, load_translator
from ..translator.checkpoint import JSON_NAME, WEIGHTS_NAME
from .cluster import (
    Placement,
    connect,
    node_shapes,
    place_replicas,
    watchdog_can_see_replicas,
)
from .config import RunConfig
from .consensus import write_consensus
from .inputs import DatasetInput, atlas_digest, canonical_uri, resolve_datasets
from .output import (
    MANIFEST,
    SUCCESS,
    RunOutput,
    read_manifest,
    write_manifest,
)
from .plan import (
    UNION,
    BlockSpec,
    DatasetPlan,
    UnionPlan,
    plan_dataset,
    plan_fingerprint,
    plan_universal,
)
from .progress import Progress
from .scoring import serving_spec
from .store import RUN_LOCAL_STORE, ProbeStore, StoreRef
from .watchdog import JobStalled, demand_line, forget, round_key, watched

MANIFEST_FORMAT = 1
#: Env var naming a marker file: the first replica call of the run kills its process once
#: (fault-injection for the engine's tests; unset in production).
FAULT_ENV = "ATLASGRN_FAULT_EXIT_ONCE"


@dataclass
class Prepared:
    """Everything resolved on the driver before any work starts."""

    config: RunConfig
    model_dir: str
    model: GeneModel              # loaded on the driver (CPU): its digest, vocabulary, --plan
    translator_dir: str
    translator: Translator
    spec: FeatureSpec             # the translator's feature spec, checked against the run
    datasets: list[DatasetInput]
    profiles: dict[str, dict[str, float]]   # per network, when the spec needs one
    plans: list[DatasetPlan]
    inputs: dict[str, Any]
    run_hash: str
    #: universal mode: the union blocks the store holds and where the store is
    union: UnionPlan | None = None
    store: StoreRef | None = None
    #: with --context-key: per dataset, the cells of every context value (kept or not)
    context_cells: dict[str, dict[str, int]] = field(default_factory=dict)
    #: per network, when the spec has rank-statistic kinds: {kind: [regulators, genes]}
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: per network: the cells the rank statistics were computed from
    stat_cells: dict[str, int] = field(default_factory=dict)

    @property
    def mode(self) -> str:
        return self.spec.mode

    @property
    def vocab(self) -> dict[str, int]:
        return dict(self.model.vocab)

    @property
    def kinds(self) -> tuple[str, ...]:
        """Feature kinds the job computes: those the translator's ensemble reads."""
        return self.translator.input_kinds()

    @property
    def specs(self) -> list[BlockSpec]:
        return [b for p in self.plans for b in p.blocks]

    @property
    def n_pairs(self) -> int:
        return sum(p.n_pairs for p in self.plans)


@dataclass
class JobResult:
    out: str
    status: str
    blocks_planned: int
    blocks_already_done: int
    blocks_computed: int
    blocks_failed: list[str]
    rows_written: int
    consensus_rows: int
    seconds: float
    summaries: list[dict[str, Any]] = field(default_factory=list)


def _dask_scheduler(config: RunConfig, log: Callable[[str], None]) -> Any:
    """Ray's dask scheduler when per-context statistics are needed (so they are computed on
    the cluster, chunk by chunk); None otherwise. Connecting here is what the build would do
    next anyway: bad input has been checked before the statistics are streamed."""
    if not config.context_key:
        return None
    connect(config.address, log)
    from ray.util.dask import ray_dask_get

    return ray_dask_get


def prepare(config: RunConfig, log: Callable[[str], None] = print) -> Prepared:
    """Resolve and check every input; raises :class:`AtlasgrnError` on bad input."""
    config.validate()
    check_bucket(config.atlas, "atlas")
    check_bucket(config.out, "--out")  # s3fs would create a missing bucket on the first write
    model_dir = str(config.model) if config.model else str(bundled_model_dir())
    if not Path(model_dir).is_dir():
        raise AtlasgrnError("model directory not found", path=model_dir, key="--model",
                            remedy="give a directory with config.json, model.safetensors and "
                                   "vocab.json")
    translator_dir = str(config.translator) if config.translator else str(
        bundled_translator_dir())
    translator = load_translator(config.translator)
    model = load_model(model_dir, device="cpu")
    spec = serving_spec(config, translator, model_sha256(model), translator_dir)
    check_mode(config.mode, spec, translator_dir)
    universal = spec.mode == "universal"
    if universal and config.context_key:
        raise AtlasgrnError(f"--context-key {config.context_key} needs context mode, but the "
                            "translator was trained for universal mode (a scalar background: "
                            "its features cannot tell cell types apart)", path=translator_dir,
                            key="--context-key", remedy="use a translator trained with "
                            "--background profile, or drop --context-key")
    fixed_anchors = vocabulary_anchors(model.vocab, spec) if universal else None
    resolved_inputs = resolve_datasets(config.atlas, config.datasets, model.vocab,
                                       config.regulators, spec,
                                       max_regulators=config.max_regulators,
                                       anchors=fixed_anchors, context_key=config.context_key,
                                       min_cells=config.min_cells,
                                       scheduler=_dask_scheduler(config, log),
                                       stat_cells=config.stat_cells)
    datasets = resolved_inputs.datasets
    union = None
    if universal:
        plans, union = plan_universal([(d.name, d.genes, d.regulators) for d in datasets],
                                      spec.source_block, spec.target_block)
    else:
        plans = [plan_dataset(d.name, d.genes, d.regulators, spec.source_block,
                              spec.target_block, context=d.context) for d in datasets]
    inputs_of_run = {"--atlas": config.atlas, "--model": model_dir,
                     "--translator": translator_dir}
    refuse_output_inside_inputs(config.out, inputs_of_run)
    store = None
    if universal:
        if config.cache:
            check_bucket(config.cache, "--cache")
            refuse_output_inside_inputs(config.cache, inputs_of_run, option="--cache")
        store = StoreRef(uri=config.cache or f"{config.out.rstrip('/')}/{RUN_LOCAL_STORE}",
                         spec=spec, anchors=tuple(fixed_anchors or ()),
                         translator_sha256=dir_sha256(translator_dir,
                                                      [JSON_NAME, WEIGHTS_NAME]))
    inputs = {
        "atlas": config.atlas,
        "atlas_canonical": config.atlas_id or canonical_uri(config.atlas),
        "datasets": atlas_digest(config.atlas, [d.name for d in datasets]),
        "model": {"path": model_dir, "sha256": spec.model_sha256},
        "translator": {"path": translator_dir,
                       "sha256": dir_sha256(translator_dir, [JSON_NAME, WEIGHTS_NAME])},
        "regulators": config.regulators or {d.name: f"bundled:{d.species}" for d in datasets},
        "plan_fingerprint": plan_fingerprint(plans),
    }
    resolved = {"atlas": inputs["atlas_canonical"], "datasets": inputs["datasets"],
                "regulators": file_sha256(config.regulators) if config.regulators else None,
                "model": inputs["model"]["sha256"],
                "translator": inputs["translator"]["sha256"], "plan": inputs["plan_fingerprint"],
                "feature_spec": spec.digest(), "mode": spec.mode}
    return Prepared(config=config, model_dir=model_dir, model=model,
                    translator_dir=translator_dir, translator=translator, spec=spec,
                    datasets=datasets, profiles=resolved_inputs.profiles, plans=plans,
                    inputs=inputs, run_hash=config.result_hash(resolved), union=union,
                    store=store, context_cells=resolved_inputs.context_cells,
                    stats=resolved_inputs.stats, stat_cells=resolved_inputs.stat_cells)


def check_mode(requested: str | None, spec: FeatureSpec, translator_dir: str) -> None:
    """``--mode`` asserts the translator's mode (its feature spec decides it)."""
    if requested is None or requested == spec.mode:
        return
    why = (f"background {spec.background!r}, anchors {spec.anchors!r}, kinds "
           f"{', '.join(spec.kinds)}")
    raise AtlasgrnError(f"--mode {requested} contradicts the translator, which was trained for "
                        f"{spec.mode} mode ({why})", path=translator_dir, key="--mode",
                        remedy="drop --mode, or use a translator trained for "
                               f"{requested} mode (context: --background profile)")


def refuse_output_inside_inputs(out: str, inputs: dict[str, str], option: str = "--out"
                                ) -> None:
    """The job never writes into its inputs: an --out (or --cache) inside (or equal to) the
    atlas, model or translator directory is bad input."""
    target = canonical_uri(out)
    for source, path in inputs.items():
        src = canonical_uri(path)
        if target == src or target.startswith(src.rstrip("/") + "/"):
            raise AtlasgrnError(f"{option} lies inside the {source.lstrip('-')} ({src})",
                                path=out, key=option, remedy="write the run outside its inputs")


def claim_output(out: RunOutput, run_hash: str) -> dict[str, Any] | None:
    """Check the output location belongs to this run (or is new); return its old manifest.

    Another run's output (a different configuration or inputs) is never touched: it is bad
    input, reported before anything is written.
    """
    if out.isfile(out.root):
        raise AtlasgrnError("is a file, not a directory", path=out.uri, key="--out",
                            remedy="give --out a directory (new, empty, or an earlier run)")
    if out.local:
        check_writable(out.root, "--out")
    old = None
    try:
        old = read_manifest(out)
    except ValueError:
        raise AtlasgrnError("manifest.json is not valid JSON", path=out.path(MANIFEST),
                            remedy="choose another --out") from None
    if old is not None and not isinstance(old, dict):
        raise AtlasgrnError(f"manifest.json holds a JSON {type(old).__name__}, not an atlasgrn "
                            "run's manifest (an object)", path=out.path(MANIFEST), key="--out",
                            remedy="choose another --out")
    if old is not None:
        if old.get("run_hash") != run_hash:
            raise AtlasgrnError(f"the output directory holds another run (run_hash "
                                f"{old.get('run_hash')}, this run {run_hash})", path=out.uri,
                                key="--out", remedy="choose another --out, or rerun with the "
                                "same inputs and settings to resume it")
        return old
    if out.listdir():
        raise AtlasgrnError("the output directory is not empty and is not an atlasgrn run",
                            path=out.uri, key="--out", remedy="choose a new or empty --out")
    return None


def threshold_guidance_of(translator: Translator) -> dict[str, Any] | None:
    """The translator's validation precision/recall at a few score cut-offs (recorded by
    ``atlasgrn train-translator``), so a user can choose where to threshold the edges."""
    ensemble = (translator.provenance or {}).get("ensemble") or {}
    return ensemble.get("validation") if isinstance(ensemble, dict) else None


def software_versions() -> dict[str, str]:
    import numpy
    import pyarrow
    import ray
    import torch
    return {"atlasgrn": __version__, "python": platform.python_version(), "ray": ray.__version__,
            "torch": torch.__version__, "pyarrow": pyarrow.__version__,
            "numpy": numpy.__version__, "platform": platform.platform()}


def _manifest(prep: Prepared, status: str, attempts: list[dict[str, Any]],
              extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": MANIFEST_FORMAT, "status": status, "run_hash": prep.run_hash,
        "config": prep.config.to_dict(), "feature_spec": prep.spec.to_json(),
        "kinds": list(prep.kinds),
        "inputs": prep.inputs, "software": software_versions(),
        "plan": {"blocks": len(prep.specs), "pairs": prep.n_pairs,
                 "datasets": {p.network: {"genes": len(p.genes), "regulators": len(p.sources),
                                          "blocks": len(p.blocks), "pairs": p.n_pairs}
                              for p in prep.plans}},
        "mode": prep.mode,
        "store": ({"uri": prep.store.uri, "scores": ProbeStore(prep.store).scores_uri,
                   "union_blocks": len(prep.union.blocks), "union_pairs": prep.union.n_pairs}
                  if prep.store and prep.union else None),
        "anchors": {d.network: list(d.anchors) for d in prep.datasets},
        "contexts": ({"key": prep.config.context_key, "min_cells": prep.config.min_cells,
                      "cells": prep.context_cells} if prep.config.context_key else None),
        "rank_statistics": ({"kinds": list(prep.spec.stat_kinds), "cells": prep.stat_cells,
                             "max_cells": prep.config.stat_cells}
                            if prep.spec.stat_kinds else None),
        "threshold_guidance": threshold_guidance_of(prep.translator),
        "attempts": attempts, **extra,
    }


def _run_round(prep: Prepared, specs: list[BlockSpec], placement: Placement, progress: Progress,
               fault_marker: str | None, profile_refs: dict[str, Any],
               stat_refs: dict[str, Any]) -> list[dict[str, Any]]:
    import ray
    from ray.data import ActorPoolStrategy, DataContext

    from .datasource import BlockDatasource
    from .scorer import BlockScorer

    cfg = prep.config
    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.actor_task_retry_on_errors = False  # block errors are returned, not raised
    anchors = {d.network: d.anchors for d in prep.datasets}
    if prep.store is not None:
        anchors[UNION] = prep.store.anchors
    source = BlockDatasource(specs, anchors, profile_refs, stat_refs,
                             {d.network: d for d in prep.datasets})
    n_read = cfg.read_tasks or min(len(specs), max(4, 4 * cfg.replicas), 256)
    # Read tasks reserve no CPU: they only fetch block descriptors and a background profile.
    # With any CPU reservation, replicas that claim every CPU (2 x 1 CPU on a 2-core machine)
    # leave the reads unschedulable and the pipeline waits forever (seen in bench_engine.py).
    # Without a CPU reservation nothing bounds how many read tasks run at once, and Ray starts
    # a worker process (imports and all) for each: a burst of CPU that steals from the replicas
    # on a small machine. A few concurrent readers keep far ahead of the replicas, since a read
    # is a descriptor plus a memoised profile and a block is seconds of probes.
    ds = ray.data.read_datasource(source, override_num_blocks=n_read, num_cpus=0,
                                  concurrency=min(n_read, max(2, cfg.replicas // 4)))
    gpus = placement.gpus
    key = round_key(prep.run_hash)
    # Two calls per replica at once, serialised on the replica's device lock: the next batch
    # probes while this one's edges are scored and written (scorer.BlockScorer). No more than
    # those two are queued on a replica: the first replica to start would otherwise take a
    # small run's every batch while the others were still loading their model.
    pool = ActorPoolStrategy(size=cfg.replicas, max_concurrent_calls_per_actor=2,
                             max_tasks_in_flight_per_actor=2, enable_true_multi_threading=True)
    ds = ds.map_batches(
        BlockScorer, batch_size=cfg.blocks_per_call_for(gpus, len(specs)), compute=pool,
        num_gpus=gpus if gpus > 0 else None, num_cpus=placement.cpus,
        resources=dict(cfg.replica_resources) or None,
        fn_constructor_kwargs={"model_dir": prep.model_dir, "translator_dir": prep.translator_dir,
                               "spec": prep.spec, "out_uri": cfg.out,
                               "fault_marker": fault_marker, "run_key": key,
                               "gdt_precision": cfg.gdt_precision, "store": prep.store},
        udf_modifying_row_count=False)
    rows = []
    results = watched(ds.iter_rows(), key, placement.start_timeout_s,
                      lambda: demand_line(cfg.replicas, gpus, placement.cpus))
    try:
        for row in results:
            r = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
            rows.append(r)
            progress.update(r["status"] == "ok", int(r["pairs"]))
    finally:
        forget(key)
    return rows


def run_job(config: RunConfig, *, prepared: Prepared | None = None,
            log: Callable[[str], None] = print) -> JobResult:
    """Build (or resume) the run; bad input raises before anything is written.

    Order matters for "never hang, never leave a half-claimed output": inputs, the output
    directory, the Ray cluster and the replicas' resource request are all checked before the
    manifest is (re)written. Status ``stalled`` (no replica started within
    ``config.start_timeout_s``) is written to the manifest and returned, like ``failed``.
    """
    t_start = time.perf_counter()
    driver_retries_before = retries_seen()
    prep = prepared or prepare(config, log)
    out = RunOutput(config.out)
    old = claim_output(out, prep.run_hash)
    attempts = list(old.get("attempts", [])) if old else []
    specs = prep.specs
    done_before = out.done_blocks(specs)
    pending = [s for s in specs if s.block_id not in done_before]
    to_probe, stored_blocks = _blocks_to_probe(prep, pending)
    placement = None
    started_here = False
    if pending:
        started_here = connect(config.address, log)
        try:
            placement = place_replicas(config.gpus_per_replica, config.cpus_per_replica,
                                       *node_shapes(), start_timeout_s=config.start_timeout_s,
                                       resources=dict(config.replica_resources))
        except AtlasgrnError:
            if started_here:
                import ray

                ray.shutdown()
            raise
        if config.gdt_precision == "tf32" and placement.gpus == 0:
            if started_here:
                import ray

                ray.shutdown()
            raise AtlasgrnError("--gdt-precision tf32 needs GPU replicas, but these run on "
                                "CPU", key="--gdt-precision", remedy="use fp32 (or bf16) on "
                                "CPU, or give the replicas GPUs (--gpus-per-replica 1)")
        log(f"replicas: {config.replicas} x ({placement.cpus:g} CPU"
            f"{f', {placement.gpus:g} GPU' if placement.gpus else ''}): {placement.reason}")
        if not watchdog_can_see_replicas():
            log("note: through Ray Client the job cannot see its replicas' heartbeats; only "
                "finished blocks count as progress for --start-timeout")
    if prep.store is not None:
        ProbeStore(prep.store).claim()  # after every refusal: a refused run writes nothing
    out.remove(out.path(SUCCESS))  # the run is in progress again until it publishes
    out.remove_partial_files()
    attempt: dict[str, Any] = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                               "blocks_already_done": len(done_before),
                               "blocks_to_compute": len(pending), "replicas": config.replicas,
                               "gpus_per_replica": config.gpus_per_replica}
    attempts.append(attempt)
    write_manifest(out, _manifest(prep, "running", attempts, {}))
    log(f"run {prep.run_hash} ({prep.mode} mode): {len(specs)} blocks ({prep.n_pairs:,} pairs) "
        f"over {len(prep.plans)} dataset(s); {len(done_before)} already done, {len(pending)} "
        f"to write -> {out.uri}")
    if prep.store is not None:
        log(f"probe store {prep.store.uri}: {len(stored_blocks)} block(s) of the union already "
            f"scored there, {len(to_probe)} to probe "
            f"({sum(b.n_pairs for b in to_probe):,} pairs)")
    summaries: list[dict[str, Any]] = []
    failed: dict[str, str] = {}
    t_compute = time.perf_counter()
    join_retries = 0
    gpus = placement.gpus if placement else 0.0
    if placement is not None:
        attempt["gpus_per_replica_used"] = gpus
        fault_marker = os.environ.get(FAULT_ENV) or None
        import ray

        # computed once on the driver; read tasks fetch them by reference
        profile_refs = {name: ray.put(p) for name, p in prep.profiles.items()
                        if prep.spec.needs_profile(prep.kinds)}
        stat_refs = {name: ray.put(st) for name, st in prep.stats.items()}
        todo = to_probe
        for round_no in range(config.retries + 1 if todo else 0):
            progress = Progress(len(todo), sum(s.n_pairs for s in todo),
                                every_s=config.progress_every_s, log=log)
            try:
                rows = _run_round(prep, todo, placement, progress, fault_marker, profile_refs,
                                  stat_refs)
            except JobStalled as exc:
                return _stalled(prep, out, attempts, attempt, str(exc), specs, done_before,
                                t_start, started_here, log)
            summaries += rows
            ok = {r["block_id"] for r in rows if r["status"] == "ok"}
            failed = {r["block_id"]: r["error"] for r in rows if r["status"] != "ok"}
            failed.update({s.block_id: "no result returned" for s in todo
                           if s.block_id not in ok and s.block_id not in failed})
            todo = [s for s in todo if s.block_id in failed]
            if not todo:
                break
            if round_no < config.retries:
                log(f"retrying {len(todo)} failed block(s) (round {round_no + 2} of "
                    f"{config.retries + 1}); first error: {next(iter(failed.values()))}")
        if prep.store is not None and not failed and pending:
            from .join import run_joins

            joins = run_joins(pending, dict(prep.union.parent), prep.store, config.out)
            join_ok = {r["block_id"] for r in joins if r["status"] == "ok"}
            failed = {r["block_id"]: r["error"] for r in joins if r["status"] != "ok"}
            failed.update({s.block_id: "no result returned" for s in pending
                           if s.block_id not in join_ok and s.block_id not in failed})
            attempt["join_rows"] = sum(int(r["rows"]) for r in joins if r["status"] == "ok")
            join_retries = sum(int(r.get("io_retries", 0)) for r in joins)
    compute_s = time.perf_counter() - t_compute
    ok_rows = [r for r in summaries if r["status"] == "ok"]
    attempt["work"] = work_done(prep, pending, ok_rows, stored_blocks)
    computed = len({r["block_id"] for r in ok_rows})
    busy_s = sum(float(r["seconds"]) for r in ok_rows)
    attempt.update({"blocks_computed": computed, "blocks_failed": sorted(failed),
                    "compute_seconds": round(compute_s, 3),
                    "replica_busy_seconds": round(busy_s, 3),
                    "probe_seconds": round(sum(float(r["probe_seconds"]) for r in ok_rows), 3),
                    "gpu_hours": round(busy_s * gpus / 3600, 6),
                    "blocks_per_call": config.blocks_per_call_for(gpus, len(to_probe)),
                    "gdt_precision": config.gdt_precision,
                    "replica_flops": replica_flops(ok_rows),
                    "devices": sorted({f"{r['device']}:{r['gpu_ids']}" for r in ok_rows}),
                    # transient object-store errors retried (all recovered, or the run failed)
                    "io_retries": {
                        "replicas": sum(int(r.get("io_retries", 0)) for r in summaries),
                        "joins": join_retries,
                        "driver": retries_seen() - driver_retries_before}})
    rows_written = (attempt.get("join_rows", 0) if prep.store is not None
                    else sum(int(r["rows"]) for r in ok_rows))
    attempt["cost"] = cost_estimate_vs_actual(ok_rows, sum(s.n_pairs for s in to_probe), gpus)
    if failed:
        attempt["status"] = "failed"
        write_manifest(out, _manifest(prep, "failed", attempts,
                                      {"failed_blocks": failed}))
        log(f"{len(failed)} block(s) failed after {config.retries + 1} round(s), e.g. "
            f"{next(iter(failed))}: {next(iter(failed.values()))}; rerun to resume")
        return JobResult(out.uri, "failed", len(specs), len(done_before), computed,
                         sorted(failed), rows_written, 0, time.perf_counter() - t_start,
                         summaries)
    t_cons = time.perf_counter()
    cons_rows = write_consensus(out, top_k=config.consensus_top_k,
                                rows_per_part=config.consensus_rows_per_part)
    edge_rows = int(_count_edges(out))
    attempt.update({"status": "complete", "consensus_seconds": round(time.perf_counter()
                                                                      - t_cons, 3)})
    attempt["io_retries"]["driver"] = retries_seen() - driver_retries_before  # consensus too
    write_manifest(out, _manifest(prep, "complete", attempts, {
        "blocks": {"planned": len(specs), "done": len(specs), "failed": 0},
        "rows_written": {"edges": edge_rows, "consensus": cons_rows},
        "work": attempt["work"],
    }))
    out.write_text_atomic(out.path(SUCCESS), "")
    seconds = time.perf_counter() - t_start
    log(f"done in {seconds:.1f}s: {edge_rows:,} edges, {cons_rows:,} consensus rows")
    return JobResult(out.uri, "complete", len(specs), len(done_before), computed, [],
                     rows_written, cons_rows, seconds, summaries)


def _stalled(prep: Prepared, out: RunOutput, attempts: list[dict[str, Any]],
             attempt: dict[str, Any], reason: str, specs: list[BlockSpec],
             done_before: set[str], t_start: float, started_here: bool,
             log: Callable[[str], None]) -> JobResult:
    """Record and report a run no replica could start for (see :mod:`.watchdog`)."""
    safe = len(out.done_blocks(specs))
    attempt.update({"status": "stalled", "reason": reason, "blocks_safe": safe})
    write_manifest(out, _manifest(prep, "stalled", attempts, {"stalled": reason}))
    log(f"stalled: {reason}; {safe} of {len(specs)} block(s) are safe in {out.uri}; free "
        "or add the resources (or lower --cpus-per-replica / --gpus-per-replica), then rerun "
        "to resume")
    if started_here:
        import ray

        ray.shutdown()  # stops the waiting pipeline; a cluster's is ended with the driver
    return JobResult(out.uri, "stalled", len(specs), len(done_before), 0, [], 0, 0,
                     time.perf_counter() - t_start)


def _blocks_to_probe(prep: Prepared, pending: list[BlockSpec]
                     ) -> tuple[list[BlockSpec], list[BlockSpec]]:
    """What this attempt probes: the pending blocks themselves (context mode), or the union
    blocks the pending dataset blocks are cut from whose scores the store lacks (universal
    mode, which also returns the union blocks served from the store as they are)."""
    if prep.store is None or prep.union is None:
        return list(pending), []
    store = ProbeStore(prep.store)
    needed = {(u.source_block, u.target_block): u
              for u in (prep.union.parent[b.block_id] for b in pending)}
    scored = store.scored_keys()
    probe, stored = [], []
    for k in sorted(needed):
        u = needed[k]
        (stored if store.block_key(u.sources, u.targets) in scored else probe).append(u)
    return probe, stored


def work_done(prep: Prepared, pending: list[BlockSpec], ok_rows: list[dict[str, Any]],
              stored: list[BlockSpec]) -> dict[str, Any]:
    """What this attempt cost against what it reused: pairs probed, pairs whose stored
    features or scores served instead (universal mode), pairs written to edge files."""
    probed = [r for r in ok_rows if not int(r.get("reused", 0))]
    rescored = [r for r in ok_rows if int(r.get("reused", 0))]
    return {"mode": prep.mode,
            "pairs_probed": sum(int(r["pairs"]) for r in probed),
            "pairs_reused": (sum(int(r["pairs"]) for r in rescored)
                             + sum(b.n_pairs for b in stored)),
            "blocks_probed": len(probed), "blocks_rescored": len(rescored),
            "blocks_reused": len(stored),
            "pairs_in_edges": sum(b.n_pairs for b in pending),
            "store": prep.store.uri if prep.store is not None else None}


def cost_estimate_vs_actual(rows: list[dict[str, Any]], pairs: int, gpus_per_replica: float,
                            early_fraction: float = 0.1) -> dict[str, Any]:
    """Replica-hours (GPU-hours when replicas hold GPUs): the estimate extrapolated from the
    first ~10% of blocks to finish (what the ETA showed then) against the actual total."""
    if not rows:
        return {}
    k = max(1, int(len(rows) * early_fraction))
    early = rows[:k]
    per_pair = sum(float(r["seconds"]) for r in early) / max(1, sum(int(r["pairs"])
                                                                    for r in early))
    actual = sum(float(r["seconds"]) for r in rows)
    scale = gpus_per_replica if gpus_per_replica > 0 else 1.0
    unit = "gpu_hours" if gpus_per_replica > 0 else "cpu_replica_hours"
    return {"unit": unit, "estimate_from_first_blocks": k,
            "estimate": round(per_pair * pairs * scale / 3600, 6),
            "actual": round(actual * scale / 3600, 6)}


def replica_flops(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per replica process: blocks, analytic probe FLOPs, and achieved FLOP/s over its busy
    time (probes, translator, writes) and over its probe time alone."""
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        key = f"{r['device']}:{r['pid']}"
        acc = out.setdefault(key, {"device": r["device"], "gpu_ids": r["gpu_ids"], "blocks": 0,
                                   "flops": 0.0, "busy_seconds": 0.0, "probe_seconds": 0.0})
        acc["blocks"] += 1
        acc["flops"] += float(r.get("flops", 0.0))
        acc["busy_seconds"] += float(r["seconds"])
        acc["probe_seconds"] += float(r["probe_seconds"])
    for acc in out.values():
        acc["flop_per_s"] = round(acc["flops"] / max(acc["busy_seconds"], 1e-9), 1)
        acc["probe_flop_per_s"] = round(acc["flops"] / max(acc["probe_seconds"], 1e-9), 1)
        acc["busy_seconds"] = round(acc["busy_seconds"], 3)
        acc["probe_seconds"] = round(acc["probe_seconds"], 3)
    return out


def _count_edges(out: RunOutput) -> int:
    from .output import edges_dataset
    return with_retries(lambda: edges_dataset(out).count_rows(), what="counting edges")

