"""The report's figures, each rendered to PNG bytes for embedding (``data:image/png;base64``).

Figures are built as :class:`matplotlib.figure.Figure` objects drawn on the Agg canvas, never
through ``pyplot``'s global figure registry: nothing stays open after a figure is rendered, no
display is needed, and a notebook that calls the report keeps its own backend. Sizes and DPI are
fixed and the network layout has a fixed seed, so the same numbers give the same PNG bytes.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 100
#: Seed of the network's spring layout (a fixed seed makes the picture reproducible).
LAYOUT_SEED = 7
REGULATOR_COLOUR = "#d95f02"
TARGET_COLOUR = "#7fa7d0"
EDGE_COLOUR = "#555555"


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def histograms_png(bin_edges: np.ndarray, counts: Mapping[str, np.ndarray]) -> bytes:
    """One small histogram of edge scores per dataset, on a shared [0, 1] axis."""
    names = list(counts)
    ncols = max(1, min(3, len(names)))
    nrows = max(1, -(-len(names) // ncols))
    fig = Figure(figsize=(4.2 * ncols, 2.6 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax, name in zip(axes.ravel(), names):
        c = counts[name]
        ax.stairs(c, bin_edges, fill=True, color=TARGET_COLOUR, edgecolor="#2b5d8a")
        ax.set_xlim(0, 1)
        ax.set_title(f"{name} ({int(c.sum()):,} edges)", fontsize=10)
        ax.set_xlabel("score", fontsize=8)
        ax.set_ylabel("edges", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(names):]:
        ax.set_axis_off()
    return _png(fig)


def network_png(edges: Sequence[tuple[str, str, float]]) -> bytes:
    """The strongest edges as a directed graph: regulators (sources) as large orange squares,
    targets as small blue circles, edge width by score; spring layout with a fixed seed."""
    import networkx as nx

    graph = nx.DiGraph()
    regulators = sorted({s for s, _, _ in edges})
    targets = sorted({t for _, t, _ in edges} - set(regulators))
    graph.add_nodes_from(regulators + targets)
    graph.add_weighted_edges_from(sorted(edges))
    pos = nx.spring_layout(graph, seed=LAYOUT_SEED) if len(graph) else {}
    fig = Figure(figsize=(10, 8), layout="constrained")
    ax = fig.add_subplot()
    ax.set_axis_off()
    if len(graph):
        scores = np.array([w for _, _, w in graph.edges(data="weight")], dtype=float)
        lo, hi = (scores.min(), scores.max()) if len(scores) else (0.0, 1.0)
        widths = 0.5 + 2.5 * (scores - lo) / (hi - lo) if hi > lo else np.full(len(scores), 1.5)
        nx.draw_networkx_edges(graph, pos, ax=ax, width=list(widths), edge_color=EDGE_COLOUR,
                               alpha=0.5, arrows=True, arrowsize=8, node_size=120)
        nx.draw_networkx_nodes(graph, pos, nodelist=targets, ax=ax, node_shape="o",
                               node_color=TARGET_COLOUR, node_size=120)
        nx.draw_networkx_nodes(graph, pos, nodelist=regulators, ax=ax, node_shape="s",
                               node_color=REGULATOR_COLOUR, node_size=420)
        nx.draw_networkx_labels(graph, pos, labels={t: t for t in targets}, ax=ax,
                                font_size=6)
        nx.draw_networkx_labels(graph, pos, labels={r: r for r in regulators}, ax=ax,
                                font_size=9, font_weight="bold")
    ax.legend(handles=[
        _marker("s", REGULATOR_COLOUR, f"regulator ({len(regulators)})"),
        _marker("o", TARGET_COLOUR, f"target ({len(targets)})")], loc="upper left",
        fontsize=8, frameon=False)
    return _png(fig)


def _marker(shape: str, colour: str, label: str):
    from matplotlib.lines import Line2D

    return Line2D([], [], marker=shape, color="none", markerfacecolor=colour, markersize=9,
                  label=label)


def jaccard_png(names: Sequence[str], matrix: np.ndarray, k: int) -> bytes:
    """Heatmap of the Jaccard index between datasets' top-k edge sets (values written in the
    cells while there is room)."""
    n = len(names)
    side = min(14.0, max(4.5, 0.45 * n + 2.5))
    fig = Figure(figsize=(side + 1.2, side), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(np.ma.masked_invalid(matrix), vmin=0.0, vmax=1.0, cmap="viridis")
    ax.set_xticks(range(n), names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(n), names, fontsize=8)
    ax.set_title(f"Jaccard index of top-{k:,} edge sets", fontsize=10)
    if n <= 16:
        for i in range(n):
            for j in range(n):
                v = matrix[i, j]
                ax.text(j, i, "-" if np.isnan(v) else f"{v:.2f}", ha="center", va="center",
                        fontsize=8, color="white" if not np.isnan(v) and v < 0.6 else "black")
    fig.colorbar(image, ax=ax, shrink=0.8, label="Jaccard index")
    return _png(fig)


def pr_png(precision: np.ndarray, recall: np.ndarray, positive_rate: float, auprc: float,
           label: str) -> bytes:
    """Precision-recall curve (step-wise, as average precision integrates it) with the
    precision of a random ranking."""
    fig = Figure(figsize=(5.5, 4.2), layout="constrained")
    ax = fig.add_subplot()
    ax.step(np.r_[0.0, recall], np.r_[precision[:1], precision], where="pre",
            color=REGULATOR_COLOUR, label=f"{label} (AUPRC {auprc:.3f})")
    ax.axhline(positive_rate, color="#888888", linestyle="--",
               label=f"random ({positive_rate:.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.legend(fontsize=8, loc="upper right")
    return _png(fig)
