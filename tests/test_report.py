"""``atlasgrn report``: a self-contained HTML page whose numbers equal a pandas computation on
the same Parquet, built by streaming (small batches give the same answers), with bad input as one
line and exit 2."""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser
from io import BytesIO
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as pads
import pytest

from atlasgrn.cli import build_parser, main
from atlasgrn.cli_defaults import field_default
from atlasgrn.results import figures, stats
from atlasgrn.results.report import REPORT_NAME, Reference, ReportOptions, build_report
from atlasgrn.results.run import open_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FIGURE = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
@pytest.fixture(scope="session")
def report_run(demo_run) -> Path:
    """The demo build shared by every results test (tests/conftest.py)."""
    return demo_run


@pytest.fixture(scope="session")
def demo_edges(report_run) -> pd.DataFrame:
    """The demo's edges, read whole with pandas: the reference computation (small here)."""
    frame = open_run(str(report_run)).edges().to_table(
        columns=["dataset", "source", "target", "score"]).to_pandas()
    return frame.assign(dataset=frame.dataset.astype(str))


@pytest.fixture(scope="session")
def demo_consensus(report_run) -> pd.DataFrame:
    return pads.dataset(str(report_run / "consensus")).to_table().to_pandas()


@pytest.fixture(scope="session")
def reference_csv(demo_consensus, tmp_path_factory) -> Path:
    """A reference network: every third pair of two regulators of the consensus, one pair in
    lower case (matched through the upper-case rule), plus edges the run cannot have."""
    regs = sorted(demo_consensus.source.unique())[:2]
    rows = demo_consensus[demo_consensus.source.isin(regs)].sort_values(["source", "target"])
    picked = rows.iloc[::3][["source", "target"]].reset_index(drop=True)
    upper = picked.index[picked.target == picked.target.str.upper()][0]
    picked.loc[upper, "target"] = picked.loc[upper, "target"].lower()
    extra = pd.DataFrame({"source": [regs[0], "NOT_A_GENE"], "target": ["NOT_A_GENE", "X"]})
    path = tmp_path_factory.mktemp("reference") / "reference.csv"
    pd.concat([picked, extra]).rename(columns={"source": "Source", "target": "Target"}).to_csv(
        path, index=False)
    return path


@pytest.fixture(scope="session")
def demo_report(report_run, reference_csv, tmp_path_factory):
    """The CLI's report of the demo with --reference: (html, stdout lines)."""
    out = tmp_path_factory.mktemp("report-html") / "report.html"
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["report", str(report_run), "--reference", str(reference_csv), "--out",
                   str(out)])
    assert rc == 0
    return out.read_text(encoding="utf-8"), buf.getvalue()


class _Tables(HTMLParser):
    """Cells of the tables with an id, as text."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._id: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and a.get("id"):
            self._id = a["id"]
            self.tables[self._id] = []
        elif tag == "tr" and self._id:
            self.tables[self._id].append([])
        elif tag in ("td", "th") and self._id:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._id and self._cell is not None:
            self.tables[self._id][-1].append("".join(self._cell))
            self._cell = None
        elif tag == "table":
            self._id = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def tables_of(page: str) -> dict[str, list[list[str]]]:
    parser = _Tables()
    parser.feed(page)
    return parser.tables


def _top_pandas(frame: pd.DataFrame, score: str, k: int) -> pd.DataFrame:
    return frame.sort_values([score, "source", "target"], ascending=[False, True, True]).head(k)


# ------------------------------------------------------------------------- a synthetic run


def write_toy_run(root: Path, *, complete: bool = True, seed: int = 0) -> Path:
    """Three datasets sharing regulators and targets (so top-k sets overlap), scores on a coarse
    grid (so ties are common), two files per dataset; a gene name that needs HTML escaping."""
    from atlasgrn.engine.consensus import write_consensus
    from atlasgrn.engine.output import SUCCESS, RunOutput, edges_table, write_manifest

    rng = np.random.default_rng(seed)
    out = RunOutput(str(root))
    regs = ["R1", "R2", "R<b>&3", "R4"]
    genes = [f"G{i:02d}" for i in range(30)]
    plan = {}
    for d, keep in (("A", 1.0), ("B", 0.8), ("C", 0.6)):
        pairs = [(r, g) for r in regs for g in genes if rng.random() < keep]
        src = np.array([p[0] for p in pairs], dtype=object)
        tgt = np.array([p[1] for p in pairs], dtype=object)
        score = np.round(rng.random(len(pairs)) * 20) / 20
        logit = np.log(np.clip(score, 1e-3, 1 - 1e-3) / np.clip(1 - score, 1e-3, 1))
        half = len(pairs) // 2
        for b, sl in enumerate((slice(0, half), slice(half, None))):
            out.write_table_atomic(out.path("edges", f"dataset={d}", f"{d}__{b:05d}.parquet"),
                                   edges_table(src[sl], tgt[sl], score[sl],
                                               {"vvp": logit[sl]}))
        plan[d] = {"blocks": 2, "genes": len(genes), "pairs": len(pairs),
                   "regulators": len(regs)}
    manifest = {
        "status": "complete" if complete else "running", "run_hash": "toy0000000000000",
        "kinds": ["vvp"], "plan": {"datasets": plan, "pairs": sum(p["pairs"] for p in
                                                                  plan.values())},
        "inputs": {"model": {"path": "/m<odel>", "sha256": "ab" * 32},
                   "translator": {"path": "/t", "sha256": "cd" * 32}},
        "feature_spec": {"kinds": ["vvp"], "context_len": 64},
        "attempts": [{"started": "2026-01-01T00:00:00+0000", "status": "complete",
                      "compute_seconds": 1.5, "consensus_seconds": 0.1}],
    }
    if complete:
        write_consensus(out)
    write_manifest(out, manifest)
    if complete:
        out.write_text_atomic(out.path(SUCCESS), "")
    return root


@pytest.fixture()
def toy_run(tmp_path) -> Path:
    return write_toy_run(tmp_path / "toy")


def _toy_edges(run_dir: Path) -> pd.DataFrame:
    frame = open_run(str(run_dir), allow_partial=True).edges().to_table().to_pandas()
    return frame.assign(dataset=frame.dataset.astype(str))


# ------------------------------------------------------------------------------ the page


def test_page_is_self_contained_with_every_section_and_valid_pngs(demo_report):
    from PIL import Image

    page, _ = demo_report
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert "<script" not in page and "<link" not in page and "@import" not in page
    assert "url(" not in page
    for ident in ("summary", "distributions", "regulons", "network", "agreement", "reference",
                  "guidance"):
        assert f'<section id="{ident}">' in page
    pngs = [base64.b64decode(m) for m in FIGURE.findall(page)]
    assert page.count("<img ") == len(pngs) == 4  # histograms, network, Jaccard, PR curve
    for png in pngs:
        assert png.startswith(PNG_MAGIC) and len(png) > 10_000
        with Image.open(BytesIO(png)) as im:
            im.verify()
        with Image.open(BytesIO(png)) as im:
            assert im.size[0] >= 400 and im.size[1] >= 200
            assert len(set(im.convert("RGB").getdata())) > 20  # not a flat image


def test_progress_is_one_plain_line_per_section(demo_report):
    _, stdout = demo_report
    assert "\r" not in stdout
    lines = stdout.strip().splitlines()
    names = ["run summary", "score distributions", "top regulons", "network",
             "dataset agreement", "reference network", "threshold guidance"]
    assert lines[:7] == [f"report: {n} ({i}/7)" for i, n in enumerate(names, 1)]
    assert lines[7].startswith("wrote ") and lines[7].endswith("report.html")


def test_summary_names_datasets_counts_inputs_and_spec(demo_report, report_run, demo_edges,
                                                       demo_consensus):
    page, _ = demo_report
    manifest = json.loads((report_run / "manifest.json").read_text())
    t = tables_of(page)
    overview = {row[0]: row[1] for row in t["overview"]}
    assert overview["status"] == "complete"
    assert overview["edge rows"].startswith(f"{len(demo_edges):,} over 3 dataset(s)")
    assert overview["consensus rows"] == f"{len(demo_consensus):,}"
    assert manifest["inputs"]["model"]["sha256"][:12] in overview["model"]
    assert manifest["inputs"]["translator"]["sha256"][:12] in overview["translator"]
    rows = {r[0]: r for r in t["datasets"][1:]}
    counts = demo_edges.dataset.value_counts()
    assert sorted(rows) == sorted(manifest["plan"]["datasets"]) == sorted(counts.index)
    for d, row in rows.items():
        assert row[-1] == f"{counts[d]:,}"
    spec = {r[0] for r in t["feature-spec"][1:]}
    assert spec == set(manifest["feature_spec"])
    assert len(t["attempts"]) == 1 + len(manifest["attempts"])
    guidance = t["guidance-table"][1:]
    assert [float(r[0]) for r in guidance] == pytest.approx(
        [g["score"] for g in manifest["threshold_guidance"]["thresholds"]], abs=5e-4)
    assert "partial run" not in page.lower()


# ------------------------------------------------------------------------ the numbers


def test_histogram_counts_equal_numpy_over_pandas(report_run, demo_edges, demo_report):
    run = open_run(str(report_run))
    bins = field_default(ReportOptions, "histogram_bins")
    counts = stats.score_histograms(run, bins, batch_rows=97)  # many batches per file
    edges = np.linspace(0, 1, bins + 1)
    for d, frame in demo_edges.groupby("dataset"):
        expected = np.histogram(frame.score.to_numpy(), bins=edges)[0]
        assert np.array_equal(counts[d], expected)
        assert counts[d].sum() == len(frame)
    table = tables_of(demo_report[0])["histogram-counts"]
    header = table[0][1:]
    shown = {d: np.array([int(r[1 + header.index(d)]) for r in table[1:]]) for d in header}
    assert all(np.array_equal(shown[d], counts[d]) for d in counts)


def _regulons_pandas(frame: pd.DataFrame, score: str, n: int, k: int) -> list[tuple]:
    top = frame.sort_values(["source", score, "target"], ascending=[True, False, True]) \
        .groupby("source").head(n)
    strength = top.groupby("source")[score].apply(lambda s: s.astype(np.float64).mean())
    order = sorted(strength.index, key=lambda r: (-strength[r], r))[:k]
    return [(r, strength[r], list(top[top.source == r].target)) for r in order]


def test_top_regulons_equal_pandas(report_run, demo_consensus, demo_report):
    run = open_run(str(report_run))
    got, n_regs = stats.top_regulons(stats.consensus_scores(run), 10, 10, batch_rows=113)
    expected = _regulons_pandas(demo_consensus, "score_mean", 10, 10)
    assert n_regs == demo_consensus.source.nunique()
    assert [r.regulator for r in got] == [e[0] for e in expected]
    for r, (_, strength, targets) in zip(got, expected):
        assert r.strength == pytest.approx(strength, rel=1e-12)
        assert [t for t, _ in r.targets] == targets
    shown = tables_of(demo_report[0])["regulon-table"][1:]
    assert [row[1] for row in shown] == [r.regulator for r in got]
    assert [float(row[2]) for row in shown] == pytest.approx([r.strength for r in got],
                                                             abs=5e-5)


@pytest.mark.parametrize("k,batch_rows", [(7, 5), (40, 16), (500, 1000)])
def test_streamed_top_k_and_regulons_equal_pandas_with_ties(toy_run, k, batch_rows):
    run = open_run(str(toy_run))
    edges = _toy_edges(toy_run)
    assert edges.duplicated(["dataset", "score"]).any()  # ties exist
    for d, frame in edges.groupby("dataset"):
        got = stats.top_edges(stats.dataset_scores(run, d), k, batch_rows).to_pandas()
        want = _top_pandas(frame, "score", k)
        assert list(zip(got.source, got.target)) == list(zip(want.source, want.target))
        regs, _ = stats.top_regulons(stats.dataset_scores(run, d), 3, 2, batch_rows)
        expected = _regulons_pandas(frame, "score", 3, 2)
        assert [(r.regulator, [t for t, _ in r.targets]) for r in regs] == \
            [(e[0], e[2]) for e in expected]


def test_network_is_the_top_consensus_edges_and_its_png_is_deterministic(report_run,
                                                                         demo_consensus,
                                                                         demo_report):
    run = open_run(str(report_run))
    n = field_default(ReportOptions, "network_edges")
    top = stats.top_edges(stats.consensus_scores(run), n, batch_rows=101).to_pandas()
    want = _top_pandas(demo_consensus, "score_mean", n)
    assert list(zip(top.source, top.target)) == list(zip(want.source, want.target))
    shown = tables_of(demo_report[0])["network-edges"][1:]
    assert [(r[0], r[1]) for r in shown] == list(zip(want.source, want.target))
    edges = list(zip(top.source, top.target, top.score_mean.astype(float)))
    assert figures.network_png(edges) == figures.network_png(list(reversed(edges)))


def _jaccard_pandas(edges: pd.DataFrame, k: int) -> tuple[list[str], np.ndarray]:
    names = sorted(edges.dataset.unique())
    sets = [set(zip(*_top_pandas(edges[edges.dataset == d], "score", k)[["source", "target"]]
                    .T.values)) for d in names]
    m = np.array([[len(a & b) / len(a | b) for b in sets] for a in sets])
    return names, m


def test_jaccard_matrix_equals_pandas_on_the_demo(report_run, demo_edges, demo_report):
    run = open_run(str(report_run))
    k = field_default(ReportOptions, "agreement_top")
    sets = stats.top_edge_sets(run, k)
    names, expected = _jaccard_pandas(demo_edges, k)
    got = stats.jaccard_matrix([sets[d] for d in names])
    assert np.array_equal(got, got.T) and np.all(np.diag(got) == 1.0)
    assert np.allclose(got, expected)
    shown = tables_of(demo_report[0])["jaccard-matrix"]
    assert shown[0][1:] == names
    assert np.allclose([[float(c) for c in r[1:]] for r in shown[1:]], expected, atol=5e-5)


@pytest.mark.parametrize("k", [10, 60, 1000])
def test_jaccard_of_overlapping_datasets_equals_pandas(toy_run, k):
    run = open_run(str(toy_run))
    names, expected = _jaccard_pandas(_toy_edges(toy_run), k)
    sets = stats.top_edge_sets(run, k, batch_rows=9)
    got = stats.jaccard_matrix([sets[d] for d in names])
    assert np.array_equal(got, got.T) and np.all(np.diag(got) == 1.0)
    assert np.allclose(got, expected)
    assert 0 < got[0, 1] < 1  # the toy datasets overlap, partly


def test_reference_auprc_equals_sklearn(report_run, demo_consensus, reference_csv, demo_report):
    from sklearn.metrics import average_precision_score

    from atlasgrn.bench.metrics import epr

    ref = pd.read_csv(reference_csv).rename(columns=str.lower)
    keys = set(zip(ref.source, ref.target)) | set(zip(ref.source.str.upper(),
                                                      ref.target.str.upper()))
    cand = demo_consensus[demo_consensus.source.isin({s for s, _ in keys})]
    labels = np.array([(s, t) in keys for s, t in zip(cand.source, cand.target)])
    assert 0 < labels.sum() < len(labels)
    expected = average_precision_score(labels, cand.score_mean.astype(np.float64))

    run = open_run(str(report_run))
    lab = stats.label_pairs(stats.consensus_scores(run), stats.read_reference(reference_csv),
                            batch_rows=50)
    assert len(lab.labels) == len(cand) and lab.labels.sum() == labels.sum()
    assert average_precision_score(lab.labels, lab.scores.astype(np.float64)) == \
        pytest.approx(expected, rel=1e-12)
    metrics = dict(tables_of(demo_report[0])["reference-metrics"][1:])
    assert metrics["AUPRC"] == f"{expected:.4f}"
    assert metrics["candidate pairs"] == f"{len(cand):,}"
    assert metrics["positives"] == f"{int(labels.sum()):,}"
    assert metrics["EPR (early precision ratio)"] == \
        f"{epr(labels, cand.score_mean.to_numpy()):.3f}"


def test_names_are_escaped(toy_run, tmp_path):
    page = build_report(open_run(str(toy_run)), log=lambda _m: None)
    assert "R<b>&3" not in page and "<b>" not in page and "/m<odel>" not in page
    assert "R&lt;b&gt;&amp;3" in page and "/m&lt;odel&gt;" in page


# ---------------------------------------------------------------------------- the CLI


def _cli(argv, capsys):
    rc = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err.strip()


def _one_line_error(rc, err, *needles):
    assert rc == 2
    assert len(err.splitlines()) == 1 and err.startswith("atlasgrn report: error: ")
    for n in needles:
        assert n in err


def test_cli_defaults_are_the_options_defaults():
    args = build_parser().parse_args(["report", "OUT"])
    opts = ReportOptions()
    assert (args.top_regulators, args.targets_per_regulator, args.network_edges,
            args.agreement_top, args.histogram_bins, args.dataset) == \
        (opts.top_regulators, opts.targets_per_regulator, opts.network_edges,
         opts.agreement_top, opts.histogram_bins, opts.dataset)
    assert (args.out, args.reference, args.overwrite, args.partial) == (None, None, False, False)


def test_default_out_is_in_the_run_and_needs_overwrite_to_replace(toy_run, capsys):
    rc, out, _ = _cli(["report", toy_run], capsys)
    target = toy_run / REPORT_NAME
    assert rc == 0 and target.is_file() and f"wrote {target}" in out
    first = target.read_text()
    target.write_text("older report")
    rc, _, err = _cli(["report", toy_run], capsys)
    _one_line_error(rc, err, "the file exists", "--overwrite")
    assert target.read_text() == "older report"
    rc, _, _ = _cli(["report", toy_run, "--overwrite"], capsys)
    assert rc == 0 and target.read_text() == first  # deterministic page
    assert (toy_run / "_SUCCESS").exists() and (toy_run / "manifest.json").exists()


@pytest.mark.parametrize("inside", ["manifest.json", "_SUCCESS", "edges/report.html",
                                    "consensus/report.html", "edges/dataset=A/x.html"])
def test_out_never_replaces_or_joins_the_builds_outputs(toy_run, inside, capsys):
    target = toy_run / inside
    before = target.read_bytes() if target.exists() else None
    rc, _, err = _cli(["report", toy_run, "--out", target, "--overwrite"], capsys)
    _one_line_error(rc, err, "one of the build's own outputs")
    assert (target.read_bytes() if target.exists() else None) == before
    assert open_run(str(toy_run)).edges().count_rows() > 0  # the run still reads


def test_not_a_run_directory(tmp_path, capsys):
    rc, _, err = _cli(["report", tmp_path, "--out", tmp_path / "r.html"], capsys)
    _one_line_error(rc, err, "not a run directory")
    assert not (tmp_path / "r.html").exists()


def test_partial_run_is_refused_unless_partial_then_says_so(tmp_path, capsys):
    run_dir = write_toy_run(tmp_path / "partial", complete=False)
    out = tmp_path / "r.html"
    rc, _, err = _cli(["report", run_dir, "--out", out], capsys)
    _one_line_error(rc, err, "partial", "--partial")
    assert not out.exists()
    rc, stdout, _ = _cli(["report", run_dir, "--out", out, "--partial"], capsys)
    assert rc == 0 and "(partial run)" in stdout
    page = out.read_text()
    assert "Partial run." in page and "partial run (status running" in page
    assert "no consensus yet" in page
    assert FIGURE.search(page)  # the score distributions are there all the same
    rc, _, _ = _cli(["report", run_dir, "--out", out, "--partial", "--overwrite",
                     "--dataset", "B"], capsys)
    page = out.read_text()
    assert rc == 0 and "no consensus yet" not in page and "dataset B score" in page


def test_unreadable_reference(toy_run, tmp_path, capsys):
    out = tmp_path / "r.html"
    rc, _, err = _cli(["report", toy_run, "--out", out, "--reference", tmp_path / "nope.csv"],
                      capsys)
    _one_line_error(rc, err, "nope.csv", "--reference", "not found")
    bad = tmp_path / "bad.csv"
    bad.write_text("alpha,beta\nA,B\n")
    rc, _, err = _cli(["report", toy_run, "--out", out, "--reference", bad], capsys)
    _one_line_error(rc, err, "bad.csv", "source/target")
    binary = tmp_path / "binary.tsv"
    binary.write_bytes(b"\xff\xfe\x00\x01" * 50)
    rc, _, err = _cli(["report", toy_run, "--out", out, "--reference", binary], capsys)
    _one_line_error(rc, err, "binary.tsv", "--reference")
    assert not out.exists()


def test_unwritable_out_and_bad_numbers(toy_run, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    rc, _, err = _cli(["report", toy_run, "--out", blocker / "report.html"], capsys)
    _one_line_error(rc, err, "cannot write", "--out")
    rc, _, err = _cli(["report", toy_run, "--out", tmp_path], capsys)
    _one_line_error(rc, err, "is a directory")
    rc, _, err = _cli(["report", toy_run, "--out", tmp_path / "r.html", "--top-regulators",
                       "0"], capsys)
    _one_line_error(rc, err, "--top-regulators")
    rc, _, err = _cli(["report", toy_run, "--out", tmp_path / "r.html", "--dataset", "Z"],
                      capsys)
    _one_line_error(rc, err, "dataset 'Z'", "A, B, C")


def test_contexts_of_the_manifest_are_listed_per_dataset(toy_run):
    manifest = json.loads((toy_run / "manifest.json").read_text())
    manifest["contexts"] = {"A": ["liver", "kidney"], "B": ["liver"]}
    (toy_run / "manifest.json").write_text(json.dumps(manifest))
    rows = tables_of(build_report(open_run(str(toy_run)), log=lambda _m: None))["datasets"]
    assert rows[0][-1] == "contexts"
    assert [r[-1] for r in rows[1:]] == ["liver, kidney", "liver", "-"]


def test_reference_sharing_no_regulator_is_said_in_the_page(toy_run, tmp_path):
    ref = pd.DataFrame({"source": ["SOX2"], "target": ["NANOG"]})
    page = build_report(open_run(str(toy_run)), ReportOptions(),
                        Reference("ref.csv", ref), log=lambda _m: None)
    assert "0 of them are regulators in this run" in page
    assert "no curve" in page
    assert len(FIGURE.findall(page)) == 3
