"""Opening atlases: local paths and fsspec URLs, lazily, with the format checked up front."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any

import zarr

from ..errors import AtlasFormatError, AtlasgrnError
from ..objectstore import check_bucket, permanent_error
from ..outdir import probe_create
from .layout import DATASETS_GROUP, FORMAT_VERSION, ROOT_ATTR, dataset_path

# zarr warns that sharding will become the default; our layout sets chunks explicitly.
warnings.filterwarnings("ignore", message=".*autosharding.*", category=UserWarning)

_REMOTE_PREFIXES = ("s3://", "gs://", "gcs://", "http://", "https://", "memory://", "az://",
                    "abfs://", "file://")


def is_remote(uri: str) -> bool:
    """True for fsspec URLs (including memory://), False for plain local paths."""
    return uri.startswith(_REMOTE_PREFIXES)


def _local_path(uri: str) -> str:
    return uri[len("file://"):] if uri.startswith("file://") else uri


def open_root(uri: str, mode: str = "r", storage_options: dict[str, Any] | None = None
              ) -> zarr.Group:
    """Open the atlas root group, turning every failure into a one-line, actionable error."""
    if not is_remote(uri) or uri.startswith("file://"):
        path = _local_path(uri)
        if mode == "r" and not os.path.exists(path):
            raise AtlasgrnError("no such atlas", path=uri,
                                remedy="check the path, or create one with 'atlasgrn ingest' "
                                       "or 'atlasgrn simulate'")
        if mode == "r" and not os.path.isdir(path):
            raise AtlasFormatError("not a Zarr store (a file, not a directory)", path=uri,
                                   remedy="pass the .zarr directory of an atlas")
        uri = path
    kwargs: dict[str, Any] = {"mode": mode}
    if is_remote(uri):
        kwargs["storage_options"] = storage_options or {}
        check_bucket(uri, "atlas")  # a missing bucket or denied access, said as such
    try:
        if mode == "r":
            return zarr.open_group(uri, **kwargs)
        return zarr.open_group(uri, zarr_format=3, **kwargs)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError) as exc:  # type: ignore[attr-defined]
        raise AtlasFormatError(f"not a Zarr store ({type(exc).__name__})", path=uri,
                               remedy="pass the .zarr directory of an atlas") from None
    except (ValueError, TypeError, KeyError) as exc:
        raise AtlasFormatError(f"not a Zarr store ({exc})", path=uri,
                               remedy="pass the .zarr directory of an atlas") from None
    except OSError as exc:
        error = permanent_error(exc, uri, "atlas")
        if error is None:
            raise
        raise error from None


def read_root_meta(root: zarr.Group, uri: str) -> dict[str, Any]:
    """Validate and return the ``atlasgrn`` root attribute."""
    meta = root.attrs.get(ROOT_ATTR)
    if not isinstance(meta, dict):
        raise AtlasFormatError("Zarr store is not an atlasgrn atlas", path=uri, key=ROOT_ATTR,
                               remedy="build it with 'atlasgrn ingest' or 'atlasgrn simulate'")
    fmt = meta.get("format")
    if fmt != FORMAT_VERSION:
        raise AtlasFormatError(f"atlas format version {fmt!r} is not supported (this atlasgrn "
                               f"reads version {FORMAT_VERSION})", path=uri,
                               key=f"{ROOT_ATTR}.format",
                               remedy="upgrade atlasgrn or re-ingest the data with this version")
    if not isinstance(meta.get("datasets"), list):
        raise AtlasFormatError("atlas root lists no datasets", path=uri,
                               key=f"{ROOT_ATTR}.datasets", remedy="re-ingest the atlas")
    return meta


def create_or_open_for_write(uri: str, storage_options: dict[str, Any] | None = None
                             ) -> zarr.Group:
    """Open an existing atlas for appending, or create an empty one.

    An existing directory that is not an atlas is refused rather than overwritten: nothing a
    user wrote is ever lost.
    """
    local = not is_remote(uri) or uri.startswith("file://")
    if local and os.path.exists(_local_path(uri)):
        root = open_root(uri, mode="r")
        read_root_meta(root, uri)
        return open_root(uri, mode="r+", storage_options=storage_options)
    if local:
        parent = os.path.dirname(os.path.abspath(_local_path(uri)))
        if not os.path.isdir(parent):
            raise AtlasgrnError("parent directory does not exist", path=uri,
                                remedy=f"create {parent} first")
        try:
            probe_create(parent)
        except OSError as exc:
            raise AtlasgrnError(f"cannot create the atlas ({exc.strerror} in {parent})",
                                path=uri, remedy="choose a writable location") from None
    else:
        try:
            root = open_root(uri, mode="r", storage_options=storage_options)
            read_root_meta(root, uri)
            return open_root(uri, mode="r+", storage_options=storage_options)
        except AtlasFormatError:
            pass
    root = open_root(uri, mode="a", storage_options=storage_options)
    if ROOT_ATTR not in root.attrs:
        if len(list(root.keys())):
            raise AtlasFormatError("store exists and is not an atlas", path=uri,
                                   remedy="choose a new output path")
        root.attrs[ROOT_ATTR] = {"format": FORMAT_VERSION, "datasets": []}
        root.require_group(DATASETS_GROUP)
    return root


@dataclass(frozen=True)
class DatasetInfo:
    """What ``Atlas.datasets()`` lists: enough to plan work without reading any matrix."""

    name: str
    n_cells: int
    n_genes: int
    species: str
    value_kind: str
    source: str
    sparse: bool
    #: sha256 of the values as written (cells in order: data, column indices, row lengths);
    #: None for datasets written before atlasgrn recorded it
    content_sha256: str | None = None


def dataset_group(root: zarr.Group, name: str, uri: str) -> zarr.Group:
    try:
        grp = root[dataset_path(name)]
    except KeyError:
        raise AtlasFormatError("dataset is listed in the atlas but missing from the store",
                               path=uri, key=dataset_path(name),
                               remedy="re-ingest this dataset") from None
    if not isinstance(grp, zarr.Group):
        raise AtlasFormatError("dataset is not a group", path=uri, key=dataset_path(name),
                               remedy="re-ingest this dataset")
    return grp
