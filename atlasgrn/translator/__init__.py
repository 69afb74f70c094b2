"""Translators: small MLPs mapping a gene pair's probe features to an edge score (method §3)."""

from .checkpoint import load_translator_dir, save_translator
from .model import KindModel, Translator
from .normalize import FeatureNormalizer
from .train import TranslatorConfig, split_by_group, train_translator

__all__ = ["FeatureNormalizer", "KindModel", "Translator", "TranslatorConfig",
           "load_translator_dir", "save_translator", "split_by_group", "train_translator"]
