"""The atlas contract: streaming atomic writes, lazy block reads, cached reductions, retries."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import zarr
from zarr.storage import LocalStore

from atlasgrn.atlas import DatasetWriter, open_atlas
from atlasgrn.objectstore import TransientReadError, is_transient, with_retries
from atlasgrn.errors import AtlasFormatError, AtlasgrnError, AtlasReadError, IngestError

GENES = [f"GENE{i}" for i in range(60)]


def _matrix(n_cells: int = 900, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    m = sp.random(n_cells, len(GENES), density=0.15, format="csr", dtype=np.float32, rng=rng)
    m.data = np.round(m.data * 20).astype(np.float32)
    m.eliminate_zeros()
    return m


def _write(uri: str | Path, name: str, m: sp.csr_matrix, block: int = 250, **kw) -> None:
    with DatasetWriter(str(uri), name, GENES, species="human", value_kind="counts",
                       source="unit test", **kw) as w:
        for start in range(0, m.shape[0], block):
            w.append(m[start:start + block],
                     cell_names=[f"c{i}" for i in range(start, min(start + block, m.shape[0]))])
        w.commit()


@pytest.fixture()
def atlas_path(tmp_path: Path) -> tuple[Path, sp.csr_matrix]:
    m = _matrix()
    path = tmp_path / "a.zarr"
    _write(path, "alpha", m)
    return path, m


def test_block_reads_equal_the_written_matrix(atlas_path):
    path, m = atlas_path
    ds = open_atlas(path).dataset("alpha")
    assert ds.info.n_cells == 900 and ds.info.n_genes == 60
    block = ds.read_cells(123, 456)
    assert isinstance(block, sp.csr_matrix) and block.dtype == np.float32
    assert (block != m[123:456]).nnz == 0
    dense = ds.read_cells(10, 20, genes=["GENE3", "GENE0"], dense=True)
    np.testing.assert_array_equal(dense, m[10:20][:, [3, 0]].toarray())
    by_pos = ds.read_cells(10, 20, genes=np.array([3, 0]), dense=True)
    np.testing.assert_array_equal(by_pos, dense)
    assert list(ds.obs.index[:3]) == ["c0", "c1", "c2"]
    assert list(ds.genes[:2]) == ["GENE0", "GENE1"]


def test_iter_blocks_covers_every_cell_once(atlas_path):
    path, m = atlas_path
    ds = open_atlas(path).dataset("alpha")
    starts, total = [], None
    for start, block in ds.iter_blocks(200):
        starts.append(start)
        total = block if total is None else sp.vstack([total, block])
    assert starts == [0, 200, 400, 600, 800]
    assert (total != m).nnz == 0


def test_gene_stats_are_exact_and_cached_in_the_store(atlas_path):
    path, m = atlas_path
    stats = open_atlas(path).dataset("alpha").gene_stats()
    np.testing.assert_allclose(stats.mean, np.asarray(m.mean(axis=0)).ravel(), rtol=1e-6)
    np.testing.assert_allclose(stats.frac_nonzero, (m != 0).mean(axis=0).A1, rtol=1e-6)
    assert (path / "datasets" / "alpha" / "uns" / "atlasgrn_stats").is_dir()
    # A fresh handle reads the cache: make X unreadable to prove no recomputation happens.
    shutil.rmtree(path / "datasets" / "alpha" / "X" / "data" / "c")
    cached = open_atlas(path).dataset("alpha").gene_stats()
    np.testing.assert_array_equal(cached.mean, stats.mean)


def test_read_only_atlas_computes_stats_without_writing(atlas_path):
    path, m = atlas_path
    stats = open_atlas(path, writable=False).dataset("alpha").gene_stats()
    np.testing.assert_allclose(stats.mean, np.asarray(m.mean(axis=0)).ravel(), rtol=1e-6)
    assert not (path / "datasets" / "alpha" / "uns" / "atlasgrn_stats").exists()


def test_memory_url_round_trip():
    m = _matrix(120, seed=3)
    _write("memory://unit-atlas.zarr", "mem", m, block=50)
    atlas = open_atlas("memory://unit-atlas.zarr")
    assert [d.name for d in atlas.datasets()] == ["mem"]
    assert (atlas.dataset("mem").read_cells(0, 120) != m).nnz == 0


def test_adding_a_dataset_leaves_the_others_untouched(atlas_path):
    path, m = atlas_path
    before = {p: p.stat().st_mtime_ns for p in (path / "datasets" / "alpha").rglob("*")
              if p.is_file()}
    _write(path, "beta", _matrix(300, seed=1))
    after = {p: p.stat().st_mtime_ns for p in (path / "datasets" / "alpha").rglob("*")
             if p.is_file()}
    assert before == after
    assert open_atlas(path).names == ["alpha", "beta"]


def test_existing_dataset_is_not_overwritten_without_consent(atlas_path):
    path, m = atlas_path
    with pytest.raises(AtlasgrnError, match="already exists.*--overwrite"):
        _write(path, "alpha", _matrix(10, seed=2))
    assert open_atlas(path).dataset("alpha").info.n_cells == 900
    _write(path, "alpha", _matrix(10, seed=2), overwrite=True)
    assert open_atlas(path).dataset("alpha").info.n_cells == 10
    assert not [p for p in (path / "datasets").iterdir() if p.name.startswith(".")]


def test_failed_write_leaves_nothing_behind(atlas_path):
    path, _ = atlas_path
    bad = _matrix(100, seed=4)
    bad.data[5] = np.nan
    with pytest.raises(IngestError, match="NaN value in cell row"):
        _write(path, "broken", bad, block=40)
    assert open_atlas(path).names == ["alpha"]
    assert sorted(p.name for p in (path / "datasets").iterdir() if p.is_dir()) == ["alpha"]


def test_negative_values_are_refused_with_the_row():
    m = _matrix(50, seed=5)
    m.data[m.indptr[7]] = -1.0
    with pytest.raises(IngestError, match="negative value in cell row 7"):
        _write("memory://neg.zarr", "neg", m, block=50)


def test_killed_writer_leaves_no_dataset_that_opens(tmp_path: Path):
    """A writer killed mid-stream (SIGKILL, no cleanup) must not publish a dataset."""
    path = tmp_path / "k.zarr"
    _write(path, "alpha", _matrix(100))
    script = textwrap.dedent(f"""
        import os, numpy as np, scipy.sparse as sp
        from atlasgrn.atlas import DatasetWriter
        w = DatasetWriter({str(path)!r}, "victim", [f"GENE{{i}}" for i in range(60)],
                          species="human", value_kind="counts", source="t")
        w.append(sp.random(50, 60, density=0.2, format="csr", dtype=np.float32))
        os.kill(os.getpid(), 9)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == -9
    atlas = open_atlas(path)
    assert atlas.names == ["alpha"] and "victim" not in atlas
    _write(path, "victim", _matrix(30, seed=6))  # the name is free to use afterwards
    assert open_atlas(path).dataset("victim").info.n_cells == 30


def test_unknown_format_version_is_refused(atlas_path):
    path, _ = atlas_path
    root = zarr.open_group(str(path), mode="r+")
    root.attrs["atlasgrn"] = {**root.attrs["atlasgrn"], "format": 99}
    with pytest.raises(AtlasFormatError, match="format version 99 is not supported"):
        open_atlas(path)


def test_missing_path_and_non_store_are_one_line_errors(tmp_path: Path):
    with pytest.raises(AtlasgrnError, match="no such atlas") as missing:
        open_atlas(tmp_path / "nope.zarr")
    assert "\n" not in str(missing.value)
    f = tmp_path / "file.txt"
    f.write_text("hello")
    with pytest.raises(AtlasFormatError, match="not a Zarr store"):
        open_atlas(f)
    plain = tmp_path / "plain.zarr"
    zarr.open_group(str(plain), mode="w")
    with pytest.raises(AtlasFormatError, match="not an atlasgrn atlas"):
        open_atlas(plain)


class FlakyStore(LocalStore):
    """A real local store whose first ``failures`` chunk reads fail like a dropped connection."""

    def __init__(self, root: str, failures: int, error: type[Exception]) -> None:
        super().__init__(root, read_only=True)
        self.failures = failures
        self.error = error
        self.calls = 0

    async def get(self, key, prototype, byte_range=None):
        if "/X/data/c" in key:
            self.calls += 1
            if self.calls <= self.failures:
                raise self.error(f"simulated failure reading {key}")
        return await super().get(key, prototype, byte_range)


def test_transient_read_errors_are_retried(atlas_path):
    path, m = atlas_path
    store = FlakyStore(str(path), failures=2, error=ConnectionResetError)
    ds = open_atlas(store).dataset("alpha")
    assert (ds.read_cells(0, 100) != m[:100]).nnz == 0
    assert store.calls >= 3


def test_permanent_read_errors_fail_at_once_naming_the_key(atlas_path):
    path, _ = atlas_path
    store = FlakyStore(str(path), failures=100, error=PermissionError)
    ds = open_atlas(store).dataset("alpha")
    with pytest.raises(AtlasReadError, match="datasets/alpha/X"):
        ds.read_cells(0, 100)
    assert store.calls == 1


def test_retry_policy_is_bounded_and_selective():
    calls = []

    def always_times_out():
        calls.append(1)
        raise TimeoutError("slow")

    with pytest.raises(TimeoutError):
        with_retries(always_times_out, max_attempts=3, max_wait_s=0.01)
    assert len(calls) == 3
    assert is_transient(TransientReadError("x")) and is_transient(ConnectionResetError())
    assert not is_transient(FileNotFoundError()) and not is_transient(ValueError())
    assert not is_transient(KeyError("zarr.json"))


def test_object_store_client_errors_are_transient_by_class_name():
    """botocore/aiohttp errors are matched by the names in their class hierarchy (their
    packages stay optional); this matching once compared ``type``'s name and never fired."""
    EndpointConnectionError = type("EndpointConnectionError", (Exception,), {})
    Wrapped = type("Wrapped", (EndpointConnectionError,), {})
    assert is_transient(EndpointConnectionError("no route"))
    assert is_transient(Wrapped("subclass of a transient client error"))
    assert not is_transient(type("NoSuchBucket", (Exception,), {})("missing"))


def test_bundled_atlas_is_opened_read_only_by_default():
    from atlasgrn.atlas.bundled import demo_atlas_path

    path = demo_atlas_path()
    before = sorted(p.relative_to(path) for p in path.rglob("*"))
    atlas = open_atlas(path)
    for name in atlas.names:
        atlas.dataset(name).gene_stats(recompute=True)
    assert sorted(p.relative_to(path) for p in path.rglob("*")) == before
