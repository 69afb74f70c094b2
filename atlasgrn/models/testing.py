"""A tiny, deterministic random-weight model for other layers' tests (probes, engine, bench).

It implements the full :class:`~atlasgrn.models.interface.GeneModel` contract with the native
value space, so code tested against it runs unchanged on a trained or imported model.
"""

from __future__ import annotations

from collections.abc import Sequence

from .factory import new_model
from .interface import ArchConfig
from .scgpt_model import ScGPTModel
from .values import native_value_space
from .vocab import PAD_TOKEN


def tiny_model(seed: int = 0, genes: Sequence[str] | None = None, *, d_model: int = 32,
               n_layers: int = 2, n_heads: int = 4, d_ff: int = 64, max_value: float = 6.0,
               with_cls: bool = False) -> ScGPTModel:
    """Random-weight model over ``genes`` (default ``G0``..``G49``); ``<pad>`` is id 0.

    Same ``seed`` and arguments -> bit-identical weights. ``with_cls`` adds a ``<cls>`` token
    the model prepends internally, as imported scGPT models do.
    """
    genes = list(genes) if genes is not None else [f"G{i}" for i in range(50)]
    if len(set(genes)) != len(genes):
        raise ValueError("genes must be unique")
    vocab = {PAD_TOKEN: 0}
    vocab.update({g: i + 1 for i, g in enumerate(genes)})
    cls_id = None
    if with_cls:
        cls_id = len(vocab)
        vocab["<cls>"] = cls_id
    arch = ArchConfig(vocab_size=len(vocab), d_model=d_model, n_layers=n_layers,
                      n_heads=n_heads, d_ff=d_ff, dropout=0.0, pad_id=0, cls_token_id=cls_id)
    return new_model(arch, native_value_space(max_value), vocab, seed=seed,
                     provenance={"origin": "atlasgrn.models.testing.tiny_model",
                                 "seed": seed, "trained": False,
                                 "vocabulary": {"ids": "compact"}})
