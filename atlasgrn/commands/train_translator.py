"""``atlasgrn train-translator --prior EDGES --genes LIST --out DIR``: a translator from a prior."""

from __future__ import annotations

import argparse

from ..cli_defaults import field_default
from ._feature_options import add_spec_options, parse_background, spec_options


def register(sub: argparse._SubParsersAction) -> None:
    from ..features.spec import DEFAULT_KINDS
    from ..translator.config import TranslatorConfig

    p = sub.add_parser("train-translator", help="train a translator from a prior network",
                       description="Train per-kind translator MLPs on a prior network's edges "
                                   "(balanced per-TF negatives, held-out-source validation) with "
                                   "probe features of a frozen model over a gene universe.")
    p.add_argument("--model", default=None, help="model directory (default: bundled model)")
    p.add_argument("--prior", required=True, help="CSV/TSV edges (source,target columns)")
    p.add_argument("--genes", required=True, help="gene universe: one symbol per line")
    p.add_argument("--out", required=True, help="output translator directory")
    p.add_argument("--kinds", default=",".join(DEFAULT_KINDS),
                   help="feature kinds to train (comma list; rank_pearson, rank_spearman, "
                        "rank_mi and pert need --expression)")
    p.add_argument("--fused", action="store_true",
                   help="also train the fused models (fused_probes, fused, fused_emb: one MLP "
                        "over several kinds' features) whose kinds are all in --kinds")
    p.add_argument("--select", default="ens", metavar="ens|best|MODEL",
                   help="the ensemble: ens = VVP + the better GDT reading (the paper's); best = "
                        "the one model with the best held-out-source validation AUROC; or one "
                        "trained model by name (e.g. fused). With best or a name, only that "
                        "model is kept and the feature spec lists just the kinds it reads")
    p.add_argument("--stat-cells", type=int, default=None,
                   help="cells of --expression read for the rank statistics (evenly spaced; "
                        "default: the job's)")
    p.add_argument("--source-col", default=None)
    p.add_argument("--target-col", default=None)
    p.add_argument("--no-header", action="store_true",
                   help="the prior has no header: columns 1 and 2 are source and target")
    p.add_argument("--drop-unknown", action="store_true",
                   help="ignore genes the model's vocabulary lacks (default: error)")
    p.add_argument("--seed", type=int, default=field_default(TranslatorConfig, "seed"))
    p.add_argument("--max-epochs", type=int,
                   default=field_default(TranslatorConfig, "max_epochs"))
    add_spec_options(p)
    p.add_argument("--background", default=None, metavar="X|profile",
                   help="virtual-cell background: a number (universal mode; default: the "
                        "model's), or 'profile', each gene at its mean in --expression "
                        "(context mode)")
    p.add_argument("--expression", default=None, metavar="ATLAS",
                   help="atlas holding the dataset whose mean expression the profile "
                        "background uses (context mode)")
    p.add_argument("--expression-dataset", default=None, metavar="NAME",
                   help="dataset of --expression (needed when the atlas has several)")
    p.add_argument("--cache", default=None, help="feature cache dir ('none' disables)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--overwrite", action="store_true",
                   help="replace a translator already in --out, or write into a non-empty "
                        "directory that is not one (files atlasgrn did not write are never "
                        "replaced)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import torch

    from ..bench.config import FUSED
    from ..errors import AtlasgrnError
    from ..features import ALL_KINDS, default_cache_dir
    from ..models import load_model
    from ..training import train_from_prior
    from ..translator import TranslatorConfig, save_translator

    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    bad = [k for k in kinds if k not in ALL_KINDS]
    if bad or not kinds or kinds == ("attn",):
        raise AtlasgrnError(f"unknown or untrainable kind {bad[0] if bad else ''!r}",
                            key="--kinds", remedy="choose from " + ", ".join(ALL_KINDS)
                            + " (attn only beside another kind)")
    fused = ({name: inputs for name, (inputs, _) in FUSED.items()
              if all(k in kinds for k in inputs)} if args.fused else None)
    if args.fused and not fused:
        raise AtlasgrnError("no fused model has all its kinds in --kinds", key="--fused",
                            remedy="add " + ", ".join(FUSED["fused_probes"][0]) + " to --kinds")
    from ..outdir import claim_output_dir
    from ..translator.checkpoint import JSON_NAME, WEIGHTS_NAME, checkpoint_files_in

    files = (JSON_NAME, WEIGHTS_NAME)
    out_dir = claim_output_dir(args.out, "translator", files, overwrite=args.overwrite,
                               recognise=checkpoint_files_in)
    if (Path(args.out) / JSON_NAME).exists() and not args.overwrite:
        raise AtlasgrnError("a translator checkpoint already exists here", path=args.out,
                            key="--out", remedy="choose another --out or pass --overwrite")
    torch.set_num_threads(max(1, args.threads))
    cache = None if (args.cache or "").lower() == "none" else (
        Path(args.cache) if args.cache else default_cache_dir())
    model = load_model(args.model)
    background = parse_background(args.background)
    from ..features.spec import STAT_KINDS

    expression = (_expression(args.expression, args.expression_dataset,
                              any(k in STAT_KINDS for k in kinds), args.stat_cells)
                  if args.expression else None)
    result = train_from_prior(
        model, args.prior, args.genes, kinds=kinds,
        config=TranslatorConfig(seed=args.seed, max_epochs=args.max_epochs),
        spec_options={**spec_options(args), "background": background},
        expression=expression,
        cache_dir=cache, drop_unknown=args.drop_unknown, source_col=args.source_col,
        target_col=args.target_col, header=not args.no_header, model_path=args.model,
        fused=fused, select=args.select)
    out = save_translator(result.translator, args.out, overwrite=args.overwrite)
    out_dir.record(files)
    val = {k: m.metrics.get("val_auroc") for k, m in result.translator.kinds.items()}
    print(f"wrote {out} ({result.n_pairs} training pairs; ensemble "
          f"{'+'.join(result.translator.ensemble_kinds)}; validation AUROC "
          + ", ".join(f"{k} {v:.3f}" if v is not None else f"{k} n/a" for k, v in val.items())
          + ")")
    return 0


def _expression(atlas_uri: str, dataset: str | None, matrix: bool = False,
                max_cells: int | None = None):  # -> training.prior.Expression
    """The dataset's per-gene means (streamed once; the atlas is opened read-only), and with
    ``matrix`` its cells x genes values for the rank statistics."""
    from ..atlas import open_atlas
    from ..atlas.expression import expression_matrix
    from ..engine.config import RunConfig
    from ..errors import AtlasgrnError
    from ..training.prior import Expression

    atlas = open_atlas(atlas_uri, writable=False)
    names = list(atlas.names)
    if dataset is None and len(names) != 1:
        raise AtlasgrnError(f"the atlas holds {len(names)} datasets", path=atlas_uri,
                            key="--expression-dataset", remedy=f"name one of: "
                                                               f"{', '.join(names)}")
    name = dataset or names[0]
    if name not in names:
        raise AtlasgrnError(f"dataset '{name}' is not in the atlas", path=atlas_uri,
                            key="--expression-dataset", remedy=f"one of: {', '.join(names)}")
    ds = atlas.dataset(name)
    stats = ds.gene_stats()
    genes = tuple(map(str, ds.genes))
    values = (expression_matrix(ds, genes, max_cells=max_cells or field_default(RunConfig, "stat_cells"))
              if matrix else None)
    return Expression(genes=genes, means=tuple(float(m) for m in stats.mean),
                      value_kind=ds.info.value_kind, label=f"{atlas_uri}:{name}",
                      values=values)
