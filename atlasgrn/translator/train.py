"""Training translators: one MLP per feature kind, early-stopped on held-out *source genes*.

The validation split holds out whole source genes (regulators) of the training pairs, not random
pairs: the translator's job is to score genes it has never seen, so early stopping should reward
that and not memorised gene identities. Everything is seeded; the same inputs and seed give the
same weights bit for bit on CPU.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from .config import TranslatorConfig
from .mlp import EdgeMLP
from .model import KindModel, Translator
from .normalize import FeatureNormalizer


def split_by_group(groups: np.ndarray, val_fraction: float, seed: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val) with whole groups on one side; random pairs if only one group."""
    n = len(groups)
    rng = np.random.default_rng(seed)
    uniq = np.unique(groups)
    if len(uniq) < 2:
        perm = rng.permutation(n)
        n_val = max(1, int(round(val_fraction * n)))
        return np.sort(perm[n_val:]), np.sort(perm[:n_val])
    order = rng.permutation(uniq)
    in_val = np.zeros(n, dtype=bool)
    target = val_fraction * n
    for g in order:
        if in_val.sum() >= target:
            break
        in_val |= groups == g
    if in_val.all():  # one giant group: keep at least something to train on
        in_val[:] = False
        in_val[rng.permutation(n)[: max(1, int(round(val_fraction * n)))]] = True
    return np.flatnonzero(~in_val), np.flatnonzero(in_val)


def split_by_genes(sources: np.ndarray, targets: np.ndarray, fraction: float, seed: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val): a seeded ``fraction`` of all genes (sources and targets together)
    is held out; validation is the pairs whose two genes are both held out, training the pairs
    with neither (pairs with one are left out). The training set's own protocol B."""
    sources, targets = np.asarray(sources), np.asarray(targets)
    genes = np.unique(np.concatenate([sources, targets]))
    rng = np.random.default_rng(seed)
    held = rng.choice(genes, size=max(1, int(round(fraction * len(genes)))), replace=False)
    hs, ht = np.isin(sources, held), np.isin(targets, held)
    return np.flatnonzero(~hs & ~ht), np.flatnonzero(hs & ht)


#: What selects among a translator's models: the AUROC on pairs of genes held out of training
#: altogether. Validation on held-out *sources* alone keeps the targets seen, and a model that
#: memorises target genes (the embeddings) then validates far above what it does on new genes.
SELECTION_METRIC = "unseen_gene_auroc"
#: Share of the genes held out for :data:`SELECTION_METRIC` (about 9% of the pairs validate).
SELECTION_FRACTION = 0.3


def unseen_gene_auroc(features: Mapping[str, np.ndarray], labels: np.ndarray,
                      sources: np.ndarray, targets: np.ndarray,
                      config: TranslatorConfig | None = None,
                      fused: Mapping[str, Sequence[str]] | None = None,
                      per_kind: Sequence[str] | None = None,
                      fraction: float = SELECTION_FRACTION) -> dict[str, float | None]:
    """Each model's AUROC on pairs of genes it never saw (:func:`split_by_genes`), trained the
    same way on the pairs of the other genes: the score :meth:`Translator.best_validated`
    selects with. None where the split leaves a side with one class."""
    config = config or TranslatorConfig()
    labels = np.asarray(labels)
    tr, va = split_by_genes(sources, targets, fraction, config.seed)
    names = list(features if per_kind is None else per_kind) + list(fused or {})
    if len(np.unique(labels[tr])) < 2 or len(np.unique(labels[va])) < 2:
        return {n: None for n in names}
    sub = train_translator({k: np.asarray(v)[tr] for k, v in features.items()}, labels[tr],
                           np.asarray(sources)[tr], config, fused=fused, per_kind=per_kind)
    held = {k: np.asarray(v)[va] for k, v in features.items()}
    return {n: _auroc(labels[va], m.logits(m.features_of(held))) for n, m in sub.kinds.items()}


def record_selection(translator: Translator, scores: Mapping[str, float | None]) -> None:
    """Store each model's :data:`SELECTION_METRIC` in its metrics (saved with the checkpoint)."""
    for name, value in scores.items():
        if name in translator.kinds:
            translator.kinds[name].metrics = {**dict(translator.kinds[name].metrics),
                                              SELECTION_METRIC: value}


def _bce(logits: torch.Tensor, y: torch.Tensor, pos_weight: torch.Tensor) -> torch.Tensor:
    return nn.functional.binary_cross_entropy_with_logits(logits, y, pos_weight=pos_weight)


def train_kind(kind: str, x: np.ndarray, y: np.ndarray, groups: np.ndarray | None,
               config: TranslatorConfig, inputs: Sequence[str] = ()) -> KindModel:
    """Fit the normaliser and the MLP of one feature kind (or of a fused model reading the
    concatenated features of ``inputs``)."""
    x = np.asarray(x).reshape(len(x), -1)
    y = np.asarray(y, dtype=np.float32)
    if len(np.unique(y)) < 2:
        raise ValueError(f"{kind}: training labels need both positives and negatives")
    groups = np.arange(len(y)) if groups is None else np.asarray(groups)
    tr, va = split_by_group(groups, config.val_fraction, config.seed)
    normalizer = FeatureNormalizer.fit(x[tr])
    xt = torch.from_numpy(normalizer.transform(x[tr]))
    yt = torch.from_numpy(y[tr])
    xv = torch.from_numpy(normalizer.transform(x[va]))
    yv = torch.from_numpy(y[va])
    n_pos = float(yt.sum())
    pos_weight = torch.tensor(max(len(yt) - n_pos, 1.0) / max(n_pos, 1.0))

    gen = torch.Generator().manual_seed(config.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        mlp = EdgeMLP(x.shape[1], config.hidden, config.dropout)
    opt = torch.optim.AdamW(mlp.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    best = (float("inf"), -1)
    best_state = {k: v.clone() for k, v in mlp.state_dict().items()}
    history: list[float] = []
    for epoch in range(config.max_epochs):
        mlp.train()
        perm = torch.randperm(len(yt), generator=gen)
        for start in range(0, len(perm), config.batch_size):
            idx = perm[start:start + config.batch_size]
            opt.zero_grad(set_to_none=True)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(config.seed * 1_000_003 + epoch * 7919 + start)
                loss = _bce(mlp(xt[idx]), yt[idx], pos_weight)
            loss.backward()
            opt.step()
        mlp.eval()
        with torch.no_grad():
            val_loss = float(_bce(mlp(xv), yv, pos_weight)) if len(yv) else float(loss)
        history.append(val_loss)
        if val_loss < best[0] - 1e-6:
            best = (val_loss, epoch)
            best_state = {k: v.clone() for k, v in mlp.state_dict().items()}
        elif epoch - best[1] >= config.patience:
            break
    mlp.load_state_dict(best_state)
    mlp.eval()
    with torch.no_grad():
        val_scores = torch.sigmoid(mlp(xv)).numpy() if len(yv) else np.array([])
    metrics = {"val_loss": best[0], "best_epoch": best[1], "epochs_run": len(history),
               "n_train": int(len(tr)), "n_val": int(len(va)),
               "val_auroc": _auroc(y[va], val_scores) if len(va) else None}
    return KindModel(kind=kind, normalizer=normalizer, mlp=mlp, metrics=metrics,
                     inputs=tuple(inputs))


def train_translator(features: Mapping[str, np.ndarray], labels: np.ndarray,
                     groups: np.ndarray | None = None, config: TranslatorConfig | None = None,
                     ensemble_kinds: Sequence[str] | None = None,
                     provenance: Mapping[str, Any] | None = None,
                     fused: Mapping[str, Sequence[str]] | None = None,
                     per_kind: Sequence[str] | None = None) -> Translator:
    """Train one MLP per feature kind on the same labelled pairs, and one per ``fused`` entry
    (name -> the kinds whose features it reads, concatenated).

    ``features[kind]`` is ``[N, ...]`` (flattened per pair), ``labels`` 0/1, ``groups`` the
    source gene of each pair (for the held-out-source validation split). ``per_kind`` limits
    the single-kind models (default: one for every kind of ``features``).
    """
    config = config or TranslatorConfig()
    singles = tuple(features) if per_kind is None else tuple(per_kind)
    kinds = {k: train_kind(k, features[k], labels, groups, config) for k in singles}
    for name, inputs in (fused or {}).items():
        if name in kinds or name in features:
            raise ValueError(f"fused model name {name!r} is already a feature kind")
        missing = [k for k in inputs if k not in features]
        if missing:
            raise ValueError(f"fused model {name!r} reads kinds {missing} with no features")
        x = np.concatenate([np.asarray(features[k], dtype=np.float64).reshape(len(labels), -1)
                            for k in inputs], axis=1)
        kinds[name] = train_kind(name, x, labels, groups, config, inputs=inputs)
    ens = tuple(ensemble_kinds) if ensemble_kinds else tuple(kinds)
    missing = [k for k in ens if k not in kinds]
    if missing:
        raise ValueError(f"ensemble kinds {missing} were not trained")
    prov = {"config": {**asdict(config), "extra": dict(config.extra)}, **(provenance or {})}
    return Translator(kinds=kinds, ensemble_kinds=ens, provenance=prov)


def _auroc(y: np.ndarray, s: np.ndarray) -> float | None:
    """AUROC (scikit-learn's ``roc_auc_score``, ties count one half); None if one class is
    absent (a tiny validation split can have no positives)."""
    y = np.asarray(y).astype(bool)
    if y.all() or not y.any():
        return None
    return float(roc_auc_score(y, s))
