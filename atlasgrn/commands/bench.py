"""``atlasgrn bench beeline --data ROOT --out DIR``: the generalisation benchmark."""

from __future__ import annotations

import argparse
import shlex
import sys
from fnmatch import fnmatch
from pathlib import Path

from ..cli_defaults import field_default
from ..errors import AtlasgrnError
from ._feature_options import add_spec_options, parse_background, spec_options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmarks")
    bsub = p.add_subparsers(dest="bench_command", metavar="BENCHMARK")
    bsub.required = True
    from ..bench.config import BenchConfig
    from ..translator.config import TranslatorConfig

    def default(name: str):
        return field_default(BenchConfig, name)

    b = bsub.add_parser("beeline", help="translator transfer on BEELINE (GENELink layout)",
                        description="Train translators on hESC labels, test zero-shot on every "
                                    "other dataset (protocols A, B, C, M); writes "
                                    "results.parquet, report.md, manifest.json and PR curves.")
    b.add_argument("--data", required=True, help="GENELink-layout root (networks/, expression/)")
    b.add_argument("--out", required=True, help="output directory")
    b.add_argument("--network", action="append", default=[], metavar="TYPE",
                   help="network type(s) to run (repeatable; default: all found)")
    b.add_argument("--dataset", action="append", default=[], metavar="NAME",
                   help="test dataset(s) to run (repeatable; default: all)")
    b.add_argument("--size", type=int, default=None, help="gene set size (500 or 1000)")
    b.add_argument("--seeds", type=int, default=default("seeds"))
    b.add_argument("--model", default=None, help="model directory (default: bundled model)")
    b.add_argument("--strict-model", default=None,
                   help="a model pre-trained without --strict-dataset's cells")
    b.add_argument("--strict-dataset", default=None)
    b.add_argument("--jobs", type=int, default=default("jobs"),
                   help="torch threads / tree workers")
    b.add_argument("--methods", default=None, help="comma list (default: all)")
    b.add_argument("--protocols", default=",".join(default("protocols")))
    b.add_argument("--tf-sample", type=int, default=None,
                   help="use only N TFs per dataset (seeded) to cut cost")
    b.add_argument("--cache", default=None, help="feature cache dir (default "
                   "~/.cache/atlasgrn/features; 'none' disables it)")
    add_spec_options(b)
    b.add_argument("--train-dataset", default=default("train_dataset"), metavar="NAME",
                   help="dataset whose labels train the translators; it is left out of the "
                        "evaluation (default: %(default)s; context mode needs one with "
                        "expression, e.g. mESC)")
    b.add_argument("--background", default=None, metavar="X|profile",
                   help="virtual-cell background of every probe: a number (universal mode; "
                        "default: the model's) or 'profile', each dataset's own mean "
                        "(context mode: needs --train-dataset with expression)")
    b.add_argument("--max-epochs", type=int, default=field_default(TranslatorConfig,
                                                                    "max_epochs"),
                   help="translator epochs")
    b.add_argument("--device", default=default("device"), choices=["cpu", "cuda", "auto"],
                   help="where the frozen model runs (translators and baselines stay on CPU)")
    b.add_argument("--trees", type=int, default=default("tree_trees"),
                   help="trees per target (GENIE3 baseline)")
    b.add_argument("--overwrite", action="store_true",
                   help="write into a non-empty directory that is not a benchmark output (files "
                        "atlasgrn did not write are still never replaced)")
    b.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..bench.config import ALL_METHODS, BenchConfig
    from ..bench.report import write_outputs
    from ..bench.run import run_benchmark
    from ..features import default_cache_dir
    from ..outdir import claim_output_dir
    from ..translator import TranslatorConfig

    if args.seeds < 1 or args.jobs < 1:
        raise AtlasgrnError("--seeds and --jobs must be >= 1", key="--seeds",
                            remedy="e.g. --seeds 3 --jobs 2")
    methods = tuple(m.strip() for m in args.methods.split(",")) if args.methods else ALL_METHODS
    cache = None if (args.cache or "").lower() == "none" else (
        Path(args.cache) if args.cache else default_cache_dir())
    cfg = BenchConfig(
        data=Path(args.data), out=Path(args.out), networks=tuple(args.network),
        size=args.size, datasets=tuple(args.dataset), seeds=args.seeds, model=args.model,
        strict_model=args.strict_model, strict_dataset=args.strict_dataset, jobs=args.jobs,
        methods=methods, protocols=tuple(p.strip() for p in args.protocols.split(",")),
        tf_sample=args.tf_sample, cache_dir=cache,
        features={**spec_options(args),
                  **({"background": parse_background(args.background)}
                     if args.background is not None else {})},
        train_dataset=args.train_dataset,
        translator=TranslatorConfig(max_epochs=args.max_epochs), tree_trees=args.trees,
        device=args.device)
    bad = [p for p in cfg.protocols if p not in ("A", "B", "C", "M")]
    if bad:
        raise AtlasgrnError(f"unknown protocol {bad[0]!r}", key="--protocols",
                            remedy="use a comma list of A, B, C, M")
    out_dir = claim_output_dir(cfg.out, "bench", OUTPUT_FILES, overwrite=args.overwrite,
                               recognise=_bench_files_in)
    result = run_benchmark(cfg, progress=lambda m: print(f"[bench] {m}", file=sys.stderr,
                                                          flush=True))
    paths = write_outputs(result.results, result.manifest, result.curves, cfg.out,
                          command=_reconstruct(args))
    out_dir.record(p.name for p in cfg.out.iterdir() if any(
        fnmatch(p.name, f) for f in OUTPUT_FILES))
    print(f"wrote {paths['results']} ({len(result.results)} rows) and {paths['report']}")
    return 0


#: What ``bench beeline`` writes into --out (bench/report.write_outputs).
OUTPUT_FILES = ("results.parquet", "manifest.json", "report.md", "pr_*.png")


def _bench_files_in(path: Path) -> list[str]:
    """A benchmark output written before output markers: its manifest lists transfers."""
    import json

    try:
        manifest = json.loads((path / "manifest.json").read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(manifest, dict) or "transfers" not in manifest:
        return []
    return [p.name for p in path.iterdir() if any(fnmatch(p.name, f) for f in OUTPUT_FILES)]


def _reconstruct(args: argparse.Namespace) -> str:
    """The exact command line equivalent to the parsed arguments (defaults made explicit)."""
    parts = ["atlasgrn", "bench", "beeline"]
    for key, value in sorted(vars(args).items()):
        if key in ("func", "command", "bench_command") or value in (None, [], False):
            continue
        flag = "--" + key.replace("_", "-")
        for v in (value if isinstance(value, list) else [value]):
            parts += [flag, shlex.quote(str(v))]
    return " ".join(parts)
