"""Gene vocabularies: scGPT's human symbol space, gene-name mapping, compact vocabularies.

atlasgrn's symbol space is scGPT's human vocabulary, so a native model and an imported scGPT
model accept the same gene names. Mouse (or any lower/mixed-case) symbols map by upper-case.
Native models store embedding rows only for the genes they were trained on (a *compact*
vocabulary: symbol -> compact row id, ``<pad>`` = 0): the full 60k x d table would dominate the
checkpoint while most rows would stay at their random initialisation. Imported scGPT models
keep scGPT's ids. ``config.provenance["vocabulary"]["ids"]`` says which ("compact"|"scgpt").
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from ..digest import json_sha256
from ..errors import CheckpointError
from ..gene_symbols import VocabMatcher

PAD_TOKEN = "<pad>"
CLS_TOKEN = "<cls>"
EOC_TOKEN = "<eoc>"
SPECIAL_TOKENS = (PAD_TOKEN, CLS_TOKEN, EOC_TOKEN)
BUNDLED_SCGPT_VOCAB = "scgpt_human_vocab.json.gz"


def read_vocab(path: str | Path) -> dict[str, int]:
    """Read a ``vocab.json`` (optionally gzipped): a JSON object symbol -> non-negative int id."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
        data = json.loads(raw)
    except FileNotFoundError:
        raise CheckpointError("vocabulary file not found", path=str(path),
                              remedy="give the vocab.json that came with the checkpoint") from None
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"vocabulary is not readable JSON ({exc})", path=str(path),
                              remedy="restore vocab.json from the original checkpoint") from None
    return validate_vocab(data, str(path))


def validate_vocab(data: object, label: str) -> dict[str, int]:
    """Check a vocabulary's form: str keys, unique non-negative integer ids."""
    if not isinstance(data, dict) or not data:
        raise CheckpointError("vocabulary must be a non-empty JSON object symbol -> id",
                              path=label, remedy="write vocab.json as {\"GENE\": id, ...}")
    seen: dict[int, str] = {}
    for sym, tid in data.items():
        if not isinstance(tid, int) or isinstance(tid, bool) or tid < 0:
            raise CheckpointError(f"token id {tid!r} is not a non-negative integer",
                                  path=label, key=sym, remedy="ids must be ints >= 0")
        if tid in seen:
            raise CheckpointError(f"token id {tid} is used by '{seen[tid]}' and '{sym}'",
                                  path=label, key=sym, remedy="give every symbol its own id")
        seen[tid] = sym
    return dict(data)


@lru_cache(maxsize=1)
def _bundled_scgpt_vocab() -> tuple[tuple[str, int], ...]:
    ref = resources.files("atlasgrn").joinpath("data", "vocab", BUNDLED_SCGPT_VOCAB)
    data = json.loads(gzip.decompress(ref.read_bytes()))
    return tuple(validate_vocab(data, BUNDLED_SCGPT_VOCAB).items())


def scgpt_human_vocab() -> dict[str, int]:
    """scGPT's human vocabulary (bundled copy; see ``atlasgrn/data/vocab/README.md``)."""
    return dict(_bundled_scgpt_vocab())


def vocab_digest(vocab: Mapping[str, int]) -> str:
    """Order-independent sha256 of a vocabulary, recorded in provenance."""
    return json_sha256(sorted(vocab.items()))


def canonical_symbols(vocab: Mapping[str, int], symbols: Sequence[str]) -> list[str | None]:
    """The vocabulary key each symbol maps to, or None if unknown.

    The rule (normalise, exact, else upper-case with the smallest id winning ties) is the one in
    :mod:`atlasgrn.gene_symbols`, shared with the atlas ingest report.
    """
    matcher = VocabMatcher(vocab)
    return [matcher.match(s)[0] for s in symbols]


def map_genes(vocab: Mapping[str, int], symbols: Sequence[str]) -> np.ndarray:
    """Token ids of ``symbols`` under ``vocab`` (exact, else upper-case match); -1 if unknown.

    Special tokens are never matched by gene names.
    """
    ids = np.full(len(symbols), -1, dtype=np.int64)
    for i, key in enumerate(canonical_symbols(vocab, symbols)):
        if key is not None and key not in SPECIAL_TOKENS:
            ids[i] = vocab[key]
    return ids


def compact_vocab(symbols: Iterable[str], reference: Mapping[str, int]) -> dict[str, int]:
    """``<pad>`` = 0, then the given reference symbols ordered by their reference id.

    Ordering by the reference id makes the compact ids independent of dataset order, so two
    runs over the same genes build the same vocabulary.
    """
    uniq = {s for s in symbols if s in reference and s not in SPECIAL_TOKENS}
    ordered = sorted(uniq, key=lambda s: reference[s])
    out = {PAD_TOKEN: 0}
    out.update({s: i + 1 for i, s in enumerate(ordered)})
    return out
