"""Universal mode's content-addressed probe store: each block's features and scores, once.

In universal mode a pair's features depend on the model, the feature spec, the block's genes and
the model's anchor list, never on a dataset (``FeatureSpec.mode``). So the store is laid out by
exactly those keys, and any run over any atlas may reuse what another run probed:

    <store>/model=<model sha256[:16]>/spec=<spec digest[:16]>/
        _store.json                               # the full model sha and spec, checked on open
        features/<block key>.parquet              # source, target, f_<kind> (one list per pair)
        scores/translator=<sha[:16]>/<block key>.parquet   # the edge-file schema

A block key is the sha256 of the block's sources, targets and anchors, so a name says what its
file holds: a store written under another model or spec sits under another prefix and is never
read, two writers of one block write the same bytes under the same name (each write atomic, so
concurrent runs cannot corrupt it), and a run that laid out the same genes finds the block done.
Scores depend on the translator too and have their own prefix: a new translator rescores the
stored features without probing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..digest import json_sha256
from ..errors import AtlasgrnError
from ..features import FeatureSpec
from ..objectstore import with_retries
from .output import RunOutput

META = "_store.json"
STORE_FORMAT = 1
#: The store's place inside a run's output when ``--cache`` is not given.
RUN_LOCAL_STORE = "store"


@dataclass(frozen=True)
class StoreRef:
    """What a replica needs to open the store (small and picklable)."""

    uri: str
    spec: FeatureSpec
    anchors: tuple[str, ...]
    translator_sha256: str


class ProbeStore:
    """Reads and atomic writes of one (model, spec) namespace of the store."""

    def __init__(self, ref: StoreRef) -> None:
        self.ref = ref
        self.root_uri = (f"{ref.uri.rstrip('/')}/model={ref.spec.model_sha256[:16]}"
                         f"/spec={ref.spec.digest()[:16]}")
        self.io = RunOutput(self.root_uri)
        self._anchor_digest = json_sha256(list(ref.anchors))
        self._scores_dir = ("scores", f"translator={ref.translator_sha256[:16]}")

    # ------------------------------------------------------------------ identity
    def block_key(self, sources: Sequence[str], targets: Sequence[str]) -> str:
        """The content address of a block: its genes and the anchors filling its context."""
        return json_sha256({"sources": list(sources), "targets": list(targets),
                            "anchors": self._anchor_digest})[:32]

    def meta(self) -> dict[str, object]:
        return {"format": STORE_FORMAT, "model_sha256": self.ref.spec.model_sha256,
                "feature_spec": self.ref.spec.to_json(), "anchors_sha256": self._anchor_digest}

    def claim(self) -> None:
        """Write ``_store.json`` for a new namespace; refuse one whose record disagrees (a
        hand-edited or truncated store must not be trusted)."""
        path = self.io.path(META)
        if self.io.exists(path):
            try:
                have = json.loads(self.io.read_text(path))
            except ValueError:
                have = None
            want = self.meta()
            if not isinstance(have, dict) or any(have.get(k) != want[k] for k in
                                                  ("model_sha256", "feature_spec")):
                raise AtlasgrnError("the probe store's record does not match its key (model "
                                    "or feature spec)", path=self.io.url(META), key="--cache",
                                    remedy="give --cache another location, or remove this "
                                           "namespace")
            return
        self.io.write_text_atomic(path, json.dumps(self.meta(), indent=2, sort_keys=True))

    # ------------------------------------------------------------------ listing
    def scored_keys(self) -> set[str]:
        """Block keys whose scores under this translator are stored (one listing)."""
        return {n[:-len(".parquet")] for n in self.io.listdir(*self._scores_dir)
                if n.endswith(".parquet") and not n.startswith(".")}

    def featured_keys(self) -> set[str]:
        return {n[:-len(".parquet")] for n in self.io.listdir("features")
                if n.endswith(".parquet") and not n.startswith(".")}

    @property
    def scores_uri(self) -> str:
        """Where this translator's scores lie (a URL on an object store), for the manifest."""
        return self.io.url(*self._scores_dir)

    def features_path(self, key: str) -> str:
        return self.io.path("features", f"{key}.parquet")

    def scores_path(self, key: str) -> str:
        return self.io.path(*self._scores_dir, f"{key}.parquet")

    # ------------------------------------------------------------------ features
    def write_features(self, key: str, sources: np.ndarray, targets: np.ndarray,
                       flat: Mapping[str, np.ndarray]) -> None:
        """One block's pair rows (self pairs already dropped) and their features per kind,
        stored in their own dtype so rescoring reads back the very bits that were scored."""
        cols: dict[str, pa.Array] = {"source": pa.array(np.asarray(sources).astype(str)),
                                     "target": pa.array(np.asarray(targets).astype(str))}
        for kind in sorted(flat):
            values = np.ascontiguousarray(flat[kind])
            width = values.shape[1] if values.ndim == 2 else 1
            cols[f"f_{kind}"] = pa.FixedSizeListArray.from_arrays(
                pa.array(values.reshape(-1)), width)
        self.io.write_table_atomic(self.features_path(key), pa.table(cols))

    def read_features(self, key: str, kinds: Sequence[str]
                      ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]] | None:
        """A block's stored pair rows and features, or None when any of ``kinds`` is missing
        (a translator that needs a kind the store lacks re-probes the block)."""
        path = self.features_path(key)
        table = with_retries(lambda: pq.read_table(path, filesystem=self.io.fs),
                             what=f"reading {path}")
        if any(f"f_{k}" not in table.column_names for k in kinds):
            return None
        sources = table["source"].to_numpy(zero_copy_only=False).astype(object)
        targets = table["target"].to_numpy(zero_copy_only=False).astype(object)
        flat = {}
        for k in kinds:
            col = table[f"f_{k}"].combine_chunks()
            flat[k] = col.flatten().to_numpy(zero_copy_only=False).reshape(len(col), -1)
        return sources, targets, flat

    # ------------------------------------------------------------------ scores
    def write_scores(self, key: str, table: pa.Table) -> None:
        self.io.write_table_atomic(self.scores_path(key), table)

    def read_scores(self, key: str) -> pa.Table:
        path = self.scores_path(key)
        return with_retries(lambda: pq.read_table(path, filesystem=self.io.fs),
                            what=f"reading {path}")
