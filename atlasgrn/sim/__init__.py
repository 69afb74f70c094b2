"""Synthetic multi-dataset atlases from one known, sparse, signed TF -> target network.

``simulate_atlas(out, SimConfig(...))`` draws the network (:mod:`.grn`), evaluates steady-state
Hill kinetics level by level (:mod:`.kinetics`), samples cells with cell states, noise, library
size, Poisson counts and dropout per dataset context (:mod:`.sample`) and streams them into an
atlas (:mod:`.simulate`); the true edges go to Parquet. See ``docs/simulator.md``.
"""

from .config import SimConfig, SimResult
from .grn import GRN, build_grn
from .kinetics import KineticPlan, plan_kinetics, steady_state
from .simulate import default_edges_path, simulate_atlas
from .symbols import human_genes, transcription_factors

__all__ = ["GRN", "KineticPlan", "SimConfig", "SimResult", "build_grn", "default_edges_path",
           "human_genes", "plan_kinetics", "simulate_atlas", "steady_state",
           "transcription_factors"]
