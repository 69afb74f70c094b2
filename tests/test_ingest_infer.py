"""Species and value-kind inference rules (atlasgrn.atlas.ingest.infer), and the corpus
manifest's value descriptions (scripts/shared_corpus.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from atlasgrn.atlas.ingest.infer import infer_species, infer_value_kind
from atlasgrn.errors import IngestError

from .conftest import load_script

REPO = Path(__file__).resolve().parents[1]


shared_corpus = load_script("shared_corpus")


@pytest.mark.parametrize("values, kind", [
    ([0, 1, 5, 120], "counts"),
    ([0.5, 3.2, 25.0], "normalized"),          # beyond any log scale
    ([0.1, 2.5, 11.5], "log2"),                # BEELINE-like maxima
    ([0.1, 2.5, 6.49], "log1p"),               # scanpy log1p(CP10k)
])
def test_value_kind_rules(values, kind):
    assert infer_value_kind(sp.csr_matrix(np.array([values], dtype=np.float32)))[0] == kind


def test_capitalised_symbols_are_mouse():
    assert infer_species(np.array(["Sox2", "Nanog", "C9orf72", "Gm1234"]), source="f")[0] == "mouse"


def test_upper_case_mouse_is_recognised_by_mouse_only_name_patterns():
    genes = np.array(["SOX2", "NANOG", "1700001C19RIK", "4933402J10RIK", "GM12345", "GATA1"])
    assert infer_species(genes, source="f")[0] == "mouse"


def test_upper_case_human_is_recognised_by_human_only_name_patterns():
    genes = np.array(["SOX2", "C9orf152", "LINC00115", "RP11-34P13.3", "MT-ND1"])
    assert infer_species(genes, source="f")[0] == "human"


def test_ambiguous_upper_case_symbols_require_species_flag():
    with pytest.raises(IngestError, match=r"expr.csv.*--species"):
        infer_species(np.array(["SOX2", "NANOG", "GATA1"]), source="expr.csv")


def test_human_vocabulary_resolves_upper_case_without_mouse_patterns():
    genes = np.array(["SOX2", "NANOG", "GATA1"])
    vocab = {g: i for i, g in enumerate(genes)}
    assert infer_species(genes, source="f", vocab=vocab)[0] == "human"


@pytest.mark.parametrize("text, kind", [
    ("UMI counts", "counts"), ("read counts", "counts"),
    ("UMI counts (reconstructed from log-normalized)", "counts"),
    ("transcript counts (UMI-corrected, non-integer); 1 all-zero cell", "counts"),
    ("log2(TPM+1)", "log2"), ("log-scale expression as distributed (max 15.6)", "log2"),
    ("RPKM", "normalized"), ("non-integer (FPKM-like) as distributed", "normalized"),
    ("non-integer expression estimates as distributed", "normalized"),
])
def test_manifest_values_map_to_value_kinds(text, kind):
    assert shared_corpus.value_kind_from_manifest(text) == kind
