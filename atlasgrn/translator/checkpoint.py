"""Translator checkpoints (design §3.3): ``translator.json`` + ``translator.safetensors``.

Weights load through safetensors (no pickle); the JSON carries the architecture, normalisation
statistics, the feature contract (``feature_spec``, design §3.3a), training provenance and
validation metrics, and is checked against the tensors so a mismatched pair fails with one line
instead of a shape error deep in torch. Format 1 checkpoints predate the feature contract: they
cannot say how their features were computed, so they are refused with the command that
retrains them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..atomic import write_path_atomic, write_text_atomic
from ..digest import file_sha256
from ..errors import AtlasgrnError, CheckpointError
from ..features.spec import STAT_KINDS, FeatureSpec
from ..jsonable import to_jsonable
from .mlp import EdgeMLP
from .model import KindModel, Translator
from .normalize import FeatureNormalizer

FORMAT = 2
RETRAIN = ("retrain it with this atlasgrn: atlasgrn train-translator --prior EDGES --genes "
           "GENES --out DIR (see README)")
JSON_NAME = "translator.json"
WEIGHTS_NAME = "translator.safetensors"


def save_translator(translator: Translator, out_dir: str | os.PathLike[str],
                    overwrite: bool = False) -> Path:
    """Write the checkpoint; an existing checkpoint is replaced only with ``overwrite``.

    A translator without a feature spec cannot be saved: nobody could serve it correctly.
    """
    out = Path(out_dir)
    if translator.feature_spec is None:
        raise CheckpointError("the translator has no feature_spec", path=str(out),
                              key="feature_spec", remedy="set translator.feature_spec to the "
                              "FeatureSpec its training features were computed with")
    if (out / JSON_NAME).exists() and not overwrite:
        raise CheckpointError("a translator checkpoint already exists here", path=str(out),
                              remedy="choose another --out or pass --overwrite")
    out.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    kinds: dict[str, Any] = {}
    for name, km in translator.kinds.items():
        for pname, t in km.mlp.state_dict().items():
            tensors[f"{name}.{pname}"] = t.detach().contiguous().cpu()
        kinds[name] = {"in_dim": km.mlp.in_dim, "hidden": list(km.mlp.hidden),
                       "dropout": km.mlp.dropout, "normalizer": km.normalizer.to_json(),
                       "metrics": dict(km.metrics)}
        if km.inputs:
            kinds[name]["inputs"] = list(km.inputs)
    write_path_atomic(out / WEIGHTS_NAME, lambda tmp: save_file(tensors, tmp))
    # the JSON names its weights: a crash between the two replacements cannot leave a new
    # weights file under an old JSON that loads cleanly and scores wrongly
    meta = {"format": FORMAT, "feature_spec": translator.feature_spec.to_json(),
            "weights_sha256": file_sha256(out / WEIGHTS_NAME),
            "kinds": kinds, "ensemble_kinds": list(translator.ensemble_kinds),
            "provenance": dict(translator.provenance)}
    # the JSON last: its presence means the checkpoint is complete
    write_text_atomic(out / JSON_NAME, json.dumps(meta, indent=2, default=to_jsonable) + "\n")
    return out


def feature_dim(spec: FeatureSpec, kind: str) -> int | None:
    """Features per pair a kind has under ``spec`` (None: depends on the model, embeddings)."""
    if kind == "vvp":
        return len(spec.vvp_grid)
    if kind in ("gdt_uniform", "gdt_source"):
        return len(spec.gdt_levels)
    if kind in ("attn", "pert") or kind in STAT_KINDS:
        return 1
    return None


def load_translator_dir(path: str | os.PathLike[str]) -> Translator:
    """Load a checkpoint directory, validating JSON against tensors."""
    p = Path(path)
    jpath, wpath = p / JSON_NAME, p / WEIGHTS_NAME
    for f in (jpath, wpath):
        if not f.exists():
            raise CheckpointError("translator checkpoint file missing", path=str(f),
                                  remedy="pass a directory written by 'atlasgrn train-translator'")
    try:
        meta = json.loads(jpath.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"invalid JSON ({exc.msg} at line {exc.lineno})", path=str(jpath),
                              remedy="restore the file from the checkpoint") from None
    if meta.get("format") == 1 or (meta.get("format") == FORMAT
                                   and "feature_spec" not in meta):
        raise CheckpointError("the translator has no feature_spec: it predates the feature "
                              "contract, so how its features were computed is unknown",
                              path=str(jpath), key="feature_spec", remedy=RETRAIN)
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"unsupported translator format {meta.get('format')!r}",
                              path=str(jpath), key="format",
                              remedy=f"this atlasgrn reads format {FORMAT}")
    try:
        feature_spec = FeatureSpec.from_json(meta["feature_spec"], path=str(jpath))
    except AtlasgrnError as exc:
        raise CheckpointError(exc.detail, path=str(jpath), key=exc.key,
                              remedy=exc.remedy) from None
    want = meta.get("weights_sha256")
    if want is not None and file_sha256(wpath) != want:
        raise CheckpointError("the weights file is not the one this translator.json was saved "
                              "with (an interrupted save?)", path=str(wpath),
                              key="weights_sha256", remedy="re-train or restore the checkpoint")
    try:
        tensors = load_file(str(wpath))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"unreadable weights ({exc})", path=str(wpath),
                              remedy="restore the file from the checkpoint") from None
    kinds: dict[str, KindModel] = {}
    for name, spec in meta.get("kinds", {}).items():
        try:
            mlp = EdgeMLP(int(spec["in_dim"]), spec["hidden"], float(spec["dropout"]))
            normalizer = FeatureNormalizer.from_json(spec["normalizer"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"malformed entry ({exc})", path=str(jpath),
                                  key=f"kinds.{name}", remedy="re-train the translator") from None
        state = {k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(f"{name}.")}
        expected = mlp.state_dict()
        missing = sorted(set(expected) - set(state))
        if missing:
            raise CheckpointError(f"tensor missing for kind '{name}'", path=str(wpath),
                                  key=f"{name}.{missing[0]}", remedy="re-train the translator")
        for k, t in expected.items():
            if tuple(state[k].shape) != tuple(t.shape):
                raise CheckpointError(f"tensor shape {tuple(state[k].shape)} != expected "
                                      f"{tuple(t.shape)}", path=str(wpath), key=f"{name}.{k}",
                                      remedy="the JSON and weights belong to different runs")
        if normalizer.tau.shape[0] != mlp.in_dim:
            raise CheckpointError("normaliser size disagrees with in_dim", path=str(jpath),
                                  key=f"kinds.{name}.normalizer", remedy="re-train the translator")
        mlp.load_state_dict(state)
        kinds[name] = KindModel(kind=name, normalizer=normalizer, mlp=mlp,
                                metrics=spec.get("metrics", {}),
                                inputs=tuple(str(k) for k in spec.get("inputs", ())))
    ens = tuple(meta.get("ensemble_kinds", []))
    if not kinds or any(k not in kinds for k in ens):
        raise CheckpointError("ensemble names a kind with no weights", path=str(jpath),
                              key="ensemble_kinds", remedy="re-train the translator")
    outside = [k for km in kinds.values() for k in km.input_kinds
               if k not in feature_spec.kinds]
    if outside:
        raise CheckpointError(f"kind '{outside[0]}' has weights but is not in the feature_spec",
                              path=str(jpath), key="feature_spec.kinds", remedy=RETRAIN)
    for name, km in kinds.items():
        dims = [feature_dim(feature_spec, k) for k in km.input_kinds]
        dim = None if None in dims else sum(d for d in dims if d is not None)
        if dim is not None and km.mlp.in_dim != dim:
            raise CheckpointError(f"kind '{name}' takes {km.mlp.in_dim} features but its "
                                  f"feature_spec gives {dim}", path=str(jpath),
                                  key=f"kinds.{name}.in_dim", remedy=RETRAIN)
    return Translator(kinds=kinds, ensemble_kinds=ens, provenance=meta.get("provenance", {}),
                      feature_spec=feature_spec)


def checkpoint_files_in(path: Path) -> list[str]:
    """The checkpoint files an atlasgrn translator directory holds (none when there is no
    readable ``translator.json`` with a format number): how a translator directory written
    before output markers is recognised as atlasgrn's own."""
    try:
        meta = json.loads((Path(path) / JSON_NAME).read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(meta, dict) or not isinstance(meta.get("format"), int):
        return []
    return [n for n in (JSON_NAME, WEIGHTS_NAME) if (Path(path) / n).exists()]

