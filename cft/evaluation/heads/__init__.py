"""Classifier heads: the per-task LDA head (:mod:`.lda`) and the continual heads over every
class seen of the merged baselines (:mod:`.continual`, registry ``HEADS``)."""

from .continual import MergedLDA, RanPAC
from .lda import LDAHead

__all__ = ["LDAHead", "MergedLDA", "RanPAC"]
