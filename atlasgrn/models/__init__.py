"""Foundation models as pure torch modules behind one small interface (no Ray, no Zarr).

``load_model(path=None)`` gives the bundled default; ``ScGPTModel`` is the scGPT architecture
shared by native models and imported scGPT checkpoints; ``testing.tiny_model`` is a random
deterministic model for tests.
"""

from .checkpoint import load_model, save_model
from .interface import ArchConfig, AttentionImpl, GeneModel, ModelConfig, ValueSpace
from .scgpt_model import ScGPTModel
from .vocab import map_genes

__all__ = ["ArchConfig", "AttentionImpl", "GeneModel", "ModelConfig", "ScGPTModel", "ValueSpace",
           "load_model", "map_genes", "save_model"]
