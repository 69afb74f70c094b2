"""The one configuration object of a GRN build (recorded in the run manifest).

Fields split in three: those that decide *what* is computed (inputs, regulators), those that only
decide *how fast* (replicas, GPUs, CPUs, retries, consensus part size), and the probe options,
which decide nothing: the features come from the translator's :class:`FeatureSpec`, and a probe
option given explicitly is only checked against it (a contradiction is refused). So only the
first group, plus the resolved spec, enters :meth:`RunConfig.result_hash`: a build resumed with
more replicas, or with ``--context-len`` spelled out, is still "the same run", while one with
another model or translator is not and may never reuse its output directory.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from ..digest import json_sha256
from ..errors import AtlasgrnError

#: Fields that change only the execution, never a byte of the edges.
#: ``blocks_per_call`` is one of them: a block's features are the same bits whichever blocks
#: share its batch (tests/test_probes_stacked.py, on CPU; see docs/engine.md for CUDA).
EXECUTION_FIELDS = frozenset({"out", "address", "replicas", "gpus_per_replica",
                              "cpus_per_replica", "replica_resources", "blocks_per_call",
                              "cache",
                              "retries", "read_tasks", "progress_every_s", "start_timeout_s",
                              "consensus_rows_per_part"})
#: ``--gdt-precision``: fp32, or GDT in bf16 / fp16 autocast or TF32 matmuls (each checked
#: against fp32 on the bundled model: docs/probes.md). It changes the edges' bits, so it is part
#: of the run.
GDT_PRECISIONS = ("fp32", "bf16", "fp16", "tf32")
#: Blocks per replica call when ``blocks_per_call`` is not given: on a GPU a batch must be big
#: enough to keep the device busy. On CPU a block is already seconds of matmuls: stacking two
#: ran at the same speed as one at a time (0.9-1.12x, 1 thread, bundled model) and only
#: coarsens the end of a run, where one replica finishes a batch while the others idle.
AUTO_BLOCKS_PER_CALL = {"gpu": 16, "cpu": 1}
#: Probe options: checked against the translator's feature spec, never a second source of truth.
#: Option name -> FeatureSpec field.
SPEC_OPTIONS = {"vvp_grid": "vvp_grid", "gdt_levels": "gdt_levels", "background": "background",
                "context_len": "context_len", "source_block": "source_block",
                "target_block": "target_block"}
READINGS = ("uniform", "source")
#: ``--mode``: asserted against the translator's feature spec, which decides it
#: (:data:`atlasgrn.features.spec.MODES`).
MODES = ("universal", "context")


@dataclass(frozen=True)
class RunConfig:
    """What to build and with which resources.

    ``model``/``translator`` None mean the bundled defaults. ``regulators`` None means the
    bundled TF list of each dataset's species; ``max_regulators`` keeps, per dataset, only the
    N candidate regulators with the highest mean expression (ties by symbol). ``address`` names
    the Ray cluster (None: ``RAY_ADDRESS`` if set, else a fresh local Ray); ``gpus_per_replica``
    ``"auto"`` takes a GPU per replica where the cluster has or can get GPU nodes, else runs the
    replicas on CPU; ``start_timeout_s`` bounds the wait for the first replica. The probe options
    (``vvp_grid`` ... ``target_block``, ``gdt_reading``) default to None, "as the translator's
    feature spec says"; a value that contradicts the spec is refused. ``atlas_id`` names the
    atlas in the run's identity instead of its canonical location (``atlasgrn.infer`` sets it to
    an AnnData's content hash, since the AnnData is staged at a temporary path).
    """

    atlas: str
    out: str
    atlas_id: str | None = None
    model: str | None = None
    translator: str | None = None
    datasets: tuple[str, ...] | None = None
    regulators: str | None = None
    max_regulators: int | None = None
    source_block: int | None = None
    target_block: int | None = None
    address: str | None = None
    replicas: int = 1
    gpus_per_replica: float | str = "auto"
    cpus_per_replica: float = 1.0
    #: custom Ray resources each replica requests, as (name, amount) pairs: they pin replicas
    #: to node types that advertise them (e.g. ``gpu_pool`` on spot GPU nodes)
    replica_resources: tuple[tuple[str, float], ...] = ()
    #: blocks probed together per replica call (None: :data:`AUTO_BLOCKS_PER_CALL`)
    blocks_per_call: int | None = None
    gdt_precision: str = "fp32"
    #: ``--mode``: None means the translator's (its feature spec decides); a contradiction is
    #: refused like any probe option
    mode: str | None = None
    #: ``--cache``: universal mode's probe store (a local path or an object-store prefix),
    #: shared by runs; None keeps it inside the run's output (``<out>/store``). Where the
    #: store lives never changes an edge: its keys are the model, the spec and the block.
    cache: str | None = None
    #: ``--context-key``: an obs column (e.g. ``cell_type``); context mode builds one network
    #: per (dataset, value) with at least ``min_cells`` cells, each with its own profile
    context_key: str | None = None
    min_cells: int = 50
    #: cells per dataset or context the rank-statistic features are computed from (evenly
    #: spaced), when the translator reads them: enough for stable correlations, and at most
    #: 5,000 x 18,000 float32 values (360 MB) on the driver
    stat_cells: int = 5_000
    vvp_grid: tuple[float, ...] | None = None
    gdt_levels: tuple[float, ...] | None = None
    gdt_reading: str | None = None
    background: str | float | None = None
    context_len: int | None = None
    retries: int = 2
    read_tasks: int = 0
    progress_every_s: float = 10.0
    start_timeout_s: float = 300.0
    consensus_rows_per_part: int = 5_000_000
    #: the consensus lists, per edge, the networks where it ranks in its regulator's top k
    consensus_top_k: int = 50

    def validate(self) -> None:
        """Refuse settings no run can honour, naming the option to change."""
        gpus = self.gpus_per_replica
        checks = [
            ("--source-block", self.source_block, self.source_block is None
             or self.source_block >= 1, "a positive number of regulators, or drop it"),
            ("--target-block", self.target_block, self.target_block is None
             or self.target_block >= 1, "a positive number of targets, or drop it"),
            ("--replicas", self.replicas, self.replicas >= 1, "at least 1"),
            ("--gpus-per-replica", gpus, gpus == "auto" or (
                not isinstance(gpus, str) and gpus >= 0), "'auto', 0 (CPU) or a positive "
             "number of GPUs, fractions allowed"),
            ("--cpus-per-replica", self.cpus_per_replica, self.cpus_per_replica > 0,
             "a positive number of CPUs, fractions allowed"),
            ("--retries", self.retries, self.retries >= 0, "0 or more extra rounds"),
            ("--blocks-per-call", self.blocks_per_call, self.blocks_per_call is None
             or self.blocks_per_call >= 1, "a positive number of blocks, or drop it (auto)"),
            ("--max-regulators", self.max_regulators, self.max_regulators is None
             or self.max_regulators >= 1, "at least 1, or drop it for every regulator"),
            ("--read-tasks", self.read_tasks, self.read_tasks >= 0,
             "0 (automatic) or a positive number of read tasks"),
            ("--start-timeout", self.start_timeout_s, self.start_timeout_s > 0,
             "a positive number of seconds"),
            ("--progress-every", self.progress_every_s, self.progress_every_s >= 0,
             "0 (every block) or a positive number of seconds"),
            ("--min-cells", self.min_cells, self.min_cells >= 1, "at least 1 cell"),
            ("--stat-cells", self.stat_cells, self.stat_cells >= 3, "at least 3 cells"),
            ("--consensus-top-k", self.consensus_top_k, self.consensus_top_k >= 0,
             "0 or more targets per regulator"),
            ("--consensus-rows-per-part", self.consensus_rows_per_part,
             self.consensus_rows_per_part >= 1, "a positive number of rows")]
        for key, value, ok, remedy in checks:
            if not ok:
                shown = f"{value:g}" if isinstance(value, float) else value
                raise AtlasgrnError(f"{key} {shown} is out of range", key=key,
                                    remedy=f"give {key} {remedy}")
        for name, amount in self.replica_resources:
            if not name or name in ("CPU", "GPU") or not amount > 0:
                raise AtlasgrnError(f"--replica-resource {name}={amount:g} is not a custom "
                                    "resource request", key="--replica-resource",
                                    remedy="give NAME=AMOUNT with a custom resource name and a "
                                           "positive amount (CPUs and GPUs have their own "
                                           "options)")
        if self.gdt_reading is not None and self.gdt_reading not in READINGS:
            raise AtlasgrnError(f"unknown GDT reading {self.gdt_reading!r}", key="--gdt-reading",
                                remedy="use 'uniform' or 'source'")
        if self.mode is not None and self.mode not in MODES:
            raise AtlasgrnError(f"unknown mode {self.mode!r}", key="--mode",
                                remedy=f"use one of {', '.join(MODES)}")
        if self.gdt_precision not in GDT_PRECISIONS:
            raise AtlasgrnError(f"unknown GDT precision {self.gdt_precision!r}",
                                key="--gdt-precision",
                                remedy=f"use one of {', '.join(GDT_PRECISIONS)}")
        if self.gdt_precision == "tf32" and gpus == 0:
            raise AtlasgrnError("--gdt-precision tf32 needs GPU replicas, but "
                                "--gpus-per-replica is 0", key="--gdt-precision",
                                remedy="use fp32 (or bf16) on CPU, or give the replicas GPUs")
        if isinstance(self.background, str) and self.background != "profile":
            raise AtlasgrnError(f"unknown background {self.background!r}", key="--background",
                                remedy="use 'profile' or a number such as 0")
        if self.context_len is not None and self.context_len < 2:
            raise AtlasgrnError("--context-len must be at least 2", key="--context-len",
                                remedy="drop --context-len: the translator's spec sets it")

    def blocks_per_call_for(self, gpus_per_replica: float, n_blocks: int | None = None) -> int:
        """Blocks per replica call: the explicit value, else the automatic one for the device
        the replicas got, lowered so that ``n_blocks`` still give every replica two calls
        (a small run is not one batch on one replica while the others idle)."""
        if self.blocks_per_call is not None:
            return self.blocks_per_call
        auto = AUTO_BLOCKS_PER_CALL["gpu" if gpus_per_replica > 0 else "cpu"]
        if n_blocks is not None:
            auto = min(auto, -(-n_blocks // (2 * self.replicas)))
        return max(1, auto)

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
        if "replica_resources" in kw:
            kw["replica_resources"] = tuple((str(n), float(a)) for n, a in kw["replica_resources"])
        return cls(**kw)

    def result_hash(self, resolved: dict[str, Any] | None = None) -> str:
        """Hash of everything that decides the edges: the "what" fields plus ``resolved``
        (input digests and the feature spec), never execution or asserted probe options."""
        # model and translator enter through their content digests in ``resolved``, so the
        # bundled defaults named by path or left implicit are the same run
        # and the atlas through its canonical URI (resolved path or normalised URL) and content
        # digest, so the same atlas spelled another way resumes the same run
        # the regulator list enters through its content digest too
        skip = EXECUTION_FIELDS | set(SPEC_OPTIONS) | {"gdt_reading", "mode", "model",
                                                        "translator",
                                                        "atlas", "atlas_id", "regulators"}
        d = {k: v for k, v in self.to_dict().items() if k not in skip}
        if d.get("datasets"):
            d["datasets"] = sorted(d["datasets"])  # the same selection in another order
        if d.get("gdt_precision") == "fp32":
            del d["gdt_precision"]  # the default: runs from before the option resume as before
        return json_sha256({"config": d, "resolved": resolved or {}})[:16]
