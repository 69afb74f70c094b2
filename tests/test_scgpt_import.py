"""scGPT checkpoints import faithfully, never run pickled code, and refuse bad input."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch
from torch import nn

from atlasgrn.cli import main
from atlasgrn.errors import CheckpointError
from atlasgrn.models import load_model
from atlasgrn.models.scgpt_import import import_scgpt, map_state_dict, scgpt_state_dict
from tests.test_model_support import require_shared

ASSETS = "foundation_model_assets/scgpt_human"


def _args(**over) -> dict:
    args = json.loads((require_shared(ASSETS) / "scMoE_variant_args.json").read_text())
    args.update(embsize=32, nlayers=2, d_hid=48, nheads=4)  # real names, small sizes
    args.update(over)
    return args


def _vocab() -> dict:
    return json.loads((require_shared(ASSETS) / "vocab.json").read_text())


def _release(tmp: Path, args: dict, vocab: dict, sd: dict | None = None, **sd_kw) -> Path:
    src = tmp / "release"
    src.mkdir(parents=True, exist_ok=True)
    torch.save(sd if sd is not None else scgpt_state_dict(args, len(vocab), **sd_kw),
               src / "best_model.pt")
    (src / "args.json").write_text(json.dumps(args))
    (src / "vocab.json").write_text(json.dumps(vocab))
    return src


@pytest.mark.shared_data
@pytest.mark.parametrize("flash,generative", [(False, False), (True, False), (True, True)])
def test_every_scgpt_tensor_is_mapped_or_listed_as_dropped(flash, generative):
    args = _args(fast_transformer=flash, USE_GENERATIVE_TRAINING=generative, MVC=True)
    sd = scgpt_state_dict(args, 100, n_cls=4, explicit_zero_prob=True)
    mapped, dropped = map_state_dict(sd, "test")
    assert len(mapped) + len(dropped) == len(sd)
    assert {k.split(".")[0] for k in dropped} >= {"cls_decoder", "flag_encoder", "decoder"}
    if generative:
        assert "transformer_encoder.layers.0.self_attn.cross_attn.in_proj_weight" in dropped
    expected_ours = 3 + 6 + 2 * 12 + 6 + 3  # gene enc, value enc, layers, decoder, mvc
    assert len(mapped) == expected_ours


def _torch_reference(sd: dict, args: dict, ids: torch.Tensor, vals: torch.Tensor, pad: int):
    """scGPT's non-flash forward rebuilt from torch's own modules (independent of ours)."""
    d = args["embsize"]
    emb = nn.Embedding(sd["encoder.embedding.weight"].shape[0], d)
    emb.weight.data = sd["encoder.embedding.weight"]
    gn = nn.LayerNorm(d)
    gn.load_state_dict({"weight": sd["encoder.enc_norm.weight"], "bias": sd["encoder.enc_norm.bias"]})
    v = vals.unsqueeze(-1).clamp(max=512)
    l1, l2 = nn.Linear(1, d), nn.Linear(d, d)
    l1.load_state_dict({k[len("value_encoder.linear1."):]: t for k, t in sd.items()
                        if k.startswith("value_encoder.linear1.")})
    l2.load_state_dict({k[len("value_encoder.linear2."):]: t for k, t in sd.items()
                        if k.startswith("value_encoder.linear2.")})
    vn = nn.LayerNorm(d)
    vn.load_state_dict({"weight": sd["value_encoder.norm.weight"], "bias": sd["value_encoder.norm.bias"]})
    x = gn(emb(ids)) + vn(l2(torch.relu(l1(v))))
    layer = nn.TransformerEncoderLayer(d, args["nheads"], args["d_hid"], 0.0, batch_first=True)
    enc = nn.TransformerEncoder(layer, args["nlayers"], enable_nested_tensor=False).eval()
    enc.load_state_dict({k[len("transformer_encoder."):]: t for k, t in sd.items()
                         if k.startswith("transformer_encoder.")})
    h = enc(x, src_key_padding_mask=ids == pad)
    dec = nn.Sequential(nn.Linear(d, d), nn.LeakyReLU(), nn.Linear(d, d), nn.LeakyReLU(),
                        nn.Linear(d, 1))
    dec.load_state_dict({k[len("decoder.fc."):]: t for k, t in sd.items() if k.startswith("decoder.fc.")})
    return dec(h).squeeze(-1)


@pytest.mark.shared_data
def test_imported_model_reproduces_scgpt_forward(tmp_path: Path):
    args, vocab = _args(fast_transformer=False, USE_GENERATIVE_TRAINING=False, dropout=0.2), _vocab()
    sd = scgpt_state_dict(args, len(vocab), seed=5, n_cls=3)
    model = import_scgpt(_release(tmp_path, args, vocab, sd), tmp_path / "out")
    g = torch.Generator().manual_seed(0)
    genes = torch.randint(0, 60000, (3, 25), generator=g)
    vals = torch.randint(0, 51, (3, 25), generator=g).float()
    vals[:, ::4] = -1.0
    genes[1, 20:] = vocab["<pad>"]
    with_cls = torch.cat([torch.full((3, 1), vocab["<cls>"]), genes], 1)
    with_cls_vals = torch.cat([torch.zeros(3, 1), vals], 1)
    with torch.no_grad():
        ref = _torch_reference(sd, args, with_cls, with_cls_vals, vocab["<pad>"])[:, 1:]
        ours = model(genes, vals)
    real = genes != vocab["<pad>"]
    assert float((ours - ref)[real].abs().max()) < 1e-5
    reloaded = load_model(tmp_path / "out")
    prov = reloaded.config.provenance
    assert reloaded.config.values.kind == "binned" and reloaded.config.values.n_bins == 51
    assert "cls_decoder.out_layer.weight" in prov["dropped_tensors"]
    assert reloaded.vocab["TP53"] == vocab["TP53"]  # imported ids ARE scGPT's ids


@pytest.mark.shared_data
def test_flash_naming_imports_to_the_same_model(tmp_path: Path):
    args, vocab = _args(fast_transformer=False, USE_GENERATIVE_TRAINING=False), _vocab()
    sd = scgpt_state_dict(args, len(vocab), seed=2)
    flash_sd = {k.replace("self_attn.in_proj_weight", "self_attn.Wqkv.weight")
                 .replace("self_attn.in_proj_bias", "self_attn.Wqkv.bias"): t for k, t in sd.items()}
    a = import_scgpt(_release(tmp_path / "a", args, vocab, sd), tmp_path / "oa")
    b = import_scgpt(_release(tmp_path / "b", args, vocab, flash_sd), tmp_path / "ob")
    ids = torch.tensor([[vocab["MYC"], vocab["TP53"], vocab["SOX2"]]])
    vals = torch.tensor([[3.0, 10.0, 0.0]])
    assert torch.equal(a(ids, vals), b(ids, vals))
    assert b.config.provenance["attention_naming"] == "flash (Wqkv)"


class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.shared_data
def test_pickle_that_runs_code_is_refused_and_never_executed(tmp_path: Path, capsys):
    args, vocab = _args(), _vocab()
    src = _release(tmp_path, args, vocab, sd={})
    marker = tmp_path / "PWNED"
    with open(src / "best_model.pt", "wb") as fh:
        pickle.dump({"encoder.embedding.weight": _Evil(str(marker))}, fh)
    code = main(["import-scgpt", str(src), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "refused to load" in err and err.count("\n") == 1
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


@pytest.mark.shared_data
def test_missing_and_misshaped_scgpt_tensors_are_refused(tmp_path: Path):
    args, vocab = _args(), _vocab()
    sd = scgpt_state_dict(args, len(vocab))
    del sd["transformer_encoder.layers.1.linear2.weight"]
    with pytest.raises(CheckpointError, match="layers.1.ff2.weight"):
        import_scgpt(_release(tmp_path / "a", args, vocab, sd), tmp_path / "oa")
    sd = scgpt_state_dict(args, len(vocab))
    sd["decoder.fc.0.weight"] = torch.zeros(5, 5)
    with pytest.raises(CheckpointError, match="decoder.fc1.weight"):
        import_scgpt(_release(tmp_path / "b", args, vocab, sd), tmp_path / "ob")


@pytest.mark.shared_data
def test_vocabulary_that_disagrees_with_embedding_is_refused(tmp_path: Path):
    args, vocab = _args(), _vocab()
    sd = scgpt_state_dict(args, len(vocab) - 10)
    with pytest.raises(CheckpointError, match="embedding has 60687 rows"):
        import_scgpt(_release(tmp_path, args, vocab, sd), tmp_path / "o")


@pytest.mark.shared_data
def test_unknown_tensor_and_moe_layers_are_refused(tmp_path: Path):
    args, vocab = _args(), _vocab()
    sd = scgpt_state_dict(args, 50)
    sd["mystery_head.weight"] = torch.zeros(2)
    with pytest.raises(CheckpointError, match="mystery_head.weight"):
        map_state_dict(sd, "x")
    sd = scgpt_state_dict(args, 50)
    sd["transformer_encoder.layers.0.moe.experts.0.weight"] = torch.zeros(2)
    with pytest.raises(CheckpointError, match="mixture-of-experts"):
        map_state_dict(sd, "x")
