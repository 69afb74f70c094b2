"""``atlasgrn bench beeline --data ROOT --out DIR``: the generalisation benchmark."""

from __future__ import annotations

import argparse
import shlex
import sys

from ..errors import AtlasgrnError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmarks")
    bsub = p.add_subparsers(dest="bench_command", metavar="BENCHMARK")
    bsub.required = True
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
    b.add_argument("--seeds", type=int, default=3)
    b.add_argument("--model", default=None, help="model directory (default: bundled model)")
    b.add_argument("--strict-model", default=None,
                   help="a model pre-trained without --strict-dataset's cells")
    b.add_argument("--strict-dataset", default=None)
    b.add_argument("--jobs", type=int, default=2, help="torch threads / tree workers")
    b.add_argument("--methods", default=None, help="comma list (default: all)")
    b.add_argument("--protocols", default="A,B,C,M")
    b.add_argument("--tf-sample", type=int, default=None,
                   help="use only N TFs per dataset (seeded) to cut cost")
    b.add_argument("--cache", default=None, help="feature cache dir (default "
                   "~/.cache/atlasgrn/features; 'none' disables it)")
    b.add_argument("--context-len", type=int, default=None,
                   help="probe context length (default: the model's max_len)")
    b.add_argument("--source-block", type=int, default=128)
    b.add_argument("--max-epochs", type=int, default=300, help="translator epochs")
    b.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"],
                   help="where the frozen model runs (translators and baselines stay on CPU)")
    b.add_argument("--trees", type=int, default=100, help="trees per target (GENIE3 baseline)")
    b.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..bench.report import write_outputs
    from ..bench.run import ALL_METHODS, BenchConfig, run_benchmark
    from ..translator import TranslatorConfig
    from ..translator.features import FeatureSettings, default_cache_dir

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
        features=FeatureSettings(context_len=args.context_len, source_block=args.source_block),
        translator=TranslatorConfig(max_epochs=args.max_epochs), tree_trees=args.trees,
        device=args.device)
    bad = [p for p in cfg.protocols if p not in ("A", "B", "C", "M")]
    if bad:
        raise AtlasgrnError(f"unknown protocol {bad[0]!r}", key="--protocols",
                            remedy="use a comma list of A, B, C, M")
    result = run_benchmark(cfg, progress=lambda m: print(f"[bench] {m}", file=sys.stderr,
                                                          flush=True))
    paths = write_outputs(result.results, result.manifest, result.curves, cfg.out,
                          command=_reconstruct(args))
    print(f"wrote {paths['results']} ({len(result.results)} rows) and {paths['report']}")
    return 0


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
