"""``atlasgrn pretrain ATLAS --out DIR``: pre-train a native scGPT-architecture model."""

from __future__ import annotations

import argparse

from ..errors import AtlasgrnError


def register(sub: argparse._SubParsersAction) -> None:
    # Every default below is read from the library (cli_defaults), never restated here.
    from ..cli_defaults import field_default
    from ..pretraining.config import (
        DEFAULT_DEVICE,
        DEVICES,
        PRECISIONS,
        PretrainOptions,
        SamplerConfig,
        TrainConfig,
    )

    def model(name: str) -> object:
        return field_default(PretrainOptions, name)

    def sampler(name: str) -> object:
        return field_default(SamplerConfig, name)

    def training(name: str) -> object:
        return field_default(TrainConfig, name)

    p = sub.add_parser("pretrain", help="pre-train a model by masked value reconstruction",
                       description="Pre-train a native model on the cells of an atlas. The "
                                   "best model (validation loss) is written to --out.")
    p.add_argument("atlas", help="atlas URI (directory or object-store URL)")
    p.add_argument("--out", required=True, help="output model directory")
    p.add_argument("--steps", type=int, default=training("steps"))
    p.add_argument("--d-model", type=int, default=model("d_model"))
    p.add_argument("--layers", type=int, default=model("n_layers"))
    p.add_argument("--heads", type=int, default=model("n_heads"))
    p.add_argument("--d-ff", type=int, default=model("d_ff"))
    p.add_argument("--dropout", type=float, default=model("dropout"))
    p.add_argument("--max-len", type=int, default=sampler("max_len"),
                   help="longest context (genes per cell)")
    p.add_argument("--min-len", type=int, default=sampler("min_len"),
                   help="shortest sampled context")
    p.add_argument("--batch-size", type=int, default=sampler("batch_size"))
    p.add_argument("--lr", type=float, default=training("lr"))
    p.add_argument("--eval-every", type=int, default=training("eval_every"))
    p.add_argument("--log-every", type=int, default=training("log_every"),
                   help="steps between progress lines (each with an ETA)")
    p.add_argument("--patience", type=int, default=training("patience"),
                   help="evaluations without improvement before early stopping")
    p.add_argument("--val-fraction", type=float, default=sampler("val_fraction"))
    p.add_argument("--exclude-dataset", action="append", default=[], metavar="NAME",
                   help="leave a dataset out of training (repeatable)")
    p.add_argument("--seed", type=int, default=training("seed"),
                   help="seeds both the data stream and the training")
    p.add_argument("--device", default=DEFAULT_DEVICE,
                   choices=list(DEVICES))
    p.add_argument("--precision", default=training("precision"), choices=list(PRECISIONS),
                   help="auto: bf16 autocast on CUDA, fp32 on CPU")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--overwrite", action="store_true",
                   help="write into a non-empty directory that is not an atlasgrn model (files "
                        "atlasgrn did not write are still never replaced)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..cli_defaults import field_default
    from ..pretraining import (
        PretrainOptions,
        SamplerConfig,
        TrainConfig,
        pretrain_atlas,
    )

    for name in ("steps", "d_model", "layers", "heads", "d_ff", "max_len", "min_len",
                 "batch_size", "eval_every", "log_every", "patience"):
        if getattr(args, name) <= 0:
            raise AtlasgrnError(f"--{name.replace('_', '-')} must be positive",
                                key=f"--{name.replace('_', '-')}", remedy="give a value > 0")
    if args.d_model % args.heads:
        raise AtlasgrnError(f"--d-model {args.d_model} is not divisible by --heads {args.heads}",
                            key="--d-model", remedy="pick sizes with d_model % heads == 0")
    if not 0 < args.val_fraction < 1:
        raise AtlasgrnError("--val-fraction must be in (0, 1)", key="--val-fraction",
                            remedy="e.g. 0.05")
    warmup = min(field_default(TrainConfig, "warmup_steps"), max(args.steps // 10, 1))
    opts = PretrainOptions(
        d_model=args.d_model, n_layers=args.layers, n_heads=args.heads, d_ff=args.d_ff,
        dropout=args.dropout, exclude=tuple(args.exclude_dataset),
        sampler=SamplerConfig(batch_size=args.batch_size, max_len=args.max_len,
                              min_len=min(args.min_len, args.max_len),
                              val_fraction=args.val_fraction, seed=args.seed),
        train=TrainConfig(steps=args.steps, lr=args.lr, eval_every=args.eval_every,
                          patience=args.patience, seed=args.seed, precision=args.precision,
                          log_every=args.log_every,
                          warmup_steps=warmup))
    from ..atlas import open_atlas
    from ..models.checkpoint import (
        CONFIG_FILE,
        VOCAB_FILE,
        WEIGHTS_FILE,
        checkpoint_files_in,
    )
    from ..outdir import claim_output_dir
    from ..pretraining.loop import STATE_DIR

    files = (CONFIG_FILE, WEIGHTS_FILE, VOCAB_FILE, STATE_DIR)
    out = claim_output_dir(args.out, "model", files, overwrite=args.overwrite,
                           recognise=lambda p: checkpoint_files_in(p) + (
                               [STATE_DIR] if (p / STATE_DIR).is_dir() else []))
    open_atlas(args.atlas)  # a missing or malformed atlas is refused before --out is created
    out.record([STATE_DIR])  # claimed before training: a resumed run finds its own state
    result = pretrain_atlas(args.atlas, args.out, opts, device=args.device, resume=args.resume,
                            log=lambda line: print(line, flush=True))
    out.record(files)
    print(f"done: step {result.step}, best validation loss {result.best_val:.4f} at step "
          f"{result.best_step}{' (early stop)' if result.stopped_early else ''}; model in "
          f"{args.out}")
    return 0
