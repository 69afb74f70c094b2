"""Shared pieces of the engine tests: one Ray session, and a simulated atlas with a model
pre-trained on it and a translator trained on part of its true network.

Everything here is real: the atlas comes from the simulator, the model from the pre-training
loop (tiny config, a few hundred steps), the translator from ``train_translator`` on features
that the engine's own ``block_features`` computes, with the same settings the job will use.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

SIM_SEED = 3
N_DATASETS, N_CELLS, N_GENES, N_TFS = 2, 600, 120, 20
PRETRAIN_STEPS = int(os.environ.get("ATLASGRN_TEST_PRETRAIN_STEPS", "1000"))


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the whole session: 2 CPUs, 2 *logical* GPUs (placement is testable
    on a CPU box; the model falls back to CPU)."""
    ray = pytest.importorskip("ray")
    from ray.data import DataContext

    started = False
    if not ray.is_initialized():
        ray.init(num_cpus=2, num_gpus=2, object_store_memory=200 * 1024**2,
                 include_dashboard=False, log_to_driver=False)
        started = True
    DataContext.get_current().enable_progress_bars = False
    yield ray
    if started:
        ray.shutdown()


@dataclass(frozen=True)
class SimWorld:
    atlas: str
    model_dir: str
    translator_dir: str
    edges: set[tuple[str, str]]
    tfs: tuple[str, ...]
    genes: tuple[str, ...]
    train_tfs: frozenset[str]
    train_targets: frozenset[str]


def split_genes(tfs: list[str], genes: list[str], seed: int = 0
                ) -> tuple[frozenset[str], frozenset[str]]:
    """Half of the TFs (regulators) for training, with all their targets; the other half is
    held out: the job's edges from held-out regulators are scored on genes the translator
    never saw as sources (the generalisation protocol of method.md)."""
    rng = np.random.default_rng(seed)
    tf_perm = rng.permutation(sorted(tfs))
    return frozenset(str(t) for t in tf_perm[: len(tf_perm) // 2]), frozenset(genes)


def pretrain_tiny(atlas: str, out: str, steps: int) -> str:
    from atlasgrn.models.pretrain import TrainConfig
    from atlasgrn.pretraining.run import PretrainOptions, pretrain_atlas
    from atlasgrn.pretraining.sampler import SamplerConfig

    opts = PretrainOptions(
        d_model=64, n_layers=2, n_heads=4, d_ff=128, dropout=0.0,
        sampler=SamplerConfig(batch_size=32, max_len=128, min_len=64, val_fraction=0.1,
                              block_cells=600, buffer_cells=1200),
        train=TrainConfig(steps=steps, lr=1e-3, warmup_steps=20, eval_every=100,
                          log_every=1000),
        val_cells_per_dataset=64, val_len=128, range_cells_per_dataset=600)
    pretrain_atlas(atlas, out, opts, device="cpu", log=lambda _m: None)
    return out


def train_engine_translator(atlas: str, model_dir: str, out: str,
                            edges: set[tuple[str, str]], train_tfs: frozenset[str],
                            train_targets: frozenset[str], background: str | float = 0.0,
                            context_len: int = 128) -> str:
    """Translator on (train TF, train target) pairs of every dataset, features from the
    engine's own ``block_features``; the probe settings are recorded for the job to reuse."""
    import torch

    from atlasgrn.atlas import open_atlas
    from atlasgrn.engine.config import ProbeSettings
    from atlasgrn.engine.inputs import mean_profile, usable_genes
    from atlasgrn.engine.scoring import block_features, pair_rows
    from atlasgrn.models import load_model
    from atlasgrn.translator import TranslatorConfig, save_translator, train_translator

    torch.set_num_threads(2)
    model = load_model(model_dir)
    space = model.config.values
    settings = ProbeSettings(kinds=("vvp", "gdt"), vvp_grid=tuple(space.vvp_grid),
                             gdt_levels=tuple(space.gdt_levels), gdt_reading="uniform",
                             background=background, context_len=context_len)
    atlas_obj = open_atlas(atlas)
    feats: dict[str, list[np.ndarray]] = {"vvp": [], "gdt": []}
    labels, groups = [], []
    for name in atlas_obj.names:
        ds = atlas_obj.dataset(name)
        genes = usable_genes(ds, model.vocab)
        stats = ds.gene_stats()
        anchors = sorted(genes, key=lambda s: (-float(stats.mean[genes[s]]), s))
        sources = sorted(s for s in train_tfs if s in genes)
        targets = sorted(t for t in train_targets if t in genes)
        bf = block_features(model, settings, sources, targets, anchors,
                            mean_profile(ds, model.vocab) if background == "profile" else None)
        ss, tt, flat = pair_rows(bf)
        for k in feats:
            feats[k].append(flat[k])
        labels.append(np.array([(s, t) in edges for s, t in zip(ss, tt)], dtype=np.float32))
        groups.append(ss.astype(str))
    y = np.concatenate(labels)
    translator = train_translator(
        {k: np.concatenate(v) for k, v in feats.items()}, y, np.concatenate(groups),
        TranslatorConfig(hidden=(32, 16), max_epochs=200, patience=20, seed=0),
        provenance={"probe": {"vvp_grid": list(settings.vvp_grid),
                              "gdt_levels": list(settings.gdt_levels),
                              "gdt_reading": settings.gdt_reading,
                              "background": background,
                              "context_len": context_len},
                    "trained_on": {"atlas": atlas, "positives": int(y.sum()),
                                   "pairs": int(len(y))}})
    save_translator(translator, out, overwrite=True)
    return out


def build_world(root: Path, steps: int = PRETRAIN_STEPS) -> SimWorld:
    from atlasgrn.sim import SimConfig, simulate_atlas

    atlas = str(root / "sim.zarr")
    res = simulate_atlas(atlas, SimConfig(n_datasets=N_DATASETS, n_cells=N_CELLS,
                                          n_genes=N_GENES, n_tfs=N_TFS, seed=SIM_SEED))
    e = pq.read_table(res.edges_path).to_pandas()
    edges = set(zip(e["source"].astype(str), e["target"].astype(str)))
    train_tfs, train_targets = split_genes(list(res.tfs), list(res.genes))
    model_dir = pretrain_tiny(atlas, str(root / "model"), steps)
    translator_dir = train_engine_translator(atlas, model_dir, str(root / "translator"), edges,
                                             train_tfs, train_targets)
    return SimWorld(atlas=atlas, model_dir=model_dir, translator_dir=translator_dir,
                    edges=edges, tfs=tuple(res.tfs), genes=tuple(res.genes),
                    train_tfs=train_tfs, train_targets=train_targets)


@pytest.fixture(scope="session")
def sim_world(tmp_path_factory) -> SimWorld:
    return build_world(tmp_path_factory.mktemp("engine-world"))


def regulators_file(path: Path, tfs) -> str:
    path.write_text("\n".join(sorted(tfs)) + "\n")
    return str(path)
