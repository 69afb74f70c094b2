"""Foundation models as pure torch modules behind one small interface (no Ray, no Zarr).

``load_model(path=None)`` gives the bundled default; ``ScGPTModel`` is the scGPT architecture
shared by native models and imported scGPT checkpoints; ``testing.tiny_model`` is a random
deterministic model for tests.
"""

from __future__ import annotations

from ..lazy import lazy_exports

_EXPORTS = {
    "ArchConfig": ".interface",
    "AttentionImpl": ".interface",
    "GeneModel": ".interface",
    "ModelConfig": ".interface",
    "ScGPTModel": ".scgpt_model",
    "ValueSpace": ".interface",
    "load_model": ".checkpoint",
    "map_genes": ".vocab",
    "save_model": ".checkpoint",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
