"""Discover and load BEELINE networks in GENELink's supervised layout.

Layout (see shared/data/SOURCES.md §1)::

    <root>/networks/<network type>/<dataset>/TFs+<n>/{BL--network,TF,Target}.csv[.gz]
    <root>/expression/<dataset>/TFs+<n>/BL--ExpressionData.csv[.gz]   (genes x cells; may be absent)

Nothing here assumes *which* network types, datasets or sizes exist: held-back sets (e.g. the
cell-type-specific ChIP-seq networks) must plug in unchanged, so everything is found by walking the
folders. One expression matrix serves every network type of a (dataset, size): the GENELink copies
differ only in row order, so genes are re-ordered to each network's ``Target.csv`` order on load.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import AtlasgrnError

NETWORK_FILE = "BL--network.csv"
TF_FILE = "TF.csv"
GENES_FILE = "Target.csv"
EXPRESSION_FILE = "BL--ExpressionData.csv"
_SIZE_DIR = re.compile(r"^TFs\+(\d+)$")


@dataclass(frozen=True)
class Expression:
    """A cells x genes float32 matrix with its gene symbols (columns) and cell ids (rows)."""

    values: np.ndarray
    genes: tuple[str, ...]
    cells: tuple[str, ...]

    def frame(self) -> pd.DataFrame:
        """The matrix as a genes x cells DataFrame (BEELINE's orientation)."""
        return pd.DataFrame(self.values.T, index=list(self.genes), columns=list(self.cells))


@dataclass(frozen=True, eq=False)
class NetworkSet:
    """One ground-truth network over one dataset's gene subset (one GENELink folder).

    ``sources``/``targets`` are the edges (TF -> target) as gene symbols, in file order.
    """

    network: str
    dataset: str
    size: int
    genes: tuple[str, ...]
    tfs: tuple[str, ...]
    sources: np.ndarray
    targets: np.ndarray
    folder: Path
    expression_path: Path | None = None
    _gene_index: dict[str, int] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self._gene_index.update({g: i for i, g in enumerate(self.genes)})

    @property
    def key(self) -> str:
        """``<network>/<dataset>/TFs+<size>``, the folder's path under ``networks/``."""
        return f"{self.network}/{self.dataset}/TFs+{self.size}"

    @property
    def n_edges(self) -> int:
        return len(self.sources)

    @property
    def has_expression(self) -> bool:
        return self.expression_path is not None

    def gene_index(self, symbols: Sequence[str] | np.ndarray) -> np.ndarray:
        """Positions of symbols in ``genes`` (-1 where absent)."""
        get = self._gene_index.get
        return np.fromiter((get(s, -1) for s in symbols), dtype=np.int64, count=len(symbols))

    def load_expression(self) -> Expression:
        """The dataset's expression, cells x genes, columns in this set's ``genes`` order."""
        if self.expression_path is None:
            raise AtlasgrnError(
                "no expression matrix for this dataset and size", path=str(self.folder),
                key=f"expression/{self.dataset}/TFs+{self.size}",
                remedy="use a dataset whose BL--ExpressionData.csv(.gz) is present, or skip "
                       "expression-based methods for it")
        return load_expression(self.expression_path, genes=self.genes)


def _read_csv(path: Path, columns: Sequence[str]) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise AtlasgrnError(f"cannot read CSV ({exc})", path=str(path),
                            remedy="restore the file from the GENELink/BEELINE source") from exc
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise AtlasgrnError(f"missing column(s) {missing}; found {list(frame.columns)}",
                            path=str(path), key=missing[0],
                            remedy="use GENELink's layout (Gene1,Gene2 / ,TF,index / ,Gene,index)")
    return frame


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def _require(folder: Path, stem: str) -> Path:
    path = _find(folder, stem)
    if path is None:
        raise AtlasgrnError(f"{stem}(.gz) is missing", path=str(folder), key=stem,
                            remedy="every networks/<type>/<dataset>/TFs+<n>/ folder needs "
                                   f"{NETWORK_FILE}, {TF_FILE} and {GENES_FILE}")
    return path


def load_network_set(folder: Path, root: Path | None = None) -> NetworkSet:
    """Load one ``networks/<type>/<dataset>/TFs+<n>/`` folder, validating its edges."""
    folder = Path(folder)
    match = _SIZE_DIR.match(folder.name)
    if match is None:
        raise AtlasgrnError("folder name is not TFs+<n>", path=str(folder),
                            remedy="name size folders TFs+500, TFs+1000, ...")
    size = int(match.group(1))
    dataset = folder.parent.name
    network = folder.parent.parent.name
    root = Path(root) if root is not None else folder.parents[3]

    genes_path = _require(folder, GENES_FILE)
    genes = tuple(_read_csv(genes_path, ["Gene"])["Gene"].astype(str))
    if len(set(genes)) != len(genes):
        dup = pd.Series(genes)[pd.Series(genes).duplicated()].iloc[0]
        raise AtlasgrnError(f"gene '{dup}' is listed twice", path=str(genes_path), key="Gene",
                            remedy="deduplicate the gene list")
    tf_path = _require(folder, TF_FILE)
    tfs = tuple(_read_csv(tf_path, ["TF"])["TF"].astype(str))
    gene_set = set(genes)
    outside = [t for t in tfs if t not in gene_set]
    if outside:
        raise AtlasgrnError(f"{len(outside)} TF(s) not in {GENES_FILE}, e.g. '{outside[0]}'",
                            path=str(tf_path), key="TF",
                            remedy="the TF list must be a subset of the gene list")
    net_path = _require(folder, NETWORK_FILE)
    edges = _read_csv(net_path, ["Gene1", "Gene2"])
    sources = edges["Gene1"].astype(str).to_numpy()
    targets = edges["Gene2"].astype(str).to_numpy()
    bad = np.fromiter((a not in gene_set or b not in gene_set for a, b in zip(sources, targets)),
                      dtype=bool, count=len(sources))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise AtlasgrnError(f"{int(bad.sum())} edge(s) name genes outside {GENES_FILE}, e.g. "
                            f"{sources[i]}->{targets[i]}", path=str(net_path), key="Gene1,Gene2",
                            remedy="edges must connect genes of the subset")
    expression = _find(root / "expression" / dataset / folder.name, EXPRESSION_FILE)
    return NetworkSet(network=network, dataset=dataset, size=size, genes=genes, tfs=tfs,
                      sources=sources.astype(str), targets=targets.astype(str), folder=folder,
                      expression_path=expression)


def discover(root: str | Path) -> list[NetworkSet]:
    """Every network set under ``root/networks``, sorted by (network, dataset, size)."""
    root = Path(root)
    networks = root / "networks"
    if not networks.is_dir():
        raise AtlasgrnError("no networks/ folder", path=str(root), key="networks",
                            remedy="point at a GENELink-layout folder such as "
                                   "shared/data/beeline_genelink")
    folders = sorted(p for p in networks.glob("*/*/*") if p.is_dir() and _SIZE_DIR.match(p.name))
    if not folders:
        raise AtlasgrnError("no networks/<type>/<dataset>/TFs+<n>/ folders found",
                            path=str(networks), remedy="check the data folder")
    sets = [load_network_set(f, root) for f in folders]
    return sorted(sets, key=lambda s: (s.network, s.dataset, s.size))


def load_expression(path: str | Path, genes: Sequence[str] | None = None) -> Expression:
    """Read a genes x cells BEELINE matrix into a cells x genes float32 :class:`Expression`.

    With ``genes``, columns follow that order and every gene must be present (the matrix of a
    (dataset, size) covers the genes of each of its network sets).
    """
    path = Path(path)
    try:
        frame = pd.read_csv(path, index_col=0)
    except (OSError, ValueError) as exc:
        raise AtlasgrnError(f"cannot read expression matrix ({exc})", path=str(path),
                            remedy="restore the file from the GENELink/BEELINE source") from exc
    frame.index = frame.index.astype(str)
    if frame.index.has_duplicates:
        raise AtlasgrnError(f"gene '{frame.index[frame.index.duplicated()][0]}' appears twice",
                            path=str(path), key="gene", remedy="deduplicate the rows")
    if genes is not None:
        missing = [g for g in genes if g not in frame.index]
        if missing:
            raise AtlasgrnError(f"{len(missing)} gene(s) of the network set are not rows of the "
                                f"matrix, e.g. '{missing[0]}'", path=str(path), key=missing[0],
                                remedy="use the expression matrix of the same dataset and size")
        frame = frame.loc[list(genes)]
    values = frame.to_numpy(dtype=np.float32).T.copy()
    if not np.isfinite(values).all():
        raise AtlasgrnError("matrix has non-finite values", path=str(path),
                            remedy="replace NaN/inf before benchmarking")
    return Expression(values=values, genes=tuple(frame.index), cells=tuple(map(str, frame.columns)))


def find_set(sets: Sequence[NetworkSet], network: str, dataset: str, size: int
             ) -> NetworkSet | None:
    """The set with this (network, dataset, size), or None."""
    for s in sets:
        if (s.network, s.dataset, s.size) == (network, dataset, size):
            return s
    return None


@dataclass(frozen=True)
class Transfer:
    """One leave-dataset-out experiment: train on ``train``, evaluate zero-shot on ``tests``."""

    train: NetworkSet
    tests: tuple[NetworkSet, ...]


def plan_transfers(sets: Sequence[NetworkSet], train_dataset: str = "hESC",
                   fallback_network: str = "STRING") -> list[Transfer]:
    """The paper's protocol for every (network type, size) present.

    Training uses ``train_dataset``'s labels of the same network type; where that dataset has no
    such network (LOF/GOF exists for mESC only) it uses ``fallback_network`` of the same size.
    Tests are all other datasets of that network type and size. Types with no usable training
    set are skipped.
    """
    plans: list[Transfer] = []
    for network, size in sorted({(s.network, s.size) for s in sets}):
        train = (find_set(sets, network, train_dataset, size)
                 or find_set(sets, fallback_network, train_dataset, size))
        if train is None:
            continue
        tests = tuple(s for s in sets if s.network == network and s.size == size
                      and s.dataset != train_dataset)
        if tests:
            plans.append(Transfer(train=train, tests=tests))
    return plans


def pretraining_matches(dataset: str, pretraining_names: Sequence[str]) -> list[str]:
    """The pre-training atlas datasets that hold ``dataset``'s cells (GENELink name, e.g. "hHEP").

    Atlas names carry the source and gene set ("beeline_hHEP_TFs1000", "beeline_mHSC-E_TRN209"),
    so a name matches when one of its "_"-separated tokens equals the GENELink name (case-blind);
    an exact name matches too. Why: the leakage statement must not call a dataset unseen just
    because the atlas spelled it differently.
    """
    want = dataset.lower()
    return [n for n in pretraining_names
            if n.lower() == want or want in (t.lower() for t in n.split("_"))]
