"""How much does a pair's feature depend on the block (context) it is computed in?

Atlas-scale runs cannot feed all ~20,000 genes at once, so a pair (i, j) is probed inside the
context of its gene-pair block (sources I, targets J): I ∪ J, plus optional fixed anchor genes
(method.md §2.3). This script fixes a probe set of pairs (I0 x J0) inside a gene universe U and
computes their VVP and GDT features

- in the full context U (the reference),
- in several random blocks of a given size that contain I0 and J0 (the rest drawn from U),
- in the same blocks plus a fixed anchor set,
- in the same blocks filled to one fixed length from a fixed anchor priority list,

and prints, over the cross-gene pairs (i != j): relative L2 change ||f_block - f_full|| /
||f_full||,
Pearson correlation with the full-context features, and the same two figures between two
different blocks (the spread a user would see between two block partitions).

    python benchmarks/bench_context_effect.py                # test transformer + real tiny models
    python benchmarks/bench_context_effect.py --universe 128 --draws 2   # faster
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from atlasgrn.probes import block_context, gdt, vvp  # noqa: E402


def models(names: list[str], universe: int):
    """(label, model, candidate gene token ids) for each requested model that can be built."""
    out = []
    for name in names:
        if name == "probe":
            from tests.probe_models import ProbeTransformer
            model = ProbeTransformer(vocab_size=universe + 1, d_model=64, n_layers=4, n_heads=4,
                                     d_ff=128, seed=0, dtype=torch.float32)
            out.append(("tests ProbeTransformer d=64 L=4 (random)", model,
                        torch.arange(1, universe + 1)))
        elif name == "tiny":
            try:
                from atlasgrn.models.testing import tiny_model
            except ImportError as exc:
                print(f"skip real tiny model: {exc}")
                continue
            model = tiny_model(seed=0, genes=[f"G{k}" for k in range(universe)], d_model=64,
                               n_layers=4, n_heads=4, d_ff=128)
            out.append(("atlasgrn ScGPTModel d=64 L=4 (random)", model,
                        torch.arange(1, universe + 1)))
        elif name == "bundled":
            try:
                from atlasgrn.models import load_model
                model = load_model()
            except Exception as exc:  # noqa: BLE001 - report and go on without it
                print(f"skip bundled model: {exc}")
                continue
            ids = sorted({int(v) for k, v in model.vocab.items() if not k.startswith("<")})
            gen = torch.Generator().manual_seed(1)
            pick = torch.tensor(ids)[torch.randperm(len(ids), generator=gen)[:universe]]
            trained = model.config.provenance.get("trained", "?")
            out.append((f"bundled default model (trained={trained})", model, pick))
    return out


def features(model, ctx, src, tgt, levels):
    return {
        "VVP": vvp(model, ctx, src, tgt, grid=levels),
        "GDT uniform": gdt(model, ctx, src, tgt, levels=levels, reading="uniform"),
        "GDT source": gdt(model, ctx, src, tgt, levels=levels, reading="source"),
    }


def compare(a: torch.Tensor, b: torch.Tensor, cross: torch.Tensor) -> tuple[float, float, float]:
    """Relative L2 change of ``a`` from ``b``, the same after the best scalar rescaling of ``a``
    (context length dilutes every cross-gene effect by a common factor), and Pearson r."""
    x, y = a[cross].double().reshape(-1), b[cross].double().reshape(-1)
    rel = float((x - y).norm() / y.norm())
    scale = float((x @ y) / (x @ x))
    rel_scaled = float((scale * x - y).norm() / y.norm())
    corr = float(torch.corrcoef(torch.stack([x, y]))[0, 1])
    return rel, rel_scaled, corr


def run(label, model, genes, args) -> None:
    gen = torch.Generator().manual_seed(args.seed)
    genes = genes[torch.randperm(genes.numel(), generator=gen)]
    src0, tgt0 = genes[: args.pairs], genes[args.pairs: 2 * args.pairs]
    rest = genes[2 * args.pairs:]
    anchors = rest[: args.anchors]
    pool = rest[args.anchors:]
    space = model.config.values
    levels = torch.linspace(space.min, space.max, args.levels + 1)[1:].tolist()
    cross = ~(src0[:, None] == tgt0[None, :])
    print(f"\n== {label}: universe {genes.numel()} genes, "
          f"probe block {src0.numel()}x{tgt0.numel()},"
          f" levels {[round(v, 2) for v in levels]}")
    t0 = time.perf_counter()
    full = features(model, genes, src0, tgt0, levels)
    for size in args.block_sizes:
        extra_n = max(0, size - 2 * args.pairs)
        for variant in ("plain", "anchors", "fill"):
            if variant == "fill" and size >= args.fill_len:
                continue
            per_draw = []
            for _ in range(args.draws):
                extra = pool[torch.randperm(pool.numel(), generator=gen)[:extra_n]]
                half = extra_n // 2
                blk_s, blk_t = torch.cat([src0, extra[:half]]), torch.cat([tgt0, extra[half:]])
                if variant == "plain":
                    ctx = block_context(blk_s, blk_t)
                elif variant == "anchors":
                    ctx = block_context(blk_s, blk_t, anchors=anchors)
                else:  # fixed length: the anchor priority list fills up to fill_len
                    ctx = block_context(blk_s, blk_t, anchors=rest, max_len=args.fill_len,
                                        fill=True)
                per_draw.append((ctx.numel(), features(model, ctx, src0, tgt0, levels)))
            tag = f"block {size:4d}" + {"plain": "", "anchors": f" + {anchors.numel()} anchors",
                                         "fill": f" filled to {args.fill_len}"}[variant]
            for kind in full:
                vs_full = [compare(f[kind], full[kind], cross) for _, f in per_draw]
                between = compare(per_draw[0][1][kind], per_draw[1][1][kind], cross) \
                    if len(per_draw) > 1 else (float("nan"),) * 3
                rel, rel_s, corr = (sum(v[k] for v in vs_full) / len(vs_full) for k in range(3))
                print(f"{tag:24s} ctx={per_draw[0][0]:4d} {kind:11s} vs full: rel {rel:6.3f}"
                      f" rescaled {rel_s:5.3f} r {corr:5.3f} | block vs block: rel"
                      f" {between[0]:5.3f} rescaled {between[1]:5.3f} r {between[2]:5.3f}")
    print(f"({time.perf_counter() - t0:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="probe,tiny,bundled")
    parser.add_argument("--universe", type=int, default=256, help="genes in the full context")
    parser.add_argument("--pairs", type=int, default=12, help="probe block is pairs x pairs")
    parser.add_argument("--block-sizes", type=lambda s: [int(x) for x in s.split(",")],
                        default=[24, 64, 128])
    parser.add_argument("--anchors", type=int, default=32)
    parser.add_argument("--fill-len", type=int, default=128,
                        help="fixed context length of the 'filled' variant")
    parser.add_argument("--draws", type=int, default=2)
    parser.add_argument("--levels", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for label, model, genes in models(args.models.split(","), args.universe):
        run(label, model, genes, args)


if __name__ == "__main__":
    main()
