"""CLI defaults are read from the library (atlasgrn.cli_defaults), never restated."""

from __future__ import annotations

import dataclasses

import pytest

from atlasgrn.cli import build_parser
from atlasgrn.cli_defaults import field_default, parameter_default
from atlasgrn.pretraining import (
    PretrainOptions,
    SamplerConfig,
    TrainConfig,
    pretrain_atlas,
)


@dataclasses.dataclass(frozen=True)
class _Config:
    required: int
    steps: int = 10
    names: tuple[str, ...] = ("a",)
    extra: dict = dataclasses.field(default_factory=lambda: {"k": 1})


def _call(a: int, b: str = "auto", *, c: float = 0.5) -> None:
    del a, b, c


def test_field_default_reads_defaults_and_factories():
    assert field_default(_Config, "steps") == 10
    assert field_default(_Config, "names") == ("a",)
    first = field_default(_Config, "extra")
    assert first == {"k": 1} and first is not field_default(_Config, "extra")  # fresh each time


def test_field_default_refuses_what_has_no_default():
    with pytest.raises(LookupError, match="no field 'stpes'"):
        field_default(_Config, "stpes")
    with pytest.raises(TypeError, match="required has no default"):
        field_default(_Config, "required")
    with pytest.raises(TypeError, match="not a dataclass"):
        field_default(dict, "steps")


def test_parameter_default_reads_keyword_defaults():
    assert parameter_default(_call, "b") == "auto"
    assert parameter_default(_call, "c") == 0.5
    with pytest.raises(TypeError, match="no default"):
        parameter_default(_call, "a")
    with pytest.raises(LookupError, match="no parameter 'd'"):
        parameter_default(_call, "d")


def test_pretrain_cli_defaults_are_the_library_defaults():
    args = build_parser().parse_args(["pretrain", "atlas.zarr", "--out", "m"])
    opts, sampler, train = PretrainOptions(), SamplerConfig(), TrainConfig()
    assert (args.d_model, args.layers, args.heads, args.d_ff, args.dropout) == \
        (opts.d_model, opts.n_layers, opts.n_heads, opts.d_ff, opts.dropout)
    assert (args.max_len, args.min_len, args.batch_size, args.val_fraction) == \
        (sampler.max_len, sampler.min_len, sampler.batch_size, sampler.val_fraction)
    assert (args.steps, args.lr, args.eval_every, args.patience, args.seed, args.precision) == \
        (train.steps, train.lr, train.eval_every, train.patience, train.seed, train.precision)
    assert args.seed == sampler.seed
    assert args.precision == "auto"
    assert args.device == parameter_default(pretrain_atlas, "device") == "auto"
