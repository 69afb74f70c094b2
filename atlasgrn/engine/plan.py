"""Planning gene-pair blocks: which (sources, targets) each unit of work covers, and its id.

A block is (dataset, source block index, target block index), laid out by the feature layer's
:func:`~atlasgrn.features.layout_blocks` with the translator's block sizes (the layout is part
of the feature contract: training cut its genes the same way). Its id,
``<dataset>:<source_block>:<target_block>``, depends only on the dataset's sorted usable genes,
the regulator list and the block sizes — never on scheduling — so output file names are stable
across reruns: a resumed run finds finished blocks by name and computes only the rest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

from ..digest import json_sha256
from ..features import layout_blocks
from ..features.layout import pair_count


@dataclass(frozen=True)
class BlockSpec:
    """One unit of work: all pairs (s, t) with s in ``sources``, t in ``targets``, s != t."""

    dataset: str
    source_block: int
    target_block: int
    sources: tuple[str, ...]
    targets: tuple[str, ...]

    @property
    def block_id(self) -> str:
        return f"{self.dataset}:{self.source_block}:{self.target_block}"

    @property
    def file_stem(self) -> str:
        """File-system-safe form of the id (':' is not allowed on every object store)."""
        return f"{self.dataset}__{self.source_block:05d}_{self.target_block:05d}"

    @property
    def n_pairs(self) -> int:
        return pair_count(self.sources, self.targets)

    def to_row(self) -> dict[str, object]:
        row = asdict(self)
        row["sources"] = list(self.sources)
        row["targets"] = list(self.targets)
        row["block_id"] = self.block_id
        return row

    @classmethod
    def from_row(cls, row: Mapping[str, object]) -> BlockSpec:
        return cls(dataset=str(row["dataset"]), source_block=int(row["source_block"]),
                   target_block=int(row["target_block"]),
                   sources=tuple(str(s) for s in row["sources"]),
                   targets=tuple(str(t) for t in row["targets"]))


@dataclass(frozen=True)
class DatasetPlan:
    """The usable genes of one dataset and its blocks."""

    dataset: str
    genes: tuple[str, ...]          # dataset genes known to the model, sorted
    sources: tuple[str, ...]        # regulators among them, sorted
    blocks: tuple[BlockSpec, ...]

    @property
    def n_pairs(self) -> int:
        return sum(b.n_pairs for b in self.blocks)


def plan_dataset(dataset: str, genes: Iterable[str], regulators: Iterable[str],
                 source_block: int, target_block: int) -> DatasetPlan:
    """Blocks covering every regulator x gene pair of a dataset (self-pairs excluded)."""
    usable = tuple(sorted(set(genes)))
    reg_set = set(regulators)
    sources = tuple(g for g in usable if g in reg_set)
    blocks = tuple(BlockSpec(dataset, b.row, b.col, b.sources, b.targets)
                   for b in layout_blocks(sources, usable, source_block, target_block))
    return DatasetPlan(dataset=dataset, genes=usable, sources=sources, blocks=blocks)


def plan_fingerprint(plans: Sequence[DatasetPlan]) -> str:
    """A hash of everything that decides the blocks: stable across runs and machines."""
    return json_sha256([[p.dataset, list(p.genes), list(p.sources),
                         [(b.source_block, b.target_block) for b in p.blocks]]
                        for p in plans])[:16]
