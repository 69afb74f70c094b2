"""The genes a network is built over, as the model names them: contexts are drawn from here.

Whoever computes features (translator training over a gene list, the benchmark over a BEELINE
dataset, the job over an atlas dataset) describes its genes the same way, so the same genes give
the same contexts: symbols resolved to the model's vocabulary by the one naming rule
(:func:`atlasgrn.models.vocab.canonical_symbols`, first name wins per symbol), anchors ordered by
the spec's anchor policy, and the mean profile on the model's value scale when the spec needs it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import AtlasgrnError
from ..models.values import to_model_space
from ..models.vocab import SPECIAL_TOKENS, canonical_symbols
from .spec import FeatureSpec


@dataclass(frozen=True)
class GeneUniverse:
    """Genes known to the model (``genes``: vocabulary symbols, sorted), the order in which
    anchors fill a context, the mean profile (vocabulary symbol -> model-space value, or None)
    and the given name of each gene (``names``: given name -> vocabulary symbol)."""

    genes: tuple[str, ...]
    anchors: tuple[str, ...]
    profile: Mapping[str, float] | None
    names: Mapping[str, str] = field(default_factory=dict)
    unmapped: tuple[str, ...] = ()

    def canonical(self, names: Sequence[str]) -> list[str | None]:
        """Vocabulary symbol of each given name (None where the gene is not in the universe)."""
        return [self.names.get(str(n)) for n in names]


def profile_from_means(means: np.ndarray, value_kind: str) -> np.ndarray:
    """The dataset's mean cell on the model's value scale: per-gene means normalised like one
    cell (``to_model_space``), so the profile sits on the same scale as the probes' grids."""
    row = np.asarray(means, dtype=np.float64)[None, :]
    return np.asarray(to_model_space(row, value_kind)[0], dtype=np.float64)


def build_universe(vocab: Mapping[str, int], names: Sequence[str], spec: FeatureSpec, *,
                   means: Sequence[float] | np.ndarray | None = None,
                   value_kind: str | None = None, label: str = "genes") -> GeneUniverse:
    """Describe a gene list for ``spec``: ``means`` (raw per-gene means aligned with ``names``,
    and their ``value_kind``) give the profile, which a profile background or ``pert`` needs
    (checked where those kinds are computed), and are required for expression anchors."""
    symbols = canonical_symbols(vocab, [str(n) for n in names])
    first: dict[str, int] = {}
    given: dict[str, str] = {}
    unmapped: list[str] = []
    for pos, (name, sym) in enumerate(zip(names, symbols)):
        if sym is None or sym in SPECIAL_TOKENS:
            unmapped.append(str(name))
            continue
        given.setdefault(str(name), sym)
        first.setdefault(sym, pos)
    if not first:
        raise AtlasgrnError("no gene is in the model's vocabulary", key=label,
                            remedy="use gene symbols of the model's species/vocabulary")
    genes = tuple(sorted(first))
    mean_of: dict[str, float] | None = None
    profile: dict[str, float] | None = None
    if means is not None:
        # Per-gene means are float32 statistics (as the atlas caches them): rounding here makes
        # the profile a function of the data, not of how a caller summed it (a dense float64
        # mean and a blockwise sparse sum differ in their last bits).
        raw = np.asarray(means, dtype=np.float32).astype(np.float64)
        if raw.shape != (len(names),):
            raise ValueError(f"{raw.shape[0]} means for {len(names)} genes")
        mean_of = {g: float(raw[first[g]]) for g in genes}
        if spec.needs_profile():
            if value_kind is None:
                raise ValueError("a profile needs the value kind of the means")
            prof = profile_from_means(raw, value_kind)
            profile = {g: float(prof[first[g]]) for g in genes}
    if spec.anchors == "token_id":
        anchors = tuple(sorted(genes, key=lambda g: int(vocab[g])))
    else:
        if mean_of is None:
            raise AtlasgrnError("the feature spec orders anchors by expression, but this gene "
                                "set has no expression", key=label,
                                remedy="give expression, or use a translator with "
                                       "anchors='token_id'")
        anchors = tuple(sorted(genes, key=lambda g: (-mean_of[g], g)))
    return GeneUniverse(genes=genes, anchors=anchors, profile=profile, names=given,
                        unmapped=tuple(unmapped))


def vocabulary_anchors(vocab: Mapping[str, int], spec: FeatureSpec) -> tuple[str, ...]:
    """Universal mode's one anchor list, fixed with the model: its vocabulary's genes in
    token-id order (the ``token_id`` policy applied to the model's whole gene universe), cut to
    the context length. A dataset never changes it, so a block's features do not depend on
    which datasets share the atlas."""
    if spec.anchors != "token_id":
        raise AtlasgrnError(f"universal mode needs token-id anchors, not {spec.anchors!r}",
                            key="feature_spec.anchors", remedy="use --mode context, or a "
                            "translator trained with anchors='token_id'")
    genes = sorted((g for g in vocab if g not in SPECIAL_TOKENS), key=lambda g: int(vocab[g]))
    return tuple(genes[:spec.context_len])
