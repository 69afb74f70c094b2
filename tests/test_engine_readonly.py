"""The job never writes into its inputs: it runs on an atlas whose files are all read-only, and
afterwards every input byte, file and timestamp is as it was (no cached statistics either)."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from atlasgrn.engine.config import RunConfig
from atlasgrn.engine.job import run_job
from atlasgrn.sim import SimConfig, simulate_atlas

from .engine_helpers import N_CELLS, N_DATASETS, N_GENES, N_TFS, SIM_SEED


def _snapshot(root: Path) -> dict[str, tuple[str, int, int]]:
    """Every path under ``root``: content hash (files), mode and mtime."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        out[str(p.relative_to(root))] = (digest, st.st_mode, st.st_mtime_ns)
    return out


def test_job_on_a_read_only_atlas_succeeds_and_changes_no_input_byte(ray_session, sim_world,
                                                                     tmp_path):
    atlas = tmp_path / "ro.zarr"
    # the world's atlas, freshly simulated: no statistics cached by other tests
    simulate_atlas(str(atlas), SimConfig(n_datasets=N_DATASETS, n_cells=N_CELLS,
                                         n_genes=N_GENES, n_tfs=N_TFS, seed=SIM_SEED))
    for p in [atlas, *atlas.rglob("*")]:
        mode = p.stat().st_mode
        p.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    before = _snapshot(atlas)
    try:
        result = run_job(RunConfig(atlas=str(atlas), out=str(tmp_path / "run"),
                                   model=sim_world.model_dir, translator=sim_world.translator_dir,
                                   replicas=1, gpus_per_replica=0, cpus_per_replica=1,
                                   max_regulators=3, progress_every_s=0),
                         log=lambda _m: None)
        assert result.status == "complete"
        assert _snapshot(atlas) == before
        assert not any("atlasgrn_stats" in name for name in before)
    finally:
        for p in [atlas, *atlas.rglob("*")]:
            os.chmod(p, p.stat().st_mode | stat.S_IWUSR)
