"""Every command that writes a directory refuses one holding a user's files: exit 2 with one
line, the user's file untouched, even with --overwrite when atlasgrn would replace it."""

from __future__ import annotations

import pytest

from atlasgrn.cli import main

#: command line (with OUT for the output directory) and a file the command would write
COMMANDS = {
    "import-scgpt": (["import-scgpt", "nosuch_release", "--out", "OUT"], "config.json"),
    "pretrain": (["pretrain", "nosuch.zarr", "--out", "OUT", "--steps", "1"], "config.json"),
    "bench": (["bench", "beeline", "--data", "nosuch", "--out", "OUT"], "report.md"),
    "train-translator": (["train-translator", "--prior", "p.csv", "--genes", "g.txt", "--out",
                          "OUT"], "translator.json"),
}


def _run(argv, out, capsys):
    rc = main([str(out) if a == "OUT" else a for a in argv])
    return rc, capsys.readouterr().err.strip()


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_directory_of_the_users_files_is_refused_and_kept(name, tmp_path, capsys):
    argv, own_file = COMMANDS[name]
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    rc, err = _run(argv, out, capsys)
    assert rc == 2 and len(err.splitlines()) == 1
    assert "holds no atlasgrn" in err and "--overwrite" in err
    assert (out / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_users_file_is_never_replaced_even_with_overwrite(name, tmp_path, capsys):
    argv, own_file = COMMANDS[name]
    out = tmp_path / "out"
    out.mkdir()
    (out / own_file).write_text("the user's own")
    rc, err = _run(argv + ["--overwrite"], out, capsys)
    assert rc == 2 and len(err.splitlines()) == 1
    assert f"{own_file} exists and was not written by atlasgrn" in err
    assert (out / own_file).read_text() == "the user's own"
    assert sorted(p.name for p in out.iterdir()) == [own_file]


def test_an_out_that_is_a_file_is_called_a_file(tmp_path, capsys):
    target = tmp_path / "f.txt"
    target.write_text("x")
    rc, err = _run(COMMANDS["bench"][0], target, capsys)
    assert rc == 2 and "is a file, not a directory" in err
