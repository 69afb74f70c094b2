"""Training translators from labelled networks a user has (a prior network over a gene list)."""

from .prior import PriorTraining, read_gene_list, read_prior, train_from_prior

__all__ = ["PriorTraining", "read_gene_list", "read_prior", "train_from_prior"]
