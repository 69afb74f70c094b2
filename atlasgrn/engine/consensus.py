"""The cross-dataset consensus as a Ray Data pipeline: per (source, target), the mean and max
score over networks, how many networks hold the edge, and in which it ranks in its regulator's
top ``k``.

:func:`.output.write_consensus` aggregates on the driver, one part after another; this module
does the same work in Ray tasks, so it scales with the cluster and the driver never holds edges:

1. The driver lists ``edges/`` itself (dropping hidden temporaries a killed writer left) and
   numbers the networks: one per ``dataset=<d>`` directory, or per ``dataset=<d>/context=<c>``
   when a dataset has a network per cell type. The partition values are parsed from the paths
   once, here, rather than by Ray's hive partitioning: the two layouts may coexist (a hive
   column that some files lack gives blocks of different schemas), and a small integer per row
   costs far less in the shuffle than two string columns.
2. Ray Data tasks over that file list read the files with pyarrow (retried like every object
   store read). Not ``ray.data.read_parquet``: since Ray 2.5x it starts a pool of 32
   footer-reading actors on every execution, half a minute of process start-up on a 2-core
   machine, twice per consensus; and the network id would have to be recovered from a path
   column anyway.
3. A first pass reads only ``source`` and counts rows per regulator (a few thousand numbers), so
   the driver can cut the sorted regulators into contiguous ranges of at most ``rows_per_part``
   edges: one range is one output part, and every network's edges of a regulator are in it (the
   per-regulator ranks need them all).
4. The second pass tags each edge with its network and part and shuffles by part (a sort on the
   part index with explicit boundaries: exactly one part per shuffle partition, so a task holds
   one part), and each task aggregates and writes its part atomically under a name derived from
   its index. Rows are sorted inside the task before anything is summed, so neither the bytes
   written nor the float results depend on the order Ray delivers rows.
5. The driver checks every part came back once with the rows it expected, then removes the
   parts of an earlier, larger layout.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import AtlasgrnError
from ..objectstore import with_retries
from .output import RunOutput
from .plan import network_name

CONSENSUS_SCHEMA = pa.schema([
    ("source", pa.string()), ("target", pa.string()), ("score_mean", pa.float32()),
    ("score_max", pa.float32()), ("n_datasets", pa.int32()), ("top_k_networks", pa.string()),
])
#: edge columns the consensus reads (the ``logit_<kind>`` columns are not needed)
_READ_COLUMNS = ["source", "target", "score"]
_EDGE_TYPES = {"source": pa.string(), "target": pa.string(), "score": pa.float32()}
#: read tasks per CPU of the cluster (at most ``_MAX_READ_TASKS``): enough to balance the reads,
#: few enough that a small run does not pay Ray's per-task overhead for every file
_READ_TASKS_PER_CPU = 4
_MAX_READ_TASKS = 256
#: edges per block out of the reads (about 40 MB)
_BLOCK_ROWS = 1_000_000
_PART = "_part"
_NET = "_network"


@dataclass(frozen=True)
class EdgeFiles:
    """The published edge files of a run and the network each belongs to."""

    paths: tuple[str, ...]
    network_of_path: tuple[int, ...]  # index into ``networks``
    networks: tuple[str, ...]         # sorted labels: ``dataset`` or ``dataset/context``


def list_edge_files(out: RunOutput) -> EdgeFiles:
    """Every published edge file under ``edges/`` and its network, from the hive directories.

    Names starting with ``.`` or ``_`` are skipped at any level (temporaries of
    :mod:`atlasgrn.atomic`, markers), as pyarrow and Ray skip them; anything else that is not
    ``dataset=<d>/[context=<c>/]<block>.parquet`` is an error rather than silently left out of
    the consensus."""
    root = out.path("edges")
    if not out.exists(root):
        return EdgeFiles((), (), ())
    out.fs.invalidate_cache()  # replicas published files from other processes
    found = [p for p in with_retries(lambda: out.fs.find(root), what=f"listing {root}")
             if p.startswith(root + "/")]
    labelled: list[tuple[str, str]] = []
    for p in sorted(found):
        rel = p[len(root):].strip("/")
        parts = rel.split("/")
        if any(part.startswith((".", "_")) for part in parts):
            continue
        keys = [part.partition("=") for part in parts[:-1]]
        names = tuple(k for k, _, _ in keys)
        if not parts[-1].endswith(".parquet") or names not in (("dataset",),
                                                                ("dataset", "context")):
            raise AtlasgrnError(
                "unexpected file in the edge directory (expected "
                "dataset=<name>/[context=<value>/]<block>.parquet)", path=out.url("edges", rel),
                remedy="remove it, or rebuild the run into a fresh output directory")
        values = [urllib.parse.unquote(v) for _, _, v in keys]  # as pyarrow's hive partitioning
        label = network_name(*values)
        if "," in label:
            raise AtlasgrnError(f"network '{label}' has a comma in its name, which the "
                                "comma-joined top_k_networks column cannot hold",
                                path=out.url("edges", rel),
                                remedy="rename the dataset or context without commas")
        labelled.append((p, label))
    networks = tuple(sorted({label for _, label in labelled}))
    index = {label: i for i, label in enumerate(networks)}
    return EdgeFiles(tuple(p for p, _ in labelled), tuple(index[lb] for _, lb in labelled),
                     networks)


def arrow_filesystem(out: RunOutput) -> Any:
    """The run's filesystem as pyarrow wants it: native when local, else the fsspec one."""
    import pyarrow.fs as pafs

    return pafs.LocalFileSystem() if out.local else out.fs


def source_ranges(counts: Sequence[int], rows_per_part: int) -> np.ndarray:
    """Part index of each regulator (in sorted order): contiguous ranges of at most
    ``rows_per_part`` edges, a regulator with more edges than that alone in its part. Cut by
    edges rather than by regulators so that a part's memory is bounded whatever the skew."""
    part = np.zeros(len(counts), dtype=np.int32)
    current, filled = 0, 0
    for i, n in enumerate(counts):
        if filled and filled + n > rows_per_part:
            current, filled = current + 1, 0
        filled += int(n)
        part[i] = current
    return part


# --- Ray tasks (module-level functions: nothing from the driver's closures is pickled) -------

def _read_edge_file(out: RunOutput, path: str, columns: list[str]) -> pa.Table:
    import pyarrow.parquet as pq

    table = with_retries(lambda: pq.read_table(path, columns=columns,
                                               filesystem=arrow_filesystem(out)),
                         what=f"reading {path}")
    return table.cast(pa.schema([(c, _EDGE_TYPES[c]) for c in columns]))


def _count_sources(files: pa.Table, *, out_uri: str) -> pa.Table:
    """Rows per regulator in a few edge files (a few thousand rows, whatever the files' size)."""
    out = RunOutput(out_uri)
    counts = [pc.value_counts(_read_edge_file(out, path, ["source"])["source"])
              for path in files["path"].to_pylist()]
    return _merge_counts([pa.table({"source": c.field("values"), "n": c.field("counts")})
                          for c in counts])


def _read_tagged(files: pa.Table, *, out_uri: str, sources: pa.Array,
                 part_of_source: np.ndarray) -> Iterator[pa.Table]:
    """The edges of some files, each tagged with its network and the part of its regulator, in
    blocks of about ``_BLOCK_ROWS`` (whole files): few enough blocks that the shuffle's per-block
    tasks stay cheap, small enough that a task never holds many of them."""
    out = RunOutput(out_uri)
    pending: list[pa.Table] = []
    rows = 0
    for path, network in zip(files["path"].to_pylist(), files["network"].to_pylist()):
        edges = _read_edge_file(out, path, _READ_COLUMNS)
        source_index = pc.index_in(edges["source"], value_set=sources)
        if source_index.null_count:
            raise AtlasgrnError("the edge files changed while the consensus was being "
                                "computed", path=path,
                                remedy="run the consensus again once no build writes to the run")
        pending.append(edges.append_column(
            _NET, pa.array(np.full(edges.num_rows, network, np.int32))).append_column(
            _PART, pa.array(part_of_source[source_index.to_numpy(zero_copy_only=False)])))
        rows += edges.num_rows
        if rows >= _BLOCK_ROWS:
            yield pa.concat_tables(pending).combine_chunks()
            pending, rows = [], 0
    if pending:
        yield pa.concat_tables(pending).combine_chunks()


def _sorted_codes(values: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Integer codes whose order is the strings' order (bytewise), for fast numpy sorts."""
    encoded = pc.dictionary_encode(values.combine_chunks() if isinstance(values, pa.ChunkedArray)
                                   else values)
    rank = np.empty(len(encoded.dictionary), dtype=np.int32)
    rank[pc.sort_indices(encoded.dictionary).to_numpy()] = np.arange(len(rank), dtype=np.int32)
    return rank[encoded.indices.to_numpy(zero_copy_only=False)]


def _changes(*keys: np.ndarray) -> np.ndarray:
    """True where a row starts a new run of equal keys (the keys sorted together)."""
    new = np.ones(len(keys[0]), dtype=bool)
    new[1:] = False
    for k in keys:
        new[1:] |= k[1:] != k[:-1]
    return new


def consensus_of(edges: pa.Table, networks: Sequence[str], top_k: int) -> pa.Table:
    """The consensus rows of edges that hold every network's edges of their regulators.

    ``edges`` has ``source, target, score`` and the network id column. Everything is computed
    after sorting on values alone (ties between equal scores broken by target), so the result
    is the same whatever order the rows came in. Integer codes stand for the symbols, and
    temporaries are dropped as soon as possible: a task holds a part of millions of edges."""
    if edges.num_rows == 0:
        return CONSENSUS_SCHEMA.empty_table()
    src = _sorted_codes(edges["source"])
    tgt = _sorted_codes(edges["target"])
    net = edges[_NET].to_numpy().astype(np.int32)
    score = edges["score"].to_numpy().astype(np.float32)
    n = len(src)

    # rank of each edge within its (network, regulator): score descending, then target
    by_rank = np.lexsort((tgt, -score, src, net))
    first = np.flatnonzero(_changes(net[by_rank], src[by_rank]))
    position = np.arange(n) - np.repeat(first, np.diff(np.append(first, n)))
    in_top = np.empty(n, dtype=bool)
    in_top[by_rank] = position < top_k
    del by_rank, first, position

    # one row per (source, target), its networks in label order
    order = np.lexsort((net, tgt, src))
    s_src, s_tgt, s_net = src[order], tgt[order], net[order]
    del src, tgt, net
    new = _changes(s_src, s_tgt)
    dup = np.flatnonzero(~new[1:] & (s_net[1:] == s_net[:-1]))
    if len(dup):
        i = int(order[dup[0] + 1])
        raise AtlasgrnError(f"edge {edges['source'][i]} -> {edges['target'][i]} appears twice "
                            f"in network '{networks[s_net[dup[0] + 1]]}'",
                            remedy="the run's edge files overlap: rebuild it into a fresh "
                                   "output directory")
    del s_src, s_tgt
    starts = np.flatnonzero(new)
    del new
    counts = np.diff(np.append(starts, n))
    s_score = score[order].astype(np.float64)
    mean = (np.add.reduceat(s_score, starts) / counts).astype(np.float32)
    best = np.maximum.reduceat(s_score, starts).astype(np.float32)
    del s_score
    top_rows = in_top[order]
    offsets = np.zeros(len(starts) + 1, dtype=np.int32)
    np.cumsum(np.add.reduceat(top_rows.astype(np.int32), starts), out=offsets[1:])
    labels = pa.array(list(networks), pa.string()).take(pa.array(s_net[top_rows]))
    top = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), labels), ",")
    rows = pa.array(order[starts])
    return pa.table({
        "source": edges["source"].take(rows),
        "target": edges["target"].take(rows),
        "score_mean": pa.array(mean),
        "score_max": pa.array(best),
        "n_datasets": pa.array(counts.astype(np.int32)),
        "top_k_networks": top,
    }, schema=CONSENSUS_SCHEMA).combine_chunks()


def part_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def _write_parts(block: pa.Table, *, out_uri: str, networks: Sequence[str],
                 top_k: int) -> pa.Table:
    """Aggregate and publish the part a shuffle partition holds (every edge of a contiguous
    range of regulators); one summary row per part for the driver's check. A partition holds
    exactly one part, or none; several would be handled one at a time all the same."""
    summary: dict[str, list[int]] = {"part": [], "rows_in": [], "rows_out": []}
    if block.num_rows:
        out = RunOutput(out_uri)
        part_ids = block[_PART].to_numpy()
        if (np.diff(part_ids) < 0).any():  # sorted by the shuffle; never copy a part for nothing
            block = block.sort_by(_PART)
            part_ids = block[_PART].to_numpy()
        parts, starts = np.unique(part_ids, return_index=True)
        for part, start, end in zip(parts, starts, [*starts[1:], len(part_ids)]):
            edges = block.slice(int(start), int(end - start))
            table = consensus_of(edges, networks, top_k)
            out.write_table_atomic(out.path("consensus", part_name(int(part))), table)
            summary["part"].append(int(part))
            summary["rows_in"].append(edges.num_rows)
            summary["rows_out"].append(table.num_rows)
    return pa.table({k: pa.array(v, pa.int64()) for k, v in summary.items()})


# --- the driver ------------------------------------------------------------------------------

#: Most edge files whose footers the driver reads to decide that a run fits one part.
LOCAL_MAX_FILES = 64


def _fits_one_part(out: RunOutput, files: EdgeFiles, limit: int) -> bool:
    """Whether the run's edges (counted from the Parquet footers) fit one part of ``limit``
    rows, so the driver may aggregate them itself without holding more than a part."""
    import pyarrow.parquet as pq

    if len(files.paths) > LOCAL_MAX_FILES:
        return False
    rows = 0
    for path in files.paths:
        rows += with_retries(lambda path=path: pq.read_metadata(
            path, filesystem=arrow_filesystem(out)).num_rows, what=f"reading {path}")
        if rows > limit:
            return False
    return True


def _source_counts(files: Any, out_uri: str) -> pa.Table:
    """Rows per regulator over all edges, sorted by regulator; merged on the driver as the
    blocks' small tables arrive, compacted now and then so it stays one row per regulator."""
    pending: list[pa.Table] = []
    total = _merge_counts([])
    counted = files.map_batches(_count_sources, batch_format="pyarrow", batch_size=None,
                                fn_kwargs={"out_uri": out_uri})
    for batch in counted.iter_batches(batch_format="pyarrow", batch_size=None):
        pending.append(batch)
        if len(pending) >= 64:
            total, pending = _merge_counts([total, *pending]), []
    total = _merge_counts([total, *pending])
    return total.sort_by("source")


def _merge_counts(tables: list[pa.Table]) -> pa.Table:
    schema = pa.schema([("source", pa.string()), ("n", pa.int64())])
    merged = pa.concat_tables([schema.empty_table(), *(t.cast(schema) for t in tables)])
    return merged.group_by("source").aggregate([("n", "sum")]).rename_columns(["source", "n"])


def write_consensus(out: RunOutput, *, top_k: int = 50, rows_per_part: int = 5_000_000,
                    local_max_rows: int | None = None) -> int:
    """Aggregate every network's edges per (source, target) with Ray Data; returns rows written.

    A run whose edges fit one part (at most ``local_max_rows``, default ``rows_per_part``,
    counted from the Parquet footers of at most :data:`LOCAL_MAX_FILES` files) is aggregated
    here by the same :func:`consensus_of`, into the same single part the pipeline would write:
    the pipeline's fixed cost (task start-up, ~5-10 s on 2 cores) buys nothing for one part.

    Columns: ``score_mean`` (float64 sum in network order, stored as float32), ``score_max``,
    ``n_datasets`` (networks holding the edge; the name the readers of the old consensus know)
    and ``top_k_networks`` (sorted, comma-joined labels of the networks where the edge ranks in
    its regulator's first ``top_k`` by score, ties broken by target; empty if none). Parts
    ``consensus/part-%05d.parquet`` hold contiguous ranges of regulators of at most
    ``rows_per_part`` input edges (one regulator may exceed it alone), sorted by (source,
    target): the same edges give the same files, byte for byte. Ray must be initialised (or
    Ray Data starts a local instance).
    """
    if top_k < 0:
        raise AtlasgrnError(f"top_k must be >= 0, got {top_k}", key="top_k")
    if rows_per_part < 1:
        raise AtlasgrnError(f"rows_per_part must be >= 1, got {rows_per_part}",
                            key="rows_per_part")
    import ray
    import ray.data
    from ray.data.context import ShuffleStrategy

    files = list_edge_files(out)
    names: set[str] = set()
    total = 0
    limit = rows_per_part if local_max_rows is None else local_max_rows
    if files.paths and _fits_one_part(out, files, limit):
        tables = []
        for path, net in zip(files.paths, files.network_of_path):
            edges = _read_edge_file(out, path, _READ_COLUMNS)
            tables.append(edges.append_column(_NET, pa.array(np.full(edges.num_rows, net,
                                                                     np.int32))))
        table = consensus_of(pa.concat_tables(tables), files.networks, top_k)
        del tables
        out.write_table_atomic(out.path("consensus", part_name(0)), table)
        names, total = {part_name(0)}, table.num_rows
    elif files.paths:
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)) if ray.is_initialized()
                   else os.cpu_count() or 1)
        listing = ray.data.from_items(
            [{"path": p, "network": n} for p, n in zip(files.paths, files.network_of_path)],
            override_num_blocks=min(len(files.paths), _READ_TASKS_PER_CPU * cpus,
                                    _MAX_READ_TASKS))
        counts = _source_counts(listing, out.uri)
        sources = counts["source"].combine_chunks()
        expected_rows = counts["n"].to_numpy()
        part_of_source = source_ranges(expected_rows, rows_per_part)
        n_parts = int(part_of_source[-1]) + 1
        tagged = listing.map_batches(
            _read_tagged, batch_format="pyarrow", batch_size=None,
            fn_kwargs={"out_uri": out.uri, "sources": sources, "part_of_source": part_of_source})
        # One partition per part, by explicit boundaries on the part index (the last partition
        # stays empty, so a single part needs no special case). Ray's default shuffle
        # (SHUFFLE_V2) would start dedicated worker pools on every run (~8 s on 2 cores) and
        # split a large partition into several blocks, i.e. one part over several tasks; the
        # pull-based sort keeps a partition in one block. Set on this dataset's own copy of
        # the DataContext only.
        tagged.context.shuffle_strategy = ShuffleStrategy.SORT_SHUFFLE_PULL_BASED
        written = tagged.sort(_PART, boundaries=list(range(1, n_parts + 1))).map_batches(
            _write_parts, batch_format="pyarrow", batch_size=None, zero_copy_batch=True,
            fn_kwargs={"out_uri": out.uri, "networks": files.networks, "top_k": top_k})
        summary = written.take_all()  # one small row per part
        want = np.bincount(part_of_source, weights=expected_rows, minlength=n_parts)
        got = np.zeros(n_parts)
        seen = np.zeros(n_parts, dtype=np.int64)
        for row in summary:
            got[row["part"]] += row["rows_in"]
            seen[row["part"]] += 1
        wrong = np.flatnonzero((seen != 1) | (got != want))
        if len(wrong):
            i = int(wrong[0])
            raise AtlasgrnError(f"consensus part {i} came back {seen[i]} time(s) with "
                                f"{int(got[i])} edges, not once with {int(want[i])} (and "
                                f"{len(wrong) - 1} other parts likewise)",
                                path=out.url("consensus"),
                                remedy="run the consensus again once no build writes to the run")
        names = {part_name(i) for i in range(n_parts)}
        total = sum(int(row["rows_out"]) for row in summary)
    for stale in set(out.listdir("consensus")) - names:
        if stale.startswith("part-"):
            out.remove(out.path("consensus", stale))
    return total
