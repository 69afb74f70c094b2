"""Synthetic multi-dataset atlases from one known, sparse, signed TF -> target network.

``simulate_atlas(out, SimConfig(...))`` draws the network (:mod:`.grn`), evaluates steady-state
Hill kinetics level by level (:mod:`.kinetics`), samples cells with cell states, noise, library
size, Poisson counts and dropout per dataset context (:mod:`.sample`) and streams them into an
atlas (:mod:`.simulate`); the true edges go to Parquet. See ``docs/simulator.md``.
"""

from __future__ import annotations

from ..lazy import lazy_exports

_EXPORTS = {
    "GRN": ".grn",
    "KineticPlan": ".kinetics",
    "SimConfig": ".config",
    "SimResult": ".config",
    "build_grn": ".grn",
    "default_edges_path": ".simulate",
    "human_genes": ".symbols",
    "plan_kinetics": ".kinetics",
    "simulate_atlas": ".simulate",
    "steady_state": ".kinetics",
    "transcription_factors": ".symbols",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
