"""The one rule for naming genes: normalise a spelling, then match it onto a vocabulary.

Why this module exists on its own: the atlas layer (ingest reports) and the model layer (token
ids for probes, pre-training, translator features) must map a gene name to the *same*
vocabulary entry, or a gene would carry one name in the atlas report and another in the edges.
The model layer may not import the Zarr-backed ``atlas`` package, so the rule lives here, with
no dependency beyond numpy.

Rules:

* :func:`normalize_symbol` strips surrounding whitespace and the version suffix of Ensembl-style
  ids (``ENSG00000141510.16`` -> ``ENSG00000141510``). It does **not** change case: upper-casing
  would corrupt real human symbols such as ``C9orf152``.
* :class:`VocabMatcher` matches an exact spelling first; otherwise the upper-cased spelling among
  the upper-cased vocabulary. For mouse data this is the documented ortholog shortcut (``Sox2``
  -> ``SOX2``). When several entries share an upper-cased key, the smallest token id wins, so
  the answer never depends on dict order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import numpy as np

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


class VocabMatcher:
    """Resolves gene names to vocabulary keys.

    Building the upper-cased index is one pass over the vocabulary (20-40 ms for the 40-60k
    entries of our and scGPT's vocabularies). Callers build one per gene list during set-up
    (per dataset on the driver, per universe for translator features), never per block.
    """

    def __init__(self, vocab: Mapping[str, int]) -> None:
        self._vocab = vocab
        by_key: dict[str, tuple[int, str]] = {}
        for sym, tok in vocab.items():
            key = match_key(sym)
            if key not in by_key or int(tok) < by_key[key][0]:
                by_key[key] = (int(tok), sym)
        self._by_key = {key: sym for key, (_, sym) in by_key.items()}

    def match(self, name: object) -> tuple[str | None, bool]:
        """``(vocabulary key or None, matched exactly?)`` for one raw gene name."""
        text = normalize_symbol(name)
        if not text:
            return None, False
        if text in self._vocab:
            return text, True
        return self._by_key.get(match_key(text)), False
