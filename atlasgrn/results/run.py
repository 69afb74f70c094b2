"""A finished build, opened for reading: its manifest, its edges and consensus as lazy datasets.

Everything that reads results (``atlasgrn edges``, ``export``, ``report``) opens a run here, so
"is this a run, and is it complete" is answered once: a directory without ``manifest.json`` is
not a run; a run without ``_SUCCESS`` is partial and refused unless the caller accepts that
(then every output says it is partial). Edges are a hive-partitioned pyarrow dataset, read with
filters and column projections, never whole.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pyarrow.dataset as pads

from ..engine.output import MANIFEST, SUCCESS, RunOutput, edges_dataset
from ..errors import AtlasgrnError
from ..objectstore import check_bucket


@dataclass
class Run:
    """An opened run directory (local path or object-store prefix)."""

    output: RunOutput
    manifest: dict[str, Any]
    complete: bool

    @property
    def uri(self) -> str:
        return self.output.uri

    @property
    def datasets(self) -> list[str]:
        plan = self.manifest.get("plan", {}).get("datasets", {})
        return sorted(plan) if plan else sorted(
            p.split("=", 1)[1] for p in self.output.listdir("edges") if "=" in p)

    @property
    def logit_columns(self) -> list[str]:
        return [f"logit_{k}" for k in self.manifest.get("kinds", [])]

    def edges(self) -> pads.Dataset:
        """All edge files as one dataset with a ``dataset`` column (read with filters)."""
        return edges_dataset(self.output)

    def consensus(self) -> pads.Dataset:
        return pads.dataset(self.output.path("consensus"), format="parquet",
                            filesystem=self.output.fs)

    def has_consensus(self) -> bool:
        return bool(self.output.listdir("consensus"))

    def check_dataset(self, name: str | None) -> None:
        if name is not None and name not in self.datasets:
            raise AtlasgrnError(f"dataset '{name}' is not in this run", path=self.uri,
                                key="--dataset", remedy=f"one of: {', '.join(self.datasets)}")


def open_run(uri: str, *, allow_partial: bool = False) -> Run:
    """Open a run directory; not a run, or a partial one without ``allow_partial``, is one line."""
    check_bucket(uri, "RUN")
    out = RunOutput(uri)
    if out.isfile(out.root):
        raise AtlasgrnError("is a file, not a run directory", path=uri,
                            remedy="give the --out directory of a build")
    if not out.exists(out.path(MANIFEST)):
        raise AtlasgrnError("not a run directory (no manifest.json)", path=uri,
                            remedy="give the --out directory of `python -m atlasgrn.run`")
    try:
        manifest = json.loads(out.read_text(out.path(MANIFEST)))
    except ValueError:
        raise AtlasgrnError("manifest.json is not valid JSON", path=out.path(MANIFEST),
                            remedy="rerun the build into a new --out") from None
    if not isinstance(manifest, dict):
        raise AtlasgrnError(f"manifest.json holds a JSON {type(manifest).__name__}, not a run's "
                            "manifest", path=out.path(MANIFEST),
                            remedy="give the --out directory of `python -m atlasgrn.run`")
    complete = out.exists(out.path(SUCCESS))
    if not complete and not allow_partial:
        raise AtlasgrnError(f"the run is partial (status {manifest.get('status', '?')!r}, no "
                            "_SUCCESS)", path=uri,
                            remedy="rerun the build to finish it, or pass --partial to read the "
                                   "blocks written so far")
    if not out.listdir("edges"):
        raise AtlasgrnError("the run has no edge files yet", path=uri,
                            remedy="rerun the build to compute them")
    return Run(output=out, manifest=manifest, complete=complete)
