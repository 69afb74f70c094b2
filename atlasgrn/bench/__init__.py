"""The generalisation benchmark: BEELINE/GENELink data, test protocols, metrics, baselines.

A driver loops ``plan_transfers(discover(root))``: for each transfer, ``training_pairs(train)``;
for each test set, ``build_protocols(test, training, seed)``; score each PairSet with any
``pairs -> scores`` function; collect ``metric_rows(...)`` into one long table
(:data:`RESULT_COLUMNS`).
"""

from .baselines import (EXPRESSION_BASELINES, ScoreMatrix, degree_prior, expression_score,
                        mutual_information_matrix, pearson_matrix, random_scores,
                        spearman_matrix, target_is_tf, tree_importance_matrix)
from .genelink import (Expression, NetworkSet, Transfer, discover, find_set, load_expression,
                       load_network_set, plan_transfers)
from .metrics import (METRICS, RESULT_COLUMNS, auprc_ratio, auroc, average_precision,
                      early_precision, epr, evaluate, metric_rows, pr_curve)
from .splits import (PROTOCOLS, PairSet, build_protocols, degree_bins, protocol_a, protocol_b,
                     protocol_c, protocol_m, training_pairs)

__all__ = [
    "EXPRESSION_BASELINES", "METRICS", "PROTOCOLS", "RESULT_COLUMNS", "Expression", "NetworkSet",
    "PairSet", "ScoreMatrix", "Transfer", "auprc_ratio", "auroc", "average_precision",
    "build_protocols", "degree_bins", "degree_prior", "discover", "early_precision", "epr",
    "evaluate", "expression_score", "find_set", "load_expression", "load_network_set",
    "metric_rows", "mutual_information_matrix", "pearson_matrix", "plan_transfers", "pr_curve",
    "protocol_a", "protocol_b", "protocol_c", "protocol_m", "random_scores", "spearman_matrix",
    "target_is_tf", "training_pairs", "tree_importance_matrix",
]
