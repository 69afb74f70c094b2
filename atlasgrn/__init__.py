"""atlasgrn: gene regulatory networks across single-cell atlases with frozen foundation models.

Public API (imported lazily so ``import atlasgrn`` stays cheap and never starts Ray):
``open_atlas``, ``load_model``, ``load_translator``, ``infer``.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "open_atlas": "atlasgrn.atlas",
    "Atlas": "atlasgrn.atlas",
    "AtlasgrnError": "atlasgrn.errors",
    "load_model": "atlasgrn.models",
    "load_translator": "atlasgrn.translator.bundled",
    "infer": "atlasgrn.api",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'atlasgrn' has no attribute {name!r}")


__all__ = list(_LAZY)
