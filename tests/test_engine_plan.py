"""Block planning: complete coverage, no self-pairs, ids stable whatever the input order."""

from __future__ import annotations

import re

from atlasgrn.engine.plan import BlockSpec, plan_dataset, plan_fingerprint

GENES = [f"G{i:02d}" for i in range(23)]
REGS = ["G03", "G07", "G11", "G19", "NOT_IN_DATASET"]


def test_blocks_cover_every_regulator_gene_pair_once_without_self_pairs():
    plan = plan_dataset("d", GENES, REGS, source_block=3, target_block=5)
    pairs = [(s, t) for b in plan.blocks for s in b.sources for t in b.targets if s != t]
    assert len(pairs) == len(set(pairs)) == 4 * 22 == plan.n_pairs
    assert plan.sources == ("G03", "G07", "G11", "G19")
    assert {b.block_id for b in plan.blocks} == {f"d:{i}:{j}" for i in range(2) for j in range(5)}


def test_block_ids_do_not_depend_on_input_order():
    a = plan_dataset("d", GENES, REGS, 3, 5)
    b = plan_dataset("d", list(reversed(GENES)), list(reversed(REGS)), 3, 5)
    assert a == b and plan_fingerprint([a]) == plan_fingerprint([b])
    c = plan_dataset("d", GENES, REGS, 3, 6)
    assert plan_fingerprint([a]) != plan_fingerprint([c])


def test_block_spec_round_trips_through_a_row():
    spec = plan_dataset("ds-1", GENES, REGS, 2, 4).blocks[3]
    assert BlockSpec.from_row(spec.to_row()) == spec
    assert spec.file_stem == "ds-1__00000_00003"


def test_consensus_rows_are_counted_without_enumerating_pairs():
    from atlasgrn.engine.estimate import consensus_rows

    a = plan_dataset("a", GENES[:10], ["G03", "G07"], 2, 4)
    b = plan_dataset("b", GENES[5:], ["G07", "G11"], 2, 4)
    pairs = {(s, t) for p in (a, b) for blk in p.blocks for s in blk.sources
             for t in blk.targets if s != t}
    assert consensus_rows([a, b]) == len(pairs)


def test_plan_prints_blocks_and_a_calibrated_estimate_and_writes_nothing(sim_world, tmp_path,
                                                                         capsys):
    from atlasgrn.run import main

    out = tmp_path / "never"
    rc = main([sim_world.atlas, "--out", str(out), "--plan", "--model", sim_world.model_dir,
               "--translator", sim_world.translator_dir, "--max-regulators", "2"])
    text = capsys.readouterr().out
    assert rc == 0 and not out.exists()
    assert "sim00: 120 genes, 2 regulators" in text
    assert re.search(r"calibration: blocks? _union:0:0", text) and "pairs/s" in text
    assert "mode: universal" in text
    assert "probing each dataset on its own would take 4 blocks" in text
    assert "GPU-hours at 1 GPU/replica" in text  # --gpus-per-replica auto: a GPU each
    assert "note: calibrated on CPU" in text
