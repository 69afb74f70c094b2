"""How much do gene-identity shortcuts score under protocol A, and does protocol M remove it?

Trains nothing: the degree prior reads the hESC training labels, target-is-TF reads the test TF
list, |Pearson| reads the test expression. Prints AUPRC (and AUROC) under protocol A (random
same-TF negatives) and M (negatives matched on target TF status and in-degree bin) for every
test dataset of the chosen network types, training on hESC as the paper does.

    .venv/bin/python benchmarks/shortcut_baselines.py [--root DIR] [--size 500] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from atlasgrn.bench import (
    auroc,
    average_precision,
    build_protocols,
    degree_prior,
    discover,
    pearson_matrix,
    plan_transfers,
    random_scores,
    target_is_tf,
    training_pairs,
)

DEFAULT_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "beeline_genelink"


def run(root: Path, size: int, networks: list[str], seeds: list[int]) -> pd.DataFrame:
    rows = []
    plans = [p for p in plan_transfers(discover(root))
             if p.train.size == size and p.tests[0].network in networks]
    for plan in plans:
        for test in plan.tests:
            pearson = pearson_matrix(test.load_expression(), test.tfs) if test.has_expression \
                else None
            for seed in seeds:
                train = training_pairs(plan.train, seed)
                sets = build_protocols(test, train, seed, protocols=("A", "M"))
                for proto, pairs in sets.items():
                    methods = {"target_is_tf": target_is_tf(pairs, test.tfs),
                               "degree_prior": degree_prior(pairs, train),
                               "random": random_scores(pairs, seed)}
                    if pearson is not None:
                        methods["|pearson|"] = pearson.score(pairs)
                    for name, scores in methods.items():
                        rows.append({"network": test.network, "dataset": test.dataset,
                                     "protocol": proto, "method": name, "seed": seed,
                                     "auprc": average_precision(pairs.labels, scores),
                                     "auroc": auroc(pairs.labels, scores),
                                     "n_pairs": len(pairs),
                                     "m_widened": pairs.info.get("widened", np.nan),
                                     "m_dropped": pairs.info.get("dropped_positives", np.nan)})
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    ap.add_argument("--size", type=int, default=500)
    ap.add_argument("--networks", nargs="+", default=["STRING", "Non-Specific"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    args = ap.parse_args()
    table = run(args.root, args.size, args.networks, args.seeds)
    mean = table.groupby(["network", "dataset", "method", "protocol"])["auprc"].mean()
    wide = mean.unstack("protocol").unstack("method")
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 20)
    print(f"AUPRC, train hESC -> test, TFs+{args.size}, mean over seeds {args.seeds} "
          "(|pearson| absent where the test expression is not available)")
    print(wide.round(3).to_string())
    print("\nRange over test datasets (min-max of the seed means):")
    spread = mean.groupby(["network", "method", "protocol"]).agg(["min", "max"]).unstack(
        "protocol")
    print(spread.round(3).to_string())
    m = table[(table.protocol == "M") & (table.method == "random")]
    print("\nProtocol M matching: negatives from a neighbouring degree bin / dropped positives"
          " (per dataset, seed 0):")
    first = m[m.seed == args.seeds[0]]
    print(first[["network", "dataset", "n_pairs", "m_widened", "m_dropped"]].to_string(
        index=False))


if __name__ == "__main__":
    main()
