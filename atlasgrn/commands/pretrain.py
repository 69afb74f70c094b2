"""``atlasgrn pretrain ATLAS --out DIR``: pre-train a native scGPT-architecture model."""

from __future__ import annotations

import argparse

from ..errors import AtlasgrnError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pretrain", help="pre-train a model by masked value reconstruction",
                       description="Pre-train a native model on the cells of an atlas. The "
                                   "best model (validation loss) is written to --out.")
    p.add_argument("atlas", help="atlas URI (directory or object-store URL)")
    p.add_argument("--out", required=True, help="output model directory")
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--d-ff", type=int, default=512)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--max-len", type=int, default=1600, help="longest context (genes per cell)")
    p.add_argument("--min-len", type=int, default=64, help="shortest sampled context")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--eval-every", type=int, default=200)
    p.add_argument("--patience", type=int, default=6,
                   help="evaluations without improvement before early stopping")
    p.add_argument("--val-fraction", type=float, default=0.05)
    p.add_argument("--exclude-dataset", action="append", default=[], metavar="NAME",
                   help="leave a dataset out of training (repeatable)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                   help="auto: bf16 autocast on CUDA, fp32 on CPU")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..models.pretrain import TrainConfig
    from ..pretraining import PretrainOptions, SamplerConfig, pretrain_atlas

    for name in ("steps", "d_model", "layers", "heads", "d_ff", "max_len", "min_len",
                 "batch_size", "eval_every", "patience"):
        if getattr(args, name) <= 0:
            raise AtlasgrnError(f"--{name.replace('_', '-')} must be positive",
                                key=f"--{name.replace('_', '-')}", remedy="give a value > 0")
    if args.d_model % args.heads:
        raise AtlasgrnError(f"--d-model {args.d_model} is not divisible by --heads {args.heads}",
                            key="--d-model", remedy="pick sizes with d_model % heads == 0")
    if not 0 < args.val_fraction < 1:
        raise AtlasgrnError("--val-fraction must be in (0, 1)", key="--val-fraction",
                            remedy="e.g. 0.05")
    opts = PretrainOptions(
        d_model=args.d_model, n_layers=args.layers, n_heads=args.heads, d_ff=args.d_ff,
        dropout=args.dropout, exclude=tuple(args.exclude_dataset),
        sampler=SamplerConfig(batch_size=args.batch_size, max_len=args.max_len,
                              min_len=min(args.min_len, args.max_len),
                              val_fraction=args.val_fraction, seed=args.seed),
        train=TrainConfig(steps=args.steps, lr=args.lr, eval_every=args.eval_every,
                          patience=args.patience, seed=args.seed,
                          precision=_resolve_precision(args.precision, args.device),
                          warmup_steps=min(TrainConfig.warmup_steps, max(args.steps // 10, 1))))
    result = pretrain_atlas(args.atlas, args.out, opts, device=args.device, resume=args.resume,
                            log=lambda line: print(line, flush=True))
    print(f"done: step {result.step}, best validation loss {result.best_val:.4f} at step "
          f"{result.best_step}{' (early stop)' if result.stopped_early else ''}; model in "
          f"{args.out}")
    return 0


def _resolve_precision(precision: str, device: str) -> str:
    """``auto`` means bf16 autocast where training will run on CUDA, fp32 otherwise."""
    if precision != "auto":
        return precision
    import torch

    return "bf16" if device != "cpu" and torch.cuda.is_available() else "fp32"
