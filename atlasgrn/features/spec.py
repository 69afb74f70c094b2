"""The feature contract (design §3.3a): everything that changes a pair's features, as one value.

A translator only means something on the features it was trained on. A pair's probe features
depend on the model, the VVP grid, the GDT levels and reading, the background of the virtual
cell, the context length, which other genes share the pair's context (the block layout and the
anchor genes that fill it) and how self pairs are treated. One train/serve skew of exactly this
kind has shipped before (the job probed a profile background with 255-token contexts while the
translator had seen a scalar one with 256), so these settings are no longer options that two code
paths default separately: a :class:`FeatureSpec` is fixed when a translator is trained, saved in
its ``translator.json`` under ``feature_spec``, and every consumer (the job, ``atlasgrn.infer``,
``--plan``, the benchmark) computes features from that one value through
:func:`atlasgrn.features.block_features`. An explicit option that contradicts it is refused.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..digest import json_sha256
from ..errors import AtlasgrnError

#: Kinds probed in a context of genes (one block at a time).
CONTEXT_KINDS = ("vvp", "gdt_uniform", "gdt_source", "attn", "pert")
#: Kinds read from the token embeddings alone (no context, no background).
EMBEDDING_KINDS = ("emb_concat", "emb_sum")
#: Kinds read from the dataset's expression, not the model: the rank of the pair's |Pearson|,
#: |Spearman| and mutual information among its source's candidate targets in the dataset or
#: context (:mod:`atlasgrn.features.stats`). Ranks have no scale, so they transfer.
STAT_KINDS = ("rank_pearson", "rank_spearman", "rank_mi")
#: Kinds a model computes (probes and embeddings); the rest come from expression statistics.
MODEL_KINDS = CONTEXT_KINDS + EMBEDDING_KINDS
ALL_KINDS = MODEL_KINDS + STAT_KINDS
#: What a translator trains on unless told otherwise: every kind that needs no expression.
DEFAULT_KINDS = ("vvp", "gdt_uniform", "gdt_source", "emb_concat", "emb_sum")
#: Kinds that need the expression profile of the dataset or context.
PROFILE_KINDS = ("pert",)
GDT_READINGS = {"gdt_uniform": "uniform", "gdt_source": "source"}

#: The background is the mean profile of the dataset (or context), not a scalar.
PROFILE = "profile"
#: Anchor policies: which genes fill a block's context up to ``context_len`` tokens.
#: ``token_id``: the universe's genes in token-id order (needs no expression, so a translator
#: trained from a prior network and a gene list can use it); ``expression``: the universe's genes
#: by decreasing mean expression (needs the dataset's statistics).
ANCHOR_POLICIES = ("token_id", "expression")
#: Self pairs (i == j) carry gene identity, not regulation (method.md §7): never scored.
SELF_PAIR_RULES = ("drop",)
GDT_METHODS = ("exact", "fd")
#: Longest context probed by default: the cost of a block grows with it, and 256 tokens hold
#: the default 32 x 128 block with room for anchors.
DEFAULT_CONTEXT_LEN = 256
SPEC_FORMAT = 1
#: How a network relates to its data (recorded with the spec, derived from it):
#: ``universal``: a scalar background and token-id anchors, so a pair's features depend on the
#: model, the spec and the genes of its block only; the engine lays blocks over the union of an
#: atlas's genes, probes each once and serves every dataset from the stored scores.
#: ``context``: a profile background (or expression anchors, ``pert`` or a rank statistic):
#: features depend on the dataset or cell-type context, so each context is probed on its own.
MODES = ("universal", "context")


@dataclass(frozen=True)
class FeatureSpec:
    """How every feature of a translator's world is computed (see the module docstring).

    ``background`` is a number (every unperturbed gene of a virtual cell at that value) or
    ``"profile"`` (each gene at the dataset's mean, in the model's value space). Blocks are
    ``source_block`` regulators x ``target_block`` targets of the symbol-sorted gene lists;
    their context is the block's genes filled with anchors (``anchors`` policy) to exactly
    ``context_len`` tokens. ``model_sha256`` is :func:`atlasgrn.digest.model_sha256` of the model.
    """

    vvp_grid: tuple[float, ...]
    gdt_levels: tuple[float, ...]
    background: float | str
    model_sha256: str
    kinds: tuple[str, ...] = DEFAULT_KINDS
    context_len: int = DEFAULT_CONTEXT_LEN
    source_block: int = 32
    target_block: int = 128
    anchors: str = "token_id"
    gdt_method: str = "exact"
    self_pairs: str = "drop"

    def __post_init__(self) -> None:
        object.__setattr__(self, "kinds", tuple(self.kinds))
        object.__setattr__(self, "vvp_grid", tuple(float(x) for x in self.vvp_grid))
        object.__setattr__(self, "gdt_levels", tuple(float(x) for x in self.gdt_levels))
        if not isinstance(self.background, str):
            object.__setattr__(self, "background", float(self.background))
        self.validate()

    # ------------------------------------------------------------------ construction
    @classmethod
    def for_model(cls, model: Any, **overrides: Any) -> FeatureSpec:
        """The spec of ``model`` with its value space's grid, levels and background, a context
        of :data:`DEFAULT_CONTEXT_LEN` (or the model's maximum, if shorter), and ``overrides``
        (None values are ignored, so optional CLI options can be passed straight through)."""
        from ..digest import model_sha256

        arch, space = model.config.arch, model.config.values
        longest = int(arch.max_len) - (1 if arch.cls_token_id is not None else 0)
        base: dict[str, Any] = {"vvp_grid": tuple(space.vvp_grid),
                                "gdt_levels": tuple(space.gdt_levels),
                                "background": float(space.background),
                                "model_sha256": model_sha256(model),
                                "context_len": min(DEFAULT_CONTEXT_LEN, longest)}
        base.update({k: v for k, v in overrides.items() if v is not None})
        spec = cls(**base)
        if spec.context_len > longest:
            raise AtlasgrnError(f"context length {spec.context_len} exceeds the model's "
                                f"maximum of {longest} tokens", key="context_len",
                                remedy=f"use at most {longest}")
        return spec

    def validate(self) -> None:
        """Refuse a spec no probe can honour, naming the field."""
        bad_kinds = [k for k in self.kinds if k not in ALL_KINDS]
        problems = [
            ("kinds", not self.kinds or bool(bad_kinds),
             f"choose from {', '.join(ALL_KINDS)}"),
            ("kinds", len(set(self.kinds)) != len(self.kinds), "list each kind once"),
            ("vvp_grid", not self.vvp_grid, "give at least one grid value"),
            ("gdt_levels", not self.gdt_levels, "give at least one level"),
            ("background", isinstance(self.background, str) and self.background != PROFILE,
             f"use a number or '{PROFILE}'"),
            ("context_len", self.context_len < 4, "use at least a few dozen tokens"),
            ("source_block", self.source_block < 1, "use a positive block size"),
            ("target_block", self.target_block < 1, "use a positive block size"),
            ("context_len", self.source_block + self.target_block > self.context_len,
             "source_block + target_block must fit in context_len"),
            ("anchors", self.anchors not in ANCHOR_POLICIES,
             f"use one of {', '.join(ANCHOR_POLICIES)}"),
            ("gdt_method", self.gdt_method not in GDT_METHODS,
             f"use one of {', '.join(GDT_METHODS)}"),
            ("self_pairs", self.self_pairs not in SELF_PAIR_RULES,
             f"use one of {', '.join(SELF_PAIR_RULES)}"),
        ]
        for key, wrong, remedy in problems:
            if wrong:
                value = bad_kinds or getattr(self, key)
                raise AtlasgrnError(f"invalid feature spec {key}={value!r}",
                                    key=f"feature_spec.{key}", remedy=remedy)

    # ------------------------------------------------------------------ properties
    @property
    def profile_background(self) -> bool:
        return self.background == PROFILE

    def needs_profile(self, kinds: Sequence[str] | None = None) -> bool:
        """Whether computing ``kinds`` (default: all) needs the dataset's mean profile."""
        use = self.kinds if kinds is None else kinds
        context = [k for k in use if k in CONTEXT_KINDS]
        return bool(context) and (self.profile_background
                                  or any(k in PROFILE_KINDS for k in context))

    @property
    def stat_kinds(self) -> tuple[str, ...]:
        """The spec's rank-statistic kinds (computed from the dataset's expression)."""
        return tuple(k for k in self.kinds if k in STAT_KINDS)

    @property
    def needs_expression(self) -> bool:
        """Whether features need the dataset's expression statistics at all."""
        return self.needs_profile() or self.anchors == "expression" or bool(self.stat_kinds)

    @property
    def mode(self) -> str:
        """``universal`` or ``context`` (see :data:`MODES`): what the engine may share across
        datasets. Derived, never set, so a spec cannot claim a mode its settings contradict."""
        return "context" if self.needs_expression else "universal"

    @property
    def gdt_kinds(self) -> tuple[str, ...]:
        return tuple(k for k in self.kinds if k in GDT_READINGS)

    def digest(self) -> str:
        """sha256 of the spec: the identity of its features (cache keys, run hashes). The
        derived ``mode`` is left out, so specs saved before it was recorded keep their digest."""
        return json_sha256({k: v for k, v in self.to_json().items() if k != "mode"})

    # ------------------------------------------------------------------ (de)serialisation
    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        d["format"] = SPEC_FORMAT
        d["mode"] = self.mode
        return d

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, path: str | None = None) -> FeatureSpec:
        """Parse a saved spec; anything missing, unknown or malformed is one line naming it."""
        if not isinstance(data, Mapping):
            raise AtlasgrnError("feature_spec is not a JSON object", path=path,
                                key="feature_spec", remedy="retrain the translator")
        if data.get("format") != SPEC_FORMAT:
            raise AtlasgrnError(f"unsupported feature_spec format {data.get('format')!r}",
                                path=path, key="feature_spec.format",
                                remedy=f"this atlasgrn reads format {SPEC_FORMAT}; retrain")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names - {"format", "mode"})
        required = [f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING]
        missing = [n for n in required if n not in data]
        if unknown or missing:
            key = (unknown or missing)[0]
            raise AtlasgrnError(f"feature_spec {'has unknown' if unknown else 'lacks'} field "
                                f"'{key}'", path=path, key=f"feature_spec.{key}",
                                remedy="retrain the translator with this atlasgrn")
        kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()
              if k in names}
        try:
            spec = cls(**kw)
        except (TypeError, ValueError) as exc:
            raise AtlasgrnError(f"malformed feature_spec ({exc})", path=path,
                                key="feature_spec", remedy="retrain the translator") from None
        except AtlasgrnError as exc:
            raise AtlasgrnError(exc.detail, path=path, key=exc.key, remedy=exc.remedy) from None
        stated = data.get("mode")
        if stated is not None and stated != spec.mode:
            raise AtlasgrnError(f"feature_spec states mode {stated!r}, but its settings make it "
                                f"{spec.mode!r}", path=path, key="feature_spec.mode",
                                remedy="retrain the translator with this atlasgrn")
        return spec

    # ------------------------------------------------------------------ checks
    def check_option(self, option: str, field: str, value: Any, *,
                     path: str | None = None) -> None:
        """Refuse an explicit option whose value contradicts the spec (None = not given)."""
        if value is None:
            return
        have = getattr(self, field)
        want: Any = value
        if isinstance(have, tuple):
            want = tuple(float(x) for x in value)
        elif isinstance(have, float) and not isinstance(value, str):
            want = float(value)
        if want != have:
            raise AtlasgrnError(f"{option} {_show(value)} contradicts the translator's "
                                f"feature_spec.{field} {_show(have)}", path=path, key=option,
                                remedy=f"drop {option} (the translator's spec is used), or use a "
                                       "translator trained with that setting")

    def check_model(self, model_sha256: str, *, path: str | None = None) -> None:
        """Refuse serving this spec's translator with another model's features."""
        if model_sha256 != self.model_sha256:
            raise AtlasgrnError(f"the translator was trained on features of model "
                                f"{self.model_sha256[:12]}, but the run's model is "
                                f"{model_sha256[:12]}", path=path, key="feature_spec.model_sha256",
                                remedy="use the model the translator was trained with, or "
                                       "retrain it: atlasgrn train-translator --model <this model>")


def _show(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(f"{float(x):g}" for x in value)
    return str(value)
