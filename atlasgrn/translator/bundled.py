"""The bundled default translator (``atlasgrn/data/translators/default/``).

``python -m atlasgrn.run`` with no ``--translator`` scores with it, as it uses the bundled model
when no ``--model`` is given. It is trained separately (on the bundled model's features); until
it ships, asking for it is a clear one-line error rather than a silent fallback.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from ..errors import CheckpointError
from .checkpoint import JSON_NAME, load_translator_dir
from .model import Translator


def bundled_translator_dir() -> Path:
    """Where the default translator lives inside the installed package."""
    return Path(str(resources.files("atlasgrn").joinpath("data", "translators", "default")))


def load_translator(path: str | os.PathLike[str] | None = None) -> Translator:
    """Load a translator directory; the bundled default when ``path`` is None."""
    if path is not None:
        return load_translator_dir(path)
    d = bundled_translator_dir()
    if not (d / JSON_NAME).is_file():
        raise CheckpointError("no bundled translator in this installation", path=str(d),
                              key="--translator", remedy="pass --translator DIR (a directory "
                              "with translator.json and translator.safetensors)")
    return load_translator_dir(d)
