"""Run configuration: the sections (dataclasses), dict I/O, overrides, validation, resolution.

A configuration is a :class:`Config` of plain sections (dataclasses).  It is built in
three layers, later ones winning:

1. a **preset** (:data:`PRESETS`: ``wordnet-minilm``, ``wordnet-fine-{5,10,20,50}``,
   ``synthetic``, ``tiny``);
2. the **method** bundle (:data:`cft.config.registry.METHODS`, see :mod:`cft.methods`): a method is
   nothing but a set of dotted overrides (e.g. ``lora`` sets ``module.reuse_weight=0``);
3. the user's ``key=value`` **overrides**.

Override syntax (:func:`apply_overrides`): ``section.field=value`` with the value parsed
against the field's annotated type (``int``, ``float``, ``bool`` (true/false/1/0/yes/no),
``str``, ``X | None`` (``none``/``null``), ``float | str``).  The ``data`` and ``backbone``
sections carry free-form ``options`` passed to the registry factory; ``data.n_tasks=3`` is
short for ``data.options.n_tasks=3``.  Option values are parsed as JSON literals (numbers,
``true``, ``null``, ``["noun", "verb"]``) and fall back to the raw string; option names are
checked against the factory's signature.  Every error is a one-line ``ValueError``.

The resolved configuration is :func:`to_dict` / :func:`from_dict` round-trippable and is
what the run directory stores in ``config.json``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cft.config.overrides import (
    check_field,
    coerce,
    field_hints,
    option_value,
    parse_override,
    parse_scalar,
)
from cft.config.validation import check_float, check_int

__all__ = [
    "BackboneConfig",
    "Config",
    "DataConfig",
    "EvalConfig",
    "HeadConfig",
    "ModuleConfig",
    "OutputConfig",
    "RetrievalConfig",
    "SignatureConfig",
    "TrainConfig",
    "apply_overrides",
    "config_diff",
    "describe",
    "from_dict",
    "primary_kind",
    "to_dict",
]


# ----------------------------------------------------------------------------- sections
@dataclass
class DataConfig:
    """Task stream: ``DATASETS.build(name, seed=<run seed>, **options)``."""

    name: str = "tokens"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class BackboneConfig:
    """Frozen backbone: ``BACKBONES.build(name, **options)``.

    ``batch_size``: rows per lower-layer encoding / upper-layer inference pass.
    """

    name: str = "tiny-bert"
    options: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 64


@dataclass
class ModuleConfig:
    """PROTEUS module of each task (:class:`cft.model.modules.proteus.ProteusAdapter`).

    ``reuse_weight`` is the paper's alpha: the weight in [0, 1] of the reused (composed) part
    of the update (``0`` = independent LoRA); not ``lora_alpha``, the LoRA scaling numerator.
    ``orth``: ``penalty`` (``train.lambda_orth * sum_j ||A_k A_j^T||_F^2``) or ``project``
    (``A_k`` re-projected onto the orthogonal complement of the earlier rows after each step).
    """

    rank: int = 8
    lora_alpha: float | None = None
    reuse_weight: float = 1.0
    coef_init: float | None = None
    orth: str = "penalty"
    #: module family (``cft.config.registry.MODULE_FAMILIES``, :mod:`cft.model.modules`): how a
    # task's
    #: module is built and trained and whether inference retrieves a task's module
    #: (``proteus``) or uses one merged module (the summed / sequential baselines)
    family: str = "proteus"
    #: options of the family's factory (e.g. ``module.threshold=0.97`` for ``inflora``)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainConfig:
    """Per-task training hyper-parameters (:func:`cft.model.train.train_task`; the task's seed is
    derived from the run seed and passed to it). The one training-config type."""

    epochs: int = 3
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01
    grad_clip: float | None = 1.0
    lambda_orth: float = 0.1
    lambda_l1: float = 1e-3

    def __post_init__(self) -> None:
        self.check()

    def check(self, prefix: str = "") -> None:
        """The one validation of the training hyper-parameters (one-line ``ValueError``
        naming ``prefix + field``)."""
        check_int(prefix + "epochs", self.epochs, minimum=0)
        check_int(prefix + "batch_size", self.batch_size, minimum=1)
        for name in ("lr", "weight_decay", "lambda_orth", "lambda_l1"):
            check_float(prefix + name, getattr(self, name), low=0.0)
        if self.grad_clip is not None:
            check_float(prefix + "grad_clip", self.grad_clip, low=0.0, strict_low=True)


@dataclass
class SignatureConfig:
    """Task signature, both spaces: ``family`` is the ``SIGNATURES`` name (``kmeans``,
    ``gmm``, ``dpgmm``); the score *kinds* a family supports (``centroid``, ``nll``) are
    ``eval.kind``'s choices."""

    family: str = "dpgmm"
    n_components: int = 5
    covariance_type: str = "diag"
    reg_covar: float = 1e-4
    min_weight: float = 1e-2
    max_iter: int = 200
    n_init: int = 1


@dataclass
class HeadConfig:
    """Classifier head. Retrieval families: one LDA head per task
    (:class:`cft.evaluation.heads.lda.LDAHead`), ``shrinkage`` = ``"auto"`` or in [0, 1].
    Merged families
    (no retrieval): one continual head over every class seen, ``kind`` from
    ``cft.config.registry.HEADS`` (``lda``, ``ranpac``; :mod:`cft.evaluation.heads.continual`)
    with ``options``.
    """

    shrinkage: float | str = "auto"
    kind: str = "lda"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class EvalConfig:
    """Evaluation after each task.

    ``kind``: score kind of the summary metrics (``auto`` = ``nll`` for mixtures,
    ``centroid`` for k-means); every supported kind is always computed and saved.
    ``sketch_rank``: covariance sketch rank of the evaluation-split ClusterStats (None =
    exact). ``train_sketch_rank``: the same for the training-time statistics
    ``tasks/NNN/train-clusters-shared.npz``, which feed the training-time bounds and the
    predictions (docs/theory.md §9.3; the default was chosen on the calibration split with
    ``bench/bench_cov_summary.py``).
    """

    kind: str = "auto"
    sketch_rank: int | None = 16
    train_sketch_rank: int | None = 64
    #: a learned retrieval rule evaluated next to the parameter-free ones (``keys``;
    #: ``cft.config.registry.RULES``), or None; saved and reported as score mode ``<rule>``
    rule: str | None = None
    #: options of the rule's factory (``eval.epochs=50`` for ``keys``; needs ``eval.rule``)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class RetrievalConfig:
    """Task retrieval at evaluation (:func:`cft.evaluation.retrieval.evaluate`).

    ``shortlist``: ``k`` = rank the tasks of each sample by the shared signatures' scores
    (same kind) and compute adapted representations and scores only for the top ``k``
    (docs/run-dir.md, "Shortlisted retrieval"); ``None`` = every task (the default).
    """

    shortlist: int | None = None


@dataclass
class OutputConfig:
    """Where results go and how the run holds its working data; not part of the run's
    identity (ignored when resuming): no output depends on these.

    ``results``: extra JSONL file the run's summary line is also appended to (None = only
    ``RUN_DIR/results.jsonl``, which is always written).
    ``cache_mb``: memory for the cached adapted representations
    (:class:`cft.evaluation.store.RepStore`);
    beyond it they spill to ``RUN_DIR/scratch/`` (None = never spill).
    """

    results: str | None = None
    progress: bool = True
    cache_mb: float | None = 512.0


@dataclass
class Config:
    """A complete, resolved run configuration."""

    preset: str = "tiny"
    method: str = "proteus"
    seed: int = 0
    #: torch intra-op threads (None = torch's default); tiny models run fastest on 1
    threads: int | None = None
    #: where torch computes: auto | cpu | cuda | cuda:N (:mod:`cft.model.device`)
    device: str = "cpu"
    #: fp32, or bf16 autocast of the backbone's forward passes (CUDA only)
    precision: str = "fp32"
    data: DataConfig = field(default_factory=DataConfig)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    module: ModuleConfig = field(default_factory=ModuleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    signature: SignatureConfig = field(default_factory=SignatureConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    output: OutputConfig = field(default_factory=OutputConfig)


SECTIONS = ("data", "backbone", "module", "train", "signature", "head", "eval", "retrieval",
            "output")
#: top-level keys that do not define the run (may differ when resuming)
NON_IDENTITY = ("output",)


# ----------------------------------------------------------------------------- dict I/O
def to_dict(cfg: Config) -> dict[str, Any]:
    """Plain JSON-able dict (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


#: keys renamed since run directories were first written: old name -> new name
RENAMED = {"module.alpha": "module.reuse_weight", "signature.kind": "signature.family"}


def from_dict(d: Mapping[str, Any]) -> Config:
    """Inverse of :func:`to_dict`; unknown keys raise ``ValueError``; a key of
    :data:`RENAMED` is read under its new name (older ``config.json`` files)."""
    if not isinstance(d, Mapping):
        raise ValueError("config: must be a mapping")
    cfg = Config()
    for key, value in d.items():
        if key in SECTIONS:
            if not isinstance(value, Mapping):
                raise ValueError(f"config: section {key!r} must be a mapping")
            sec = getattr(cfg, key)
            for k, v in value.items():
                k = RENAMED.get(f"{key}.{k}", f"{key}.{k}").split(".", 1)[1]
                check_field(sec, k, f"{key}.{k}")
                setattr(sec, k, coerce(v, field_hints(type(sec))[k], f"{key}.{k}"))
        else:
            check_field(cfg, key, key)
            setattr(cfg, key, coerce(value, field_hints(Config)[key], key))
    return cfg


def config_diff(a: Mapping[str, Any], b: Mapping[str, Any],
                ignore: Iterable[str] = NON_IDENTITY) -> list[str]:
    """Dotted keys whose values differ between two config dicts (``ignore``: top keys)."""
    skip = set(ignore)
    out: list[str] = []

    def walk(x: Any, y: Any, prefix: str) -> None:
        if isinstance(x, Mapping) and isinstance(y, Mapping):
            for k in sorted(set(x) | set(y)):
                if not prefix and k in skip:
                    continue
                key = f"{prefix}.{k}" if prefix else str(k)
                if k not in x or k not in y:
                    out.append(key)
                else:
                    walk(x[k], y[k], key)
        elif x != y or type(x) is not type(y) and not (
            isinstance(x, int | float) and isinstance(y, int | float)
            and not isinstance(x, bool) and not isinstance(y, bool)
        ):
            out.append(prefix)

    walk(a, b, "")
    return out


# ----------------------------------------------------------------------------- overrides
def apply_overrides(cfg: Config, items: Iterable[str | tuple[str, Any]]) -> Config:
    """Apply ``key=value`` overrides (strings) or ``(key, typed value)`` pairs in place."""
    for item in items:
        if isinstance(item, str):
            key, raw = parse_override(item)
            typed = False
        else:
            key, raw = item
            typed = True
        parts = key.split(".")
        if len(parts) == 1:
            check_field(cfg, key, key)
            if key in SECTIONS:
                raise ValueError(f"override: {key!r} is a section; use {key}.<field>=value")
            tp = field_hints(Config)[key]
            setattr(cfg, key, coerce(raw, tp, key) if typed else parse_scalar(raw, tp, key))
            continue
        section = parts[0]
        if section not in SECTIONS:
            check_field(cfg, section, section)
            raise ValueError(f"override: {section!r} is not a section (use {section}=value)")
        sec = getattr(cfg, section)
        names = [f.name for f in dataclasses.fields(sec)]
        has_options = "options" in names
        if parts[1] == "options" and has_options and len(parts) >= 3:
            opt = ".".join(parts[2:])
        elif parts[1] not in names and has_options and len(parts) == 2:
            opt = parts[1]
        else:
            opt = None
        if opt is not None:
            cur = sec.options.get(opt)
            sec.options[opt] = raw if typed else option_value(raw, cur, key)
            continue
        if len(parts) != 2:
            raise ValueError(f"override: unknown key {key!r}")
        check_field(sec, parts[1], key)
        tp = field_hints(type(sec))[parts[1]]
        setattr(sec, parts[1], coerce(raw, tp, key) if typed else parse_scalar(raw, tp, key))
    return cfg


def primary_kind(cfg: Config) -> str:
    """The score kind of the summary metrics (``eval.kind`` with ``auto`` resolved)."""
    if cfg.eval.kind != "auto":
        return cfg.eval.kind
    return "centroid" if cfg.signature.family == "kmeans" else "nll"


def describe(cfg: Config) -> str:
    """Pretty JSON of the resolved configuration."""
    return json.dumps(to_dict(cfg), indent=2, sort_keys=False)
