"""The main job: ``python -m atlasgrn.run [ATLAS] --out OUT`` (also under ``ray job submit``).

Builds the atlas-wide GRN with the distributed engine (``atlasgrn.engine``): frozen model
replicas score gene-pair blocks of every dataset, edges land as hive-partitioned Parquet with a
cross-dataset consensus, a manifest and ``_SUCCESS``. With no atlas it runs on the bundled demo
atlas; with no model/translator it uses the bundled ones; with no cluster it starts Ray locally.
Exit codes: 0 done, 1 blocks failed (rerun to resume), 2 bad input (one line on stderr).
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
EXIT_FAILED_BLOCKS = 1


def _floats(text: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}"
                                         ) from None
    if not vals:
        raise argparse.ArgumentTypeError("expected at least one number")
    return vals


def _background(text: str) -> str | float:
    if text == "profile":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected 'profile' or a number") from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The job's options (shared by ``python -m atlasgrn.run`` and ``atlasgrn run``)."""
    p.add_argument("atlas", nargs="?", default=None,
                   help="atlas path or URL (default: the bundled demo atlas)")
    p.add_argument("--out", default=None,
                   help=f"output directory or object-store prefix (default: "
                        f"./{DEFAULT_OUT_ROOT}/<atlas name>)")
    p.add_argument("--model", default=None, help="model directory (default: bundled model)")
    p.add_argument("--translator", default=None,
                   help="translator directory (default: bundled translator)")
    p.add_argument("--datasets", action="append", default=None, metavar="NAME[,NAME]",
                   help="datasets to build (repeatable or comma-separated; default: all)")
    p.add_argument("--regulators", default=None, metavar="FILE",
                   help="candidate regulators, one symbol a line (default: the bundled TF list "
                        "of each dataset's species)")
    p.add_argument("--max-regulators", type=int, default=None, metavar="N",
                   help="per dataset, only the N most-expressed candidate regulators (default: "
                        f"all; {DEMO_MAX_REGULATORS} on the bundled demo atlas, so the demo ends "
                        "in minutes on a laptop CPU)")
    p.add_argument("--source-block", type=int, default=32, help="regulators per block")
    p.add_argument("--target-block", type=int, default=128, help="targets per block")
    p.add_argument("--replicas", type=int, default=1, help="model replicas (actor pool size)")
    p.add_argument("--gpus-per-replica", type=float, default=1.0,
                   help="GPUs per replica, fractional allowed (CPU when none is present)")
    p.add_argument("--cpus-per-replica", type=float, default=1.0,
                   help="CPUs per replica (also its torch threads)")
    p.add_argument("--vvp-grid", type=_floats, default=None, metavar="X,X,...",
                   help="VVP grid (default: translator's, else model's)")
    p.add_argument("--gdt-levels", type=_floats, default=None, metavar="A,A,...",
                   help="GDT levels (default: translator's, else model's)")
    p.add_argument("--gdt-reading", choices=("uniform", "source"), default=None)
    p.add_argument("--background", type=_background, default=None,
                   help="'profile' (the dataset's mean cell) or a scalar value (default: "
                        "translator's, else 'profile')")
    p.add_argument("--context-len", type=int, default=None,
                   help="tokens per probe context (default: translator's, else min(model "
                        "max_len, 256))")
    p.add_argument("--retries", type=int, default=2, help="extra rounds for failed blocks")
    p.add_argument("--read-tasks", type=int, default=0, help="read tasks (0: automatic)")
    p.add_argument("--progress-every", type=float, default=10.0, metavar="SECONDS")
    p.add_argument("--plan", action="store_true",
                   help="dry run: print blocks, estimated GPU-hours (one block timed here) and "
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
                     cpus_per_replica=args.cpus_per_replica, vvp_grid=args.vvp_grid,
                     gdt_levels=args.gdt_levels, gdt_reading=args.gdt_reading,
                     background=args.background, context_len=args.context_len,
                     retries=args.retries, read_tasks=args.read_tasks,
                     progress_every_s=args.progress_every)


def _stem(atlas: str) -> str:
    name = atlas.rstrip("/").rsplit("/", 1)[-1]
    return name[:-5] if name.endswith(".zarr") else (name or "atlas")


def _check_atlas_exists(atlas: str) -> None:
    if "://" not in atlas and not Path(atlas).exists():
        raise AtlasgrnError("atlas not found", path=atlas,
                            remedy="give the path or URL of an atlas (atlasgrn ingest builds one)")


def run(args: argparse.Namespace) -> int:
    from .engine.job import prepare, run_job

    config = config_from_args(args)
    _check_atlas_exists(config.atlas)
    prep = prepare(config)
    if args.plan:
        import torch

        from .engine.estimate import estimate
        for p in prep.plans:
            print(f"  {p.dataset}: {len(p.genes):,} genes, {len(p.sources):,} regulators, "
                  f"{len(p.blocks):,} blocks, {p.n_pairs:,} pairs")
        est = estimate(prep, device="cuda" if torch.cuda.is_available() else "cpu")
        for line in est.lines(config.replicas, config.gpus_per_replica):
            print(line)
        return 0
    result = run_job(config, prepared=prep)
    if result.status != "complete":
        return EXIT_FAILED_BLOCKS
    _print_summary(result.out, args.top)
    return 0


def _print_summary(out_uri: str, top: int) -> None:
    from .engine.sink import RunOutput

    out = RunOutput(out_uri)
    print(f"edges (hive-partitioned Parquet): {out.path('edges')}")
    print(f"consensus: {out.path('consensus')}; manifest: {out.path('manifest.json')}")
    if top > 0:
        import pyarrow.dataset as pads
        cons = pads.dataset(out.path("consensus"), format="parquet", filesystem=out.fs)
        df = cons.to_table().to_pandas()
        df = df.sort_values(["score_mean", "source", "target"], ascending=[False, True, True])
        print(f"top {min(top, len(df))} consensus edges:")
        print(df.head(top).to_string(index=False))


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return run(args)
    except AtlasgrnError as exc:
        print(f"atlasgrn.run: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
