"""The probe store on its own (no Ray): keys, exact round trips, and concurrent writers."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from atlasgrn.engine.output import edges_table
from atlasgrn.engine.store import ProbeStore, StoreRef
from atlasgrn.features import FeatureSpec


def _store(tmp_path, **spec_kw) -> ProbeStore:
    spec = FeatureSpec(vvp_grid=(1.0, 2.0), gdt_levels=(0.0, 1.0), background=0.0,
                       model_sha256="ab" * 32, **spec_kw)
    return ProbeStore(StoreRef(uri=str(tmp_path / "cache"), spec=spec, anchors=("A", "B"),
                               translator_sha256="cd" * 32))


def _rows(seed: int = 0):
    rng = np.random.default_rng(seed)
    sources = np.array(["S1"] * 3 + ["S2"] * 3, dtype=object)
    targets = np.array(["T1", "T2", "T3"] * 2, dtype=object)
    flat = {"vvp": rng.standard_normal((6, 4)).astype(np.float32),
            "gdt_uniform": rng.standard_normal((6, 8)).astype(np.float32)}
    return sources, targets, flat


def test_keys_name_the_content(tmp_path):
    store = _store(tmp_path)
    key = store.block_key(["S1", "S2"], ["T1", "T2"])
    assert key == store.block_key(["S1", "S2"], ["T1", "T2"])
    assert key != store.block_key(["S1", "S2"], ["T1", "T3"])
    other_anchors = ProbeStore(StoreRef(uri=store.ref.uri, spec=store.ref.spec,
                                        anchors=("A", "C"), translator_sha256="cd" * 32))
    assert key != other_anchors.block_key(["S1", "S2"], ["T1", "T2"])
    assert _store(tmp_path, context_len=200).root_uri != store.root_uri


def test_features_round_trip_bit_for_bit_and_a_missing_kind_reads_as_none(tmp_path):
    store = _store(tmp_path)
    store.claim()
    sources, targets, flat = _rows()
    store.write_features("k", sources, targets, flat)
    got = store.read_features("k", ["vvp", "gdt_uniform"])
    assert got is not None
    assert list(got[0]) == list(sources) and list(got[1]) == list(targets)
    for kind, values in flat.items():
        assert got[2][kind].dtype == values.dtype
        assert got[2][kind].tobytes() == values.tobytes()
    assert store.read_features("k", ["vvp", "gdt_source"]) is None
    assert store.featured_keys() == {"k"}


def test_concurrent_writers_of_one_block_leave_a_readable_file(tmp_path):
    """Two runs that probe the same block write the same bytes under the same name; each write
    is atomic, so a reader between them always sees a whole file."""
    store = _store(tmp_path)
    store.claim()
    sources, targets, flat = _rows()
    table = edges_table(sources, targets, np.linspace(0, 1, 6).astype(np.float32),
                        {"vvp": flat["vvp"][:, 0]})
    errors: list[BaseException] = []
    stop = threading.Event()

    def writer() -> None:
        try:
            for _ in range(30):
                store.write_scores("k", table)
                store.write_features("k", sources, targets, flat)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    def reader() -> None:
        while not stop.is_set():
            if store.io.exists(store.scores_path("k")):
                try:
                    assert store.read_scores("k").equals(table)
                except BaseException as exc:  # noqa: BLE001
                    errors.append(exc)
                    return

    threads = [threading.Thread(target=writer) for _ in range(2)]
    watcher = threading.Thread(target=reader)
    watcher.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    watcher.join()
    assert not errors
    assert store.scored_keys() == {"k"}
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.name.startswith(".")]


def test_a_record_without_its_spec_is_refused(tmp_path):
    from atlasgrn.errors import AtlasgrnError

    store = _store(tmp_path)
    store.claim()
    path = tmp_path / "cache" / store.root_uri.split("cache/", 1)[1] / "_store.json"
    path.write_text("[]")
    with pytest.raises(AtlasgrnError, match="does not match its key"):
        store.claim()
