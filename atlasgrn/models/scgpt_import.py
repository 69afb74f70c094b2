"""Import a released scGPT checkpoint (``best_model.pt``, ``args.json``, ``vocab.json``).

The weights are read with ``torch.load(weights_only=True)`` only: a pickle that would run code
is refused, never executed. Tensor names follow scGPT's ``TransformerModel``
(``scgpt/model/model.py``): ``encoder`` (GeneEncoder), ``value_encoder`` (continuous or
category), ``transformer_encoder.layers.N`` with either ``nn.MultiheadAttention`` naming
(``self_attn.in_proj_weight``) or the flash-attention naming (``self_attn.Wqkv.weight``),
``decoder.fc.{0,2,4}`` (ExprDecoder) and optional ``mvc_decoder``. Heads the probes never use
(``cls_decoder``, ``flag_encoder``, zero-probability heads, batch/DSBN encoders, the
generative cross-attention) are dropped and listed in ``config.json`` provenance. A tensor
that matches no rule is an error, so nothing is ever ignored silently.
"""

from __future__ import annotations

import json
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError
from .checkpoint import model_from_parts, save_model
from .interface import ArchConfig, ModelConfig, ValueSpace
from .scgpt_model import ScGPTModel
from .values import binned_value_space, native_value_space
from .vocab import CLS_TOKEN, read_vocab, vocab_digest

WEIGHTS = "best_model.pt"
ARGS = "args.json"
VOCAB = "vocab.json"

#: (pattern, our name template) for tensors that are mapped; ``{n}`` is the layer index.
_LAYER = r"transformer_encoder\.layers\.(\d+)\."
_MAP: list[tuple[str, str]] = [
    (r"encoder\.embedding\.weight", "gene_encoder.embedding.weight"),
    (r"encoder\.enc_norm\.(weight|bias)", "gene_encoder.norm.{0}"),
    (r"value_encoder\.linear([12])\.(weight|bias)", "value_encoder.linear{0}.{1}"),
    (r"value_encoder\.norm\.(weight|bias)", "value_encoder.norm.{0}"),
    (r"value_encoder\.embedding\.weight", "value_encoder.embedding.weight"),
    (r"value_encoder\.enc_norm\.(weight|bias)", "value_encoder.norm.{0}"),
    (_LAYER + r"self_attn\.in_proj_weight", "layers.{0}.qkv.weight"),
    (_LAYER + r"self_attn\.in_proj_bias", "layers.{0}.qkv.bias"),
    (_LAYER + r"self_attn\.Wqkv\.(weight|bias)", "layers.{0}.qkv.{1}"),
    (_LAYER + r"self_attn\.out_proj\.(weight|bias)", "layers.{0}.out.{1}"),
    (_LAYER + r"linear([12])\.(weight|bias)", "layers.{0}.ff{1}.{2}"),
    (_LAYER + r"norm([12])\.(weight|bias)", "layers.{0}.norm{1}.{2}"),
    (r"decoder\.fc\.0\.(weight|bias)", "decoder.fc1.{0}"),
    (r"decoder\.fc\.2\.(weight|bias)", "decoder.fc2.{0}"),
    (r"decoder\.fc\.4\.(weight|bias)", "decoder.fc3.{0}"),
    (r"mvc_decoder\.gene2query\.(weight|bias)", "mvc.gene2query.{0}"),
    (r"mvc_decoder\.W\.weight", "mvc.W.weight"),
]
#: Tensors deliberately not imported, with the reason recorded in provenance.
_DROP: list[tuple[str, str]] = [
    (r"cls_decoder\..*", "cell-type classification head (unused by value probes)"),
    (r"flag_encoder\..*", "generative-training flag embedding (unused in encoder forward)"),
    (r"decoder\.zero_logit\..*", "explicit zero-probability head (probes read the value)"),
    (r"mvc_decoder\.W_zero_logit\..*", "MVC zero-probability head"),
    (r"mvc_decoder\.(fc1|fc2|hidden_activation)\..*", "MVC head of a non inner-product style"),
    (r"dsbn\..*", "domain-specific batch norm (needs batch labels)"),
    (r"batch_encoder\..*", "batch-label encoder (needs batch labels)"),
    (r"grad_reverse_discriminator\..*", "adversarial batch discriminator"),
    (r"bn\..*", "unused batch norm"),
    (_LAYER + r"self_attn\.cross_attn\..*", "generative cross-attention (gen genes only)"),
    (r"sim\..*|creterion_cce\..*", "contrastive-loss helpers"),
]
_REFUSE: list[tuple[str, str]] = [
    (_LAYER + r"(moe|experts|gate)\..*", "mixture-of-experts feed-forward (scMoE variant)"),
]


def _match_target(key: str) -> str | None:
    for pattern, template in _MAP:
        m = re.fullmatch(pattern, key)
        if m:
            return template.format(*m.groups())
    return None


def _drop_reason(key: str, table: list[tuple[str, str]]) -> str | None:
    for pattern, reason in table:
        if re.fullmatch(pattern, key):
            return reason
    return None


# ----------------------------------------------------------------------------- reading
def read_args(path: Path) -> dict[str, Any]:
    try:
        args = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError("args.json not found", path=str(path),
                              remedy="scGPT releases ship args.json next to best_model.pt") from None
    except ValueError as exc:
        raise CheckpointError(f"args.json is not valid JSON ({exc})", path=str(path),
                              remedy="restore args.json from the release") from None
    if not isinstance(args, dict):
        raise CheckpointError("args.json must be a JSON object", path=str(path),
                              remedy="restore args.json from the release")
    return args


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """``best_model.pt`` as a flat name -> float32 tensor dict, without running any code."""
    if not path.is_file():
        raise CheckpointError("best_model.pt not found", path=str(path),
                              remedy="point at the directory of an scGPT release")
    try:
        obj = torch.load(str(path), weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"refused to load: the pickle asks for more than tensors "
                              f"({first[:160]})", path=str(path),
                              remedy="only plain state dicts are loaded; never run untrusted "
                                     "pickles") from None
    except Exception as exc:  # noqa: BLE001 - corrupt/truncated files surface in many types
        raise CheckpointError(f"not a readable torch checkpoint ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:160] if str(exc) else ''})",
                              path=str(path), remedy="re-download best_model.pt") from None
    for wrapper in ("model_state_dict", "state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(wrapper), Mapping):
            obj = obj[wrapper]
    if not isinstance(obj, Mapping) or not all(torch.is_tensor(v) for v in obj.values()):
        raise CheckpointError("best_model.pt does not hold a state dict of tensors",
                              path=str(path), remedy="save the model's state_dict()")
    out = {}
    for key, t in obj.items():
        key = key[len("module."):] if key.startswith("module.") else key
        out[key] = t.detach().float() if t.is_floating_point() else t.detach()
    return out


# ----------------------------------------------------------------------------- config
def config_from_args(args: Mapping[str, Any], vocab: Mapping[str, int],
                     state: Mapping[str, torch.Tensor], label: str) -> tuple[ArchConfig, ValueSpace]:
    """Our architecture and value space from scGPT's args.json (+ shapes from the weights)."""
    def need(key: str) -> Any:
        if key not in args:
            raise CheckpointError(f"args.json lacks '{key}'", path=label, key=key,
                                  remedy="restore args.json from the release")
        return args[key]

    style = args.get("input_emb_style", "continuous")
    if style not in ("continuous", "category"):
        raise CheckpointError(f"input_emb_style {style!r} is not supported", path=label,
                              key="input_emb_style", remedy="continuous or category models only")
    emb = state.get("encoder.embedding.weight")
    if emb is None:
        raise CheckpointError("tensor missing from the weights", path=label,
                              key="encoder.embedding.weight", remedy="re-download best_model.pt")
    pad_token = args.get("pad_token", "<pad>")
    if pad_token not in vocab:
        raise CheckpointError(f"pad token {pad_token!r} not in vocab.json", path=label,
                              key="pad_token", remedy="use the vocab.json of the release")
    n_value_tokens = None
    if style == "category":
        cat = state.get("value_encoder.embedding.weight")
        if cat is None:
            raise CheckpointError("tensor missing from the weights", path=label,
                                  key="value_encoder.embedding.weight",
                                  remedy="re-download best_model.pt")
        n_value_tokens = int(cat.shape[0])
    arch = ArchConfig(
        vocab_size=int(emb.shape[0]), d_model=int(need("embsize")), n_layers=int(need("nlayers")),
        n_heads=int(need("nheads")), d_ff=int(need("d_hid")),
        dropout=float(args.get("dropout", 0.0)), pad_id=int(vocab[pad_token]),
        max_len=int(args.get("max_seq_len", 1200)), value_encoder=style,
        mvc="mvc_decoder.gene2query.weight" in state,
        norm_first=bool(args.get("pre_norm", False)),
        cls_token_id=vocab.get(CLS_TOKEN), n_value_tokens=n_value_tokens)
    input_style = args.get("input_style", "binned")
    pad_value = float(args.get("pad_value", -2))
    mask_value = float(args.get("mask_value", -1))
    if input_style == "binned":
        values = binned_value_space(int(need("n_bins")), pad_value, mask_value)
    elif input_style in ("log1p", "normed_raw"):
        base = native_value_space(float(args.get("value_max", 8.0)))
        values = ValueSpace(**{**base.__dict__, "kind": "log1p_cp10k" if input_style == "log1p"
                               else "normed_raw", "pad_value": pad_value,
                               "mask_value": mask_value})
    else:
        raise CheckpointError(f"input_style {input_style!r} is not supported", path=label,
                              key="input_style", remedy="binned, log1p or normed_raw")
    return arch, values


def map_state_dict(state: Mapping[str, torch.Tensor], label: str
                   ) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(our tensors, dropped scGPT key -> reason). Unknown or unsupported keys raise."""
    mapped: dict[str, torch.Tensor] = {}
    dropped: dict[str, str] = {}
    for key, tensor in state.items():
        refuse = _drop_reason(key, _REFUSE)
        if refuse:
            raise CheckpointError(f"unsupported architecture: {refuse}", path=label, key=key,
                                  remedy="only dense scGPT encoders can be imported")
        target = _match_target(key)
        if target is not None:
            mapped[target] = tensor
            continue
        reason = _drop_reason(key, _DROP)
        if reason is None:
            raise CheckpointError("unrecognised scGPT tensor", path=label, key=key,
                                  remedy="this scGPT variant is not supported; report the key")
        dropped[key] = reason
    return mapped, dropped


def import_scgpt(src_dir: str | Path, out_dir: str | Path) -> ScGPTModel:
    """Convert an scGPT release directory into an atlasgrn model directory."""
    src = Path(src_dir)
    if not src.is_dir():
        raise CheckpointError("scGPT directory not found", path=str(src),
                              remedy="give the folder holding best_model.pt, args.json, "
                                     "vocab.json")
    args = read_args(src / ARGS)
    vocab = read_vocab(src / VOCAB)
    state = read_state_dict(src / WEIGHTS)
    label = str(src / WEIGHTS)
    arch, values = config_from_args(args, vocab, state, str(src / ARGS))
    mapped, dropped = map_state_dict(state, label)
    n_layers_found = len({k.split(".")[1] for k in mapped if k.startswith("layers.")})
    if n_layers_found != arch.n_layers:
        raise CheckpointError(f"weights hold {n_layers_found} transformer layers, args.json "
                              f"says nlayers={arch.n_layers}", path=label, key="nlayers",
                              remedy="use the args.json saved with these weights")
    flash = any(".self_attn.Wqkv." in k for k in state)
    provenance = {
        "origin": "scGPT import",
        "source_dir": str(src.resolve()),
        "attention_naming": "flash (Wqkv)" if flash else "torch (in_proj)",
        "dropped_tensors": dropped,
        "ignored_args": sorted(k for k in args if k not in _USED_ARGS),
        "vocabulary": {"ids": "scgpt", "sha256": vocab_digest(vocab)},
        "cls_prepended": arch.cls_token_id is not None,
        "input_style": args.get("input_style", "binned"),
        "notes": ("binned input: values are per-cell bin indices 0..n_bins-1; "
                  "the model prepends <cls> with value 0 as scGPT's tokenizer does"),
    }
    config = ModelConfig(arch=arch, values=values, provenance=provenance)
    model = model_from_parts(config, vocab, mapped, label)
    save_model(model, out_dir)
    return model


_USED_ARGS = {"embsize", "nlayers", "nheads", "d_hid", "dropout", "pad_token", "max_seq_len",
              "input_emb_style", "pre_norm", "input_style", "pad_value", "mask_value", "n_bins",
              "MVC", "fast_transformer", "USE_GENERATIVE_TRAINING"}


# ----------------------------------------------------------------------------- test helper
def scgpt_state_dict(args: Mapping[str, Any], ntoken: int, *, seed: int = 0, n_cls: int = 1,
                     explicit_zero_prob: bool = False) -> dict[str, torch.Tensor]:
    """A random state dict with scGPT's exact tensor names and shapes for ``args``.

    Naming follows what scGPT's ``TransformerModel`` registers: flash layers
    (``fast_transformer`` or ``USE_GENERATIVE_TRAINING``) use ``self_attn.Wqkv``, the generative
    layer adds ``self_attn.cross_attn``; ``n_cls > 1`` adds ``cls_decoder``. For tests only.
    """
    g = torch.Generator().manual_seed(seed)
    d, h, n = int(args["embsize"]), int(args["d_hid"]), int(args["nlayers"])
    sd: dict[str, torch.Tensor] = {}

    def lin(name: str, fan_out: int, fan_in: int, bias: bool = True) -> None:
        sd[f"{name}.weight"] = (torch.rand(fan_out, fan_in, generator=g) - 0.5) / fan_in ** 0.5
        if bias:
            sd[f"{name}.bias"] = (torch.rand(fan_out, generator=g) - 0.5) * 0.1

    def norm(name: str) -> None:
        sd[f"{name}.weight"] = 1 + (torch.rand(d, generator=g) - 0.5) * 0.1
        sd[f"{name}.bias"] = (torch.rand(d, generator=g) - 0.5) * 0.1

    sd["encoder.embedding.weight"] = (torch.rand(ntoken, d, generator=g) - 0.5) * 0.2
    norm("encoder.enc_norm")
    sd["flag_encoder.weight"] = torch.randn(2, d, generator=g)
    if args.get("input_emb_style", "continuous") == "category":
        sd["value_encoder.embedding.weight"] = torch.randn(int(args["n_bins"]) + 2, d,
                                                           generator=g)
        norm("value_encoder.enc_norm")
    else:
        lin("value_encoder.linear1", d, 1)
        lin("value_encoder.linear2", d, d)
        norm("value_encoder.norm")
    generative = bool(args.get("USE_GENERATIVE_TRAINING", False))
    flash = generative or bool(args.get("fast_transformer", False))
    for i in range(n):
        p = f"transformer_encoder.layers.{i}"
        if flash:
            lin(f"{p}.self_attn.Wqkv", 3 * d, d)
        else:
            sd[f"{p}.self_attn.in_proj_weight"] = (torch.rand(3 * d, d, generator=g) - .5) / d ** .5
            sd[f"{p}.self_attn.in_proj_bias"] = (torch.rand(3 * d, generator=g) - .5) * 0.1
        lin(f"{p}.self_attn.out_proj", d, d)
        if generative:
            sd[f"{p}.self_attn.cross_attn.in_proj_weight"] = torch.randn(3 * d, d, generator=g)
            sd[f"{p}.self_attn.cross_attn.in_proj_bias"] = torch.randn(3 * d, generator=g)
            lin(f"{p}.self_attn.cross_attn.out_proj", d, d)
        lin(f"{p}.linear1", h, d)
        lin(f"{p}.linear2", d, h)
        norm(f"{p}.norm1")
        norm(f"{p}.norm2")
    lin("decoder.fc.0", d, d)
    lin("decoder.fc.2", d, d)
    lin("decoder.fc.4", 1, d)
    if explicit_zero_prob:
        lin("decoder.zero_logit.0", d, d)
        lin("decoder.zero_logit.2", d, d)
        lin("decoder.zero_logit.4", 1, d)
    if n_cls > 1:
        lin("cls_decoder._decoder.0", d, d)
        norm("cls_decoder._decoder.2")
        lin("cls_decoder._decoder.3", d, d)
        norm("cls_decoder._decoder.5")
        lin("cls_decoder.out_layer", n_cls, d)
    if args.get("MVC", False):
        lin("mvc_decoder.gene2query", d, d)
        lin("mvc_decoder.W", d, d, bias=False)
    return sd
