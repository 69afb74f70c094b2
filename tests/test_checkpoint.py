"""Model checkpoints round-trip exactly and refuse bad input with one-line errors (exit 2)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import atlasgrn
from atlasgrn.cli import main
from atlasgrn.errors import CheckpointError
from atlasgrn.models import load_model, save_model
from atlasgrn.models.testing import tiny_model


@pytest.fixture()
def saved(tmp_path: Path) -> Path:
    save_model(tiny_model(0, with_cls=True), tmp_path / "m")
    return tmp_path / "m"


def _ids():
    g = torch.Generator().manual_seed(1)
    return torch.randint(1, 51, (2, 12), generator=g), torch.rand(2, 12, generator=g) * 4


def test_save_load_round_trip_gives_identical_outputs(saved: Path):
    ids, vals = _ids()
    original = tiny_model(0, with_cls=True)
    loaded = load_model(saved)
    assert torch.equal(original(ids, vals), loaded(ids, vals))
    assert loaded.vocab == original.vocab and loaded.config == original.config
    assert sorted(p.name for p in saved.iterdir()) == ["config.json", "model.safetensors",
                                                       "vocab.json"]


def test_checkpoint_files_are_shareable_and_resaving_leaves_no_temporary_files(saved: Path):
    umask = os.umask(0)
    os.umask(umask)
    for f in saved.iterdir():  # what open() gives a new file, not the 0600 of a temporary file
        assert f.stat().st_mode & 0o777 == 0o666 & ~umask, f.name
    save_model(tiny_model(1), saved)
    assert sorted(p.name for p in saved.iterdir()) == ["config.json", "model.safetensors",
                                                       "vocab.json"]
    assert load_model(saved).config == tiny_model(1).config


def test_bundled_default_model_loads_via_package_api():
    model = atlasgrn.load_model()
    cfg = model.config
    assert cfg.values.kind == "log1p_cp10k" and cfg.values.background == 0.0
    assert cfg.values.mask_value not in cfg.values.vvp_grid
    weights = Path(atlasgrn.models.checkpoint.bundled_model_dir()) / "model.safetensors"
    assert weights.stat().st_size < 25 * 2**20
    ids = torch.tensor([[model.vocab[g] for g in list(model.vocab)[1:6]]])
    assert torch.isfinite(model(ids, torch.ones(1, 5))).all()


def _expect_cli_error(tmp_path: Path, model_dir: Path, capsys, needle: str) -> None:
    atlas = tmp_path / "nothing.zarr"
    code = main(["model-eval", str(atlas), "--model", str(model_dir)])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and err.count("\n") == 1, err


def test_missing_tensor_is_refused_naming_the_key(saved: Path, tmp_path, capsys):
    tensors = load_file(str(saved / "model.safetensors"))
    del tensors["layers.1.ff2.weight"]
    save_file(tensors, str(saved / "model.safetensors"))
    with pytest.raises(CheckpointError, match="layers.1.ff2.weight"):
        load_model(saved)
    _expect_cli_error(tmp_path, saved, capsys, "layers.1.ff2.weight")


def test_misshaped_tensor_is_refused(saved: Path):
    tensors = load_file(str(saved / "model.safetensors"))
    tensors["decoder.fc1.weight"] = torch.zeros(3, 3)
    save_file(tensors, str(saved / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"decoder.fc1.weight.*shape \(3, 3\)"):
        load_model(saved)


def test_unknown_architecture_field_is_refused(saved: Path, tmp_path, capsys):
    cfg = json.loads((saved / "config.json").read_text())
    cfg["arch"]["rotary_embeddings"] = True
    (saved / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="arch.rotary_embeddings"):
        load_model(saved)
    _expect_cli_error(tmp_path, saved, capsys, "rotary_embeddings")


def test_vocabulary_disagreeing_with_embedding_is_refused(saved: Path):
    vocab = json.loads((saved / "vocab.json").read_text())
    vocab["EXTRA_GENE"] = max(vocab.values()) + 1
    (saved / "vocab.json").write_text(json.dumps(vocab))
    with pytest.raises(CheckpointError, match="embedding has 52 rows"):
        load_model(saved)


def test_corrupt_weights_file_is_refused(saved: Path):
    (saved / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match="safetensors"):
        load_model(saved)


def test_missing_directory_and_files_are_refused(tmp_path: Path, saved: Path):
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "nope")
    copy = tmp_path / "copy"
    shutil.copytree(saved, copy)
    (copy / "vocab.json").unlink()
    with pytest.raises(CheckpointError, match="vocab"):
        load_model(copy)


def test_half_precision_storage_halves_the_file_and_loads_widened_to_fp32(tmp_path):
    """bf16/fp16 storage is what lets a larger model fit the package cap: the file halves, the
    loaded model computes in fp32 with exactly the rounded weights."""
    import torch

    from atlasgrn.models import load_model, save_model
    from atlasgrn.models.testing import tiny_model

    model = tiny_model()
    full = save_model(model, tmp_path / "fp32") / "model.safetensors"
    for name, dtype in (("bfloat16", torch.bfloat16), ("float16", torch.float16)):
        half = save_model(model, tmp_path / name, weights_dtype=name) / "model.safetensors"
        assert half.stat().st_size < 0.6 * full.stat().st_size
        loaded = load_model(tmp_path / name)
        for key, ref in model.state_dict().items():
            got = loaded.state_dict()[key]
            assert got.dtype == torch.float32, key
            assert torch.equal(got, ref.to(dtype).to(torch.float32)), key


def test_unknown_or_integer_weight_storage_is_refused(tmp_path):
    from atlasgrn.errors import CheckpointError
    from atlasgrn.models import load_model, save_model
    from atlasgrn.models.testing import tiny_model

    with pytest.raises(CheckpointError, match="unknown weights dtype"):
        save_model(tiny_model(), tmp_path / "bad", weights_dtype="int8")
    out = save_model(tiny_model(), tmp_path / "int")
    tensors = load_file(str(out / "model.safetensors"))
    key = sorted(tensors)[0]
    tensors[key] = tensors[key].to(torch.int32)
    save_file(tensors, str(out / "model.safetensors"))
    with pytest.raises(CheckpointError, match="not a float type"):
        load_model(out)
