"""Lazy package exports (PEP 562), so that importing a light module of a package does not
import the whole package.

``atlasgrn`` builds its CLI parser from the config dataclasses (each default written once), and
Python imports a package's ``__init__`` before any of its modules: with eager re-exports, reading
``FeatureSpec``'s defaults pulled in torch, and ``--help`` or a one-line bad-input error took
seconds. A package ``__init__`` declares its public names here instead; each is imported on first
use, and ``from atlasgrn.features import FeatureSpec`` works as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``exports`` maps a public name to the
    submodule (relative, e.g. ``".spec"``) that defines it."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(module, package), name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
