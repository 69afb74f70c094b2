"""All-or-nothing writes: the one implementation every layer uses.

A reader must never see half a file, and a writer killed mid-way must leave either the old file
or none, never a truncated one: resume logic trusts "the file exists" to mean "the file is
complete". Locally that is a hidden temporary file in the target's directory, then
``os.replace`` (atomic on POSIX within one filesystem). On an object store (any fsspec URL) a
single PUT is atomic by itself: the object appears only when the upload completes.

Temporary names start with ``.`` and contain ``.tmp-``, so dataset readers (pyarrow, DuckDB,
Polars skip names starting with ``.`` or ``_``) never pick them up, and :func:`is_temp_name`
lets a cleanup find what a killed writer left behind.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from .objectstore import BUCKET_SCHEMES, with_retries

TEMP_MARK = ".tmp-"


def is_remote(target: str | os.PathLike[str]) -> bool:
    """True for an fsspec URL other than ``file://`` (s3://, gs://, memory:// ...)."""
    text = os.fspath(target)
    return "://" in text and not text.startswith("file://")


def _local(target: str | os.PathLike[str]) -> Path:
    text = os.fspath(target)
    return Path(text[len("file://"):] if text.startswith("file://") else text)


def temp_name_for(path: str | os.PathLike[str]) -> Path:
    """A hidden, unique sibling of ``path`` for building it before the rename."""
    p = _local(path)
    return p.with_name(f".{p.name}{TEMP_MARK}{uuid.uuid4().hex[:8]}")


def is_temp_name(name: str) -> bool:
    """Whether a file name is one of :func:`temp_name_for`'s (left behind by a killed writer)."""
    return name.startswith(".") and TEMP_MARK in name


def _shared_mode() -> int:
    """0666 less the process umask: what ``open()`` would give a new file. Temporary files made
    by ``mkstemp`` or by libraries (safetensors) are 0600, but outputs are meant to be shared."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_path_atomic(target: str | os.PathLike[str], write: Callable[[str], object]) -> None:
    """Publish a local file that ``write(tmp_path)`` creates (for libraries that want a path:
    safetensors, ``np.savez``). The target's directory is created if needed."""
    final = _local(target)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name_for(final)
    try:
        write(str(tmp))
        os.chmod(tmp, _shared_mode())
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(target: str | os.PathLike[str], write: Callable[[BinaryIO], object], *,
                 fs: Any = None) -> None:
    """Publish a file that ``write(fh)`` streams into a binary handle.

    ``target`` is a local path or an fsspec URL; or, with ``fs`` (an fsspec filesystem), a path
    on that filesystem (local filesystems still go through the temporary-file rename).
    """
    if fs is not None and not _is_local_fs(fs):
        _put(fs, os.fspath(target), write)
        return
    if fs is None and is_remote(target):
        import fsspec

        fs, path = fsspec.core.url_to_fs(os.fspath(target))
        _put(fs, path, write)
        return

    def via_handle(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            write(fh)

    write_path_atomic(target, via_handle)


def _put(fs: Any, path: str, write: Callable[[BinaryIO], object]) -> None:
    """One object, one PUT (atomic by itself), retried as a whole on transient errors.

    Object stores have no directories, and ``makedirs`` on s3fs or gcsfs would *create a
    bucket* that does not exist: only filesystems with real directories get their parents.
    """
    if not _has_buckets(fs):
        parent = path.rsplit("/", 1)[0]
        if parent and parent != path:
            fs.makedirs(parent, exist_ok=True)

    def put_once() -> None:
        with fs.open(path, "wb") as fh:
            write(fh)

    with_retries(put_once, what=f"writing {path}")


def _has_buckets(fs: Any) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return bool(set(BUCKET_SCHEMES) & set(protocols))


def write_bytes_atomic(target: str | os.PathLike[str], data: bytes, *, fs: Any = None) -> None:
    write_atomic(target, lambda fh: fh.write(data), fs=fs)


def write_text_atomic(target: str | os.PathLike[str], text: str, *, fs: Any = None) -> None:
    """UTF-8 text (manifests, JSON configs, ``_SUCCESS``), all or nothing."""
    write_bytes_atomic(target, text.encode("utf-8"), fs=fs)


def _is_local_fs(fs: Any) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return bool({"file", "local"} & set(protocols))


def replace_dir(built: str | os.PathLike[str], final: str | os.PathLike[str]) -> None:
    """Move a fully built local directory to ``final``, replacing what is there.

    A directory cannot be swapped by one ``rename`` over a non-empty target, so an existing
    ``final`` is first renamed aside to a hidden trash name, then ``built`` takes its place, then
    the trash is removed: a reader sees the old directory or the new one, and a crash between
    the two renames leaves the old one recoverable under the trash name.
    """
    built_p, final_p = _local(built), _local(final)
    if final_p.exists():
        trash = final_p.with_name(f".trash-{final_p.name}-{uuid.uuid4().hex[:8]}")
        os.rename(final_p, trash)
        os.rename(built_p, final_p)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.rename(built_p, final_p)
