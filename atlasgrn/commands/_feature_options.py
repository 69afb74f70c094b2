"""The feature-spec options of the commands that *train* translators (``train-translator``,
``bench``): they choose the spec the translator is stamped with. (The job takes its spec from
the translator and only checks options against it: see ``atlasgrn/run.py``.)"""

from __future__ import annotations

import argparse
from typing import Any

from ..cli_defaults import field_default

#: option -> FeatureSpec field
SPEC_FIELDS = {"context_len": "tokens per probe context, at most the model's maximum",
               "source_block": "regulators per block",
               "target_block": "targets per block"}


def add_spec_options(p: argparse.ArgumentParser) -> None:
    from ..features import FeatureSpec

    for name, what in SPEC_FIELDS.items():
        p.add_argument("--" + name.replace("_", "-"), type=int, default=None,
                       help=f"{what} (default: {field_default(FeatureSpec, name)})")


def spec_options(args: argparse.Namespace) -> dict[str, Any]:
    """The spec fields given on the command line (absent ones take the spec's defaults)."""
    return {name: getattr(args, name) for name in SPEC_FIELDS
            if getattr(args, name) is not None}


def parse_background(text: str | None) -> float | str | None:
    """``--background``: a number (universal mode) or ``profile`` (context mode)."""
    from ..errors import AtlasgrnError
    from ..features import PROFILE

    if text is None or text == PROFILE:
        return text
    try:
        return float(text)
    except ValueError:
        raise AtlasgrnError(f"--background {text!r} is neither a number nor 'profile'",
                            key="--background", remedy="give e.g. 0, or profile") from None
