"""Output directories that never cost a user a file.

Every command that writes a directory (``import-scgpt``, ``pretrain``, ``bench``,
``train-translator``) claims it here first:

- a new or empty directory is taken;
- a directory already holding this command's kind of output is taken again (a rerun, a resumed
  pre-training), because atlasgrn wrote what is there;
- any other non-empty directory is refused unless ``--overwrite`` is given;
- and even then, a file this command would write is never replaced unless atlasgrn wrote it:
  a user's own ``config.json`` or ``report.md`` stops the command with one line.

What atlasgrn wrote is recorded in a hidden marker, ``.atlasgrn-output.json`` (file names per
kind of output, since one directory may hold a model and, with ``--overwrite``, a translator),
updated atomically as files are published. Directories written before the marker
existed are recognised by their content (a model's ``config.json`` format, a translator's
``translator.json``, a benchmark's manifest).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

from .atomic import is_temp_name, write_text_atomic
from .errors import AtlasgrnError

MARKER = ".atlasgrn-output.json"


@dataclass(frozen=True)
class Claimed:
    """A directory this command may write the claimed files into."""

    path: Path
    kind: str

    def record(self, names: Iterable[str]) -> None:
        """Add ``names`` to what atlasgrn wrote here (call after publishing them)."""
        by_kind = _read_marker(self.path) or {}
        by_kind[self.kind] = sorted(set(by_kind.get(self.kind, [])) | set(names))
        write_text_atomic(self.path / MARKER, json.dumps({"files": by_kind}, indent=1,
                                                         sort_keys=True) + "\n")


def _read_marker(path: Path) -> dict[str, list[str]] | None:
    """File names atlasgrn wrote here, per kind of output (None: no marker)."""
    try:
        data = json.loads((path / MARKER).read_text())
    except (OSError, ValueError):
        return None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        return None
    return {str(k): [str(n) for n in v] for k, v in files.items() if isinstance(v, list)}


def probe_create(directory: str | os.PathLike[str]) -> None:
    """Make and remove a hidden entry in ``directory``; raises the ``OSError`` that creating an
    output there would meet. (``os.access`` says yes to root on read-only or virtual
    filesystems such as /proc.)"""
    os.rmdir(tempfile.mkdtemp(prefix=".atlasgrn-probe-", dir=directory))


def check_writable(path: str | os.PathLike[str], option: str = "--out") -> None:
    """Refuse, in one line, an output that cannot be created or written, before any work.

    The nearest existing ancestor must be a directory in which this process can really create
    an entry: a hidden probe directory is made and removed at once (``os.access`` says yes to
    root on read-only or virtual filesystems such as /proc). Nothing is left behind."""
    target = Path(path)
    probe = target
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise AtlasgrnError(f"cannot write into {probe}: it is a file", path=str(target),
                            key=option, remedy=f"choose a writable location for {option}")
    if probe == target and not os.access(probe, os.W_OK | os.X_OK):
        raise AtlasgrnError("cannot write into it (permission denied)", path=str(target),
                            key=option, remedy=f"choose a writable location for {option}")
    try:
        probe_create(probe)
    except OSError as exc:
        raise AtlasgrnError(f"cannot write into {probe} ({exc.strerror})",
                            path=str(target), key=option,
                            remedy=f"choose a writable location for {option}") from None


def claim_output_dir(path: str | os.PathLike[str], kind: str, files: Iterable[str], *,
                     overwrite: bool = False, option: str = "--out",
                     recognise: Callable[[Path], Iterable[str]] | None = None) -> Claimed:
    """Check that ``files`` (names, or glob patterns such as ``pr_*.png``) may be written into
    ``path`` (see the module docstring).

    ``kind`` names the command's output ("model", "translator", "bench"); ``recognise(path)``
    returns the names of files an older atlasgrn wrote there (a directory without a marker),
    or nothing when the directory is not this kind of output.
    """
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise AtlasgrnError("is a file, not a directory", path=str(out), key=option,
                            remedy=f"give {option} a directory (new, empty, or an earlier "
                                   f"{kind} output)")
    check_writable(out, option)
    present = sorted(p.name for p in out.iterdir() if not is_temp_name(p.name)) \
        if out.is_dir() else []
    present = [n for n in present if n != MARKER]
    if not present:
        return Claimed(out, kind)
    marker = _read_marker(out) or {}
    recognised = set(recognise(out)) if recognise is not None else set()
    own_kind = kind in marker or bool(recognised)
    ours = set().union(*marker.values(), recognised)  # atlasgrn wrote these, whatever kind
    if not own_kind and not overwrite:
        raise AtlasgrnError(f"the directory is not empty and holds no atlasgrn {kind} output "
                            f"(found {', '.join(present[:3])}"
                            f"{' ...' if len(present) > 3 else ''})", path=str(out), key=option,
                            remedy=f"choose a new or empty {option}, or pass --overwrite to add "
                                   "atlasgrn's files beside the ones there")
    patterns = list(files)
    theirs = [n for n in present if n not in ours and any(fnmatch(n, f) for f in patterns)]
    if theirs:
        raise AtlasgrnError(f"{theirs[0]} exists and was not written by atlasgrn, so it is "
                            "never replaced", path=str(out / theirs[0]), key=option,
                            remedy=f"move the file away, or choose another {option}")
    return Claimed(out, kind)


def claim_output_file(path: str | os.PathLike[str], *, overwrite: bool = False,
                      option: str = "--out") -> Path:
    """Check that one output file (a report, an export) may be written at ``path``: an existing
    file only with ``--overwrite``, never a directory, and only where the process can write.
    The file itself is written atomically by the caller (:mod:`atlasgrn.atomic`)."""
    target = Path(path)
    if target.is_dir():
        raise AtlasgrnError("is a directory, not a file", path=str(target), key=option,
                            remedy=f"give {option} a file name, e.g. {target / 'report.html'}")
    if target.exists() and not overwrite:
        raise AtlasgrnError("the file exists", path=str(target), key=option,
                            remedy="choose another name, or pass --overwrite to replace it")
    check_writable(target.parent if str(target.parent) else Path("."), option)
    return target
