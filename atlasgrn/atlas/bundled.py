"""Data shipped inside the package (the demo atlas)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

DEMO_ATLAS = "demo_atlas.zarr"


def demo_atlas_path() -> Path:
    """Path of the bundled demo atlas (BEELINE mESC, mDC, hHEP TFs+500; see DEMO_ATLAS.md).

    Returned as a filesystem path because Zarr needs a directory; the package is installed
    unzipped (setuptools default), so the resource is a real directory.
    """
    path = Path(str(resources.files("atlasgrn") / "data" / DEMO_ATLAS))
    if not (path / "zarr.json").is_file():
        from ..errors import AtlasgrnError
        raise AtlasgrnError("the bundled demo atlas is missing from this installation",
                            path=str(path), remedy="reinstall atlasgrn, or rebuild it with "
                            "scripts/build_demo_atlas.py")
    return path
