"""Frozen backbones split into cached lower layers and adapted upper layers, one module per
family: the protocol and the lower-layer cache (:mod:`.base`), the Hugging Face encoders
(:mod:`.hf`), text (:mod:`.text`), image (:mod:`.image`) and features (:mod:`.features`).
Importing the package registers every backbone with ``BACKBONES``; what differs between two
checkpoints of one family (path, pooling, sizes) is an option of its entry, never a branch
on a name."""

from .base import MODALITIES, TARGET_ALIASES, Backbone, HiddenCache
from .features import IdentityBackbone, build_identity
from .hf import _HFEncoder
from .image import ViTBackbone, build_tiny_vit, build_vit
from .text import BertBackbone, build_bert, build_minilm, build_tiny_bert, default_minilm_path

__all__ = [
    "MODALITIES",
    "TARGET_ALIASES",
    "Backbone",
    "BertBackbone",
    "HiddenCache",
    "IdentityBackbone",
    "ViTBackbone",
    "_HFEncoder",
    "build_bert",
    "build_identity",
    "build_minilm",
    "build_tiny_bert",
    "build_tiny_vit",
    "build_vit",
    "default_minilm_path",
]
