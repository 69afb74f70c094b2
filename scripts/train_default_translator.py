"""Train the bundled default translator: mESC STRING TFs+500 labels, the bundled model.

    .venv/bin/python scripts/train_default_translator.py [--data ../shared/data/beeline_genelink]
        [--model DIR] [--out atlasgrn/data/translators/default] [--seed 0]

The prior is GENELink's ``networks/STRING/mESC/TFs+500/BL--network.csv.gz`` and the gene universe
that set's genes (written next to the translator as ``genes.txt`` so the provenance hash can be
checked). mESC, not hESC: the rank statistics and the knockout read-out need the training
dataset's expression, and GENELink ships none for hESC; mESC's is the bundled demo atlas's mESC
dataset (the same BEELINE file), so the benchmark leaves mESC out of its evaluation.

Everything else is ``atlasgrn train-translator``: balanced per-TF negatives, held-out-source
validation, a model per kind and the fused models (``--fused``) over every kind the engine
computes, and ``--select best``: the translator keeps the one model with the best AUROC on pairs
of held-out genes (source and target both unseen in its training; docs/benchmark.md says why
not held-out sources), with a feature spec of just the kinds it reads (scalar
background, token-id anchors, 32 x 128 blocks, 256-token contexts), saved in
``translator.json`` for the job to serve.
Re-run it whenever the bundled model changes (the translator records the model's sha256).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO_ATLAS = REPO / "atlasgrn" / "data" / "demo_atlas.zarr"
#: every kind the engine computes: the candidates the held-out-gene selection chooses from
KINDS = ("vvp", "gdt_uniform", "gdt_source", "attn", "pert", "emb_concat", "emb_sum",
         "rank_pearson", "rank_spearman", "rank_mi")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "beeline_genelink"))
    p.add_argument("--model", default=None, help="model dir (default: the bundled model)")
    p.add_argument("--out", default=str(REPO / "atlasgrn" / "data" / "translators" / "default"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dataset", default="mESC",
                   help="GENELink dataset whose STRING TFs+500 labels train it (its expression "
                        "must be a dataset of the bundled demo atlas)")
    p.add_argument("--max-epochs", type=int, default=None)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cache", default=None)
    p.add_argument("--context-len", type=int, default=None,
                   help="probe context (genes per virtual cell; default: the feature spec's, "
                        "256, which keeps CPU probing fast; the model was trained up to 1,600)")
    args = p.parse_args(argv)

    from atlasgrn.bench.genelink import load_network_set
    from atlasgrn.cli import main as cli
    from atlasgrn.outdir import MARKER

    folder = Path(args.data) / "networks" / "STRING" / args.dataset / "TFs+500"
    ns = load_network_set(folder, Path(args.data))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    genes = out / "genes.txt"
    genes.write_text(f"# {args.dataset} TFs+500 genes (GENELink), the training universe\n"
                     + "\n".join(ns.genes) + "\n")
    prior = next(folder.glob("BL--network.csv*"))
    cmd = ["train-translator", "--prior", str(prior), "--genes", str(genes), "--out", str(out),
           "--drop-unknown", "--seed", str(args.seed), "--threads", str(args.threads),
           "--overwrite", "--kinds", ",".join(KINDS), "--fused", "--select", "best",
           "--expression", str(DEMO_ATLAS), "--expression-dataset", args.dataset]
    if args.max_epochs:
        cmd += ["--max-epochs", str(args.max_epochs)]
    if args.model:
        cmd += ["--model", args.model]
    if args.cache:
        cmd += ["--cache", args.cache]
    if args.context_len:
        cmd += ["--context-len", str(args.context_len)]
    t0 = time.perf_counter()
    rc = cli(cmd)
    if rc == 0:
        meta_path = out / "translator.json"
        meta = json.loads(meta_path.read_text())
        # paths are machine-specific; keep them relative to the data root in the shipped file
        meta["provenance"]["prior"]["path"] = "beeline_genelink/" + str(
            prior.relative_to(Path(args.data)))
        meta["provenance"]["genes"]["path"] = "genes.txt (this folder)"
        meta["provenance"]["expression"]["source"] = (
            f"atlasgrn/data/demo_atlas.zarr:{args.dataset}")
        meta["provenance"]["script"] = "scripts/train_default_translator.py " + " ".join(
            a for a in (argv if argv is not None else sys.argv[1:]))
        meta["provenance"]["seconds"] = round(time.perf_counter() - t0, 1)
        meta_path.write_text(json.dumps(meta, indent=2))
        # package data, not a user's output directory: no output marker ships with it
        (out / MARKER).unlink(missing_ok=True)
        for f in out.iterdir():
            f.chmod(0o644)
    return rc


if __name__ == "__main__":
    sys.exit(main())
