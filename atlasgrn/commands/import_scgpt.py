"""``atlasgrn import-scgpt SRC_DIR --out DIR``: convert an scGPT release into a model dir."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import-scgpt", help="import an scGPT checkpoint (best_model.pt, "
                                            "args.json, vocab.json)")
    p.add_argument("src", help="directory of the scGPT release")
    p.add_argument("--out", required=True, help="output model directory")
    p.add_argument("--overwrite", action="store_true",
                   help="write into a non-empty directory that is not an atlasgrn model (files "
                        "atlasgrn did not write are still never replaced)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..models.checkpoint import (
        CONFIG_FILE,
        VOCAB_FILE,
        WEIGHTS_FILE,
        checkpoint_files_in,
    )
    from ..models.scgpt_import import import_scgpt
    from ..outdir import claim_output_dir

    files = (CONFIG_FILE, WEIGHTS_FILE, VOCAB_FILE)
    out = claim_output_dir(args.out, "model", files, overwrite=args.overwrite,
                           recognise=checkpoint_files_in)
    model = import_scgpt(args.src, args.out)
    out.record(files)
    dropped = model.config.provenance.get("dropped_tensors", {})
    d = model.describe()
    print(f"imported: {d['n_layers']} layers, d_model {d['d_model']}, {d['vocab_size']:,} "
          f"tokens, {d['parameters']:,} parameters, value space {d['value_space']}; "
          f"{len(dropped)} tensor(s) dropped (listed in config.json); written to {args.out}")
    return 0
