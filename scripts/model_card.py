"""Write a model's card (MODEL_CARD.md + loss_curve.png) from its config.json and a model-eval JSON.

    .venv/bin/python scripts/model_card.py atlasgrn/data/models/default \
        --eval atlasgrn/data/models/default/heldout_eval.json --title "atlasgrn default model" \
        --command "atlasgrn pretrain ..." --timing "..."

Everything in the card is read from the checkpoint's own provenance (data, steps, validation
history) or the evaluation file, so a card cannot drift from the weights it describes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def loss_curve(history: list[dict], out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [h["step"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=110)
    ax.plot(steps, [h["val_loss"] for h in history], marker="o", ms=3, label="validation loss")
    ax.plot(steps, [h["val_masked_mse"] for h in history], marker=".", ms=3,
            label="masked MSE (held-out cells)")
    ax.plot(steps, [h["val_unmasked_mse"] for h in history], ls="--",
            label="unmasked MSE (held-out cells)")
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("MSE, model value space")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model_dir")
    p.add_argument("--eval", required=True, help="JSON written by atlasgrn model-eval --json")
    p.add_argument("--title", required=True)
    p.add_argument("--command", required=True, help="the pre-training command, verbatim")
    p.add_argument("--timing", required=True, help="where and how long it trained")
    p.add_argument("--note", action="append", default=[], help="extra paragraph (repeatable)")
    args = p.parse_args(argv)

    model_dir = Path(args.model_dir)
    cfg = json.loads((model_dir / "config.json").read_text())
    prov, arch = cfg["provenance"], cfg["arch"]
    training = prov["training"]
    history = training["history"]
    rows = json.loads(Path(args.eval).read_text())
    loss_curve(history, model_dir / "loss_curve.png", args.title)

    n_params = (model_dir / "model.safetensors").stat().st_size / 2**20
    cells = sum(d["n_cells"] for d in prov["datasets"])
    imp = [r["improvement"] for r in rows]
    mean_model = sum(r["masked_mse_model"] for r in rows) / len(rows)
    mean_gm = sum(r["masked_mse_gene_mean"] for r in rows) / len(rows)
    better = sum(i > 0 for i in imp)
    tc = training["train_config"]
    lines = [
        f"# {args.title}", "",
        f"scGPT-architecture model pre-trained by `atlasgrn pretrain` (masked value "
        f"reconstruction). d_model {arch['d_model']}, {arch['n_layers']} layers, "
        f"{arch['n_heads']} heads, d_ff {arch['d_ff']}, contexts up to {arch['max_len']} genes, "
        f"{arch['vocab_size']:,} gene tokens (scGPT human vocabulary ids, compacted); "
        f"weights {n_params:.1f} MiB fp32.", "",
        "## Data", "",
        f"{len(prov['datasets'])} real datasets, {cells:,} cells (5% of each held out for "
        f"validation by a seeded hash of the cell index): every expression matrix under "
        f"`../shared/data` (BEELINE, McCalla, scanpy and the 34-file corpus), built into one atlas "
        f"by `scripts/build_pretrain_atlas.py`. Excluded: "
        f"{', '.join(prov['excluded_datasets']) or 'none'}. Labels (networks) are never used.", "",
        "| dataset | species | value kind | cells | genes in vocab |", "| --- | --- | --- | ---: | ---: |",
        *[f"| {d['name']} | {d['species']} | {d['value_kind']} | {d['n_cells']:,} | "
          f"{d['genes_in_vocab']:,} |" for d in prov["datasets"]], "",
        "## Training", "",
        f"```\n{args.command}\n```", "",
        f"{args.timing} Optimiser AdamW, lr {tc['lr']:g} (warm-up {tc['warmup_steps']} steps, "
        f"cosine to {tc['min_lr_ratio']:g}x), mask ratios {tc['mask_ratios']}, unmasked-position "
        f"loss weight {tc['unmasked_weight']}, precision {tc.get('precision', 'fp32')}, "
        f"torch {training['torch']}. Best validation loss **{training['best_val_loss']:.4f}** at "
        f"step {training['best_step']} of {history[-1]['step']}.", "",
        "![validation loss](loss_curve.png)", "",
        "| step | val loss | masked MSE | unmasked MSE |", "| ---: | ---: | ---: | ---: |",
        *[f"| {h['step']} | {h['val_loss']:.4f} | {h['val_masked_mse']:.4f} | "
          f"{h['val_unmasked_mse']:.4f} |" for h in history], "",
        "## Held-out reconstruction vs per-gene-mean imputation", "",
        f"`atlasgrn model-eval` on held-out cells (25% of each cell's genes masked; per-gene mean "
        f"from the dataset's training cells on the same positions). Better than the gene mean on "
        f"**{better} of {len(rows)}** datasets; mean per-dataset improvement "
        f"**{100 * sum(imp) / len(imp):+.1f}%**, median {100 * sorted(imp)[len(imp) // 2]:+.1f}%, "
        f"improvement of the dataset-averaged MSE {100 * (1 - mean_model / mean_gm):+.1f}%.", "",
        "| dataset | held-out cells | context | masked MSE model | masked MSE gene mean | "
        "improvement | unmasked MSE |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        *[f"| {r['dataset']} | {r['n_cells']} | {r['context_len']} | {r['masked_mse_model']:.4f} | "
          f"{r['masked_mse_gene_mean']:.4f} | {100 * r['improvement']:+.1f}% | "
          f"{r['unmasked_mse']:.4f} |" for r in rows], "",
        *[x for n in args.note for x in (n, "")],
    ]
    (model_dir / "MODEL_CARD.md").write_text("\n".join(lines))
    print(f"wrote {model_dir / 'MODEL_CARD.md'} and loss_curve.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
