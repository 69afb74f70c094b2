"""Planning gene-pair blocks: which (sources, targets) each unit of work covers, and its id.

A block is (dataset, source block index, target block index). Its id,
``<dataset>:<source_block>:<target_block>``, depends only on the dataset's sorted usable genes,
the regulator list and the block sizes — never on scheduling — so output file names are stable
across reruns: a resumed run finds finished blocks by name and computes only the rest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass


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
        overlap = len(set(self.sources) & set(self.targets))
        return len(self.sources) * len(self.targets) - overlap

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


def _chunks(items: Sequence[str], size: int) -> list[tuple[str, ...]]:
    return [tuple(items[i:i + size]) for i in range(0, len(items), size)]


def plan_dataset(dataset: str, genes: Iterable[str], regulators: Iterable[str],
                 source_block: int, target_block: int) -> DatasetPlan:
    """Blocks covering every regulator x gene pair of a dataset (self-pairs excluded)."""
    if source_block < 1 or target_block < 1:
        raise ValueError("block sizes must be positive")
    usable = tuple(sorted(set(genes)))
    reg_set = set(regulators)
    sources = tuple(g for g in usable if g in reg_set)
    blocks = []
    for si, sb in enumerate(_chunks(sources, source_block)):
        for ti, tb in enumerate(_chunks(usable, target_block)):
            spec = BlockSpec(dataset, si, ti, sb, tb)
            if spec.n_pairs:
                blocks.append(spec)
    return DatasetPlan(dataset=dataset, genes=usable, sources=sources, blocks=tuple(blocks))


def plan_fingerprint(plans: Sequence[DatasetPlan]) -> str:
    """A hash of everything that decides the blocks: stable across runs and machines."""
    h = hashlib.sha256()
    for p in plans:
        h.update(json.dumps([p.dataset, p.genes, p.sources,
                             [(b.source_block, b.target_block) for b in p.blocks]]).encode())
    return h.hexdigest()[:16]
