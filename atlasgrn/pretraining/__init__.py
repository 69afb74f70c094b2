"""Pre-training native models: the pure training loop (:mod:`.loop`, no atlas code) and what
feeds it atlas cells (:mod:`.sampler`, :mod:`.run`) and judges the result (:mod:`.evaluate`)."""

from __future__ import annotations

from ..lazy import lazy_exports

_EXPORTS = {
    "DatasetEval": ".evaluate",
    "PretrainOptions": ".config",
    "SamplerConfig": ".config",
    "TrainConfig": ".config",
    "evaluate_model": ".evaluate",
    "format_report": ".evaluate",
    "pretrain_atlas": ".run",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
