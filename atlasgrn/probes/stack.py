"""Several gene-pair blocks as one batch: the probes' unit of work on an accelerator.

One block of 32 x 128 pairs keeps a GPU busy for microseconds per kernel: probed alone it is
launch-bound (docs/probes.md: exact GDT at 4,922 pairs/s on an H100 at the bundled model's size).
A :class:`BlockStack` holds B blocks of one shape (same context length, sources and targets per
block) so every probe feeds all their virtual cells through the same model calls, each row with
its own block's context. Rows are independent in the model, so a block's features do not depend
on which blocks share its batch (bit-identical in fp32 on CPU; tests/test_probes_stacked.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from atlasgrn.errors import AtlasgrnError
from atlasgrn.models.interface import GeneModel
from atlasgrn.probes.cells import Background, background_vector
from atlasgrn.probes.context import IdsLike, pair_index
from atlasgrn.probes.execution import model_device_dtype


@dataclass(frozen=True)
class BlockStack:
    """B blocks of one shape: contexts ``[B, L]``, unique source and target positions in them
    (``[B, S]``, ``[B, T]``) and each block's background cell ``[B, L]`` (model dtype)."""

    contexts: torch.Tensor
    source_pos: torch.Tensor
    target_pos: torch.Tensor
    backgrounds: torch.Tensor
    scalar: bool   # every background is a scalar (the uniform reading treats profiles apart)

    @property
    def n_blocks(self) -> int:
        return int(self.contexts.shape[0])

    def per_row(self, repeat: int) -> torch.Tensor:
        """The block of each of ``B * repeat`` rows enumerated block-major."""
        return torch.arange(self.n_blocks).repeat_interleave(repeat)


def stack_blocks(model: GeneModel, contexts: Sequence[IdsLike], sources: Sequence[IdsLike],
                 targets: Sequence[IdsLike], backgrounds: Sequence[Background]) -> BlockStack:
    """Validate each block (as :func:`pair_index` does) and stack them.

    Sources and targets must be unique within a block (the engine's blocks are), and every block
    must have the same context length and numbers of sources and targets: group blocks by shape
    before stacking. Backgrounds are all scalars or all profiles.
    """
    if not (len(contexts) == len(sources) == len(targets) == len(backgrounds)) or not contexts:
        raise AtlasgrnError("a stack needs one context, source list, target list and "
                            "background per block, and at least one block", key="blocks",
                            remedy="pass equally long, non-empty lists")
    _device, dtype = model_device_dtype(model)
    space = model.config.values
    idx = [pair_index(c, s, t, pad_id=model.config.arch.pad_id)
           for c, s, t in zip(contexts, sources, targets)]
    shapes = {(i.length, i.source_pos.numel(), i.target_pos.numel()) for i in idx}
    if len(shapes) != 1:
        raise AtlasgrnError(f"blocks of different shapes cannot share a stack: {sorted(shapes)}",
                            key="blocks", remedy="group blocks by (context length, sources, "
                            "targets) first")
    for i in idx:
        if (torch.unique(i.source_pos).numel() != i.source_pos.numel()
                or torch.unique(i.target_pos).numel() != i.target_pos.numel()):
            raise AtlasgrnError("a stacked block repeats a source or target", key="blocks",
                                remedy="deduplicate each block's sources and targets")
    bases = [background_vector(space, bg, i.length, dtype) for bg, i in zip(backgrounds, idx)]
    scalars = {scalar for _vec, scalar in bases}
    if len(scalars) != 1:
        raise AtlasgrnError("a stack mixes scalar and profile backgrounds", key="background",
                            remedy="stack blocks of one background kind")
    return BlockStack(contexts=torch.stack([i.context for i in idx]),
                      source_pos=torch.stack([i.source_pos for i in idx]),
                      target_pos=torch.stack([i.target_pos for i in idx]),
                      backgrounds=torch.stack([vec for vec, _scalar in bases]),
                      scalar=scalars.pop())
