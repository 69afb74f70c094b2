"""What a benchmark run depends on, apart from the code that runs it (no torch, no pandas), so
the CLI reads its defaults cheaply: the method and protocol names, and :class:`BenchConfig`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..translator.config import TranslatorConfig

PROTOCOLS = ("A", "B", "C", "M")
#: BEELINE/GENELink expression is log-scale (log1p of normalised counts), as pre-training read it.
BEELINE_VALUE_KIND = "log1p"
TRANSLATED = ("vvp", "gdt_uniform", "gdt_source", "emb", "emb_sum", "pert")
RAW_SCFM = ("pert_origin", "attn_origin")
ENSEMBLES = ("ens", "ens_stats")
#: Learned fusions (one MLP over concatenated kinds): name -> (its kinds, needs expression).
#: ``fused_probes`` reads only what the model computes without expression, so it serves every
#: dataset (and universal mode); ``fused`` adds the knockout read-out and the within-dataset
#: rank statistics; ``fused_emb`` adds the gene embeddings, the gene-identity shortcut that
#: protocols B and M expose.
PROBE_FUSION = ("vvp", "gdt_uniform", "gdt_source", "attn")
STAT_FUSION = ("pert", "rank_pearson", "rank_spearman", "rank_mi")
FUSED = {"fused_probes": (PROBE_FUSION, False),
         "fused": (PROBE_FUSION + STAT_FUSION, True),
         "fused_emb": (PROBE_FUSION + STAT_FUSION + ("emb_concat", "emb_sum"), True)}
#: ``default``: per seed, the translated or fused variant with the best AUROC on pairs of
#: held-out genes of the training dataset (among those the test dataset can serve).
SELECTED = ("default",)
EXPRESSION_METHODS = ("pearson", "spearman", "trees", "mi")
LABEL_METHODS = ("degree", "target_is_tf", "random")
ALL_METHODS = (SELECTED + RAW_SCFM + TRANSLATED + ENSEMBLES + tuple(FUSED)
               + EXPRESSION_METHODS + LABEL_METHODS)
SCFM_METHODS = SELECTED + RAW_SCFM + TRANSLATED + ENSEMBLES + tuple(FUSED)
#: feature kind behind each translated method
METHOD_KIND = {"vvp": "vvp", "gdt_uniform": "gdt_uniform", "gdt_source": "gdt_source",
               "emb": "emb_concat", "emb_sum": "emb_sum", "pert": "pert"}
PROTOCOL_METRICS = {"A": ("auprc", "auroc"), "B": ("auprc", "auroc"), "M": ("auprc", "auroc"),
                    "C": ("auprc", "auroc", "auprc_ratio", "epr")}


@dataclass(frozen=True)
class BenchConfig:
    """Everything a benchmark run depends on (recorded in the manifest)."""

    data: Path
    out: Path
    networks: tuple[str, ...] = ()
    size: int | None = None
    datasets: tuple[str, ...] = ()
    seeds: int = 3
    model: str | None = None
    strict_model: str | None = None
    strict_dataset: str | None = None
    jobs: int = 2
    methods: tuple[str, ...] = ALL_METHODS
    protocols: tuple[str, ...] = PROTOCOLS
    train_dataset: str = "hESC"
    tf_sample: int | None = None
    cache_dir: Path | None = None
    #: FeatureSpec fields (context_len, source_block, target_block ...); None = the default.
    #: One spec per model serves every feature of the run: training and test alike.
    features: Mapping[str, Any] = field(default_factory=dict)
    translator: TranslatorConfig = field(default_factory=TranslatorConfig)
    tree_trees: int = 100
    device: str = "cpu"
