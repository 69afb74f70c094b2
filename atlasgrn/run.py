"""The main job: ``python -m atlasgrn.run [ATLAS] --out OUT`` (also under ``ray job submit``).

Builds the atlas-wide GRN with the distributed engine (``atlasgrn.engine``): frozen model
replicas score gene-pair blocks of every dataset, edges land as hive-partitioned Parquet with a
cross-dataset consensus, a manifest and ``_SUCCESS``. With no atlas it runs on the bundled demo
atlas; with no model/translator it uses the bundled ones; with no cluster it starts Ray locally.
Exit codes: 0 done; 1 blocks still failing after the retry rounds (rerun to resume); 2 bad input
(one line on stderr, nothing written); 3 interrupted: no replica could start within
``--start-timeout``, or the driver lost its Ray node (one line says how many blocks are safe;
rerun to resume).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import EXIT_BAD_INPUT, AtlasgrnError

DEFAULT_OUT_ROOT = "atlasgrn-out"
#: Regulators per dataset when the job runs on the bundled demo atlas with no --max-regulators:
#: every regulator of the three demo datasets is ~1M pairs, hours on a laptop CPU.
DEMO_MAX_REGULATORS = 6
PROG = "atlasgrn.run"


def _floats(text: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}"
                                         ) from None
    if not vals:
        raise argparse.ArgumentTypeError("expected at least one number")
    return vals


def _gpus(text: str) -> str | float:
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected 'auto' or a number of GPUs") from None


def _resource(text: str) -> tuple[str, float]:
    name, sep, amount = text.partition("=")
    try:
        return name.strip(), float(amount) if sep else 1.0
    except ValueError:
        raise argparse.ArgumentTypeError("expected NAME=AMOUNT, e.g. gpu_pool=1") from None


def _background(text: str) -> str | float:
    if text == "profile":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected 'profile' or a number") from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The job's options (shared by ``python -m atlasgrn.run`` and ``atlasgrn run``).

    Every default is read from :class:`RunConfig`; the probe options only assert the
    translator's feature spec (a contradiction is refused), so they default to "as trained".
    """
    from .cli_defaults import field_default
    from .engine.config import AUTO_BLOCKS_PER_CALL, GDT_PRECISIONS, MODES, RunConfig

    def default(name: str):
        return field_default(RunConfig, name)

    as_trained = "must match the translator's feature spec if given (default: the spec's)"
    p.add_argument("atlas", nargs="?", default=None,
                   help="atlas path or URL (default: the bundled demo atlas)")
    p.add_argument("--out", default=None,
                   help=f"output directory or object-store prefix (default: "
                        f"./{DEFAULT_OUT_ROOT}/<atlas name>)")
    p.add_argument("--model", default=default("model"),
                   help="model directory (default: bundled model)")
    p.add_argument("--translator", default=default("translator"),
                   help="translator directory (default: bundled translator); its feature spec "
                        "decides how every feature is computed")
    p.add_argument("--datasets", action="append", default=None, metavar="NAME[,NAME]",
                   help="datasets to build (repeatable or comma-separated; default: all)")
    p.add_argument("--regulators", default=default("regulators"), metavar="FILE",
                   help="candidate regulators, one symbol a line (default: the bundled TF list "
                        "of each dataset's species)")
    p.add_argument("--max-regulators", type=int, default=default("max_regulators"), metavar="N",
                   help="per dataset, only the N most-expressed candidate regulators (default: "
                        f"all; {DEMO_MAX_REGULATORS} on the bundled demo atlas, so the demo ends "
                        "in minutes on a laptop CPU)")
    p.add_argument("--source-block", type=int, default=default("source_block"),
                   help=f"regulators per block; {as_trained}")
    p.add_argument("--target-block", type=int, default=default("target_block"),
                   help=f"targets per block; {as_trained}")
    p.add_argument("--address", default=default("address"),
                   help="Ray cluster to use (default: $RAY_ADDRESS, which `ray job submit` "
                        "sets, else a fresh local Ray)")
    p.add_argument("--replicas", type=int, default=default("replicas"),
                   help="model replicas (actor pool size)")
    p.add_argument("--gpus-per-replica", type=_gpus, default=default("gpus_per_replica"),
                   help="GPUs per replica, fractions allowed; 'auto': one where the cluster "
                        "has or can get GPU nodes, else CPU replicas (default: %(default)s)")
    p.add_argument("--cpus-per-replica", type=float, default=default("cpus_per_replica"),
                   help="CPUs per replica (also its torch threads)")
    p.add_argument("--replica-resource", type=_resource, action="append", default=None,
                   metavar="NAME=AMOUNT", dest="replica_resources",
                   help="a custom Ray resource each replica requests (repeatable): pins the "
                        "replicas to nodes started with it, e.g. --resources '{\"gpu_pool\": 4}'")
    p.add_argument("--blocks-per-call", type=int, default=default("blocks_per_call"),
                   metavar="N", help="blocks each replica probes together in one batch "
                                     f"(default: {AUTO_BLOCKS_PER_CALL['gpu']} on GPU replicas, "
                                     f"{AUTO_BLOCKS_PER_CALL['cpu']} on CPU, fewer when a run "
                                     "has few blocks per replica)")
    p.add_argument("--gdt-precision", choices=GDT_PRECISIONS, default=default("gdt_precision"),
                   help="GDT arithmetic: fp32, bf16 or fp16 autocast, or TF32 matmuls (CUDA); "
                        "VVP stays fp32 (default: %(default)s)")
    p.add_argument("--mode", choices=MODES, default=default("mode"),
                   help="universal: one network over the union of the atlas's genes, each block "
                        "probed once and every dataset cut from the stored scores; context: "
                        "each dataset probed with its own profile (default: the mode the "
                        "translator was trained for; a contradiction is refused)")
    p.add_argument("--cache", default=default("cache"), metavar="URI",
                   help="universal mode's probe store, a local path or object-store prefix "
                        "shared by runs: blocks stored under the same model and feature spec "
                        "are reused, not probed (default: <out>/store)")
    p.add_argument("--context-key", default=default("context_key"), metavar="OBS_COLUMN",
                   help="context mode: one network per (dataset, value of this obs column, "
                        "e.g. cell_type), each probed with its own mean profile; output "
                        "partitioned dataset=/context=")
    p.add_argument("--min-cells", type=int, default=default("min_cells"), metavar="N",
                   help="with --context-key, the fewest cells a context needs for a network "
                        "(default: %(default)s)")
    p.add_argument("--stat-cells", type=int, default=default("stat_cells"), metavar="N",
                   help="cells per dataset or context the rank-statistic features are computed "
                        "from, evenly spaced, when the translator reads them "
                        "(default: %(default)s)")
    p.add_argument("--vvp-grid", type=_floats, default=default("vvp_grid"), metavar="X,X,...",
                   help=f"VVP grid; {as_trained}")
    p.add_argument("--gdt-levels", type=_floats, default=default("gdt_levels"),
                   metavar="A,A,...", help=f"GDT levels; {as_trained}")
    p.add_argument("--gdt-reading", choices=("uniform", "source"), default=default("gdt_reading"),
                   help="GDT reading; must be the one in the translator's ensemble if given")
    p.add_argument("--background", type=_background, default=default("background"),
                   help=f"'profile' (the dataset's mean cell) or a scalar value; {as_trained}")
    p.add_argument("--context-len", type=int, default=default("context_len"),
                   help=f"tokens per probe context; {as_trained}")
    p.add_argument("--retries", type=int, default=default("retries"),
                   help="extra rounds for failed blocks")
    p.add_argument("--read-tasks", type=int, default=default("read_tasks"),
                   help="read tasks (0: automatic)")
    p.add_argument("--progress-every", type=float, default=default("progress_every_s"),
                   metavar="SECONDS", help="seconds between progress lines")
    p.add_argument("--start-timeout", type=float, default=default("start_timeout_s"),
                   metavar="SECONDS", help="give up (exit 3, saying what is pending) when no "
                                           "replica has started after this long "
                                           "(default: %(default)s)")
    p.add_argument("--plan", action="store_true",
                   help="dry run: print blocks, estimated GPU-hours (one batch of blocks timed here) and "
                        "output size, then exit")
    p.add_argument("--top", type=int, default=10, help="top consensus edges to print")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m atlasgrn.run",
                                description="Build gene regulatory networks across an atlas "
                                            "with frozen foundation-model replicas on Ray.")
    add_arguments(p)
    return p


def config_from_args(args: argparse.Namespace):
    """The :class:`RunConfig` the options describe (defaults resolved: demo atlas, out dir)."""
    from .engine.config import RunConfig

    max_regulators = args.max_regulators
    if args.atlas is None:
        from .atlas.bundled import demo_atlas_path
        atlas = str(demo_atlas_path())
        if max_regulators is None:
            max_regulators = DEMO_MAX_REGULATORS
    else:
        atlas = args.atlas
    out = args.out or str(Path(DEFAULT_OUT_ROOT) / _stem(atlas))
    datasets = None
    if args.datasets:
        datasets = tuple(n.strip() for item in args.datasets for n in item.split(",")
                         if n.strip())
    return RunConfig(atlas=atlas, out=out, model=args.model, translator=args.translator,
                     datasets=datasets, regulators=args.regulators,
                     max_regulators=max_regulators,
                     source_block=args.source_block, target_block=args.target_block,
                     replicas=args.replicas, gpus_per_replica=args.gpus_per_replica,
                     cpus_per_replica=args.cpus_per_replica,
                     replica_resources=tuple(args.replica_resources or ()),
                     blocks_per_call=args.blocks_per_call, gdt_precision=args.gdt_precision,
                     mode=args.mode, cache=args.cache, context_key=args.context_key,
                     min_cells=args.min_cells, stat_cells=args.stat_cells,
                     vvp_grid=args.vvp_grid,
                     gdt_levels=args.gdt_levels, gdt_reading=args.gdt_reading,
                     background=args.background, context_len=args.context_len,
                     retries=args.retries, read_tasks=args.read_tasks,
                     progress_every_s=args.progress_every, address=args.address,
                     start_timeout_s=args.start_timeout)


def _stem(atlas: str) -> str:
    name = atlas.rstrip("/").rsplit("/", 1)[-1]
    return name[:-5] if name.endswith(".zarr") else (name or "atlas")


def _check_atlas_exists(atlas: str) -> None:
    if "://" not in atlas and not Path(atlas).exists():
        raise AtlasgrnError("atlas not found", path=atlas,
                            remedy="give the path or URL of an atlas (atlasgrn ingest builds one)")


def run(args: argparse.Namespace, prog: str = PROG) -> int:
    """The job for parsed options: ``--plan`` here, a build in a supervised child (see
    :mod:`atlasgrn.engine.supervisor`: a driver that loses its Ray node is reported)."""
    from .engine.supervisor import run_supervised

    config = config_from_args(args)
    _check_atlas_exists(config.atlas)
    if args.plan:
        return _plan(config)
    demo = args.atlas is None  # the demo also writes its report (atlasgrn report)
    return run_supervised(lambda: _build(config, args.top, demo), config.out, prog)


def _plan(config) -> int:
    import torch

    from .engine.estimate import estimate
    from .engine.job import prepare

    prep = prepare(config)
    for p in prep.plans:
        print(f"  {p.dataset}: {len(p.genes):,} genes, {len(p.sources):,} regulators, "
              f"{len(p.blocks):,} blocks, {p.n_pairs:,} pairs")
    est = estimate(prep, device="cuda" if torch.cuda.is_available() else "cpu")
    for line in est.lines(config.replicas):
        print(line)
    return 0


def _build(config, top: int, report: bool = False) -> int:
    from .engine.job import run_job
    from .engine.supervisor import EXIT_FAILED_BLOCKS, EXIT_INTERRUPTED

    result = run_job(config)
    if result.status == "stalled":
        return EXIT_INTERRUPTED
    if result.status != "complete":
        return EXIT_FAILED_BLOCKS
    _print_summary(result.out, top)
    if report:
        _write_report(result.out)
    return 0


def _write_report(out_uri: str) -> None:
    """The demo's last step: its report, written into the run directory (atlasgrn's own, so a
    rerun replaces it), and its path."""
    from .atomic import is_remote
    from .results.report import REPORT_NAME, build_report, write_report
    from .results.run import open_run

    if is_remote(out_uri):
        return
    target = str(Path(out_uri) / REPORT_NAME)
    write_report(build_report(open_run(out_uri), log=lambda _line: None), target)
    print(f"report: {target} (open it in a browser; `atlasgrn report` makes one for any build)")


def _guidance_lines(out) -> list[str]:
    """Where to threshold: the translator's validation precision/recall from the manifest."""
    import json

    from .engine.output import MANIFEST

    try:
        guide = json.loads(out.read_text(out.path(MANIFEST))).get("threshold_guidance")
    except (OSError, ValueError):
        return []
    if not guide or not guide.get("thresholds"):
        return ["scores rank pairs; this translator recorded no validation thresholds"]
    lines = ["scores rank pairs (not calibrated probabilities); on held-out regulators with "
             "one negative per positive the translator reached:"]
    for row in guide["thresholds"]:
        precision = "n/a" if row["precision"] is None else f"{row['precision']:.2f}"
        lines.append(f"  score >= {row['score']:.3f} (top {100 * row['fraction_above']:.0f}% "
                     f"of pairs): precision {precision}, recall {row['recall']:.2f}")
    lines.append("  (precision is lower at native edge density; see threshold_guidance in the "
                 "manifest)")
    return lines


def _print_summary(out_uri: str, top: int) -> None:
    from .engine.output import RunOutput

    out = RunOutput(out_uri)
    print(f"edges (hive-partitioned Parquet): {out.url('edges')}")
    print(f"consensus: {out.url('consensus')}; manifest: {out.url('manifest.json')}")
    for line in _guidance_lines(out):
        print(line)
    if top > 0:
        import pyarrow.dataset as pads

        from .results.query import top_rows
        cons = pads.dataset(out.path("consensus"), format="parquet", filesystem=out.fs)
        scanner = cons.scanner(batch_size=65536)  # a bounded top-N, never the whole table
        df = top_rows(scanner.to_batches(), top, scanner.projected_schema,
                      score="score_mean").to_pandas()
        print(f"top {len(df)} consensus edges:")
        print(df.to_string(index=False))


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return run(args)
    except AtlasgrnError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
