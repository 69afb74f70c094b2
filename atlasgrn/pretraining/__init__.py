"""Pre-training native models on an atlas (the atlas-facing half; the loop is in models)."""

from .evaluate import DatasetEval, evaluate_model, format_report
from .run import PretrainOptions, pretrain_atlas
from .sampler import SamplerConfig

__all__ = ["DatasetEval", "PretrainOptions", "SamplerConfig", "evaluate_model",
           "format_report", "pretrain_atlas"]
