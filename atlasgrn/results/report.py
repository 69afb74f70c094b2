"""``atlasgrn report``: one self-contained HTML page about a finished build.

The page must open anywhere a run is shared (a laptop, a locked-down cluster, an e-mail
attachment), so it needs nothing but itself: styles inline, figures embedded as base64 PNGs,
no script, no font or stylesheet fetched. Every name that reaches the page (gene, dataset, path,
manifest value) goes through :func:`html.escape`. The numbers come from
:mod:`atlasgrn.results.stats`, which streams the Parquet in bounded batches, so a report of a
billion-edge build needs the memory of a small one.

Sections: run summary, score distribution per dataset, top regulons, network of the strongest
edges, agreement between datasets, precision-recall against a reference network (with
``--reference``), and the translator's threshold guidance. Regulons, network and reference use
the cross-dataset consensus (``score_mean``), or one dataset's ``score`` with ``dataset=``.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import AtlasgrnError

if TYPE_CHECKING:  # heavy modules load when a report is built, not when the CLI starts
    import pandas as pd

    from .run import Run
    from .stats import ScoreTable

#: File name of the report inside the run directory when no --out is given.
REPORT_NAME = "report.html"


@dataclass(frozen=True)
class ReportOptions:
    """What the report shows (the CLI's defaults are read from here)."""

    top_regulators: int = 10          # regulons shown, strongest first
    targets_per_regulator: int = 10   # a regulon's targets; also its rank key (their mean score)
    network_edges: int = 100          # strongest edges drawn as a network
    agreement_top: int = 1000         # per-dataset top-k edge sets compared by Jaccard index
    histogram_bins: int = 50          # equal bins of the score on [0, 1]
    dataset: str | None = None        # regulons/network/reference of one dataset, not consensus

    def check(self) -> None:
        """Refuse counts below 1, naming the option (bad input, exit 2)."""
        for name in ("top_regulators", "targets_per_regulator", "network_edges",
                     "agreement_top", "histogram_bins"):
            value = getattr(self, name)
            if value < 1:
                option = "--" + name.replace("_", "-")
                raise AtlasgrnError(f"{option} {value} is out of range", key=option,
                                    remedy=f"give {option} a positive number")


@dataclass(frozen=True)
class Reference:
    """A reference network (``source``, ``target`` frame) and where it was read from."""

    path: str
    edges: pd.DataFrame


STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
       margin: 2em auto; max-width: 1180px; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em;
     margin-top: 2em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; height: auto; display: block; margin: 0.6em 0; }
.banner { background: #fff3cd; border: 1px solid #e0c36a; padding: 0.6em 1em; }
.note { color: #555; font-size: 0.92em; } code { background: #f5f5f5; padding: 0 0.2em; }
details { margin: 0.5em 0; } summary { cursor: pointer; color: #2b5d8a; }
"""


# ------------------------------------------------------------------------------- HTML bits


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{esc(alt)}">'


def table(header: Sequence[str] | None, rows: Sequence[Sequence[Any]], *,
          numeric: Sequence[int] = (), table_id: str | None = None) -> str:
    """An HTML table; cells are escaped, columns in ``numeric`` right-aligned; ``header=None``
    for a key-value table (first column as row headers)."""
    ident = f' id="{esc(table_id)}"' if table_id else ""
    if header is None:
        body = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
        return f"<table{ident}><tbody>{body}</tbody></table>"
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = "".join(f'<td class="num">{esc(c)}</td>' if i in numeric else f"<td>{esc(c)}</td>"
                        for i, c in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def section(ident: str, title: str, *parts: str) -> str:
    return f'<section id="{esc(ident)}">\n<h2>{esc(title)}</h2>\n' + "\n".join(parts) + \
        "\n</section>"


def collapsed(summary: str, body: str) -> str:
    """A closed ``<details>`` block: the numbers behind a figure, one click away."""
    return f"<details><summary>{esc(summary)}</summary>{body}</details>"


def note(text: str) -> str:
    """A paragraph of plain text (escaped)."""
    return f'<p class="note">{esc(text)}</p>'


def _num(value: Any, digits: int = 3) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.{digits}f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _sha(digest: Any) -> str:
    return f"sha256 {str(digest)[:12]}..." if digest else "sha256 unknown"


def _settings(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(_settings(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}={_settings(v)}" for k, v in value.items())
    return "-" if value is None else str(value)


# -------------------------------------------------------------------------------- sections


def summary_section(run: Run, edge_rows: Mapping[str, int], consensus_rows: int | None) -> str:
    """Datasets (and contexts), row counts, timings, inputs, feature spec and status."""
    m = run.manifest
    plan = m.get("plan", {}).get("datasets", {})
    contexts = m.get("contexts") or {}
    status = m.get("status", "unknown")
    state = ("complete" if run.complete and status == "complete" else
             f"complete (manifest status {status})" if run.complete else
             f"partial run (status {status}, no _SUCCESS): the numbers cover the blocks "
             "written so far")
    inputs = m.get("inputs", {})
    software = m.get("software", {})
    overview = [
        ["run directory", run.uri],
        ["status", state],
        ["run hash", m.get("run_hash", "-")],
        ["atlas", inputs.get("atlas", m.get("config", {}).get("atlas", "-"))],
        ["edge rows", f"{sum(edge_rows.values()):,} over {len(edge_rows)} dataset(s)"],
        ["consensus rows", "none yet (written when the build finishes)"
         if consensus_rows is None else f"{consensus_rows:,}"],
        ["model", _input(inputs.get("model"))],
        ["translator", _input(inputs.get("translator"))],
        ["ensemble kinds", ", ".join(m.get("kinds", [])) or "-"],
        ["software", ", ".join(f"{k} {v}" for k, v in sorted(software.items())) or "-"],
    ]
    header = ["dataset", "genes", "regulators", "blocks", "pairs planned", "edge rows"]
    with_contexts = bool(contexts) or any("contexts" in v for v in plan.values()
                                          if isinstance(v, dict))
    if with_contexts:
        header.append("contexts")
    rows = []
    for d in run.datasets:
        p = plan.get(d, {})
        row = [d, _num(p.get("genes", "-")), _num(p.get("regulators", "-")),
               _num(p.get("blocks", "-")), _num(p.get("pairs", "-")), f"{edge_rows.get(d, 0):,}"]
        if with_contexts:
            ctx = p.get("contexts") if isinstance(p, dict) and "contexts" in p else (
                contexts.get(d) if isinstance(contexts, dict) else None)
            row.append(_settings(ctx))
        rows.append(row)
    parts = [table(None, overview, table_id="overview"),
             "<h3>Datasets</h3>", table(header, rows, numeric=range(1, 6), table_id="datasets")]
    if contexts and not isinstance(contexts, dict):
        parts.append(note(f"contexts: {_settings(contexts)}"))
    parts += ["<h3>Time</h3>", _attempts(m.get("attempts", []))]
    spec = m.get("feature_spec") or {}
    if spec:
        spec_rows = [[k, _sha(v) if k.endswith("sha256") else _settings(v)]
                     for k, v in sorted(spec.items())]
        parts += ["<h3>Feature spec</h3>", table(["setting", "value"], spec_rows,
                                                  table_id="feature-spec")]
    return section("summary", "Run summary", *parts)


def _input(entry: Any) -> str:
    if not isinstance(entry, dict):
        return "-" if entry is None else str(entry)
    return f"{entry.get('path', '-')} ({_sha(entry.get('sha256'))})"


def _attempts(attempts: Sequence[Mapping[str, Any]]) -> str:
    if not attempts:
        return note("the manifest records no attempts")
    keys = [("started", "started"), ("status", "status"), ("blocks_computed", "blocks computed"),
            ("compute_seconds", "compute s"), ("consensus_seconds", "consensus s"),
            ("probe_seconds", "probe s"), ("replicas", "replicas"), ("gpu_hours", "GPU-hours")]
    rows = [[_num(a.get(k, "-"), 2) for k, _ in keys] + [_settings(a.get("devices"))]
            for a in attempts]
    total = sum(float(a.get("compute_seconds") or 0) + float(a.get("consensus_seconds") or 0)
                for a in attempts)
    return table([label for _, label in keys] + ["devices"], rows, numeric=range(2, 8),
                 table_id="attempts") + note(f"{len(attempts)} attempt(s), {total:.1f} s of "
                                             "compute and consensus in all")


def distribution_section(run: Run, edge_rows: Mapping[str, int], opts: ReportOptions) -> str:
    from . import figures, stats

    edges = stats.bin_edges(opts.histogram_bins)
    counts = stats.score_histograms(run, opts.histogram_bins)
    shown = {d: c for d, c in counts.items() if edge_rows.get(d, 0)}
    if not shown:
        return section("distributions", "Score distribution per dataset",
                       note("no dataset has edges yet"))
    rows = [[f"{edges[i]:.2f}-{edges[i + 1]:.2f}", *(str(int(counts[d][i])) for d in counts)]
            for i in range(opts.histogram_bins)]
    return section(
        "distributions", "Score distribution per dataset",
        img(figures.histograms_png(edges, shown), "histogram of edge scores per dataset"),
        note(f"{opts.histogram_bins} equal bins on [0, 1]. Scores rank pairs; they are not "
             "calibrated probabilities (the translator trained on one negative per positive, "
             "so they sit around 0.5)."),
        collapsed("counts per bin",
                  table(["score bin", *counts], rows, numeric=range(1, len(counts) + 1),
                        table_id="histogram-counts")))


def regulon_section(ranked: ScoreTable | None, opts: ReportOptions) -> str:
    from . import stats

    title = "Top regulons"
    if ranked is None:
        return section("regulons", title, _no_consensus())
    regulons, n_regs = stats.top_regulons(ranked, opts.targets_per_regulator,
                                          opts.top_regulators)
    rows = [[i + 1, r.regulator, f"{r.strength:.4f}",
             ", ".join(f"{t} ({s:.3f})" for t, s in r.targets)]
            for i, r in enumerate(regulons)]
    return section(
        "regulons", title,
        note(f"The {len(regulons)} of {n_regs:,} regulators with the highest mean "
             f"{ranked.label} over their top {opts.targets_per_regulator} targets, each with "
             "those targets (score in brackets)."),
        table(["rank", "regulator", f"mean of top {opts.targets_per_regulator}",
               "top targets"], rows, numeric=(0, 2), table_id="regulon-table"))


def network_section(ranked: ScoreTable | None, opts: ReportOptions) -> str:
    from . import figures, stats

    title = "Network of the strongest edges"
    if ranked is None:
        return section("network", title, _no_consensus())
    top = stats.top_edges(ranked, opts.network_edges)
    edges = list(zip(top["source"].to_pylist(), top["target"].to_pylist(),
                     (float(s) for s in top[ranked.score].to_pylist())))
    if not edges:
        return section("network", title, note("no edges to draw"))
    regs = {s for s, _, _ in edges}
    rows = [[s, t, f"{w:.4f}"] for s, t, w in edges]
    return section(
        "network", title,
        img(figures.network_png(edges), f"network of the {len(edges)} strongest edges"),
        note(f"The {len(edges)} highest {ranked.label} edges (score >= {edges[-1][2]:.3f}): "
             f"{len(regs)} regulators (orange squares) and "
             f"{len({t for _, t, _ in edges} - regs)} other targets (blue circles); wider "
             "lines score higher."),
        collapsed("edge list", table(["source", "target", "score"], rows, numeric=(2,),
                                     table_id="network-edges")))


def agreement_section(run: Run, edge_rows: Mapping[str, int], opts: ReportOptions) -> str:
    from . import figures, stats

    title = "Agreement between datasets"
    names = [d for d in run.datasets if edge_rows.get(d, 0)]
    if len(names) < 2:
        return section("agreement", title,
                       note("needs at least two datasets with edges"))
    sets = stats.top_edge_sets(run, opts.agreement_top)
    matrix = stats.jaccard_matrix([sets[d] for d in names])
    rows = [[a, *(_num(float(v), 4) for v in matrix[i])] for i, a in enumerate(names)]
    return section(
        "agreement", title,
        img(figures.jaccard_png(names, matrix, opts.agreement_top),
            "Jaccard index heatmap between datasets"),
        note(f"Jaccard index |A and B| / |A or B| of each pair of datasets' top "
             f"{opts.agreement_top:,} edges by score (a dataset with fewer edges contributes "
             "all of them). Datasets score only the pairs whose genes they measure, so "
             "agreement is bounded by their shared genes and regulators."),
        collapsed("Jaccard matrix",
                  table(["dataset", *names], rows, numeric=range(1, len(names) + 1),
                        table_id="jaccard-matrix")))


def reference_section(ranked: ScoreTable | None, reference: Reference) -> str:
    from ..bench import metrics
    from . import figures, stats

    title = "Precision-recall against the reference network"
    if ranked is None:
        return section("reference", title, _no_consensus())
    lab = stats.label_pairs(ranked, reference.edges)
    n, pos = len(lab.labels), int(lab.labels.sum())
    counts = (f"{lab.n_reference_edges:,} reference edges from {lab.n_reference_regulators:,} "
              f"regulators ({reference.path}); {lab.n_regulators_matched:,} of them are "
              f"regulators in this run. Candidates: the {n:,} pairs of the {ranked.label} "
              f"whose source is a reference regulator; {pos:,} are reference edges.")
    if pos == 0 or pos == n:
        return section("reference", title, note(counts), note(
            "no curve: the candidates need both reference edges and other pairs (check that "
            "the reference uses the run's gene symbols)"))
    auprc = metrics.average_precision(lab.labels, lab.scores)
    epr = metrics.epr(lab.labels, lab.scores)
    rate = pos / n
    precision, recall, _ = metrics.pr_curve(lab.labels, lab.scores)
    rows = [["candidate pairs", f"{n:,}"], ["positives", f"{pos:,}"],
            ["positive rate", f"{rate:.4f}"], ["AUPRC", f"{auprc:.4f}"],
            ["AUPRC ratio (AUPRC / positive rate)", f"{auprc / rate:.3f}"],
            ["EPR (early precision ratio)", f"{epr:.3f}"]]
    return section(
        "reference", title, note(counts),
        table(["metric", "value"], rows, numeric=(1,), table_id="reference-metrics"),
        img(figures.pr_png(precision, recall, rate, auprc, ranked.label),
            "precision-recall curve against the reference network"),
        note("AUPRC is step-wise average precision (scikit-learn's); EPR is BEELINE's early "
             "precision ratio (precision among the top-k pairs, k = positives, over the "
             "positive rate). 1 is a random ranking for both ratios."))


def guidance_section(manifest: Mapping[str, Any]) -> str:
    title = "Threshold guidance"
    guidance = manifest.get("threshold_guidance")
    if not guidance:
        return section("guidance", title,
                       note("the manifest has no threshold guidance (the translator was "
                            "trained without held-out validation)"))
    rows = [[_num(t.get("score"), 3), f"{float(t.get('fraction_above', 0)):.1%}",
             _num(t.get("precision"), 3), _num(t.get("recall"), 3)]
            for t in guidance.get("thresholds", [])]
    parts = [note("The translator's precision and recall on held-out regulators at the scores "
                  "that put a given fraction of its validation pairs above the cut."),
             table(["score >=", "pairs above", "precision", "recall"], rows,
                   numeric=(0, 1, 2, 3), table_id="guidance-table")]
    extra = [f"{k}: {_settings(guidance[k])}" for k in ("pairs", "positives", "prevalence")
             if k in guidance]
    if extra:
        parts.append(note("validation " + ", ".join(extra)))
    if guidance.get("note"):
        parts.append(note(str(guidance["note"])))
    return section("guidance", title, *parts)


def _no_consensus() -> str:
    return note("the run has no consensus yet (it is written when the build finishes); pass "
                "--dataset NAME to use one dataset's edges")


# -------------------------------------------------------------------------------- assembly


def ranked_table(run: Run, opts: ReportOptions) -> ScoreTable | None:
    """The edges that regulons, network and reference rank: ``opts.dataset``'s, else the
    consensus (None when a partial run has none yet)."""
    from . import stats

    if opts.dataset is not None:
        return stats.dataset_scores(run, opts.dataset)
    return stats.consensus_scores(run) if run.has_consensus() else None


def build_report(run: Run, opts: ReportOptions | None = None,
                 reference: Reference | None = None,
                 log: Callable[[str], None] = print) -> str:
    """The report page; ``log`` gets one line per section as it is done."""
    from . import stats

    opts = opts or ReportOptions()
    opts.check()
    run.check_dataset(opts.dataset)
    ranked = ranked_table(run, opts)
    edge_rows = stats.edge_counts(run)
    steps: list[tuple[str, Callable[[], str]]] = [
        ("run summary", lambda: summary_section(run, edge_rows, stats.consensus_count(run))),
        ("score distributions", lambda: distribution_section(run, edge_rows, opts)),
        ("top regulons", lambda: regulon_section(ranked, opts)),
        ("network", lambda: network_section(ranked, opts)),
        ("dataset agreement", lambda: agreement_section(run, edge_rows, opts)),
    ]
    if reference is not None:
        steps.append(("reference network", lambda: reference_section(ranked, reference)))
    steps.append(("threshold guidance", lambda: guidance_section(run.manifest)))
    parts = []
    for i, (name, make) in enumerate(steps, 1):
        parts.append(make())
        log(f"report: {name} ({i}/{len(steps)})")
    return page(run, parts)


def page(run: Run, sections: Sequence[str]) -> str:
    banner = "" if run.complete else (
        '<p class="banner"><strong>Partial run.</strong> This build has not finished (no '
        "_SUCCESS): the report covers the edge blocks written so far.</p>")
    title = f"atlasgrn report: {run.uri}"
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f"<title>{esc(title)}</title>", f"<style>{STYLE}</style>", "</head>", "<body>",
        f"<h1>atlasgrn report</h1>\n<p><code>{esc(run.uri)}</code></p>", banner, *sections,
        "</body>", "</html>", ""])


def write_report(html_text: str, target: str) -> None:
    """Publish the page atomically (a reader never sees half a report)."""
    from ..atomic import write_text_atomic

    write_text_atomic(target, html_text)
