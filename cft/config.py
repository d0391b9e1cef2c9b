"""Run configuration: the sections (dataclasses), dict I/O, overrides, validation, resolution.

A configuration is a :class:`Config` of plain sections (dataclasses).  It is built in
three layers, later ones winning:

1. a **preset** (:data:`PRESETS`: ``wordnet-minilm``, ``wordnet-fine-{5,10,20,50}``,
   ``synthetic``, ``tiny``);
2. the **method** bundle (:data:`cft.registry.METHODS`, see :mod:`cft.methods`): a method is
   nothing but a set of dotted overrides (e.g. ``lora`` sets ``module.alpha=0``);
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
import inspect
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cft.overrides import (
    check_field,
    coerce,
    field_hints,
    option_value,
    parse_override,
    parse_scalar,
)
from cft.validation import check_float, check_int, check_seed

__all__ = [
    "BackboneConfig",
    "Config",
    "DataConfig",
    "EvalConfig",
    "HeadConfig",
    "ModuleConfig",
    "OutputConfig",
    "PRESETS",
    "RetrievalConfig",
    "SignatureConfig",
    "TrainSection",
    "apply_overrides",
    "config_diff",
    "from_dict",
    "preset",
    "preset_names",
    "resolve",
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
    """PROTEUS module of each task (:class:`cft.composition.ProteusAdapter`).

    ``alpha`` weights the reused (composed) part; ``alpha = 0`` is independent LoRA.
    ``orth``: ``penalty`` (``train.lambda_orth * sum_j ||A_k A_j^T||_F^2``) or ``project``
    (``A_k`` re-projected onto the orthogonal complement of the earlier rows after each step).
    """

    rank: int = 8
    lora_alpha: float | None = None
    alpha: float = 1.0
    coef_init: float | None = None
    orth: str = "penalty"
    #: module family (``cft.registry.MODULE_FAMILIES``, :mod:`cft.modules`): how a task's
    #: module is built and trained and whether inference retrieves a task's module
    #: (``proteus``) or uses one merged module (the summed / sequential baselines)
    family: str = "proteus"
    #: options of the family's factory (e.g. ``module.threshold=0.97`` for ``inflora``)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainSection:
    """Per-task training (:class:`cft.train.TrainConfig`; the seed is derived per task)."""

    epochs: int = 3
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01
    grad_clip: float | None = 1.0
    lambda_orth: float = 0.1
    lambda_l1: float = 1e-3

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
    """Task signature (``SIGNATURES``: ``kmeans``, ``gmm``, ``dpgmm``), both spaces."""

    kind: str = "dpgmm"
    n_components: int = 5
    covariance_type: str = "diag"
    reg_covar: float = 1e-4
    min_weight: float = 1e-2
    max_iter: int = 200
    n_init: int = 1


@dataclass
class HeadConfig:
    """Classifier head. Retrieval families: one LDA head per task
    (:class:`cft.heads.LDAHead`), ``shrinkage`` = ``"auto"`` or in [0, 1]. Merged families
    (no retrieval): one continual head over every class seen, ``kind`` from
    ``cft.registry.HEADS`` (``lda``, ``ranpac``; :mod:`cft.baselines.heads`) with ``options``.
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
    #: ``cft.registry.RULES``), or None
    rule: str | None = None


@dataclass
class RetrievalConfig:
    """Task retrieval at evaluation (:func:`cft.retrieval.evaluate`).

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
    ``cache_mb``: memory for the cached adapted representations (:class:`cft.store.RepStore`);
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
    #: where torch computes: auto | cpu | cuda | cuda:N (:mod:`cft.device`)
    device: str = "cpu"
    #: fp32, or bf16 autocast of the backbone's forward passes (CUDA only)
    precision: str = "fp32"
    data: DataConfig = field(default_factory=DataConfig)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    module: ModuleConfig = field(default_factory=ModuleConfig)
    train: TrainSection = field(default_factory=TrainSection)
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


def from_dict(d: Mapping[str, Any]) -> Config:
    """Inverse of :func:`to_dict`; unknown keys raise ``ValueError``."""
    if not isinstance(d, Mapping):
        raise ValueError("config: must be a mapping")
    cfg = Config()
    for key, value in d.items():
        if key in SECTIONS:
            if not isinstance(value, Mapping):
                raise ValueError(f"config: section {key!r} must be a mapping")
            sec = getattr(cfg, key)
            for k, v in value.items():
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


# ----------------------------------------------------------------------------- resolution
def _check_options(kind: str, factory: Callable[..., Any], options: Mapping[str, Any],
                   reserved: tuple[str, ...] = ()) -> None:
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return
    params = sig.parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    known = [n for n in params if n not in reserved and n != "self"]
    for k in options:
        if k in reserved or k not in params:
            raise ValueError(f"override: unknown option '{kind}.{k}' "
                             f"(known: {', '.join(known)})")


def validate(cfg: Config) -> Config:
    """Check values and registry names (imports the registries it needs)."""
    import cft.data  # noqa: F401  (registers the datasets)
    import cft.methods  # noqa: F401
    import cft.signatures  # noqa: F401
    from cft.registry import DATASETS, METHODS, SIGNATURES

    if cfg.preset not in PRESETS:
        raise ValueError(f"preset: unknown preset {cfg.preset!r} (known: {', '.join(PRESETS)})")
    check_seed(cfg.seed)
    check_int("threads", cfg.threads, minimum=1, allow_none=True)
    from cft.device import check_device

    check_device(cfg.device, cfg.precision)
    METHODS.get(cfg.method)
    _check_options("data", DATASETS.get(cfg.data.name), cfg.data.options, reserved=("seed",))
    if cfg.signature.kind not in SIGNATURES:
        SIGNATURES.get(cfg.signature.kind)
    if cfg.signature.covariance_type not in ("diag", "full"):
        raise ValueError(f"signature.covariance_type: must be 'diag' or 'full', got "
                         f"{cfg.signature.covariance_type!r}")
    for key, v, lo in (("signature.n_components", cfg.signature.n_components, 1),
                       ("signature.max_iter", cfg.signature.max_iter, 1),
                       ("signature.n_init", cfg.signature.n_init, 1),
                       ("module.rank", cfg.module.rank, 1),
                       ("backbone.batch_size", cfg.backbone.batch_size, 1)):
        check_int(key, v, minimum=lo)
    cfg.train.check("train.")
    _check_hooks(cfg)
    if cfg.module.orth not in ("penalty", "project"):
        raise ValueError(f"module.orth: must be 'penalty' or 'project', got {cfg.module.orth!r}")
    check_float("module.alpha", cfg.module.alpha, low=0.0, high=1.0)
    check_float("signature.reg_covar", cfg.signature.reg_covar, low=0.0)
    s = cfg.head.shrinkage
    if not (s == "auto" or (isinstance(s, float) and 0.0 <= s <= 1.0)):
        raise ValueError(f"head.shrinkage: must be 'auto' or a number in [0, 1], got {s!r}")
    if cfg.eval.kind not in ("auto", "centroid", "nll"):
        raise ValueError(f"eval.kind: must be auto, centroid or nll, got {cfg.eval.kind!r}")
    if cfg.eval.kind == "nll" and cfg.signature.kind == "kmeans":
        raise ValueError("eval.kind: 'nll' needs a mixture signature (gmm or dpgmm)")
    for key in ("sketch_rank", "train_sketch_rank"):
        check_int(f"eval.{key}", getattr(cfg.eval, key), minimum=1, allow_none=True)
    check_int("retrieval.shortlist", cfg.retrieval.shortlist, minimum=1, allow_none=True)
    if cfg.output.cache_mb is not None and cfg.output.cache_mb < 0:
        raise ValueError(f"output.cache_mb: must be >= 0 or none, got {cfg.output.cache_mb}")
    return cfg


def _check_hooks(cfg: Config) -> None:
    """Names and options of the method hooks (module family, head, retrieval rule)."""
    import cft.baselines  # noqa: F401  (registers heads and rules)
    import cft.modules  # noqa: F401  (registers the module families)
    from cft.registry import HEADS, MODULE_FAMILIES, RULES

    fam = MODULE_FAMILIES.get(cfg.module.family)
    _check_options("module", fam, cfg.module.options)
    if cfg.head.kind not in HEADS:
        HEADS.get(cfg.head.kind)
    _check_options("head", HEADS.get(cfg.head.kind), cfg.head.options,
                   reserved=("random_state", "shrinkage"))
    merged = fam(**cfg.module.options).inference == "merged"
    if merged:
        HEADS.get(cfg.head.kind)(**cfg.head.options)  # checks the option values
    if not merged and cfg.head.kind != "lda":
        raise ValueError(f"head.kind: {cfg.head.kind!r} needs a module family without task "
                         f"retrieval; {cfg.module.family!r} retrieves per-task LDA heads")
    if cfg.eval.rule is not None:
        RULES.get(cfg.eval.rule)
        if merged:
            raise ValueError(f"eval.rule: module family {cfg.module.family!r} has no task "
                             f"retrieval, so a retrieval rule does not apply")


def validate_backbone(cfg: Config) -> None:
    """Check the backbone name and options (imports torch through cft.backbones)."""
    import cft.backbones  # noqa: F401
    from cft.registry import BACKBONES

    _check_options("backbone", BACKBONES.get(cfg.backbone.name), cfg.backbone.options)


def get_value(cfg: Config, key: str) -> Any:
    """The value of dotted ``key`` (``data.n_tasks`` is short for ``data.options.n_tasks``,
    as in :func:`apply_overrides`)."""
    parts = key.split(".")
    obj: Any = cfg
    if len(parts) == 1:
        return getattr(cfg, key)
    sec = getattr(obj, parts[0])
    if parts[1] == "options" and len(parts) >= 3:
        return sec.options.get(".".join(parts[2:]))
    if hasattr(sec, parts[1]):
        return getattr(sec, parts[1])
    return sec.options.get(parts[1])


def resolve(preset_name: str, overrides: Iterable[str] = (), *, seed: int | None = None,
            check: bool = True) -> Config:
    """Preset -> method bundle -> overrides (-> ``seed`` if given) -> validation.

    The method is taken from a ``method=...`` override if present, wherever it stands.
    An override of a key that the method's bundle sets is accepted only when it repeats
    the method's value: ``method=lora module.alpha=0.5`` is refused with one line (the
    method would silently not be the method any more).
    """
    import cft.methods  # noqa: F401
    from cft.registry import METHODS

    items = list(overrides)
    pairs = [parse_override(i) for i in items]
    cfg = preset(preset_name)
    for k, v in pairs:
        if k == "method":
            cfg.method = v.strip()
    method = METHODS.build(cfg.method)
    apply_overrides(cfg, list(method.overrides.items()))
    fixed = {k: get_value(cfg, k) for k in method.overrides}
    user = [(i, k) for i, (k, _) in zip(items, pairs) if k != "method"]
    apply_overrides(cfg, [i for i, _ in user])
    for item, key in user:
        if key in fixed and get_value(cfg, key) != fixed[key]:
            raise ValueError(f"override: {item!r} contradicts method={cfg.method}, which sets "
                             f"{key}={fixed[key]!r}; drop the override or choose another "
                             f"method")
    if seed is not None:
        cfg.seed = check_seed(seed)
    if check:
        validate(cfg)
    return cfg


def primary_kind(cfg: Config) -> str:
    """The score kind of the summary metrics (``eval.kind`` with ``auto`` resolved)."""
    if cfg.eval.kind != "auto":
        return cfg.eval.kind
    return "centroid" if cfg.signature.kind == "kmeans" else "nll"


def describe(cfg: Config) -> str:
    """Pretty JSON of the resolved configuration."""
    return json.dumps(to_dict(cfg), indent=2, sort_keys=False)


# the presets are built from the sections above (imported last: cft.presets imports them)
from cft.presets import PRESETS, preset, preset_names  # noqa: E402
