"""Task streams (data manager, LAMDA-PILOT style).

Importing this package registers every stream with :data:`cft.registry.DATASETS`:
``wordnet`` (text), ``synthetic`` (features), ``tokens`` (tokens), ``cifar100`` and
``imagefolder`` (image).  Build one with ``DATASETS.build(name, seed=..., **options)``.
"""

from .base import MODALITIES, SPLITS, Split, TaskData, TaskStream, task_sizes
from .cifar import Cifar100Stream, read_cifar100
from .imagefolder import ImageFolderStream, load_image
from .synthetic import SyntheticStream, SyntheticTruth
from .tokens import TokenStream
from .wordnet import LEXNAMES, SEMANTIC_GROUPS, WordNetStream, find_wordnet, parse_data_file

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
    "WordNetStream",
    "find_wordnet",
    "load_image",
    "parse_data_file",
    "read_cifar100",
    "task_sizes",
]
