"""Task streams (data manager, LAMDA-PILOT style).

Importing this package registers every stream with :data:`cft.config.registry.DATASETS`:
``wordnet`` and ``wordnet-fine`` (text), ``synthetic`` (features), ``tokens`` (tokens),
``cifar100`` and ``imagefolder`` (image).  Build one with
``DATASETS.build(name, seed=..., **options)``.
"""

from .base import MODALITIES, SPLITS, Split, TaskData, TaskStream, task_sizes
from .cifar import Cifar100Stream, read_cifar100
from .genres import GenresStream as GenresStream
from .imagefolder import ImageFolderStream, load_image
from .synthetic import SyntheticStream, SyntheticTruth
from .tokens import TokenStream
from .wordnet import LEXNAMES, SEMANTIC_GROUPS, WordNetStream, find_wordnet, parse_data_file
from .wordnet_fine import WordNetFineStream, parse_noun_graph, select_subtrees

__all__ = [
    "LEXNAMES",
    "MODALITIES",
    "SEMANTIC_GROUPS",
    "SPLITS",
    "Cifar100Stream",
    "ImageFolderStream",
    "Split",
    "SyntheticStream",
    "SyntheticTruth",
    "TaskData",
    "TaskStream",
    "TokenStream",
    "WordNetFineStream",
    "WordNetStream",
    "find_wordnet",
    "load_image",
    "parse_data_file",
    "parse_noun_graph",
    "read_cifar100",
    "select_subtrees",
    "task_sizes",
]
