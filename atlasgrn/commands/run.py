"""``atlasgrn run``: the main job (same options as ``python -m atlasgrn.run``)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..run import add_arguments

    p = subparsers.add_parser("run", help="build the GRN of an atlas (the main job)",
                              description="Build gene regulatory networks across an atlas with "
                                          "frozen foundation-model replicas on Ray.")
    add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..run import run as run_job

    return run_job(args, prog="atlasgrn run")
