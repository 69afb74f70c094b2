"""Reading a network someone else wrote: a CSV/TSV edge list (a prior, a reference network).

One reader for ``train-translator --prior`` and ``report --reference``: the separator from the
extension (``.tsv``/``.txt``: tab) or a first line with tabs and no comma; columns recognised by
name (:data:`KNOWN_COLUMNS`), given explicitly, or taken as columns 1-2 of a headerless file
(TRRUST). Torch-free, so the report can use it without loading a model stack.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pandas as pd

from .errors import AtlasgrnError

#: Column-name pairs recognised as (source, target), case-insensitive, first match wins.
KNOWN_COLUMNS = (("source", "target"), ("gene1", "gene2"), ("tf", "target"),
                 ("regulator", "target"), ("from", "to"))


def read_edge_list(path: str | os.PathLike[str], *, option: str, what: str, remedy: str,
                   source_col: str | None = None, target_col: str | None = None,
                   header: bool = True) -> pd.DataFrame:
    """Distinct, stripped ``source``, ``target`` (str) edges; bad input is one line naming
    ``option`` (the flag the path came from) and ``remedy`` (what to give instead)."""
    p = Path(path)
    if not p.is_file():
        raise AtlasgrnError(f"{what} file not found", path=str(p), key=option, remedy=remedy)
    try:
        # the separator is sniffed on the first *text* line (a gzip file's raw bytes can hold
        # a tab byte and no comma, which once made a comma file read as one column)
        opener = gzip.open if p.name.lower().endswith(".gz") else open
        with opener(p, "rb") as fh:
            first = fh.readline()
        name = p.name.lower().removesuffix(".gz")
        tab = name.endswith((".tsv", ".txt")) or (b"\t" in first and b"," not in first)
        frame = pd.read_csv(p, sep="\t" if tab else ",", header=0 if header else None,
                            dtype=str)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise AtlasgrnError(f"cannot read the {what} ({exc})", path=str(p), key=option,
                            remedy=remedy) from None
    if not header:
        if frame.shape[1] < 2:
            raise AtlasgrnError(f"the {what} has fewer than 2 columns", path=str(p),
                                key="column 2", remedy="put source and target in columns 1-2")
        frame = frame.iloc[:, :2]
    else:
        lower = {str(c).strip().lower(): c for c in frame.columns}
        if source_col or target_col:
            pick = (source_col or "source", target_col or "target")
            cols = [c if c in frame.columns else lower.get(c.lower()) for c in pick]
        else:
            pair = next(((a, b) for a, b in KNOWN_COLUMNS if a in lower and b in lower), None)
            cols = [lower[pair[0]], lower[pair[1]]] if pair else [None, None]
            pick = pair or ("source", "target")
        missing = [k for k, c in zip(pick, cols) if c is None]
        if missing:
            raise AtlasgrnError(f"no '{missing[0]}' column (no source/target columns); found "
                                f"{list(frame.columns)[:6]}", path=str(p), key=missing[0],
                                remedy=remedy)
        frame = frame[cols]
    frame.columns = ["source", "target"]
    frame = frame.dropna()
    frame = frame.assign(source=frame.source.str.strip(), target=frame.target.str.strip())
    frame = frame[(frame.source != "") & (frame.target != "")].drop_duplicates()
    if frame.empty:
        raise AtlasgrnError(f"the {what} has no edges", path=str(p), key=option,
                            remedy="check the file and its columns")
    return frame.reset_index(drop=True)
