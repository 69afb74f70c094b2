"""Building blocks of the engine tests' simulated world (the session fixtures that use them live
in ``conftest.py``, so each is built once per session).

Everything here is real: the atlas comes from the simulator, the model from the pre-training
loop (tiny config, a few hundred steps), the translator from the ``atlasgrn train-translator``
command on a prior made of part of the simulated network, so the engine serves a translator with
the feature spec a user's translator would carry.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

SIM_SEED = 3
N_DATASETS, N_CELLS, N_GENES, N_TFS = 2, 600, 120, 20
PRETRAIN_STEPS = int(os.environ.get("ATLASGRN_TEST_PRETRAIN_STEPS", "1000"))
#: The translator's block layout (its feature spec): a 128-token context holds 5 + 60 genes.
BLOCKS = {"source_block": 5, "target_block": 60}


@dataclass(frozen=True)
class SimWorld:
    atlas: str
    model_dir: str
    translator_dir: str
    edges: set[tuple[str, str]]
    tfs: tuple[str, ...]
    genes: tuple[str, ...]
    train_tfs: frozenset[str]
    #: the simulated TFs, one a line: every run over the world names its regulators (the
    #: bundled census would also call some simulated targets regulators)
    regulators: str = ""


def split_tfs(tfs: list[str], seed: int = 0) -> frozenset[str]:
    """Half of the TFs, whose edges form the training prior; the other half is held out, so
    the job's edges from held-out regulators are scored on genes the translator never saw as
    sources (the generalisation protocol of method.md)."""
    rng = np.random.default_rng(seed)
    tf_perm = rng.permutation(sorted(tfs))
    return frozenset(str(t) for t in tf_perm[: len(tf_perm) // 2])


def pretrain_tiny(atlas: str, out: str, steps: int) -> str:
    from atlasgrn.pretraining import PretrainOptions, pretrain_atlas
    from atlasgrn.pretraining.loop import TrainConfig
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


def sim_run_config(world: SimWorld, out: Path, **kw: object):  # -> RunConfig
    """The clean run's configuration (conftest.clean_run), with ``kw`` changed."""
    from atlasgrn.engine.config import RunConfig

    base = dict(atlas=world.atlas, out=str(out), model=world.model_dir,
                translator=world.translator_dir, regulators=world.regulators,
                replicas=2, gpus_per_replica=1.0,
                cpus_per_replica=0.5, progress_every_s=0.0)
    base.update(kw)
    return RunConfig(**base)


def train_cli_translator(root: Path, model_dir: str, edges: set[tuple[str, str]],
                         train_tfs: frozenset[str], genes: tuple[str, ...],
                         extra: tuple[str, ...] = (), threads: int = 2) -> str:
    """``atlasgrn train-translator`` on the training TFs' true edges over the atlas's genes
    (``extra``: more options, e.g. ``--background profile --expression ...``)."""
    from atlasgrn.cli import main

    root.mkdir(parents=True, exist_ok=True)
    prior = root / "prior.csv"
    pd.DataFrame(sorted((s, t) for s, t in edges if s in train_tfs),
                 columns=["source", "target"]).to_csv(prior, index=False)
    gene_list = root / "genes.txt"
    gene_list.write_text("\n".join(genes) + "\n")
    out = root / "translator"
    rc = main(["train-translator", "--model", model_dir, "--prior", str(prior), "--genes",
               str(gene_list), "--out", str(out), "--cache", "none", "--threads", str(threads),
               "--source-block", str(BLOCKS["source_block"]),
               "--target-block", str(BLOCKS["target_block"]), *extra])
    assert rc == 0, "train-translator failed"
    return str(out)


def build_world(root: Path, steps: int = PRETRAIN_STEPS) -> SimWorld:
    from atlasgrn.sim import SimConfig, simulate_atlas

    atlas = str(root / "sim.zarr")
    res = simulate_atlas(atlas, SimConfig(n_datasets=N_DATASETS, n_cells=N_CELLS,
                                          n_genes=N_GENES, n_tfs=N_TFS, seed=SIM_SEED))
    e = pq.read_table(res.edges_path).to_pandas()
    edges = set(zip(e["source"].astype(str), e["target"].astype(str)))
    train_tfs = split_tfs(list(res.tfs))
    model_dir = pretrain_tiny(atlas, str(root / "model"), steps)
    translator_dir = train_cli_translator(root, model_dir, edges, train_tfs, tuple(res.genes))
    return SimWorld(atlas=atlas, model_dir=model_dir, translator_dir=translator_dir,
                    edges=edges, tfs=tuple(res.tfs), genes=tuple(res.genes),
                    train_tfs=train_tfs,
                    regulators=regulators_file(root / "regulators.txt", res.tfs))


def regulators_file(path: Path, tfs) -> str:
    path.write_text("\n".join(sorted(tfs)) + "\n")
    return str(path)
