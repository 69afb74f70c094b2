"""Streaming, atomic writes of one dataset into an atlas.

Cells arrive in blocks (from a backed h5ad, a CSV reader, or the simulator) and are appended to
an anndata-encoded CSR matrix, so a dataset of any size is written with memory bounded by one
block. Publication is atomic per dataset: on a local store the dataset is built under a hidden
temporary name (:func:`atlasgrn.atomic.temp_name_for`) and swapped into place
(:func:`atlasgrn.atomic.replace_dir`); on any store it becomes visible only when its name is
added to the root's dataset list, which happens last. An interrupted write therefore never opens
as a valid dataset, and the other datasets of the atlas are never rewritten.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
import zarr

from ..atomic import replace_dir, temp_name_for
from ..digest import CsrContentDigest
from ..errors import AtlasgrnError, IngestError
from .layout import (
    CONTENT_ATTR,
    CSR_CHUNK_ELEMS,
    DATASETS_GROUP,
    ROOT_ATTR,
    SPECIES,
    VALUE_KINDS,
    check_dataset_name,
    dataset_path,
)
from .store import DatasetInfo, _local_path, create_or_open_for_write, is_remote

ad.settings.zarr_write_format = 3


def validate_values(block: sp.csr_matrix | np.ndarray, *, source: str, value_kind: str,
                    first_row: int) -> None:
    """Refuse NaN, inf and negative values: every value kind we accept is finite and >= 0."""
    data = block.data if sp.issparse(block) else np.asarray(block)
    if data.size == 0:
        return
    finite = np.isfinite(data)
    if not finite.all():
        bad = "NaN" if np.isnan(data).any() else "inf"
        row = _first_bad_row(block, ~finite, first_row)
        raise IngestError(f"{bad} value in cell row {row}", path=source, key="X",
                          remedy=f"remove or impute non-finite values; {value_kind} must be finite")
    negative = data < 0
    if negative.any():
        row = _first_bad_row(block, negative, first_row)
        raise IngestError(f"negative value in cell row {row} where {value_kind} are declared",
                          path=source, key="X",
                          remedy="pass the raw non-negative matrix, or the right --value-kind")


def _first_bad_row(block: sp.csr_matrix | np.ndarray, mask: np.ndarray, first_row: int) -> int:
    if sp.issparse(block):
        pos = int(np.flatnonzero(mask)[0])
        return first_row + int(np.searchsorted(block.indptr, pos, side="right") - 1)
    return first_row + int(np.argwhere(mask)[0][0])


class DatasetWriter:
    """Append cell blocks to a new dataset, then :meth:`commit` to publish it.

    Use as a context manager: leaving the block with an exception removes everything written.
    """

    def __init__(self, atlas_uri: str | os.PathLike[str], name: str, var: pd.DataFrame | Sequence[str],
                 *, species: str, value_kind: str, source: str, overwrite: bool = False,
                 extra_attrs: dict[str, Any] | None = None,
                 storage_options: dict[str, Any] | None = None,
                 source_label: str | None = None) -> None:
        self.atlas_uri = os.fspath(atlas_uri)
        self.source_label = source_label or source or self.atlas_uri
        why = check_dataset_name(name)
        if why:
            raise AtlasgrnError(why, path=self.atlas_uri, key=f"datasets/{name}",
                                remedy="use letters, digits, '-', '_' or '.'")
        if species not in SPECIES:
            raise AtlasgrnError(f"unknown species {species!r}", path=self.source_label,
                                key="species", remedy=f"one of {', '.join(SPECIES)}")
        if value_kind not in VALUE_KINDS:
            raise AtlasgrnError(f"unknown value kind {value_kind!r}", path=self.source_label,
                                key="value_kind", remedy=f"one of {', '.join(VALUE_KINDS)}")
        self.var = var if isinstance(var, pd.DataFrame) else pd.DataFrame(index=list(var))
        self._check_genes()
        self.name = name
        self.species = species
        self.value_kind = value_kind
        self.source = source
        self.extra_attrs = dict(extra_attrs or {})
        self.overwrite = overwrite
        self._root = create_or_open_for_write(self.atlas_uri, storage_options)
        registered = self._registered()
        if name in registered and not overwrite:
            raise AtlasgrnError(f"dataset '{name}' already exists in the atlas",
                                path=self.atlas_uri, key=dataset_path(name),
                                remedy="choose another name, or pass --overwrite to replace it")
        self._local = not is_remote(self.atlas_uri) or self.atlas_uri.startswith("file://")
        # Local: build under a hidden name, rename at commit. Remote: build in place (after
        # dropping any stale unregistered leftovers), register at commit.
        self._build_name = temp_name_for(name).name if self._local else name
        if not self._local and name in registered:
            raise AtlasgrnError("replacing a dataset in a remote atlas is not atomic",
                                path=self.atlas_uri, key=dataset_path(name),
                                remedy="write it under a new name, then remove the old one")
        datasets = self._root.require_group(DATASETS_GROUP)
        if not self._local and self._build_name in datasets:
            del datasets[self._build_name]
        self._group = datasets.require_group(self._build_name)
        self._n_genes = len(self.var)
        self._n_cells = 0
        self._cell_names: list[np.ndarray] = []
        self._obs_parts: list[pd.DataFrame] = []
        self._x: Any = None
        self._done = False
        self._content = CsrContentDigest()

    def _registered(self) -> list[str]:
        return list(self._root.attrs[ROOT_ATTR]["datasets"])

    def _check_genes(self) -> None:
        idx = self.var.index
        if len(idx) == 0:
            raise IngestError("dataset has no genes", path=self.source_label, key="var",
                              remedy="check the input's orientation and header")
        names = pd.Series(idx, dtype=object)
        blank = names.isna() | (names.astype(str).str.strip() == "") | names.astype(str).isin(
            ["nan", "None"])
        if blank.any():
            raise IngestError(f"gene name missing at position {int(np.flatnonzero(blank)[0])}",
                              path=self.source_label, key="var_names",
                              remedy="give every gene a name (or use --gene-column)")
        dup = names[names.duplicated()]
        if len(dup):
            raise IngestError(f"duplicate gene name '{dup.iloc[0]}' ({len(dup)} duplicates)",
                              path=self.source_label, key="var_names",
                              remedy="pass --dedupe to sum duplicates, or fix the input")
        self.var.index = pd.Index(names.astype(str).to_numpy(), dtype=object)

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None or not self._done:
            self.abort()

    def append(self, block: sp.spmatrix | np.ndarray, cell_names: Sequence[str] | None = None,
               obs: pd.DataFrame | None = None) -> None:
        """Append cells (rows) of this dataset; values are checked before anything is written."""
        if block.shape[1] != self._n_genes:
            raise IngestError(f"block has {block.shape[1]} genes, expected {self._n_genes}",
                              path=self.source_label, key="X",
                              remedy="every row must have one value per gene")
        csr = sp.csr_matrix(block, dtype=np.float32)
        csr.eliminate_zeros()
        csr.sort_indices()
        validate_values(csr, source=self.source_label, value_kind=self.value_kind,
                        first_row=self._n_cells)
        n = csr.shape[0]
        if n == 0:
            return
        if self._x is None:
            empty = sp.csr_matrix((0, self._n_genes), dtype=np.float32)
            ad.io.write_elem(self._group, "X", empty,
                             dataset_kwargs={"chunks": (CSR_CHUNK_ELEMS,)})
            self._x = ad.io.sparse_dataset(self._group["X"])
        self._x.append(csr)
        self._content.update(csr)  # the dataset's content identity (run hashes)
        if cell_names is None:
            cell_names = [f"cell{self._n_cells + i}" for i in range(n)]
        if len(cell_names) != n:
            raise IngestError(f"{len(cell_names)} cell names for {n} rows",
                              path=self.source_label, key="obs_names",
                              remedy="give one name per cell")
        self._cell_names.append(np.asarray(cell_names, dtype=object).astype(str))
        if obs is not None:
            self._obs_parts.append(obs.reset_index(drop=True))
        self._n_cells += n

    def commit(self) -> DatasetInfo:
        """Write obs/var/attrs, move the dataset into place, then register it (last)."""
        if self._n_cells == 0:
            raise IngestError("dataset is empty (no cells)", path=self.source_label, key="X",
                              remedy="check the input has at least one cell row/column")
        names = np.concatenate(self._cell_names)
        obs = (pd.concat(self._obs_parts, ignore_index=True) if self._obs_parts
               else pd.DataFrame(index=range(len(names))))
        if len(obs) != len(names):
            raise IngestError("obs columns were given for only some blocks",
                              path=self.source_label, key="obs",
                              remedy="pass obs for every block or for none")
        obs.index = pd.Index(_unique_names(names), dtype=object)
        for col in obs.columns:
            if obs[col].dtype == object:
                obs[col] = obs[col].astype(str)
        ad.io.write_elem(self._group, "obs", obs)
        ad.io.write_elem(self._group, "var", self.var)
        ad.io.write_elem(self._group, "uns", {})
        for key in ("obsm", "varm", "obsp", "varp", "layers"):
            ad.io.write_elem(self._group, key, {})
        self._group.attrs.update({"species": self.species, "value_kind": self.value_kind,
                                  "source": self.source, **self.extra_attrs,
                                  CONTENT_ATTR: self._content.hexdigest()})
        if self._local:
            self._move_into_place()
        registered = self._registered()
        if self.name not in registered:
            registered.append(self.name)
        meta = dict(self._root.attrs[ROOT_ATTR])
        meta["datasets"] = registered
        self._root.attrs[ROOT_ATTR] = meta
        self._done = True
        return DatasetInfo(name=self.name, n_cells=self._n_cells, n_genes=self._n_genes,
                           species=self.species, value_kind=self.value_kind, source=self.source,
                           sparse=True, content_sha256=self._content.hexdigest())

    def _datasets_dir(self) -> str:
        return os.path.join(_local_path(self.atlas_uri), DATASETS_GROUP)

    def _move_into_place(self) -> None:
        base = self._datasets_dir()
        final = os.path.join(base, self.name)
        built = os.path.join(base, self._build_name)
        if os.path.exists(final) and self.name in self._registered() and not self.overwrite:
            raise AtlasgrnError(f"dataset '{self.name}' appeared during the write",
                                path=self.atlas_uri, key=dataset_path(self.name),
                                remedy="rerun with another name or --overwrite")
        # Replaces unregistered leftovers of a crashed write, or the dataset being overwritten.
        replace_dir(built, final)

    def abort(self) -> None:
        """Remove everything this writer wrote; the rest of the atlas is untouched."""
        if self._done:
            return
        try:
            if self._local:
                shutil.rmtree(os.path.join(self._datasets_dir(), self._build_name),
                              ignore_errors=True)
            else:
                del self._root[DATASETS_GROUP][self._build_name]
        except (KeyError, OSError, zarr.errors.BaseZarrError):  # type: ignore[attr-defined]
            pass
        self._done = True


def _unique_names(names: np.ndarray) -> list[str]:
    """Cell names made unique the way anndata does (suffix -1, -2 ...), keeping order."""
    seen: dict[str, int] = {}
    out = []
    for n in names:
        if n in seen:
            seen[n] += 1
            out.append(f"{n}-{seen[n]}")
        else:
            seen[n] = 0
            out.append(n)
    return out
