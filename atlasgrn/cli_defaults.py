"""Command-line defaults read from the library, so each default is written exactly once.

A CLI option that mirrors a config field (or a keyword of the function it calls) must not restate
that default: two copies drift apart, and then ``atlasgrn pretrain`` and
``pretrain_atlas(...)`` train different models "with the defaults" (``--precision`` once
defaulted to ``auto`` while ``TrainConfig.precision`` said ``fp32``). Commands pass
``default=field_default(Config, "name")`` instead of a literal.

A missing field or a field without a default is a programming error in the command, not bad
user input, so it raises ``LookupError``/``TypeError`` at parser construction, where every test
that builds the CLI parser sees it.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any


def field_default(cls: type, name: str) -> Any:
    """The default of field ``name`` of dataclass ``cls`` (``default_factory()`` when it has one).

    >>> @dataclasses.dataclass
    ... class C:
    ...     steps: int = 10
    >>> field_default(C, "steps")
    10
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    for f in dataclasses.fields(cls):
        if f.name != name:
            continue
        if f.default is not dataclasses.MISSING:
            return f.default
        if f.default_factory is not dataclasses.MISSING:
            return f.default_factory()
        raise TypeError(f"{cls.__name__}.{name} has no default")
    raise LookupError(f"{cls.__name__} has no field {name!r}")


def parameter_default(func: Callable[..., Any], name: str) -> Any:
    """The default of keyword parameter ``name`` of ``func`` (for options passed straight
    through to a library call, e.g. ``device=`` of ``pretrain_atlas``)."""
    try:
        param = inspect.signature(func).parameters[name]
    except KeyError:
        raise LookupError(f"{func.__qualname__} has no parameter {name!r}") from None
    if param.default is inspect.Parameter.empty:
        raise TypeError(f"{func.__qualname__}({name}) has no default")
    return param.default
