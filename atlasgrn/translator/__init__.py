"""Translators: small MLPs mapping a gene pair's probe features to an edge score (method §3)."""

from __future__ import annotations

from ..lazy import lazy_exports

_EXPORTS = {
    "FeatureNormalizer": ".normalize",
    "KindModel": ".model",
    "Translator": ".model",
    "TranslatorConfig": ".config",
    "load_translator_dir": ".checkpoint",
    "save_translator": ".checkpoint",
    "split_by_group": ".train",
    "train_translator": ".train",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
