"""The block layout: which regulators and targets share a probe context.

A pair's features depend on the other genes of its context (docs/probes.md measured it), so the
layout is part of the feature contract: the job, the benchmark and translator training cut the
same gene lists into the same blocks. Both lists are sorted by symbol first, so the layout
depends only on the gene sets and the two block sizes, never on file order or scheduling.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Block:
    """All pairs (s, t) with s in ``sources`` and t in ``targets``; ``row``/``col`` number the
    block among the source chunks and target chunks."""

    row: int
    col: int
    sources: tuple[str, ...]
    targets: tuple[str, ...]

    @property
    def n_pairs(self) -> int:
        return pair_count(self.sources, self.targets)


def pair_count(sources: tuple[str, ...], targets: tuple[str, ...]) -> int:
    """Pairs a block scores: every source x target but self pairs (never scored)."""
    return len(sources) * len(targets) - len(set(sources) & set(targets))


def _chunks(items: tuple[str, ...], size: int) -> list[tuple[str, ...]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def layout_blocks(sources: Iterable[str], targets: Iterable[str], source_block: int,
                  target_block: int) -> list[Block]:
    """Blocks covering every source x target pair (blocks holding only self pairs omitted)."""
    if source_block < 1 or target_block < 1:
        raise ValueError("block sizes must be positive")
    srcs = tuple(sorted(set(sources)))
    tgts = tuple(sorted(set(targets)))
    blocks = []
    for row, sb in enumerate(_chunks(srcs, source_block)):
        for col, tb in enumerate(_chunks(tgts, target_block)):
            block = Block(row, col, sb, tb)
            if block.n_pairs:
                blocks.append(block)
    return blocks
