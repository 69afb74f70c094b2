"""CLI subcommands: each module registers one (see ``atlasgrn.cli``)."""
