"""Pre-train a native model on an atlas: vocabulary, value range, data streams, the loop.

The product is a model directory (config.json, model.safetensors, vocab.json) holding the
best model by validation loss, plus ``train_state/`` for ``--resume``. Everything needed to
rebuild the run (architecture, vocabulary, value space, sampler settings, datasets used) is
written to ``train_state/run.json`` before the first step.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atlas import open_atlas
from ..atomic import write_text_atomic
from ..errors import AtlasgrnError, CheckpointError
from ..models.checkpoint import config_from_dict, config_to_dict
from ..models.factory import new_model
from ..models.interface import ArchConfig
from ..models.values import NORMALISATION_RECORD, native_value_space
from ..models.vocab import (
    canonical_symbols,
    compact_vocab,
    scgpt_human_vocab,
    validate_vocab,
    vocab_digest,
)
from .config import DEFAULT_DEVICE, PretrainOptions, SamplerConfig, TrainConfig
from .loop import STATE_DIR, TrainResult, train
from .sampler import DatasetCells, TrainBatches, heldout_cells, pack, tokenise_cells

RUN_FILE = "run.json"
#: Quantile of non-zero model-space values taken as the top of the value range.
RANGE_QUANTILE = 0.99




def pick_device(choice: str) -> torch.device:
    """``auto``: CUDA when present, else CPU; ``cuda`` without a GPU is bad input."""
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise AtlasgrnError("--device cuda but no CUDA device is visible", key="--device",
                            remedy="use --device auto or cpu")
    if choice not in ("cpu", "cuda"):
        raise AtlasgrnError(f"unknown device {choice!r}", key="--device",
                            remedy="auto, cpu or cuda")
    return torch.device(choice)


def open_training_datasets(atlas_uri: str, vocab: dict[str, int] | None, exclude: Sequence[str],
                           seed: int, val_fraction: float) -> tuple[list[DatasetCells], dict]:
    """Datasets (minus ``exclude``) seen through ``vocab`` (built compact when None)."""
    atlas = open_atlas(atlas_uri)
    names = [n for n in atlas.names if n not in set(exclude)]
    unknown = sorted(set(exclude) - set(atlas.names))
    if unknown:
        raise AtlasgrnError(f"--exclude-dataset '{unknown[0]}' is not in the atlas",
                            path=str(atlas_uri), key=unknown[0],
                            remedy=f"one of: {', '.join(atlas.names)}")
    if not names:
        raise AtlasgrnError("no datasets left to train on", path=str(atlas_uri),
                            remedy="ingest datasets or exclude fewer")
    sets = [atlas.dataset(n) for n in names]
    if vocab is None:
        ref = scgpt_human_vocab()
        seen: set[str] = set()
        for ds in sets:
            seen.update(s for s in canonical_symbols(ref, list(ds.genes)) if s is not None)
        vocab = compact_vocab(seen, ref)
    cells = [DatasetCells(ds, vocab, seed, val_fraction) for ds in sets]
    empty = [c.name for c in cells if c.n_genes == 0]
    if empty:
        raise AtlasgrnError(f"dataset '{empty[0]}' has no gene in the vocabulary",
                            path=str(atlas_uri), key=empty[0],
                            remedy="check its gene symbols, or --exclude-dataset it")
    return cells, vocab


def value_range_top(cells: Sequence[DatasetCells], per_dataset: int, block_cells: int) -> float:
    """High quantile of non-zero model-space values over the first training cells."""
    samples = []
    for d in cells:
        n = 0
        for block in d.iter_split("train", None, block_cells):
            samples.append(block.data)
            n += block.shape[0]
            if n >= per_dataset:
                break
    data = np.concatenate(samples) if samples else np.zeros(0)
    data = data[data > 0]
    return float(np.quantile(data, RANGE_QUANTILE)) if data.size else 6.0


def validation_batches(cells: Sequence[DatasetCells], opts: PretrainOptions, pad_id: int,
                       pad_value: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """Fixed batches of held-out cells (same genes every evaluation)."""
    rng = np.random.default_rng([opts.sampler.seed, 99])
    rows = []
    for d in cells:
        held = heldout_cells(d, opts.val_cells_per_dataset, opts.sampler.block_cells)
        length = min(opts.val_len, opts.sampler.max_len)
        rows += [(t, v) for t, v, _ in tokenise_cells(d, held, length, opts.sampler, rng,
                                                       pad_id, pad_value)]
    if not rows:
        raise AtlasgrnError("no held-out cells for validation",
                            remedy="raise --val-fraction or add cells")
    bs = opts.sampler.batch_size
    return [pack(rows[i:i + bs], pad_id, pad_value) for i in range(0, len(rows), bs)]


def pretrain_atlas(atlas_uri: str, out_dir: str | os.PathLike[str], opts: PretrainOptions, *,
                   device: str = DEFAULT_DEVICE, resume: bool = False,
                   log: Callable[[str], None] = print) -> TrainResult:
    """Pre-train (or resume) a native model on ``atlas_uri``; the best model lands in ``out_dir``."""
    out = Path(out_dir)
    dev = pick_device(device)
    run_file = out / STATE_DIR / RUN_FILE
    if resume:
        run = _read_run(run_file)
        saved = _options_from_json(run["options"])
        # everything but the step budget comes from the original run
        opts = dataclasses.replace(saved, train=dataclasses.replace(saved.train,
                                                                    steps=opts.train.steps))
        vocab = validate_vocab(run["vocab"], str(run_file))
        cells, _ = open_training_datasets(atlas_uri, vocab, opts.exclude, opts.sampler.seed,
                                          opts.sampler.val_fraction)
        config = config_from_dict(run["model_config"], str(run_file))
        model = new_model(config.arch, config.values, vocab, seed=opts.train.seed,
                          provenance=config.provenance)
    else:
        if (out / STATE_DIR).exists():
            raise AtlasgrnError("output directory already holds a training run", path=str(out),
                                remedy="pass --resume to continue it, or choose a new --out")
        cells, vocab = open_training_datasets(atlas_uri, None, opts.exclude, opts.sampler.seed,
                                              opts.sampler.val_fraction)
        top = value_range_top(cells, opts.range_cells_per_dataset, opts.sampler.block_cells)
        arch = ArchConfig(vocab_size=len(vocab), d_model=opts.d_model, n_layers=opts.n_layers,
                          n_heads=opts.n_heads, d_ff=opts.d_ff, dropout=opts.dropout, pad_id=0,
                          max_len=opts.sampler.max_len)
        provenance = {
            "origin": "atlasgrn pretrain",
            "atlas": str(atlas_uri),
            "datasets": [{"name": c.name, "n_cells": c.ds.info.n_cells,
                          "genes_in_vocab": c.n_genes, "genes_total": c.ds.info.n_genes,
                          "species": c.ds.info.species, "value_kind": c.ds.info.value_kind}
                         for c in cells],
            "excluded_datasets": list(opts.exclude),
            "normalisation": dict(NORMALISATION_RECORD),
            "value_range": {"top_quantile": RANGE_QUANTILE, "top": top},
            "vocabulary": {"ids": "compact",
                           "note": "ids index this model's embedding rows; symbols are scGPT "
                                   "human vocabulary symbols (mouse genes by upper-case)",
                           "reference": "scGPT human vocab.json",
                           "reference_sha256": vocab_digest(scgpt_human_vocab())},
            "heldout": {"seed": opts.sampler.seed, "val_fraction": opts.sampler.val_fraction,
                        "rule": "atlasgrn.pretraining.sampler.holdout_mask"},
            "sampler": dataclasses.asdict(opts.sampler),
        }
        model = new_model(arch, native_value_space(top), vocab, seed=opts.train.seed,
                          provenance=provenance)
        (out / STATE_DIR).mkdir(parents=True, exist_ok=True)
        write_text_atomic(run_file, json.dumps({"options": _options_json(opts), "vocab": vocab,
                                                "model_config": config_to_dict(model.config)}))
        size_mb = model.n_parameters() * 4 / 2**20
        log(f"model: {model.n_parameters():,} parameters ({size_mb:.1f} MiB fp32), "
            f"{len(vocab):,} tokens, value range top {top:.3f}, device {dev}")
        log("datasets: " + ", ".join(f"{c.name} ({c.ds.info.n_cells} cells, {c.n_genes} genes)"
                                     for c in cells))
    model.to(dev)
    a, v = model.config.arch, model.config.values
    val = validation_batches(cells, opts, a.pad_id, v.pad_value)

    def batches_from(step: int) -> TrainBatches:
        return TrainBatches(cells, opts.sampler, a.pad_id, v.pad_value, start_step=step)

    return train(model, batches_from, val, opts.train, out, resume=resume, log=log)


# ----------------------------------------------------------------------------- run.json
def _options_json(opts: PretrainOptions) -> dict[str, Any]:
    d = dataclasses.asdict(opts)
    d["exclude"] = list(opts.exclude)
    d["train"]["mask_ratios"] = list(opts.train.mask_ratios)
    return d


def _options_from_json(d: dict[str, Any]) -> PretrainOptions:
    d = dict(d)
    train_cfg = dict(d.pop("train"))
    train_cfg["mask_ratios"] = tuple(train_cfg["mask_ratios"])
    return PretrainOptions(sampler=SamplerConfig(**d.pop("sampler")),
                           train=TrainConfig(**train_cfg), exclude=tuple(d.pop("exclude")), **d)


def _read_run(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError("no training run to resume", path=str(path),
                              remedy="run without --resume to start one") from None
    except ValueError as exc:
        raise CheckpointError(f"run file is not valid JSON ({exc})", path=str(path),
                              remedy="delete the output directory and start again") from None
