"""Delimited text matrices (CSV/TSV, optionally gzip-compressed).

Layouts:

* genes x cells (default; BEELINE ``BL--ExpressionData.csv``, McCalla ``*_log2.tsv``): first
  column = gene, header = cell ids. The header may have one field fewer than the data rows
  (R ``write.table`` row names, no corner cell); both forms are accepted.
* cells x genes (``cells_by_genes=True``): first column = cell id, header = genes.

Streaming: rows are read in chunks of about :data:`CHUNK_VALUES` values. Cells x genes chunks go
straight to the writer. Genes x cells files must be transposed: each chunk of gene rows is
turned into a sparse column slab and the slabs are joined at the end, so memory is bounded by the
sparse size of the dataset, not its dense size (see :class:`ColumnBlocks`). Everything is read
and checked before the atlas is touched.

Every row's field count is checked before parsing (a short row would otherwise become silent
NaNs), and the text must be UTF-8: both fail with the line number.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import zlib
from collections.abc import Iterator

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ...errors import IngestError
from .formats import InputFormat, OpenOptions, register_format
from .source import Block, ColumnBlocks, Source, row_blocks

CHUNK_VALUES = 1 << 22
_TAB_EXT = (".tsv", ".tab", ".txt")
SUFFIXES = (".csv", *_TAB_EXT)


def _open_text(path: str) -> io.TextIOWrapper:
    with open(path, "rb") as fh:
        magic = fh.read(2)
    raw = gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")  # noqa: SIM115
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="strict", newline="")


def _delimiter(path: str, header: str) -> str:
    base = path[:-3] if path.endswith(".gz") else path
    if base.lower().endswith(".csv"):
        return ","
    if base.lower().endswith(_TAB_EXT) and "\t" in header:
        return "\t"
    return "\t" if header.count("\t") > header.count(",") else ","


def _split(line: str, delim: str) -> list[str]:
    if '"' in line:
        return next(csv.reader([line], delimiter=delim))
    return line.split(delim)


class _Lines:
    """Numbered, non-blank lines of a text file, with decoding errors turned into IngestError."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fh = _open_text(path)
        self.line_no = 0

    def __iter__(self) -> Iterator[str]:
        try:
            for line in self._fh:
                self.line_no += 1
                line = line.rstrip("\r\n")
                if line.strip():
                    yield line
        except UnicodeDecodeError as exc:
            line_no, col = _first_bad_utf8(self.path)
            raise IngestError(f"not UTF-8 text at line {line_no}, byte {col} ({exc.reason})",
                              path=self.path, key=f"line {line_no}",
                              remedy="re-save the file as UTF-8") from None
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise IngestError(f"compressed file is truncated or corrupt ({exc})", path=self.path,
                              key="gzip", remedy="re-download or re-compress the file") from None

    def close(self) -> None:
        self._fh.close()


def _first_bad_utf8(path: str) -> tuple[int, int]:
    """(line, byte column) of the first undecodable line; only run once decoding failed."""
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    with (gzip.open(path, "rb") if gz else open(path, "rb")) as raw:  # noqa: SIM115
        for i, line in enumerate(raw, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                return i, exc.start + 1
    return 0, 0


def _parse_chunk(lines: list[str], first_line_no: int, n_fields: int, delim: str, path: str
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Return (row labels, float32 values) for a chunk of data lines."""
    for i, line in enumerate(lines):
        n = line.count(delim) + 1 if '"' not in line else len(_split(line, delim))
        if n != n_fields:
            raise IngestError(f"row has {n} fields, expected {n_fields} (line {first_line_no + i})",
                              path=path, key=f"line {first_line_no + i}",
                              remedy="every row needs its name plus one value per column; "
                                     "check the delimiter and whether the file is truncated")
    frame = pd.read_csv(io.StringIO("\n".join(lines)), sep=delim, header=None, index_col=False,
                        dtype={0: str}, keep_default_na=True, quoting=csv.QUOTE_MINIMAL,
                        engine="c", low_memory=False)
    values = frame.iloc[:, 1:]
    bad = [c for c in values.columns if not pd.api.types.is_numeric_dtype(values[c])]
    if bad:
        col = values[bad[0]]
        num = pd.to_numeric(col, errors="coerce")
        row = int(np.flatnonzero(num.isna() & col.notna())[0])
        raise IngestError(f"non-numeric value {col.iloc[row]!r} (line {first_line_no + row}, "
                          f"field {bad[0] + 1})", path=path, key=f"line {first_line_no + row}",
                          remedy="values must be numbers; remove annotation rows/columns")
    labels = frame.iloc[:, 0].fillna("").astype(str).to_numpy(dtype=object)
    return labels, values.to_numpy(dtype=np.float32)


def _chunks(lines: _Lines, it: Iterator[str], n_fields: int, delim: str
            ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    per_chunk = max(1, CHUNK_VALUES // max(n_fields, 1))
    buf: list[str] = []
    start = lines.line_no + 1
    for line in it:
        if not buf:
            start = lines.line_no
        buf.append(line)
        if len(buf) >= per_chunk:
            yield _parse_chunk(buf, start, n_fields, delim, lines.path)
            buf = []
    if buf:
        yield _parse_chunk(buf, start, n_fields, delim, lines.path)


def _header(path: str) -> tuple[_Lines, Iterator[str], list[str], str, int]:
    """Open, read the header, and decide the row field count from the first data row."""
    lines = _Lines(path)
    it = iter(lines)
    header_line = next(it, None)
    if header_line is None:
        lines.close()
        raise IngestError("file is empty", path=path, key="header",
                          remedy="pass a table with a header row and data rows")
    delim = _delimiter(path, header_line)
    header = _split(header_line, delim)
    return lines, it, header, delim, len(header)


def _peek(it: Iterator[str]) -> tuple[str | None, Iterator[str]]:
    first = next(it, None)
    if first is None:
        return None, it

    def chained() -> Iterator[str]:
        yield first
        yield from it
    return first, chained()


def _columns_from_header(header: list[str], first_row: str, delim: str) -> tuple[list[str], int]:
    """Column names and data-row field count: R-style headers lack the corner field."""
    n_row = len(_split(first_row, delim))
    if n_row == len(header) + 1:
        return header, n_row
    return header[1:], len(header)


def open_genes_by_cells(path: str) -> Source:
    """Read a genes x cells table completely (it must be transposed) into a Source."""
    lines, it, header, delim, _ = _header(path)
    try:
        first, it = _peek(it)
        if first is None:
            raise IngestError("table has a header but no data rows", path=path, key="rows",
                              remedy="pass a table with one row per gene")
        cells, n_fields = _columns_from_header(header, first, delim)
        if not cells:
            raise IngestError("table has no cell columns", path=path, key="header",
                              remedy="genes x cells layout: header = cell ids (or pass "
                                     "--cells-by-genes)")
        acc = ColumnBlocks(len(cells))
        genes: list[np.ndarray] = []
        for labels, values in _chunks(lines, it, n_fields, delim):
            genes.append(labels)
            acc.add_genes_by_cells(values)
    finally:
        lines.close()
    matrix = acc.to_csr()
    gene_names = np.concatenate(genes) if genes else np.array([], dtype=object)
    cell_names = np.asarray([c.strip() for c in cells], dtype=object)
    return Source(path=path, genes=gene_names, var=None, n_cells=len(cells),
                  blocks=lambda n: row_blocks(matrix, cell_names, None, n),
                  sample=lambda n: matrix[:n],
                  description=f"{os.path.basename(path)} (genes x cells table)")


def open_cells_by_genes(path: str) -> Source:
    """Open a cells x genes table; cells are streamed in chunks when the writer asks."""
    lines, it, header, delim, _ = _header(path)
    first, it = _peek(it)
    lines.close()
    if first is None:
        raise IngestError("table has a header but no data rows", path=path, key="rows",
                          remedy="pass a table with one row per cell")
    genes, n_fields = _columns_from_header(header, first, delim)

    def blocks(block_cells: int) -> Iterator[Block]:
        lines2, it2, _, _, _ = _header(path)
        try:
            for labels, values in _chunks(lines2, it2, n_fields, delim):
                for start in range(0, len(labels), block_cells):
                    stop = start + block_cells
                    yield sp.csr_matrix(values[start:stop]), labels[start:stop], None
        finally:
            lines2.close()

    def sample(max_cells: int) -> sp.csr_matrix:
        parts, n = [], 0
        for block, _, _ in blocks(max_cells):
            parts.append(block)
            n += block.shape[0]
            if n >= max_cells:
                break
        return sp.vstack(parts, format="csr")[:max_cells] if parts else sp.csr_matrix((0, 0))

    return Source(path=path, genes=np.asarray(genes, dtype=object), var=None, n_cells=-1,
                  blocks=blocks, sample=sample,
                  description=f"{os.path.basename(path)} (cells x genes table)")


def open_table(path: str, *, cells_by_genes: bool = False) -> Source:
    """Open a delimited text matrix in the given orientation."""
    return open_cells_by_genes(path) if cells_by_genes else open_genes_by_cells(path)


def _open_for_ingest(path: str, options: OpenOptions) -> Source:
    if options.gene_column is not None or options.matrix != "X":
        raise IngestError("--gene-column/--matrix apply to h5ad files only", path=path,
                          key="options", remedy="drop them for text tables")
    return open_table(path, cells_by_genes=options.cells_by_genes)


FORMAT = register_format(InputFormat("table", SUFFIXES, _open_for_ingest, gzip=True))
