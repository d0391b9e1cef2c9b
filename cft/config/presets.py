"""The presets (:data:`PRESETS`): complete starting configurations, by name.

``python -m cft presets`` lists them, ``python -m cft presets --show NAME`` prints one fully
resolved. A preset is the first of the three configuration layers (:mod:`cft.config`):
preset, then the method bundle, then the user's overrides.
"""

from __future__ import annotations

from collections.abc import Callable

from cft.config.sections import (
    BackboneConfig,
    Config,
    DataConfig,
    EvalConfig,
    ModuleConfig,
    OutputConfig,
    SignatureConfig,
    TrainConfig,
)

__all__ = ["FINE_TASKS", "PRESETS", "preset", "preset_names"]

def _tiny() -> Config:
    """Random tiny transformer on generated token sequences: seconds, no downloads."""
    return Config(
        preset="tiny",
        threads=1,
        data=DataConfig("tokens", {"n_tasks": 3, "classes_per_task": 2, "n_per_class": 80,
                                   "vocab_size": 100, "seq_len": 24}),
        backbone=BackboneConfig("tiny-bert", {"seed": 0, "vocab_size": 100, "hidden_size": 32,
                                              "num_layers": 2, "num_heads": 2,
                                              "intermediate_size": 64, "max_length": 24,
                                              "adapt_layers": 1}, batch_size=64),
        module=ModuleConfig(rank=4, reuse_weight=1.0),
        # 60 optimizer steps per task: enough that the modules move the representations
        # (adapted and shared retrieval then differ), still about a second per task
        train=TrainConfig(epochs=10, batch_size=16, lr=1e-2),
        signature=SignatureConfig(family="gmm", n_components=2, covariance_type="diag",
                                  max_iter=100),
        eval=EvalConfig(kind="auto", sketch_rank=None),
        output=OutputConfig(progress=False),
    )


def _synthetic() -> Config:
    """Feature-space Gaussian-mixture stream, identity backbone (no trainable module)."""
    return Config(
        preset="synthetic",
        data=DataConfig("synthetic", {"n_tasks": 5, "classes_per_task": 4, "dim": 16,
                                      "n_per_class": 300}),
        backbone=BackboneConfig("identity", {}, batch_size=1024),
        module=ModuleConfig(rank=1),
        train=TrainConfig(epochs=0),
        signature=SignatureConfig(family="dpgmm", n_components=4, covariance_type="full",
                                  max_iter=300),
        eval=EvalConfig(kind="auto", sketch_rank=None),
    )


def _wordnet_minilm() -> Config:
    """all-MiniLM-L6-v2 on 5 WordNet tasks of contrasting semantics (the main job)."""
    return Config(
        preset="wordnet-minilm",
        data=DataConfig("wordnet", {"grouping": "semantic", "n_tasks": 5,
                                    "max_per_class": 150, "min_class_size": 100,
                                    "calibration_size": 0.15, "test_size": 0.2}),
        backbone=BackboneConfig("minilm", {"max_length": 32, "adapt_layers": 2,
                                           "targets": ["query", "value"]}, batch_size=64),
        module=ModuleConfig(rank=8, reuse_weight=1.0),
        # lambda_l1 chosen on the calibration split (README, "Choosing the demo's defaults")
        train=TrainConfig(epochs=3, batch_size=32, lr=2e-3, lambda_l1=0.03),
        signature=SignatureConfig(family="dpgmm", n_components=5, covariance_type="diag",
                                  max_iter=200),
        eval=EvalConfig(kind="auto", sketch_rank=16),
    )


def _wordnet_mpnet() -> Config:
    """all-mpnet-base-v2 (110 M parameters, d = 768, 12 layers; ``scripts/ensure-mpnet.sh``)
    on the stream and training of ``wordnet-minilm``: only the backbone differs."""
    cfg = _wordnet_minilm()
    cfg.preset = "wordnet-mpnet"
    cfg.backbone = _mpnet_backbone(cfg.backbone.options["max_length"])
    return cfg


def _mpnet_backbone(max_length: int) -> BackboneConfig:
    """all-mpnet-base-v2's backbone section of the ``*-mpnet`` presets: the top two layers'
    query and value adapted, texts cut at the MiniLM twin's ``max_length``."""
    return BackboneConfig("mpnet", {"max_length": max_length, "adapt_layers": 2,
                                    "targets": ["query", "value"]}, batch_size=64)


#: task counts of the fine-grained WordNet presets ``wordnet-fine-N``
FINE_TASKS = (5, 10, 20, 50)


def _wordnet_fine(n_tasks: int) -> Callable[[], Config]:
    """all-MiniLM-L6-v2 on 200 fine-grained WordNet classes (disjoint noun hypernym
    subtrees, ``wordnet-fine``) dealt in seeded order to ``n_tasks`` equal tasks."""

    def make() -> Config:
        cfg = _wordnet_minilm()
        cfg.preset = f"wordnet-fine-{n_tasks}"
        cfg.data = DataConfig("wordnet-fine", {"n_classes": 200, "n_tasks": n_tasks,
                                               "max_per_class": 100, "min_class_size": 100,
                                               "max_subtree": 400, "calibration_size": 0.15,
                                               "test_size": 0.2})
        return cfg

    return make


#: the ViT of the image presets (ImageNet-21k ViT-B/16, as in PILOT); a hub id, or
#: ``backbone.path=DIR`` for a local copy
VIT_PATH = "google/vit-base-patch16-224-in21k"


def _vit(preset_name: str, data: DataConfig) -> Config:
    """ViT-B/16 with PROTEUS modules on an image stream (224x224 inputs)."""
    return Config(
        preset=preset_name,
        data=data,
        backbone=BackboneConfig("vit", {"path": VIT_PATH, "adapt_layers": 2,
                                        "targets": ["query", "value"], "resize": True},
                                batch_size=64),
        module=ModuleConfig(rank=8, reuse_weight=1.0),
        train=TrainConfig(epochs=3, batch_size=32, lr=1e-3),
        signature=SignatureConfig(family="dpgmm", n_components=5, covariance_type="diag",
                                  max_iter=200),
        eval=EvalConfig(kind="auto", sketch_rank=16),
    )


def _cifar100_vit() -> Config:
    """CIFAR-100 (``$CFT_CIFAR100_DIR`` or ``data.root=``) in 10 tasks of 10 classes, images
    resized from 32x32 to the ViT's 224x224."""
    return _vit("cifar100-vit", DataConfig("cifar100", {"n_tasks": 10, "classes_per_task": 10,
                                                         "calibration_size": 0.1}))


def _imagefolder_vit() -> Config:
    """A class-per-folder image tree such as ImageNet-R (``$CFT_IMAGEFOLDER_DIR`` or
    ``data.root=``) in 10 tasks, images centre-cropped to 224x224."""
    return _vit("imagefolder-vit", DataConfig("imagefolder", {"n_tasks": 10,
                                                               "image_size": 224}))


#: the sources of the genres presets: one task per source (genres-5), or two per source
#: with disjoint classes (genres-10; WordNet replaces the man pages, which have too few
#: sections for two tasks)
GENRES_SOURCES = {5: ("fortunes", "apt", "man", "gcide", "pydoc"),
                  10: ("fortunes", "apt", "gcide", "pydoc", "wordnet")}


def _genres(n_tasks: int) -> Callable[[], Config]:
    """all-MiniLM-L6-v2 on the multi-genre stream: each task is one real corpus (fortune
    categories, Debian package sections, man-page sections, GCIDE domain tags, stdlib
    module families, WordNet lexicographer files) with 5 of that corpus's own labels."""

    def make() -> Config:
        cfg = _wordnet_minilm()
        cfg.preset = f"genres-{n_tasks}"
        cfg.data = DataConfig("genres", {
            "sources": list(GENRES_SOURCES[n_tasks]), "classes_per_task": 5,
            "tasks_per_source": n_tasks // 5, "max_per_class": 150, "min_class_size": 100,
            "calibration_size": 0.15, "test_size": 0.2})
        cfg.backbone.options["max_length"] = 64  # corpus texts are longer than glosses
        return cfg

    return make


def _genres_mpnet() -> Config:
    """all-mpnet-base-v2 on the ``genres-5`` stream: only the backbone differs (its
    options as in ``wordnet-mpnet``, the corpus texts' ``max_length`` as in ``genres-5``)."""
    cfg = _genres(5)()
    cfg.preset = "genres-mpnet"
    cfg.backbone = _mpnet_backbone(cfg.backbone.options["max_length"])
    return cfg


#: the paper-scale backbone's presets and their MiniLM twins (the same stream and training;
#: only the backbone differs, tests/test_mpnet.py)
BACKBONE_TWINS = {"wordnet-mpnet": "wordnet-minilm", "genres-mpnet": "genres-5"}

#: name -> (one-line description, factory)
PRESETS: dict[str, tuple[str, Callable[[], Config]]] = {
    "wordnet-minilm": ("MiniLM-L6 on 5 WordNet tasks (real model; ~minutes on 2 cores)",
                       _wordnet_minilm),
    **{f"wordnet-fine-{n}": (f"MiniLM-L6 on 200 fine WordNet classes in {n} tasks of "
                             f"{200 // n}", _wordnet_fine(n)) for n in FINE_TASKS},
    "wordnet-mpnet": ("all-mpnet-base-v2 (d = 768) on the wordnet-minilm stream (needs "
                      "scripts/ensure-mpnet.sh; tens of minutes on 2 cores, GPU advised)",
                      _wordnet_mpnet),
    **{f"genres-{n}": (f"MiniLM-L6 on {n} tasks of real corpora of different genres "
                       f"(needs scripts/ensure-genres.sh)", _genres(n)) for n in (5, 10)},
    "genres-mpnet": ("all-mpnet-base-v2 (d = 768) on the genres-5 stream (needs "
                     "scripts/ensure-genres.sh and scripts/ensure-mpnet.sh; GPU advised)",
                     _genres_mpnet),
    "synthetic": ("Gaussian-mixture feature stream, identity backbone (seconds)", _synthetic),
    "tiny": ("random tiny BERT on generated tokens (seconds; used by tests)", _tiny),
    "cifar100-vit": ("ViT-B/16 on CIFAR-100 in 10 tasks (needs the data and the weights; "
                     "GPU advised)", _cifar100_vit),
    "imagefolder-vit": ("ViT-B/16 on an image folder such as ImageNet-R in 10 tasks (needs "
                        "the data and the weights; GPU advised)", _imagefolder_vit),
}


def preset_names() -> list[str]:
    return list(PRESETS)


def preset(name: str) -> Config:
    """A fresh copy of preset ``name`` (before method bundle and overrides)."""
    if name not in PRESETS:
        raise ValueError(f"preset: unknown preset {name!r} (known: {', '.join(PRESETS)})")
    return PRESETS[name][1]()
