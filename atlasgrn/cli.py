"""The ``atlasgrn`` command line: one subcommand per module in ``atlasgrn.commands``.

Every subcommand module exposes ``register(subparsers)`` and sets ``func(args) -> int`` on its
parser. Bad input raises :class:`~atlasgrn.errors.AtlasgrnError`, which becomes one line on
stderr and exit code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from . import commands
from .errors import EXIT_BAD_INPUT, AtlasgrnError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="atlasgrn",
        description="Gene regulatory networks across single-cell atlases with frozen "
                    "foundation models.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for mod in sorted(m.name for m in pkgutil.iter_modules(commands.__path__)):
        if mod.startswith("_"):
            continue
        importlib.import_module(f"{commands.__name__}.{mod}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except AtlasgrnError as exc:
        print(f"atlasgrn {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"atlasgrn {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
