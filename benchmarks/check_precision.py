"""Is reduced-precision GDT good enough? bf16, fp16 (TF32 on CUDA) against fp32 on real blocks.

Probes blocks of the bundled demo atlas with the bundled model and translator, exactly as the
job does (``engine.scoring.probe_blocks``, the translator's feature spec), once in fp32 and once
per reduced precision for the GDT kinds (bf16 and fp16 autocast, TF32 matmuls on CUDA; VVP always
stays fp32), then prints:

- Pearson r of the GDT features (every non-self pair, every level) against fp32;
- the overlap of the top 1% of edges by ensemble score against fp32's top 1%;
- seconds per batch in each precision.

The gate for offering a precision (issue: "GPU-ready precision"): r >= 0.999 and top-1% overlap
>= 0.99. ``--json FILE`` writes the figures. Prints figures; it is not a test (the test suite
runs :func:`compare` on fewer blocks).

    python benchmarks/check_precision.py                      # CPU: bf16, fp16
    python benchmarks/check_precision.py --device cuda        # GPU: bf16, fp16 and tf32
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PEARSON_GATE = 0.999
OVERLAP_GATE = 0.99


def top_fraction_overlap(a: np.ndarray, b: np.ndarray, fraction: float = 0.01) -> float:
    """Share of the top ``fraction`` of pairs by ``a`` that are also in the top by ``b``."""
    k = max(1, int(round(len(a) * fraction)))
    top_a = set(np.argsort(-a, kind="stable")[:k].tolist())
    top_b = set(np.argsort(-b, kind="stable")[:k].tolist())
    return len(top_a & top_b) / k


def compare(n_blocks: int, precisions: list[str], device: str = "cpu",
            max_regulators: int = 64) -> dict:
    """Figures for ``n_blocks`` blocks of the demo atlas (see the module docstring)."""
    import torch

    from atlasgrn.atlas.bundled import demo_atlas_path
    from atlasgrn.engine.config import RunConfig
    from atlasgrn.engine.job import prepare
    from atlasgrn.engine.scoring import BlockWork, edge_table_of, probe_blocks
    from atlasgrn.models import load_model

    with tempfile.TemporaryDirectory() as tmp:
        prep = prepare(RunConfig(atlas=str(demo_atlas_path()), out=str(Path(tmp) / "o"),
                                 max_regulators=max_regulators))
    model = load_model(prep.model_dir, device=device)
    by_name = {d.name: d for d in prep.datasets}
    work = [BlockWork(b, list(by_name[b.dataset].anchors), prep.profiles.get(b.dataset))
            for b in prep.specs[:n_blocks]]
    kinds = prep.translator.ensemble_kinds
    gdt_kinds = [k for k in kinds if k.startswith("gdt_")]
    if not gdt_kinds:
        raise SystemExit("the translator's ensemble has no GDT kind: nothing to compare")

    def run(precision: str) -> tuple[list, float]:
        probe_blocks(model, prep.spec, kinds, work[:1], precision)  # warm-up
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        feats = probe_blocks(model, prep.spec, kinds, work, precision)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        secs = time.perf_counter() - t0
        for f in feats:
            if isinstance(f, Exception):
                raise f
        return feats, secs

    ref, ref_s = run("fp32")
    ref_scores = np.concatenate([edge_table_of(prep.translator, f)["score"].to_numpy()
                                 for f in ref])
    ref_values = {kind: _values(ref, kind) for kind in gdt_kinds}
    pairs = sum(w.block.n_pairs for w in work)
    result = {"device": device, "blocks": len(work), "pairs": pairs, "gdt_kinds": gdt_kinds,
              "fp32_seconds": round(ref_s, 3), "precisions": {}}
    for precision in precisions:
        feats, secs = run(precision)
        entry: dict = {"seconds": round(secs, 3), "speedup": round(ref_s / secs, 3)}
        for kind in gdt_kinds:
            r = np.corrcoef(ref_values[kind], _values(feats, kind))[0, 1]
            entry[f"pearson_{kind}"] = round(float(r), 6)
        scores = np.concatenate([edge_table_of(prep.translator, f)["score"].to_numpy()
                                 for f in feats])
        entry["top1pct_overlap"] = round(top_fraction_overlap(ref_scores, scores), 4)
        entry["score_pearson"] = round(float(np.corrcoef(ref_scores, scores)[0, 1]), 6)
        entry["passes"] = bool(min(entry[f"pearson_{k}"] for k in gdt_kinds) >= PEARSON_GATE
                               and entry["top1pct_overlap"] >= OVERLAP_GATE)
        result["precisions"][precision] = entry
    return result


def _values(feats: list, kind: str) -> np.ndarray:
    """Every non-self pair's ``kind`` features of a batch, flattened (float64)."""
    return np.concatenate([f.pair_rows()[2][kind].ravel() for f in feats]).astype(np.float64)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--blocks", type=int, default=8)
    ap.add_argument("--json", default=None, help="write the figures to this file")
    ap.add_argument("--precisions", default=None,
                    help="comma-separated (default: bf16,fp16, plus tf32 on CUDA)")
    args = ap.parse_args()
    if args.precisions:
        precisions = args.precisions.split(",")
    else:
        precisions = ["bf16", "fp16"] + (["tf32"] if args.device.startswith("cuda") else [])
    res = compare(args.blocks, precisions, args.device)
    print(f"{res['blocks']} blocks ({res['pairs']:,} pairs) of the demo atlas on {res['device']};"
          f" GDT kinds {', '.join(res['gdt_kinds'])}; fp32 {res['fp32_seconds']:.2f}s")
    for name, e in res["precisions"].items():
        rs = ", ".join(f"{k[8:]} r={v:.5f}" for k, v in e.items() if k.startswith("pearson_"))
        print(f"  {name}: {rs}; top-1% edge overlap {e['top1pct_overlap']:.3f}; score r="
              f"{e['score_pearson']:.5f}; {e['seconds']:.2f}s (x{e['speedup']:.2f}); "
              f"{'PASSES' if e['passes'] else 'FAILS'} the gate (r >= {PEARSON_GATE}, "
              f"overlap >= {OVERLAP_GATE})")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
