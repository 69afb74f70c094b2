"""The generalisation benchmark: BEELINE/GENELink data, test protocols, metrics, baselines.

A driver loops ``plan_transfers(discover(root))``: for each transfer, ``training_pairs(train)``;
for each test set, ``build_protocols(test, training, seed)``; score each PairSet with any
``pairs -> scores`` function; collect ``metric_rows(...)`` into one long table
(:data:`RESULT_COLUMNS`).
"""

from __future__ import annotations

from ..lazy import lazy_exports

_EXPORTS = {
    "BenchConfig": ".config",
    "EXPRESSION_BASELINES": ".baselines",
    "Expression": ".genelink",
    "METRICS": ".metrics",
    "NetworkSet": ".genelink",
    "PROTOCOLS": ".config",
    "PairSet": ".splits",
    "RESULT_COLUMNS": ".metrics",
    "ScoreMatrix": ".baselines",
    "Transfer": ".genelink",
    "auprc_ratio": ".metrics",
    "auroc": ".metrics",
    "average_precision": ".metrics",
    "build_protocols": ".splits",
    "degree_bins": ".splits",
    "degree_prior": ".baselines",
    "discover": ".genelink",
    "early_precision": ".metrics",
    "epr": ".metrics",
    "evaluate": ".metrics",
    "expression_score": ".baselines",
    "find_set": ".genelink",
    "load_expression": ".genelink",
    "load_network_set": ".genelink",
    "metric_rows": ".metrics",
    "mutual_information_matrix": ".baselines",
    "pearson_matrix": ".baselines",
    "plan_transfers": ".genelink",
    "pr_curve": ".metrics",
    "protocol_a": ".splits",
    "protocol_b": ".splits",
    "protocol_c": ".splits",
    "protocol_m": ".splits",
    "random_scores": ".baselines",
    "spearman_matrix": ".baselines",
    "target_is_tf": ".baselines",
    "training_pairs": ".splits",
    "tree_importance_matrix": ".baselines",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
