"""Where to threshold a translator's scores: precision and recall on its validation pairs.

Scores are a sigmoid of a mean logit, trained on balanced pairs: they sit around 0.5 and about
half of all pairs score above 0.5, so "score > 0.5" is no edge list. What a user can act on is
how precision and recall trade off on pairs the translator did not train on (held-out source
genes). The validation set is balanced (one negative per positive), so its precision is the
precision at 50% prevalence; at an atlas's native edge density (a few percent) precision at the
same threshold is far lower. Both facts travel with the numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Fractions of validation pairs above each reported threshold (the top 1% ... 50%).
TOP_FRACTIONS = (0.01, 0.05, 0.1, 0.25, 0.5)


def threshold_guidance(labels: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    """Precision and recall of ``scores >= t`` at the scores that put the top 1, 5, 10, 25 and
    50% of validation pairs above the threshold, and at 0.5."""
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    if len(y) == 0 or y.all() or not y.any():
        return {"pairs": int(len(y)), "thresholds": []}
    cuts = sorted({float(np.quantile(s, 1.0 - f)) for f in TOP_FRACTIONS} | {0.5}, reverse=True)
    rows = []
    for t in cuts:
        above = s >= t
        tp = int((above & y).sum())
        rows.append({"score": round(t, 6), "fraction_above": round(float(above.mean()), 6),
                     "precision": round(tp / above.sum(), 6) if above.any() else None,
                     "recall": round(tp / int(y.sum()), 6)})
    return {"pairs": int(len(y)), "positives": int(y.sum()),
            "prevalence": round(float(y.mean()), 6), "thresholds": rows,
            "note": "validation pairs are held-out source genes with one negative per positive: "
                    "precision is at this prevalence, and lower at an atlas's native edge "
                    "density"}
