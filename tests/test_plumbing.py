"""The shared plumbing: all-or-nothing writes, digests, lazy package exports."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys

import fsspec
import pytest

from atlasgrn.atomic import (
    is_temp_name,
    replace_dir,
    temp_name_for,
    write_atomic,
    write_bytes_atomic,
    write_path_atomic,
    write_text_atomic,
)
from atlasgrn.digest import bytes_sha256, dir_sha256, file_sha256, json_sha256


# ------------------------------------------------------------------------------ atomic writes
def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "sub" / "f.txt"
    write_text_atomic(target, "old")

    def boom(fh):
        fh.write(b"half")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        write_atomic(target, boom)
    assert target.read_text() == "old"
    assert [p.name for p in target.parent.iterdir()] == ["f.txt"]


def test_published_files_are_shared_like_open_would_make_them(tmp_path):
    write_path_atomic(tmp_path / "w.bin", lambda p: open(p, "wb").write(b"x"))  # noqa: SIM115
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "w.bin").stat().st_mode) == 0o666 & ~umask


def test_temporary_names_are_hidden_and_recognised(tmp_path):
    tmp = temp_name_for(tmp_path / "edges.parquet")
    assert tmp.parent == tmp_path and tmp.name.startswith(".edges.parquet.tmp-")
    assert is_temp_name(tmp.name) and not is_temp_name("edges.parquet")
    assert not is_temp_name("_SUCCESS")


def test_object_store_urls_are_written_in_one_put():
    url = "memory://atomic-test/run/manifest.json"
    write_bytes_atomic(url, b"{}")
    fs, path = fsspec.core.url_to_fs(url)
    assert fs.cat(path) == b"{}"
    assert fs.ls("/atomic-test/run", detail=False) == ["/atomic-test/run/manifest.json"]


def test_replace_dir_swaps_a_built_directory_into_place(tmp_path):
    final, built = tmp_path / "ds", tmp_path / ".ds.tmp-1"
    final.mkdir()
    (final / "old").write_text("1")
    built.mkdir()
    (built / "new").write_text("2")
    replace_dir(built, final)
    assert [p.name for p in final.iterdir()] == ["new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


# ------------------------------------------------------------------------------ digests
def test_file_and_bytes_digests_are_plain_sha256(tmp_path):
    data = os.urandom(3 << 20)  # bigger than one read buffer
    (tmp_path / "f").write_bytes(data)
    assert file_sha256(tmp_path / "f") == hashlib.sha256(data).hexdigest() == bytes_sha256(data)


def test_dir_digest_covers_names_and_bytes_and_can_be_restricted(tmp_path):
    (tmp_path / "a").write_text("1")
    (tmp_path / "b").write_text("2")
    (tmp_path / ".hidden").write_text("ignored")
    whole = dir_sha256(tmp_path)
    (tmp_path / ".hidden").write_text("changed")
    assert dir_sha256(tmp_path) == whole
    only_a = dir_sha256(tmp_path, ["a"])
    (tmp_path / "b").write_text("3")
    assert dir_sha256(tmp_path) != whole and dir_sha256(tmp_path, ["a"]) == only_a
    (tmp_path / "a").rename(tmp_path / "c")
    (tmp_path / "c").rename(tmp_path / "a")
    assert dir_sha256(tmp_path, ["a"]) == only_a


def test_tree_digest_covers_every_file_below_and_its_path(tmp_path):
    from atlasgrn.digest import tree_sha256

    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "x").write_text("1")
    (tmp_path / "y").write_text("2")
    first = tree_sha256(tmp_path)
    assert tree_sha256(tmp_path) == first
    (tmp_path / "a" / "b" / "x").rename(tmp_path / "a" / "x")
    assert tree_sha256(tmp_path) != first


def test_json_digest_ignores_key_order_but_not_values():
    assert json_sha256({"a": 1, "b": [1, 2]}) == json_sha256({"b": [1, 2], "a": 1})
    assert json_sha256({"a": 1}) != json_sha256({"a": 2})
    assert json_sha256({"t": (1, 2)}) == json_sha256({"t": [1, 2]})


# ------------------------------------------------------------------------------ lazy exports
def test_reading_a_config_default_does_not_import_torch():
    """The CLI parser reads dataclass defaults; with eager package exports that pulled in
    torch and made `atlasgrn --help` and every one-line error take seconds."""
    code = ("import sys, atlasgrn.cli as c; c.build_parser(); "
            "print(sorted(m for m in ('torch', 'ray', 'anndata') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_lazy_exports_resolve_and_unknown_names_fail():
    import atlasgrn.features as features

    assert features.FeatureSpec.__name__ == "FeatureSpec"
    assert "block_features" in dir(features)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        features.nope  # noqa: B018


@pytest.mark.parametrize("package", ["atlasgrn.atlas", "atlasgrn.sim", "atlasgrn.models",
                                     "atlasgrn.pretraining", "atlasgrn.features",
                                     "atlasgrn.translator", "atlasgrn.bench"])
def test_no_lazy_export_shares_a_submodule_name(package):
    """Once a submodule is imported Python sets it as the package attribute, which would shadow
    a lazy export of the same name (``atlasgrn.probes`` stays eager for that reason)."""
    import importlib
    import pkgutil

    pkg = importlib.import_module(package)
    submodules = {m.name for m in pkgutil.iter_modules(pkg.__path__)}
    assert not submodules & set(pkg._EXPORTS)
    for name, module in pkg._EXPORTS.items():
        assert hasattr(importlib.import_module(module, package), name), (package, name)
