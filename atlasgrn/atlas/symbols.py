"""Gene symbols: normalisation, duplicates, and mapping onto a model vocabulary.

Why this exists: the same gene reaches us as ``ENSG00000141510.16``, ``" TP53 "``, ``Tp53`` or
``TP53`` depending on the source, and a foundation model only knows the spellings in its
vocabulary. Everything here is pure numpy/pandas so it can be tested without touching a store.

The normalisation and matching rule itself lives in :mod:`atlasgrn.gene_symbols`, shared with the
model layer so a gene gets the same vocabulary entry in the ingest report and in the edges. This
module adds what only ingest needs:

* :func:`map_to_vocab` counts exact and case-insensitive matches for the ingest report.
* Duplicates are reported by :func:`find_duplicates`; :func:`dedupe_index` gives the column
  grouping used to merge them (the ingest layer sums them; see ``atlasgrn.atlas.ingest.genes``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import AtlasgrnError
from ..gene_symbols import VocabMatcher, match_key, normalize_symbol, normalize_symbols

__all__ = ["VocabMapping", "dedupe_index", "find_duplicates", "load_vocab", "map_to_vocab",
           "match_key", "normalize_symbol", "normalize_symbols"]

def find_duplicates(names: Sequence[str]) -> dict[str, list[int]]:
    """Every name that occurs more than once, with all its positions (first-seen order)."""
    positions: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        positions.setdefault(n, []).append(i)
    return {n: pos for n, pos in positions.items() if len(pos) > 1}


def dedupe_index(names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Unique names in first-occurrence order, and for each input column its output column.

    ``out_names[inverse[i]] == names[i]``; merging duplicates is then a group-by on ``inverse``.
    First-occurrence order (not sorted order) keeps the source's gene order, so a file without
    duplicates maps to itself.
    """
    codes, uniques = pd.factorize(pd.Index(list(names), dtype=object), sort=False)
    return np.asarray(uniques, dtype=object), codes.astype(np.int64)


@dataclass(frozen=True)
class VocabMapping:
    """How a gene list maps onto a vocabulary (symbol -> token id).

    ``ids[i]`` is the token id of gene ``i`` or -1 when it is not in the vocabulary.
    """

    n_genes: int
    n_exact: int
    n_case_insensitive: int
    ids: np.ndarray = field(repr=False)
    unmapped_examples: tuple[str, ...] = ()
    case_mapped_examples: tuple[tuple[str, str], ...] = ()

    @property
    def n_mapped(self) -> int:
        return self.n_exact + self.n_case_insensitive

    @property
    def n_unmapped(self) -> int:
        return self.n_genes - self.n_mapped

    @property
    def fraction_mapped(self) -> float:
        return self.n_mapped / self.n_genes if self.n_genes else 0.0

    def summary(self) -> str:
        """One line for logs and reports."""
        ex = ", ".join(self.unmapped_examples[:5])
        return (f"{self.n_mapped}/{self.n_genes} genes mapped ({100 * self.fraction_mapped:.1f}%;"
                f" {self.n_exact} exact, {self.n_case_insensitive} by case)"
                + (f"; unmapped e.g. {ex}" if ex else ""))


def map_to_vocab(genes: Sequence[str], vocab: Mapping[str, int], *, n_examples: int = 10
                 ) -> VocabMapping:
    """Map gene names onto ``vocab``: exact match first, then by upper-cased symbol.

    When several vocabulary entries share an upper-cased key, the one with the smallest id wins
    (deterministic whatever the dict order).
    """
    matcher = VocabMatcher(vocab)
    ids = np.full(len(genes), -1, dtype=np.int64)
    n_exact = n_case = 0
    unmapped: list[str] = []
    case_ex: list[tuple[str, str]] = []
    for i, g in enumerate(genes):
        key, exact = matcher.match(g)
        if key is None:
            if len(unmapped) < n_examples:
                unmapped.append(normalize_symbol(g))
            continue
        ids[i] = int(vocab[key])
        if exact:
            n_exact += 1
        else:
            n_case += 1
            if len(case_ex) < n_examples:
                case_ex.append((normalize_symbol(g), key))
    return VocabMapping(n_genes=len(genes), n_exact=n_exact, n_case_insensitive=n_case, ids=ids,
                        unmapped_examples=tuple(unmapped), case_mapped_examples=tuple(case_ex))


def load_vocab(path: str | os.PathLike[str]) -> dict[str, int]:
    """Read a ``vocab.json`` (symbol -> token id), as scGPT and our checkpoints store it."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AtlasgrnError(f"cannot read vocabulary ({type(exc).__name__})", path=str(path),
                            remedy="pass a readable vocab.json (symbol -> token id)") from None
    if not isinstance(data, dict):
        raise AtlasgrnError("vocabulary is not a JSON object", path=str(path),
                            remedy="vocab.json must map gene symbol -> integer token id")
    return {str(k): int(v) for k, v in data.items()}
