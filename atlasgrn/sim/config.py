"""The simulator's one configuration object and its result."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..atlas.store import DatasetInfo
from ..errors import AtlasgrnError

#: Default cells per write block (rounded up to whole RNG units).
DEFAULT_BLOCK_CELLS = 8192


@dataclass(frozen=True)
class SimConfig:
    """What to simulate. Defaults give a small atlas (3 x 500 cells x 200 genes) in seconds.

    ``n_tfs=None`` means 10% of the genes (at least 2). ``n_cells`` is per dataset.
    ``edges_out=None`` writes the true edges to ``<out>.edges.parquet`` beside the store.
    """

    n_datasets: int = 3
    n_cells: int = 500
    n_genes: int = 200
    n_tfs: int | None = None
    seed: int = 0
    block_cells: int = DEFAULT_BLOCK_CELLS
    edges_out: str | None = None
    overwrite: bool = False

    @property
    def tfs(self) -> int:
        return self.n_tfs if self.n_tfs is not None else max(2, round(0.1 * self.n_genes))

    def validate(self, label: str, *, max_tfs: int, max_targets: int) -> None:
        """Refuse sizes the simulator cannot honour, naming the option to change."""
        for key, value in (("--datasets", self.n_datasets), ("--cells", self.n_cells),
                           ("--genes", self.n_genes), ("--tfs", self.tfs),
                           ("--block-cells", self.block_cells)):
            if int(value) <= 0:
                raise AtlasgrnError(f"{key} must be a positive integer, got {value}",
                                    path=label, key=key, remedy=f"pass {key} >= 1")
        if self.seed < 0:
            raise AtlasgrnError(f"--seed must be >= 0, got {self.seed}", path=label,
                                key="--seed", remedy="pass a non-negative integer seed")
        if self.tfs >= self.n_genes:
            raise AtlasgrnError(f"{self.tfs} TFs for {self.n_genes} genes: the network needs "
                                "at least one non-TF target", path=label, key="--tfs",
                                remedy=f"pass --tfs < --genes (e.g. --tfs "
                                       f"{max(1, self.n_genes // 10)})")
        if self.tfs > max_tfs:
            raise AtlasgrnError(f"{self.tfs} TFs requested but the bundled human TF list has "
                                f"{max_tfs}", path=label, key="--tfs",
                                remedy=f"pass --tfs <= {max_tfs}")
        if self.n_genes - self.tfs > max_targets:
            raise AtlasgrnError(f"{self.n_genes - self.tfs} non-TF genes requested but the "
                                f"bundled gene list has {max_targets}", path=label,
                                key="--genes", remedy=f"pass --genes <= {max_targets + self.tfs}")
        if self.n_datasets > 999:
            raise AtlasgrnError(f"{self.n_datasets} datasets is more than 999", path=label,
                                key="--datasets", remedy="pass --datasets <= 999")


@dataclass(frozen=True)
class SimResult:
    """What was written: the atlas, its datasets, and the true network."""

    atlas_uri: str
    edges_path: str
    datasets: list[DatasetInfo]
    genes: list[str]
    tfs: list[str]
    n_edges: int
    seconds: float
    config: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        cells = sum(d.n_cells for d in self.datasets)
        return (f"wrote {len(self.datasets)} datasets ({cells:,} cells x {len(self.genes):,} "
                f"genes, {len(self.tfs):,} TFs) to {self.atlas_uri} and {self.n_edges:,} true "
                f"edges to {self.edges_path} in {self.seconds:.1f} s")


def config_dict(config: SimConfig) -> dict[str, Any]:
    return {**asdict(config), "n_tfs": config.tfs}
