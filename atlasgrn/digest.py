"""Content digests: the one place where atlasgrn turns files, folders, models and settings into
sha256 identities.

Identities decide whether a run may resume an output directory, whether a cached feature table
is reused, and whether a translator belongs to the model it is served with; two ways of hashing
the same thing would make those decisions disagree, so every digest comes from here.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .jsonable import to_jsonable


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's bytes, streamed (``hashlib.file_digest``)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def dir_sha256(path: str | os.PathLike[str], names: Sequence[str] | None = None) -> str:
    """sha256 over a directory's files (name, then bytes), in name order.

    ``names`` restricts it to those files (e.g. a checkpoint's three files, so a model card or a
    plot written beside them does not change the model's identity). Hidden files are skipped.
    """
    root = Path(path)
    files = sorted(root.iterdir()) if names is None else [root / n for n in names]
    h = hashlib.sha256()
    for f in files:
        if f.is_file() and not f.name.startswith("."):
            h.update(f.name.encode() + b"\0")
            h.update(bytes.fromhex(file_sha256(f)))
    return h.hexdigest()


def tree_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 over every file below ``path`` (relative path, then bytes), in sorted order: the
    identity of a whole store, e.g. the bundled demo atlas and its rebuild."""
    root = Path(path)
    h = hashlib.sha256()
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(root)).encode())
        with open(f, "rb") as fh:
            h.update(hashlib.file_digest(fh, "sha256").digest())
    return h.hexdigest()


def json_sha256(obj: Any) -> str:
    """sha256 of canonical JSON (sorted keys, no whitespace): settings, plans, result hashes."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=to_jsonable)
    return hashlib.sha256(text.encode()).hexdigest()


class CsrContentDigest:
    """Streaming sha256 of a cells x genes matrix written block by block: values, column indices
    and row lengths in a fixed dtype, so the same values in the same cell order give the same
    digest whatever the block sizes or index dtypes (the dataset writer's content identity)."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()

    def update(self, block: Any) -> None:
        import numpy as np

        self._h.update(np.ascontiguousarray(block.data, dtype=np.float32).tobytes())
        self._h.update(np.ascontiguousarray(block.indices, dtype=np.int64).tobytes())
        self._h.update(np.diff(np.asarray(block.indptr, dtype=np.int64)).tobytes())

    def hexdigest(self) -> str:
        return self._h.hexdigest()


def bytes_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def model_sha256(model: Any) -> str:
    """Identity of a loaded model: architecture, value space, vocabulary and every weight
    (name, dtype, shape, bytes). Provenance (a card, a training log) is not part of it, so
    re-describing a model does not orphan the translators trained on its features."""
    import dataclasses

    import torch

    cfg = model.config
    h = hashlib.sha256()
    h.update(json.dumps({"arch": dataclasses.asdict(cfg.arch),
                         "values": dataclasses.asdict(cfg.values)},
                        sort_keys=True, default=str).encode())
    h.update(json.dumps(sorted(model.vocab.items())).encode())
    state = model.state_dict() if hasattr(model, "state_dict") else {}
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()
