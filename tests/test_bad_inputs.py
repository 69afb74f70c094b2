"""Every command, given bad input, says so in one line and exits 2, with nothing written.

One table, run in-process through the same ``main`` functions the console scripts call. Each
case names the command line, a phrase its one error line must contain (the option or file it
is about, so a remedy never speaks of another option), and the paths that must not exist
afterwards. The object-store cases (missing bucket, denied access, unreachable endpoint) need
the S3 server and live in ``test_s3.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from atlasgrn import cli
from atlasgrn import run as run_module
from atlasgrn.atlas.bundled import demo_atlas_path

DEMO = str(demo_atlas_path())


@dataclass(frozen=True)
class Case:
    id: str
    argv: Callable[[Path, Path], list[str]]   # (tmp, demo run) -> argv; "run" first = the job
    says: str                                 # in the one error line
    absent: tuple[str, ...] = ()              # relative to tmp: must not exist afterwards


def _files(tmp: Path) -> None:
    """Inputs the cases point at: a user's directory, a file, a bad manifest, a bad CSV."""
    (tmp / "userdir").mkdir()
    (tmp / "userdir" / "notes.txt").write_text("mine\n")
    (tmp / "afile").write_text("not a directory\n")
    (tmp / "listrun").mkdir()
    (tmp / "listrun" / "manifest.json").write_text(json.dumps([1, 2]))
    (tmp / "badjson").mkdir()
    (tmp / "badjson" / "manifest.json").write_text("{not json")
    (tmp / "empty.csv").write_text("")
    (tmp / "matrix.csv").write_text("gene,c1,c2\nA,1,2\nB,3,4\n")
    (tmp / "prior.tsv").write_text("TF1\tG1\n")
    (tmp / "genes.txt").write_text("TF1\nG1\n")


CASES = [
    # ---- python -m atlasgrn.run (the main job)
    Case("run-missing-atlas", lambda t, r: ["run", str(t / "nope.zarr"), "--out", str(t / "o")],
         "atlas not found", ("o",)),
    Case("run-atlas-is-a-file", lambda t, r: ["run", str(t / "afile"), "--out", str(t / "o")],
         "not a Zarr store", ("o",)),
    Case("run-out-unwritable", lambda t, r: ["run", DEMO, "--out", "/proc/atlasgrn-run",
                                             "--max-regulators", "1"], "cannot write into /proc"),
    Case("run-out-is-a-file", lambda t, r: ["run", DEMO, "--out", str(t / "afile"),
                                            "--max-regulators", "1"], "is a file"),
    Case("run-out-user-dir", lambda t, r: ["run", DEMO, "--out", str(t / "userdir"),
                                           "--max-regulators", "1"], "not an atlasgrn run"),
    Case("run-manifest-list", lambda t, r: ["run", DEMO, "--out", str(t / "listrun"),
                                            "--max-regulators", "1"], "JSON list"),
    Case("run-manifest-not-json", lambda t, r: ["run", DEMO, "--out", str(t / "badjson"),
                                                "--max-regulators", "1"], "not valid JSON"),
    Case("run-read-tasks-negative", lambda t, r: ["run", DEMO, "--out", str(t / "o"),
                                                  "--read-tasks", "-1"], "--read-tasks", ("o",)),
    Case("run-source-block-0", lambda t, r: ["run", DEMO, "--out", str(t / "o"),
                                             "--source-block", "0"],
         "--source-block a positive number of regulators", ("o",)),
    Case("run-max-regulators-0", lambda t, r: ["run", DEMO, "--out", str(t / "o"),
                                               "--max-regulators", "0"],
         "--max-regulators at least 1", ("o",)),
    Case("run-replicas-0", lambda t, r: ["run", DEMO, "--out", str(t / "o"), "--replicas", "0"],
         "--replicas", ("o",)),
    Case("run-blocks-per-call-0", lambda t, r: ["run", DEMO, "--out", str(t / "o"),
                                                "--blocks-per-call", "0"],
         "--blocks-per-call", ("o",)),
    Case("run-tf32-on-cpu", lambda t, r: ["run", DEMO, "--out", str(t / "o"),
                                          "--gpus-per-replica", "0", "--gdt-precision", "tf32"],
         "--gdt-precision", ("o",)),
    Case("run-replica-resource-0", lambda t, r: ["run", DEMO, "--out", str(t / "o"),
                                                 "--replica-resource", "pool=0"],
         "--replica-resource", ("o",)),
    Case("run-replica-resource-missing", lambda t, r: ["run", DEMO, "--out", str(t / "o"),
                                                       "--replica-resource", "no_such_pool=1",
                                                       "--max-regulators", "1"],
         "no_such_pool=1 asked", ("o",)),
    Case("run-unknown-dataset", lambda t, r: ["run", DEMO, "--out", str(t / "o"),
                                              "--dataset", "nope"], "'nope'", ("o",)),
    Case("run-missing-regulators", lambda t, r: ["run", DEMO, "--out", str(t / "o"),
                                                 "--regulators", str(t / "no.txt")],
         "regulator list", ("o",)),
    Case("run-missing-model", lambda t, r: ["run", DEMO, "--out", str(t / "o"), "--model",
                                            str(t / "nomodel")], "--model", ("o",)),
    Case("run-context-contradicts-spec", lambda t, r: ["run", DEMO, "--out", str(t / "o"),
                                                       "--context-len", "7"],
         "--context-len", ("o",)),
    Case("run-out-inside-atlas", lambda t, r: ["run", DEMO, "--out", f"{DEMO}/run"],
         "inside the atlas"),
    # ---- atlasgrn ingest / info / simulate
    Case("ingest-missing-file", lambda t, r: ["ingest", str(t / "a.zarr"), "--dataset",
                                              f"x={t / 'nope.h5ad'}"], "no such file",
         ("a.zarr",)),
    Case("ingest-unknown-format", lambda t, r: ["ingest", str(t / "a.zarr"), "--dataset",
                                                f"x={t / 'afile'}"], "unknown input format",
         ("a.zarr",)),
    Case("ingest-empty-csv", lambda t, r: ["ingest", str(t / "a.zarr"), "--dataset",
                                           f"x={t / 'empty.csv'}", "--species", "human",
                                           "--value-kind", "counts"], "empty.csv",
         ("a.zarr",)),
    Case("ingest-unwritable-out", lambda t, r: ["ingest", "/proc/atlasgrn.zarr", "--dataset",
                                                f"x={t / 'matrix.csv'}", "--species", "human",
                                                "--value-kind", "counts"], "cannot create"),
    Case("ingest-into-user-dir", lambda t, r: ["ingest", str(t / "userdir"), "--dataset",
                                               f"x={t / 'matrix.csv'}", "--species", "human",
                                               "--value-kind", "counts"], "userdir"),
    Case("info-missing", lambda t, r: ["info", str(t / "nope.zarr")], "no such atlas"),
    Case("info-not-an-atlas", lambda t, r: ["info", str(t / "userdir")], "userdir"),
    Case("simulate-existing-user-dir", lambda t, r: ["simulate", str(t / "userdir")],
         "userdir"),
    # ---- pretrain / import-scgpt / train-translator / model-eval / bench
    Case("pretrain-into-user-dir", lambda t, r: ["pretrain", DEMO, "--out", str(t / "userdir"),
                                                 "--steps", "1"], "not empty"),
    Case("pretrain-unwritable-out", lambda t, r: ["pretrain", DEMO, "--out", "/proc/m",
                                                  "--steps", "1"], "cannot write into"),
    Case("pretrain-missing-atlas", lambda t, r: ["pretrain", str(t / "nope.zarr"), "--out",
                                                 str(t / "m")], "nope.zarr", ("m",)),
    Case("import-scgpt-missing-source", lambda t, r: ["import-scgpt", str(t / "nosrc"),
                                                      "--out", str(t / "m")], "nosrc", ("m",)),
    Case("import-scgpt-unwritable-out", lambda t, r: ["import-scgpt", str(t / "userdir"),
                                                      "--out", "/proc/m"], "cannot write into"),
    Case("train-translator-missing-prior", lambda t, r: ["train-translator", "--prior",
                                                         str(t / "no.tsv"), "--genes",
                                                         str(t / "genes.txt"), "--out",
                                                         str(t / "tr")], "no.tsv", ("tr",)),
    Case("train-translator-into-user-dir", lambda t, r: ["train-translator", "--prior",
                                                         str(t / "prior.tsv"), "--genes",
                                                         str(t / "genes.txt"), "--out",
                                                         str(t / "userdir")], "not empty"),
    Case("model-eval-missing-atlas", lambda t, r: ["model-eval", str(t / "nope.zarr")],
         "nope.zarr"),
    Case("bench-missing-data", lambda t, r: ["bench", "beeline", "--data", str(t / "nodata"),
                                             "--out", str(t / "b")], "nodata", ("b",)),
    # ---- edges / export / report on a build
    Case("edges-not-a-run", lambda t, r: ["edges", str(t / "userdir")], "not a run"),
    Case("edges-run-manifest-list", lambda t, r: ["edges", str(t / "listrun")], "JSON list"),
    Case("edges-unknown-dataset", lambda t, r: ["edges", str(r), "--dataset", "nope"],
         "--dataset"),
    Case("export-existing-file", lambda t, r: ["export", str(r), "--format", "adjacency",
                                               "--out", str(t / "afile")], "the file exists"),
    Case("export-unwritable", lambda t, r: ["export", str(r), "--format", "gmt", "--out",
                                            "/proc/net.gmt"], "cannot write into"),
    Case("report-out-is-a-dir", lambda t, r: ["report", str(r), "--out", str(t / "userdir")],
         "is a directory"),
    Case("report-missing-reference", lambda t, r: ["report", str(r), "--out",
                                                   str(t / "r.html"), "--reference",
                                                   str(t / "noref.tsv")], "noref.tsv",
         ("r.html",)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case, demo_run, tmp_path, capsys):
    _files(tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    argv = case.argv(tmp_path, demo_run)
    if argv[0] == "run":  # the main job's own entry point, as `python -m atlasgrn.run`
        rc, prog = run_module.main(argv[1:]), "atlasgrn.run"
    else:
        rc, prog = cli.main(argv), f"atlasgrn {argv[0]}"
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith(f"{prog}: error:")]
    assert rc == 2, err[-2000:]
    assert len(lines) == 1 and "Traceback" not in err, err[-2000:]
    assert case.says in lines[0], lines[0]
    for rel in case.absent:
        assert not (tmp_path / rel).exists(), f"{rel} was created"
    # nothing the user had was changed or removed, and no probe or temporary file was left
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert (tmp_path / "userdir" / "notes.txt").read_text() == "mine\n"


def test_the_table_covers_every_command_and_thirty_cases():
    commands = {c.argv(Path("/t"), Path("/r"))[0] for c in CASES}
    assert commands >= {"run", "ingest", "info", "simulate", "pretrain", "import-scgpt",
                        "train-translator", "bench", "edges", "export", "report"}
    assert len(CASES) >= 30
