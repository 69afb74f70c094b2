"""The ``Atlas`` handle returned by :func:`open_atlas`."""

from __future__ import annotations

import os
from typing import Any

import zarr
from zarr.abc.store import Store as StoreLike

from ..errors import AtlasFormatError, AtlasgrnError
from .dataset import AtlasDataset
from .layout import CONTENT_ATTR, ROOT_ATTR, VALUE_KINDS
from .store import (
    DatasetInfo,
    _local_path,
    dataset_group,
    is_remote,
    open_root,
    read_root_meta,
)


def _x_shape(grp: zarr.Group) -> tuple[tuple[int, int], bool]:
    node = grp["X"]
    if isinstance(node, zarr.Group):
        shape = node.attrs.get("shape")
        return (int(shape[0]), int(shape[1])), True
    return (int(node.shape[0]), int(node.shape[1])), False


class Atlas:
    """A Zarr atlas: lists datasets and hands out lazy dataset readers."""

    def __init__(self, uri: str, root: zarr.Group, writable: bool) -> None:
        self.uri = uri
        self._root = root
        self._writable = writable
        self._meta = read_root_meta(root, uri)
        self._infos: dict[str, DatasetInfo] = {}
        for name in self._meta["datasets"]:
            self._infos[name] = self._load_info(name)

    def _load_info(self, name: str) -> DatasetInfo:
        grp = dataset_group(self._root, name, self.uri)
        attrs = dict(grp.attrs)
        try:
            (n_cells, n_genes), sparse = _x_shape(grp)
        except (KeyError, TypeError, IndexError):
            raise AtlasFormatError("dataset has no readable X matrix", path=self.uri,
                                   key=f"datasets/{name}/X",
                                   remedy="re-ingest this dataset") from None
        value_kind = attrs.get("value_kind")
        if value_kind not in VALUE_KINDS:
            raise AtlasFormatError(f"unknown value_kind {value_kind!r}", path=self.uri,
                                   key=f"datasets/{name}.value_kind",
                                   remedy=f"one of {', '.join(VALUE_KINDS)}; re-ingest")
        return DatasetInfo(name=name, n_cells=n_cells, n_genes=n_genes,
                           species=str(attrs.get("species", "unknown")),
                           value_kind=value_kind, source=str(attrs.get("source", "")),
                           sparse=sparse, content_sha256=attrs.get(CONTENT_ATTR))

    def __repr__(self) -> str:
        return f"Atlas({self.uri!r}, {len(self._infos)} datasets)"

    def __contains__(self, name: object) -> bool:
        return name in self._infos

    def __len__(self) -> int:
        return len(self._infos)

    @property
    def names(self) -> list[str]:
        """Dataset names in registration order."""
        return list(self._infos)

    def datasets(self) -> list[DatasetInfo]:
        """Cells, genes, species and value kind of every dataset, from metadata only."""
        return list(self._infos.values())

    def dataset(self, name: str) -> AtlasDataset:
        if name not in self._infos:
            known = ", ".join(self._infos) or "none"
            raise AtlasgrnError(f"no dataset named '{name}' (datasets: {known})",
                                path=self.uri, key=f"datasets/{name}",
                                remedy="pick one listed by 'atlasgrn info'")
        grp = dataset_group(self._root, name, self.uri)
        return AtlasDataset(grp, self._infos[name], self.uri, self._writable)

    def storage_bytes(self) -> int | None:
        """Bytes the store occupies on disk (local stores; None where unknown)."""
        if is_remote(self.uri) and not self.uri.startswith("file://"):
            try:
                import fsspec
                fs, path = fsspec.core.url_to_fs(self.uri)
                return int(fs.du(path))
            except Exception:  # noqa: BLE001 - size is informational only
                return None
        total = 0
        for dirpath, _, files in os.walk(_local_path(self.uri)):
            for f in files:
                total += os.path.getsize(os.path.join(dirpath, f))
        return total

    @property
    def format_version(self) -> int:
        return int(self._meta["format"])

    @property
    def root_attrs(self) -> dict[str, Any]:
        return dict(self._root.attrs[ROOT_ATTR])


_PACKAGE_DATA = os.path.realpath(os.path.join(os.path.dirname(__file__), os.pardir, "data"))


def _is_package_data(path: str) -> bool:
    """Atlases shipped inside the package are never written to (not even a stats cache)."""
    real = os.path.realpath(path)
    return real == _PACKAGE_DATA or real.startswith(_PACKAGE_DATA + os.sep)


def open_atlas(uri: str | os.PathLike[str] | StoreLike, *, writable: bool | None = None,
               storage_options: dict[str, Any] | None = None) -> Atlas:
    """Open an atlas lazily from a local path, an fsspec URL (s3://, gs://, http(s)://,
    memory://) or a ready zarr ``Store`` (custom credentials, caching or test stores).

    ``writable`` controls whether per-gene statistics may be cached in the store; by default a
    local store is written to when the filesystem allows it, a remote one never.
    """
    if isinstance(uri, StoreLike):
        root = zarr.open_group(uri, mode="r+" if writable else "r")
        label = f"<{type(uri).__name__}>"
        read_root_meta(root, label)
        return Atlas(label, root, bool(writable))
    uri = os.fspath(uri)
    local = not is_remote(uri) or uri.startswith("file://")
    if writable is None:
        writable = (local and os.access(_local_path(uri), os.W_OK)
                    and not _is_package_data(_local_path(uri)))
    root = open_root(uri, mode="r", storage_options=storage_options)
    read_root_meta(root, uri)
    if writable:
        root = open_root(uri, mode="r+", storage_options=storage_options)
    return Atlas(uri, root, writable)
