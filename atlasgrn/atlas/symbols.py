"""Gene symbols: normalisation, duplicates, and mapping onto a model vocabulary.

Why this exists: the same gene reaches us as ``ENSG00000141510.16``, ``" TP53 "``, ``Tp53`` or
``TP53`` depending on the source, and a foundation model only knows the spellings in its
vocabulary. Everything here is pure numpy/pandas so it can be tested, and reused by the model
layer, without touching a store.

Rules (documented in one place):

* :func:`normalize_symbol` strips surrounding whitespace and the version suffix of Ensembl-style
  ids (``ENSG00000141510.16`` -> ``ENSG00000141510``). It does **not** change case: the atlas
  stores symbols as the source spells them (design §3.1), because upper-casing would corrupt real
  human symbols such as ``C9orf152``.
* Case is handled at matching time (:func:`map_to_vocab`): an exact match wins; otherwise the
  upper-cased symbol is looked up among the upper-cased vocabulary. For human data this only
  repairs case typos. For mouse data it is the documented ortholog shortcut: a mouse symbol
  (``Sox2``) maps to the human symbol with the same letters (``SOX2``), which holds for most
  one-to-one orthologs and fails (stays unmapped) for mouse-only genes such as ``Gm12345``.
* Duplicates are reported by :func:`find_duplicates`; :func:`dedupe_index` gives the column
  grouping used to merge them (the ingest layer sums them; see ``atlasgrn.atlas.ingest.genes``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import AtlasgrnError

#: Ensembl stable ids with a version: ENSG/ENST/ENSP and species prefixes (ENSMUSG, ...).
_ENSEMBL_VERSIONED = re.compile(r"^(ENS[A-Z]*[GTPE]\d{6,})\.\d+$")
_BLANK = {"", "nan", "none", "na", "null"}


def normalize_symbol(name: object) -> str:
    """One gene name as stored: stripped, Ensembl version removed; '' when there is none."""
    if name is None or (isinstance(name, float) and np.isnan(name)):
        return ""
    if isinstance(name, bytes):
        name = name.decode("utf-8", errors="replace")
    text = str(name).strip()
    if text.lower() in _BLANK:
        return ""
    m = _ENSEMBL_VERSIONED.match(text)
    return m.group(1) if m else text


def normalize_symbols(names: Iterable[object]) -> np.ndarray:
    """Vectorised :func:`normalize_symbol`; returns an object array of str ('' = no name)."""
    return np.asarray([normalize_symbol(n) for n in names], dtype=object)


def match_key(name: str) -> str:
    """The case-folded key used for case-insensitive and mouse-to-human matching."""
    return name.upper()


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
    by_key: dict[str, tuple[int, str]] = {}
    for sym, tok in vocab.items():
        key = match_key(sym)
        if key not in by_key or int(tok) < by_key[key][0]:
            by_key[key] = (int(tok), sym)
    ids = np.full(len(genes), -1, dtype=np.int64)
    n_exact = n_case = 0
    unmapped: list[str] = []
    case_ex: list[tuple[str, str]] = []
    for i, g in enumerate(genes):
        g = normalize_symbol(g)
        if g in vocab:
            ids[i] = int(vocab[g])
            n_exact += 1
            continue
        hit = by_key.get(match_key(g))
        if hit is not None:
            ids[i] = hit[0]
            n_case += 1
            if len(case_ex) < n_examples:
                case_ex.append((g, hit[1]))
        elif len(unmapped) < n_examples:
            unmapped.append(g)
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
