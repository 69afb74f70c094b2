"""Output directories: taken when new, empty or atlasgrn's own; a user's file never replaced."""

from __future__ import annotations

import pytest

from atlasgrn.errors import AtlasgrnError
from atlasgrn.outdir import MARKER, claim_output_dir

FILES = ("config.json", "model.safetensors")


def test_new_and_empty_directories_are_taken(tmp_path):
    assert claim_output_dir(tmp_path / "new", "model", FILES).path == tmp_path / "new"
    (tmp_path / "empty").mkdir()
    claim_output_dir(tmp_path / "empty", "model", FILES)


def test_a_file_is_called_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(AtlasgrnError, match="is a file, not a directory"):
        claim_output_dir(tmp_path / "f", "model", FILES)


def test_a_foreign_directory_needs_overwrite_and_its_files_are_never_replaced(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(AtlasgrnError, match="--overwrite"):
        claim_output_dir(out, "model", FILES)
    claim_output_dir(out, "model", FILES, overwrite=True)  # beside notes.txt: fine
    (out / "config.json").write_text("{\"mine\": true}")
    with pytest.raises(AtlasgrnError) as err:
        claim_output_dir(out, "model", FILES, overwrite=True)
    assert "config.json exists and was not written by atlasgrn" in str(err.value)


def test_own_output_is_taken_again_and_recorded_files_may_be_replaced(tmp_path):
    out = tmp_path / "o"
    claimed = claim_output_dir(out, "model", FILES)
    out.mkdir()
    for name in FILES:
        (out / name).write_text("atlasgrn")
    claimed.record(FILES)
    assert (out / MARKER).exists()
    claim_output_dir(out, "model", FILES)                  # a rerun: ours
    with pytest.raises(AtlasgrnError, match="no atlasgrn translator output"):
        claim_output_dir(out, "translator", ("translator.json",))


def test_older_outputs_are_recognised_by_content(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "config.json").write_text("{}")
    claim_output_dir(out, "model", FILES, recognise=lambda p: ["config.json"])
    with pytest.raises(AtlasgrnError):
        claim_output_dir(out, "model", FILES, recognise=lambda p: [])


def test_one_directory_may_hold_two_kinds_and_neither_disowns_the_other(tmp_path):
    out = tmp_path / "o"
    model = claim_output_dir(out, "model", FILES)
    out.mkdir()
    (out / "config.json").write_text("{}")
    model.record(["config.json"])
    translator = claim_output_dir(out, "translator", ("translator.json",), overwrite=True)
    (out / "translator.json").write_text("{}")
    translator.record(["translator.json"])
    # both kinds are atlasgrn's: rerunning either is taken, and nothing is called foreign
    claim_output_dir(out, "model", FILES)
    claim_output_dir(out, "translator", ("translator.json",))
