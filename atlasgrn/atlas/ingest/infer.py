"""Guessing species and value kind when the user did not say (always with a warning).

Species, from the gene symbols:

1. Mouse symbols are Capitalised (``Sox2``, ``Gm12345``); human ones are upper-case. If more
   than half of the symbols that contain letters have a lower-case letter (ignoring the human
   ``C9orf152`` pattern), the data are mouse.
2. Upper-case data may still be mouse: BEELINE ships upper-cased mouse symbols. Mouse-only name
   patterns (``...Rik``, ``Gm<digits>``) against human-only ones (``C<n>orf<n>``, ``LINC<n>``,
   ``RP<n>-``, ``MT-``) then decide, when one side has at least 3 hits and 10x the other.
3. Otherwise, with a human vocabulary given, >= 95% exact matches and no mouse pattern -> human.
4. Anything else is ambiguous and refused: the user must pass ``--species``. A wrong species
   silently mis-maps genes, so guessing is worse than asking.

Value kind, from a sample of values (the first cells, up to :data:`SAMPLE_CELLS`):

* all values integers -> ``counts``;
* non-integers with max > 20 -> ``normalized`` (no log scale of expression reaches 20:
  log2 of 1e6 TPM is 19.9);
* non-integers with max <= 20 -> log scale: ``log2`` when max > 9.3, else ``log1p``. Natural log
  of depth-normalised single-cell values stays below ln(1 + 1e4) = 9.2 (CP10k, scanpy's
  default), while log2 of TPM/CPM-like values routinely exceeds it (BEELINE max 11.5-18.4).
"""

from __future__ import annotations

import re

import numpy as np
import scipy.sparse as sp

from ...errors import IngestError

SAMPLE_CELLS = 2000
LOG_MAX = 20.0
LOG2_ABOVE = 9.3

_HUMAN_ORF = re.compile(r"^C\d+orf\d+", re.IGNORECASE)
_MOUSE_ONLY = re.compile(r"(Rik\d*$)|(^Gm\d+$)", re.IGNORECASE)
_HUMAN_ONLY = re.compile(r"(^C\d+orf\d+)|(^LINC\d+)|(^RP\d+-)|(^MT-)", re.IGNORECASE)


def infer_species(genes: np.ndarray, *, source: str, vocab: dict[str, int] | None = None
                  ) -> tuple[str, str]:
    """Return (species, reason) or raise when the symbols do not decide it."""
    names = [str(g) for g in genes if any(c.isalpha() for c in str(g))]
    if not names:
        raise IngestError("cannot infer species: gene names contain no letters", path=source,
                          key="species", remedy="pass --species human|mouse")
    lower = sum(1 for n in names if n != n.upper() and not _HUMAN_ORF.match(n))
    if lower / len(names) > 0.5:
        return "mouse", f"{100 * lower / len(names):.0f}% of symbols are Capitalised (Sox2-style)"
    mouse_hits = sum(1 for n in names if _MOUSE_ONLY.search(n))
    human_hits = sum(1 for n in names if _HUMAN_ONLY.search(n))
    if mouse_hits >= 3 and mouse_hits >= 10 * human_hits:
        return "mouse", (f"upper-case symbols, but {mouse_hits} mouse-only names (...Rik, Gm<n>) "
                         f"vs {human_hits} human-only")
    if human_hits >= 3 and human_hits >= 10 * mouse_hits:
        return "human", (f"{human_hits} human-only names (C<n>orf<n>, LINC<n>, RP<n>-, MT-) vs "
                         f"{mouse_hits} mouse-only")
    if vocab is not None and mouse_hits == 0:
        exact = sum(1 for n in names if n in vocab) / len(names)
        if exact >= 0.95:
            return "human", f"{100 * exact:.0f}% of symbols match the human vocabulary exactly"
    raise IngestError("cannot infer species: upper-case symbols fit both human and upper-cased "
                      f"mouse ({mouse_hits} mouse-only, {human_hits} human-only names)",
                      path=source, key="species", remedy="pass --species human|mouse")


def infer_value_kind(sample: sp.csr_matrix | np.ndarray) -> tuple[str, str]:
    """Return (value_kind, reason) from a sample block of values."""
    data = sample.data if sp.issparse(sample) else np.asarray(sample).ravel()
    data = data[np.isfinite(data)]
    if data.size == 0:
        return "counts", "sample has no non-zero values"
    vmax = float(data.max())
    if np.all(np.abs(data - np.round(data)) < 1e-6):
        return "counts", f"all sampled values are integers (max {vmax:g})"
    if vmax > LOG_MAX:
        return "normalized", f"non-integer values up to {vmax:g} (> {LOG_MAX:g}: not log scale)"
    if vmax > LOG2_ABOVE:
        return "log2", f"non-integer values, max {vmax:g} in ({LOG2_ABOVE:g}, {LOG_MAX:g}]"
    return "log1p", f"non-integer values, max {vmax:g} <= {LOG2_ABOVE:g}"
