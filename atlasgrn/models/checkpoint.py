"""Model checkpoints (design §3.2): ``config.json`` + ``model.safetensors`` + ``vocab.json``.

Loading never unpickles anything: the config is strict JSON (unknown fields are refused, so a
checkpoint from a newer atlasgrn fails loudly instead of loading into the wrong architecture),
tensors come from safetensors, and every tensor's name and shape is checked against the
architecture before it is used. Every problem is a one-line :class:`CheckpointError`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..atomic import write_path_atomic, write_text_atomic
from ..errors import CheckpointError
from .interface import ArchConfig, ModelConfig, ValueSpace
from .scgpt_model import ScGPTModel
from .vocab import read_vocab, validate_vocab

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
VOCAB_FILE = "vocab.json"
FORMAT = "atlasgrn-model"
FORMAT_VERSION = 1
_TOP_KEYS = {"format", "format_version", "arch", "values", "provenance"}
#: How weights may be stored. Models always compute in fp32 after loading (half-precision
#: weights are widened on load); bf16 or fp16 storage halves the file, which is what lets a
#: d=192 model fit the 25 MB package cap.
STORAGE_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16,
                  "float16": torch.float16}


def bundled_model_dir() -> Path:
    """Directory of the default model shipped inside the package."""
    return Path(str(resources.files("atlasgrn").joinpath("data", "models", "default")))


# ------------------------------------------------------------------- config (de)serialisation
def config_to_dict(config: ModelConfig) -> dict[str, Any]:
    values = dataclasses.asdict(config.values)
    values["vvp_grid"] = list(values["vvp_grid"])
    values["gdt_levels"] = list(values["gdt_levels"])
    return {"format": FORMAT, "format_version": FORMAT_VERSION,
            "arch": dataclasses.asdict(config.arch), "values": values,
            "provenance": dict(config.provenance)}


def _strict(cls: type, data: object, label: str, section: str) -> Any:
    if not isinstance(data, dict):
        raise CheckpointError(f"'{section}' must be a JSON object", path=label, key=section,
                              remedy="restore config.json from the original checkpoint")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise CheckpointError(f"unknown {section} field '{unknown[0]}'", path=label,
                              key=f"{section}.{unknown[0]}",
                              remedy="remove it, or upgrade atlasgrn to the version that wrote "
                                     "this checkpoint")
    required = {f.name for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    missing = sorted(required - set(data))
    if missing:
        raise CheckpointError(f"missing {section} field '{missing[0]}'", path=label,
                              key=f"{section}.{missing[0]}",
                              remedy="restore config.json from the original checkpoint")
    kwargs = dict(data)
    for key in ("vvp_grid", "gdt_levels"):
        if key in kwargs:
            kwargs[key] = tuple(float(x) for x in kwargs[key])
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"invalid {section}: {exc}", path=label, key=section,
                              remedy="restore config.json from the original checkpoint") from None


def config_from_dict(data: object, label: str) -> ModelConfig:
    """Parse ``config.json`` content strictly (see module docstring)."""
    if not isinstance(data, dict):
        raise CheckpointError("config must be a JSON object", path=label,
                              remedy="restore config.json from the original checkpoint")
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise CheckpointError(f"unknown top-level field '{unknown[0]}'", path=label,
                              key=unknown[0], remedy="remove it or upgrade atlasgrn")
    if data.get("format") != FORMAT or data.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"not an {FORMAT} v{FORMAT_VERSION} config "
                              f"(format={data.get('format')!r}, "
                              f"version={data.get('format_version')!r})",
                              path=label, key="format",
                              remedy="for scGPT releases run `atlasgrn import-scgpt` first")
    arch = _strict(ArchConfig, data.get("arch"), label, "arch")
    values = _strict(ValueSpace, data.get("values"), label, "values")
    if arch.value_encoder not in ("continuous", "category"):
        raise CheckpointError(f"unknown value_encoder {arch.value_encoder!r}", path=label,
                              key="arch.value_encoder", remedy="continuous or category")
    prov = data.get("provenance", {})
    if not isinstance(prov, dict):
        raise CheckpointError("'provenance' must be a JSON object", path=label, key="provenance",
                              remedy="restore config.json from the original checkpoint")
    return ModelConfig(arch=arch, values=values, provenance=prov)


# ------------------------------------------------------------------- save
def save_model(model: ScGPTModel, out_dir: str | os.PathLike[str],
               metadata: Mapping[str, str] | None = None,
               weights_dtype: str = "float32") -> Path:
    """Write the three checkpoint files (CPU tensors in ``weights_dtype``, one of
    :data:`STORAGE_DTYPES`); each file is replaced atomically and readable by others
    (checkpoints are meant to be shared)."""
    if weights_dtype not in STORAGE_DTYPES:
        raise CheckpointError(f"unknown weights dtype {weights_dtype!r}", key="weights_dtype",
                              remedy="use one of " + ", ".join(STORAGE_DTYPES))
    dtype = STORAGE_DTYPES[weights_dtype]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu", dtype).contiguous()
               for k, v in model.state_dict().items()}
    header = dict(metadata or {"format": FORMAT})
    write_path_atomic(out / WEIGHTS_FILE, lambda p: save_file(tensors, p, metadata=header))
    text = json.dumps(config_to_dict(model.config), indent=2, sort_keys=False)
    write_text_atomic(out / CONFIG_FILE, text + "\n")
    vocab_text = json.dumps(dict(sorted(model.vocab.items(), key=lambda kv: kv[1])), indent=0)
    write_text_atomic(out / VOCAB_FILE, vocab_text + "\n")
    return out


# ------------------------------------------------------------------- load
def read_config(model_dir: str | os.PathLike[str]) -> ModelConfig:
    path = Path(model_dir) / CONFIG_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError("config.json not found", path=str(path),
                              remedy="point at a model directory written by atlasgrn "
                                     "(pretrain, import-scgpt)") from None
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"config.json is not valid JSON ({exc})", path=str(path),
                              remedy="restore config.json from the original checkpoint") from None
    return config_from_dict(data, str(path))


def check_vocab_against_arch(vocab: Mapping[str, int], arch: ArchConfig, label: str) -> None:
    """The embedding has exactly one row per vocabulary id (0 .. vocab_size-1 all used)."""
    top = max(vocab.values())
    if top + 1 != arch.vocab_size or len(vocab) != arch.vocab_size:
        raise CheckpointError(
            f"vocabulary has {len(vocab)} tokens with max id {top} but the embedding has "
            f"{arch.vocab_size} rows", path=label, key="arch.vocab_size",
            remedy="use the vocab.json that was saved with these weights")
    for name, tid in (("pad_id", arch.pad_id), ("cls_token_id", arch.cls_token_id)):
        if tid is not None and not 0 <= tid < arch.vocab_size:
            raise CheckpointError(f"{name} {tid} outside the embedding", path=label,
                                  key=f"arch.{name}", remedy="fix config.json")


def check_state_dict(tensors: Mapping[str, torch.Tensor], model: torch.nn.Module,
                     label: str) -> None:
    """Every expected tensor present with the expected shape, and nothing else."""
    expected = model.state_dict()
    allowed = set(STORAGE_DTYPES.values())
    for key, ref in expected.items():
        if key not in tensors:
            raise CheckpointError("tensor missing from the weights", path=label, key=key,
                                  remedy="the checkpoint is incomplete; re-save or re-import it")
        if tensors[key].dtype not in allowed:
            raise CheckpointError(f"tensor is stored as {tensors[key].dtype}, not a float type "
                                  "atlasgrn reads", path=label, key=key,
                                  remedy="store weights as float32, bfloat16 or float16")
        if tuple(tensors[key].shape) != tuple(ref.shape):
            raise CheckpointError(f"tensor has shape {tuple(tensors[key].shape)}, the "
                                  f"architecture in config.json needs {tuple(ref.shape)}",
                                  path=label, key=key,
                                  remedy="config.json and model.safetensors disagree; use the "
                                         "pair that was saved together")
    extra = sorted(set(tensors) - set(expected))
    if extra:
        raise CheckpointError("unexpected tensor in the weights", path=label, key=extra[0],
                              remedy="config.json does not describe these weights")


def load_model(path: str | os.PathLike[str] | None = None, *,
               device: str | torch.device = "cpu") -> ScGPTModel:
    """Load a model directory (the bundled default when ``path`` is None), in eval mode."""
    model_dir = Path(path) if path is not None else bundled_model_dir()
    if not model_dir.is_dir():
        raise CheckpointError("model directory not found", path=str(model_dir),
                              remedy="give a directory with config.json, model.safetensors "
                                     "and vocab.json")
    config = read_config(model_dir)
    vocab = read_vocab(model_dir / VOCAB_FILE)
    check_vocab_against_arch(vocab, config.arch, str(model_dir / VOCAB_FILE))
    weights = model_dir / WEIGHTS_FILE
    try:
        tensors = load_file(str(weights))
    except FileNotFoundError:
        raise CheckpointError("model.safetensors not found", path=str(weights),
                              remedy="copy the weights file next to config.json") from None
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"weights are not a readable safetensors file ({exc})",
                              path=str(weights), remedy="re-save the checkpoint") from None
    model = ScGPTModel(config, vocab)
    check_state_dict(tensors, model, str(weights))
    model.load_state_dict(tensors, strict=True)
    return model.to(device).eval()


def model_from_parts(config: ModelConfig, vocab: Mapping[str, int],
                     tensors: Mapping[str, torch.Tensor], label: str) -> ScGPTModel:
    """Build a model from in-memory parts with the same checks as :func:`load_model`."""
    vocab = validate_vocab(dict(vocab), label)
    check_vocab_against_arch(vocab, config.arch, label)
    model = ScGPTModel(config, vocab)
    check_state_dict(tensors, model, label)
    model.load_state_dict(dict(tensors), strict=True)
    return model.eval()


def checkpoint_files_in(path: Path) -> list[str]:
    """The checkpoint files an atlasgrn model directory holds (none when ``config.json`` is not
    an atlasgrn model config): how a model directory written before output markers is
    recognised as atlasgrn's own."""
    try:
        data = json.loads((Path(path) / CONFIG_FILE).read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return []
    return [n for n in (CONFIG_FILE, WEIGHTS_FILE, VOCAB_FILE) if (Path(path) / n).exists()]

