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
    #: the obs value of ``--context-key`` whose network this block belongs to ("": none)
    context: str = ""

    @property
    def network(self) -> str:
        """The network the block belongs to: its dataset, or ``dataset/context``."""
        return network_name(self.dataset, self.context)

    @property
    def block_id(self) -> str:
        return f"{self.network}:{self.source_block}:{self.target_block}"

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
                   targets=tuple(str(t) for t in row["targets"]),
                   context=str(row.get("context") or ""))


@dataclass(frozen=True)
class DatasetPlan:
    """The usable genes of one dataset and its blocks."""

    dataset: str
    genes: tuple[str, ...]          # dataset genes known to the model, sorted
    sources: tuple[str, ...]        # regulators among them, sorted
    blocks: tuple[BlockSpec, ...]
    context: str = ""

    @property
    def network(self) -> str:
        return network_name(self.dataset, self.context)

    @property
    def n_pairs(self) -> int:
        return sum(b.n_pairs for b in self.blocks)


def network_name(dataset: str, context: str = "") -> str:
    """One name per network: the dataset, or ``dataset/context`` for a ``--context-key``
    value (the key of its anchors and profile, and the prefix of its block ids)."""
    return f"{dataset}/{context}" if context else dataset


def plan_dataset(dataset: str, genes: Iterable[str], regulators: Iterable[str],
                 source_block: int, target_block: int, context: str = "") -> DatasetPlan:
    """Blocks covering every regulator x gene pair of a dataset, or of one of its contexts
    (self-pairs excluded)."""
    usable = tuple(sorted(set(genes)))
    reg_set = set(regulators)
    sources = tuple(g for g in usable if g in reg_set)
    blocks = tuple(BlockSpec(dataset, b.row, b.col, b.sources, b.targets, context)
                   for b in layout_blocks(sources, usable, source_block, target_block))
    return DatasetPlan(dataset=dataset, genes=usable, sources=sources, blocks=blocks,
                       context=context)


#: The pseudo-dataset of universal-mode probe blocks (laid over the union of the atlas's genes).
#: It never names an edge file: those blocks write to the probe store.
UNION = "_union"


@dataclass(frozen=True)
class UnionPlan:
    """Universal mode: the blocks probed (over the union of every dataset's genes and
    regulators, cut by the same layout rule as a dataset's) and, for each dataset block, the
    union block whose stored scores it is cut from."""

    blocks: tuple[BlockSpec, ...]
    parent: Mapping[str, BlockSpec]     # dataset block_id -> union block

    @property
    def n_pairs(self) -> int:
        return sum(b.n_pairs for b in self.blocks)


def plan_universal(datasets: Sequence[tuple[str, Iterable[str], Iterable[str]]],
                   source_block: int, target_block: int
                   ) -> tuple[list[DatasetPlan], UnionPlan]:
    """Universal mode's plan: ``datasets`` are (name, genes, regulators). The union of genes
    is laid out once; a dataset's block (same row and column numbers as its union block) holds
    the union block's pairs that the dataset has, so its edges are a restriction of the union
    block's scores: a join, not a probe. Union blocks no dataset needs are left out."""
    described = [(name, tuple(sorted(set(genes))), set(regs)) for name, genes, regs in datasets]
    union_genes = sorted({g for _, genes, _ in described for g in genes})
    union_sources = sorted({g for _, genes, regs in described for g in genes if g in regs})
    layout = layout_blocks(union_sources, union_genes, source_block, target_block)
    plans: list[DatasetPlan] = []
    parent: dict[str, BlockSpec] = {}
    used: dict[tuple[int, int], BlockSpec] = {}
    for name, genes, regs in described:
        gene_set = set(genes)
        sources = tuple(g for g in genes if g in regs)
        blocks = []
        for b in layout:
            mine = BlockSpec(name, b.row, b.col, tuple(s for s in b.sources if s in regs
                                                         and s in gene_set),
                             tuple(t for t in b.targets if t in gene_set))
            if not mine.sources or not mine.targets or not mine.n_pairs:
                continue
            union_block = used.setdefault((b.row, b.col), BlockSpec(UNION, b.row, b.col,
                                                                    b.sources, b.targets))
            parent[mine.block_id] = union_block
            blocks.append(mine)
        plans.append(DatasetPlan(dataset=name, genes=genes, sources=sources,
                                 blocks=tuple(blocks)))
    union = UnionPlan(blocks=tuple(used[k] for k in sorted(used)), parent=parent)
    return plans, union


def plan_fingerprint(plans: Sequence[DatasetPlan]) -> str:
    """A hash of everything that decides the blocks: stable across runs and machines."""
    return json_sha256([[p.network, list(p.genes), list(p.sources),
                         [(b.source_block, b.target_block) for b in p.blocks]]
                        for p in plans])[:16]
