"""Translator checkpoints (design §3.3): ``translator.json`` + ``translator.safetensors``.

Weights load through safetensors (no pickle); the JSON carries the architecture, normalisation
statistics, training provenance and validation metrics, and is checked against the tensors so a
mismatched pair fails with one line instead of a shape error deep in torch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..errors import CheckpointError
from ..jsonable import to_jsonable
from .mlp import EdgeMLP
from .model import KindModel, Translator
from .normalize import FeatureNormalizer

FORMAT = 1
JSON_NAME = "translator.json"
WEIGHTS_NAME = "translator.safetensors"


def save_translator(translator: Translator, out_dir: str | os.PathLike[str],
                    overwrite: bool = False) -> Path:
    """Write the checkpoint; an existing checkpoint is replaced only with ``overwrite``."""
    out = Path(out_dir)
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
    meta = {"format": FORMAT, "kinds": kinds, "ensemble_kinds": list(translator.ensemble_kinds),
            "provenance": dict(translator.provenance)}
    tmp_w = out / (WEIGHTS_NAME + ".tmp")
    tmp_j = out / (JSON_NAME + ".tmp")
    save_file(tensors, str(tmp_w))
    # safetensors creates the file 0600; a shipped checkpoint must be readable like any file.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_w, 0o666 & ~umask)
    tmp_j.write_text(json.dumps(meta, indent=2, default=to_jsonable))
    os.replace(tmp_w, out / WEIGHTS_NAME)
    os.replace(tmp_j, out / JSON_NAME)  # the JSON last: its presence means complete
    return out


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
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"unsupported translator format {meta.get('format')!r}",
                              path=str(jpath), key="format",
                              remedy=f"this atlasgrn reads format {FORMAT}")
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
                                metrics=spec.get("metrics", {}))
    ens = tuple(meta.get("ensemble_kinds", []))
    if not kinds or any(k not in kinds for k in ens):
        raise CheckpointError("ensemble names a kind with no weights", path=str(jpath),
                              key="ensemble_kinds", remedy="re-train the translator")
    return Translator(kinds=kinds, ensemble_kinds=ens, provenance=meta.get("provenance", {}))
