"""Which tokens a probe feeds the model, and where its sources and targets sit among them.

Probes index everything by *token id*: the context is the list of token ids fed to the model, and
sources/targets are token ids that must occur in it. Resolving ids to positions once, vectorised,
keeps the probes free of per-pair Python work; refusing duplicates keeps "the position of gene i"
well defined.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from atlasgrn.errors import AtlasgrnError

IdsLike = torch.Tensor | Sequence[int]


def as_ids(ids: IdsLike, *, key: str) -> torch.Tensor:
    """``ids`` as a 1-D int64 CPU tensor; anything else is a one-line :class:`AtlasgrnError`."""
    try:
        tensor = ids.detach().cpu() if isinstance(ids, torch.Tensor) else torch.as_tensor(list(ids))
    except (TypeError, ValueError, RuntimeError) as exc:
        raise AtlasgrnError(f"token ids are not a sequence of integers ({exc})", key=key,
                            remedy="pass a 1-D LongTensor or a list of int token ids") from None
    if tensor.numel() == 0:
        tensor = tensor.reshape(0).long()
    integer = not (tensor.is_floating_point() or tensor.is_complex() or tensor.dtype == torch.bool)
    if tensor.dim() != 1 or not integer:
        raise AtlasgrnError(f"token ids must be a 1-D integer sequence, got shape "
                            f"{tuple(tensor.shape)} dtype {tensor.dtype}", key=key,
                            remedy="pass a 1-D LongTensor or a list of int token ids")
    return tensor.long()


@dataclass(frozen=True)
class PairIndex:
    """A validated context and the positions of the requested sources and targets in it."""

    context: torch.Tensor      # LongTensor[L], token ids in model order
    source_pos: torch.Tensor   # LongTensor[S], positions in ``context``
    target_pos: torch.Tensor   # LongTensor[T]

    @property
    def length(self) -> int:
        return int(self.context.numel())


def positions_in(context: torch.Tensor, genes: torch.Tensor, *, key: str) -> torch.Tensor:
    """Positions of ``genes`` (token ids) in ``context`` (unique token ids), vectorised."""
    if genes.numel() == 0:
        return genes.clone()
    ordered, order = torch.sort(context)
    idx = torch.searchsorted(ordered, genes).clamp(max=max(ordered.numel() - 1, 0))
    found = ordered.numel() > 0 and ordered[idx] == genes
    if ordered.numel() == 0 or not bool(torch.as_tensor(found).all()):
        missing = genes if ordered.numel() == 0 else genes[~found]
        shown = ", ".join(str(int(g)) for g in missing[:5])
        more = f" and {missing.numel() - 5} more" if missing.numel() > 5 else ""
        raise AtlasgrnError(f"{missing.numel()} token id(s) are not in the context: {shown}{more}",
                            key=key, remedy="include every source and target in the context, "
                            "e.g. with atlasgrn.probes.block_context(sources, targets)")
    return order[idx]


def pair_index(context: IdsLike, sources: IdsLike, targets: IdsLike,
               pad_id: int | None = None) -> PairIndex:
    """Validate the context (1-D, unique ids, no padding) and locate sources and targets in it."""
    ctx = as_ids(context, key="context")
    if ctx.numel() == 0:
        raise AtlasgrnError("the context is empty", key="context",
                            remedy="pass the token ids of the genes to feed the model")
    if torch.unique(ctx).numel() != ctx.numel():
        raise AtlasgrnError("the context repeats a token id, so a gene's position is ambiguous",
                            key="context", remedy="deduplicate the context (block_context does)")
    if pad_id is not None and bool((ctx == pad_id).any()):
        raise AtlasgrnError(f"the context contains the padding token id {pad_id}", key="context",
                            remedy="remove padding: probes feed one unpadded virtual cell per row")
    src = positions_in(ctx, as_ids(sources, key="sources"), key="sources")
    tgt = positions_in(ctx, as_ids(targets, key="targets"), key="targets")
    return PairIndex(context=ctx, source_pos=src, target_pos=tgt)


def block_context(sources_block: IdsLike, targets_block: IdsLike, anchors: IdsLike | None = None,
                  max_len: int | None = None, prefix: IdsLike = (), *,
                  fill: bool = False) -> torch.Tensor:
    """Context of the block (sources I, targets J): ``prefix`` + sorted(I ∪ J ∪ anchors).

    With ``fill=True`` the anchors are a priority list instead: they are taken in their given
    order (skipping genes already in I ∪ J) only until the context holds ``max_len`` tokens, so
    every block of a run gets the same context length. That matters because each gene's effect on
    the others is diluted roughly in proportion to the context length (docs/probes.md).

    The genes are sorted by token id, so the same gene set always gives the same context whatever
    order the blocks list them in (scGPT-style models have no positional encoding, but the
    arithmetic is only bit-reproducible for a fixed order). ``prefix`` tokens (e.g. a ``<cls>``
    token a model expects first) are kept in the given order in front and not repeated. A context
    longer than ``max_len`` is refused rather than truncated: dropping genes would silently drop
    pairs. See docs/probes.md for how much a pair's features depend on its block.
    """
    parts = [as_ids(sources_block, key="sources_block"), as_ids(targets_block, key="targets_block")]
    extra = as_ids(anchors if anchors is not None else [], key="anchors")
    if fill and max_len is None:
        raise AtlasgrnError("fill=True needs max_len, the length to fill the context to",
                            key="max_len", remedy="pass max_len, e.g. the pre-training length")
    head = as_ids(prefix, key="prefix")
    if torch.unique(head).numel() != head.numel():
        raise AtlasgrnError("the prefix repeats a token id", key="prefix",
                            remedy="list each prefix token once")
    genes = torch.unique(torch.cat(parts))  # sorted ascending, deduplicated
    genes = genes[~torch.isin(genes, head)]
    if fill:
        assert max_len is not None
        _, first = _first_occurrences(extra)
        extra = extra[first]
        extra = extra[~torch.isin(extra, genes) & ~torch.isin(extra, head)]
        room = max(0, max_len - head.numel() - genes.numel())
        genes = torch.unique(torch.cat([genes, extra[:room]]))
    else:
        genes = torch.unique(torch.cat([genes, extra]))
        genes = genes[~torch.isin(genes, head)]
    ctx = torch.cat([head, genes])
    if max_len is not None and ctx.numel() > max_len:
        raise AtlasgrnError(f"the block needs a context of {ctx.numel()} tokens, more than "
                            f"max_len={max_len}", key="max_len",
                            remedy="use smaller source/target blocks or fewer anchor genes")
    return ctx


def _first_occurrences(ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unique values of ``ids`` and the index of each one's first occurrence, in input order."""
    uniq, inverse = torch.unique(ids, return_inverse=True)
    first = torch.full((uniq.numel(),), ids.numel(), dtype=torch.long)
    first.scatter_reduce_(0, inverse, torch.arange(ids.numel()), reduce="amin")
    return uniq, torch.sort(first).values
