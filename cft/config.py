"""Run configuration: dataclasses, presets, ``key=value`` overrides, resolution.

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
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BackboneConfig",
    "Config",
    "DataConfig",
    "EvalConfig",
    "HeadConfig",
    "ModuleConfig",
    "OutputConfig",
    "PRESETS",
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
    """LDA head (:class:`cft.heads.LDAHead`): ``shrinkage`` = ``"auto"`` or in [0, 1]."""

    shrinkage: float | str = "auto"


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


@dataclass
class OutputConfig:
    """Where results go; not part of the run's identity (ignored when resuming).

    ``results``: extra JSONL file the run's summary line is also appended to (None = only
    ``RUN_DIR/results.jsonl``, which is always written).
    """

    results: str | None = None
    progress: bool = True


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
    output: OutputConfig = field(default_factory=OutputConfig)


SECTIONS = ("data", "backbone", "module", "train", "signature", "head", "eval", "output")
#: top-level keys that do not define the run (may differ when resuming)
NON_IDENTITY = ("output",)


# ----------------------------------------------------------------------------- presets
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
        module=ModuleConfig(rank=4, alpha=1.0),
        # 60 optimizer steps per task: enough that the modules move the representations
        # (adapted and shared retrieval then differ), still about a second per task
        train=TrainSection(epochs=10, batch_size=16, lr=1e-2),
        signature=SignatureConfig(kind="gmm", n_components=2, covariance_type="diag",
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
        train=TrainSection(epochs=0),
        signature=SignatureConfig(kind="dpgmm", n_components=4, covariance_type="full",
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
        module=ModuleConfig(rank=8, alpha=1.0),
        # lambda_l1 chosen on the calibration split (README, "Choosing the demo's defaults")
        train=TrainSection(epochs=3, batch_size=32, lr=2e-3, lambda_l1=0.03),
        signature=SignatureConfig(kind="dpgmm", n_components=5, covariance_type="diag",
                                  max_iter=200),
        eval=EvalConfig(kind="auto", sketch_rank=16),
    )


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


#: name -> (one-line description, factory)
PRESETS: dict[str, tuple[str, Callable[[], Config]]] = {
    "wordnet-minilm": ("MiniLM-L6 on 5 WordNet tasks (real model; ~minutes on 2 cores)",
                       _wordnet_minilm),
    **{f"wordnet-fine-{n}": (f"MiniLM-L6 on 200 fine WordNet classes in {n} tasks of "
                             f"{200 // n}", _wordnet_fine(n)) for n in FINE_TASKS},
    "synthetic": ("Gaussian-mixture feature stream, identity backbone (seconds)", _synthetic),
    "tiny": ("random tiny BERT on generated tokens (seconds; used by tests)", _tiny),
}


def preset_names() -> list[str]:
    return list(PRESETS)


def preset(name: str) -> Config:
    """A fresh copy of preset ``name`` (before method bundle and overrides)."""
    if name not in PRESETS:
        raise ValueError(f"preset: unknown preset {name!r} (known: {', '.join(PRESETS)})")
    return PRESETS[name][1]()


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
                _check_field(sec, k, f"{key}.{k}")
                setattr(sec, k, _coerce(v, _hints(type(sec))[k], f"{key}.{k}"))
        else:
            _check_field(cfg, key, key)
            setattr(cfg, key, _coerce(value, _hints(Config)[key], key))
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


# ----------------------------------------------------------------------------- typing
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _check_field(obj: Any, key: str, full: str) -> None:
    names = [f.name for f in dataclasses.fields(obj)]
    if key not in names:
        where = f" in {full.rsplit('.', 1)[0]}" if "." in full else ""
        raise ValueError(f"override: unknown key {full!r} (known{where}: {', '.join(names)})")


def _type_name(tp: Any) -> str:
    args = typing.get_args(tp)
    if args and (typing.get_origin(tp) in (typing.Union, types.UnionType)):
        return " | ".join("None" if a is type(None) else _type_name(a) for a in args)
    return getattr(tp, "__name__", str(tp))


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _parse_scalar(text: str, tp: Any, key: str) -> Any:
    """Parse override text ``text`` as type ``tp`` (one of the section field types)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if type(None) in args and text.strip().lower() in ("none", "null"):
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _parse_scalar(text, a, key)
            except ValueError:
                continue
        raise ValueError(f"{key}: expected {_type_name(tp)}, got {text!r}")
    if tp is bool:
        t = text.strip().lower()
        if t in _TRUE:
            return True
        if t in _FALSE:
            return False
        raise ValueError(f"{key}: expected a bool (true/false), got {text!r}")
    if tp is int:
        try:
            return int(text.strip(), 10)
        except ValueError:
            raise ValueError(f"{key}: expected an int, got {text!r}") from None
    if tp is float:
        try:
            v = float(text)
        except ValueError:
            raise ValueError(f"{key}: expected a float, got {text!r}") from None
        if v != v or v in (float("inf"), float("-inf")):
            raise ValueError(f"{key}: expected a finite float, got {text!r}")
        return v
    if tp is str:
        return text
    if origin is dict or tp is dict:
        try:
            v = json.loads(text)
        except json.JSONDecodeError:
            raise ValueError(f"{key}: expected a JSON object, got {text!r}") from None
        if not isinstance(v, dict):
            raise ValueError(f"{key}: expected a JSON object, got {text!r}")
        return v
    raise ValueError(f"{key}: cannot parse type {tp!r}")  # pragma: no cover


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Type-check an already-typed value (from JSON) against ``tp``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except ValueError:
                pass
        raise ValueError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif origin is dict or tp is dict:
        if isinstance(value, Mapping):
            return dict(value)
    raise ValueError(f"{key}: expected {_type_name(tp)}, got {value!r}")


def _parse_option(text: str) -> Any:
    """A free-form option value: a JSON literal, else the raw string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _option_value(text: str, current: Any, key: str) -> Any:
    v = _parse_option(text)
    if current is None or v is None:
        return v
    if isinstance(current, bool):
        if not isinstance(v, bool):
            raise ValueError(f"{key}: expected a bool, got {text!r}")
    return v  # int options also accept floats (split sizes may be fractions)


# ----------------------------------------------------------------------------- overrides
def parse_override(item: str) -> tuple[str, str]:
    """``"a.b=c"`` -> ``("a.b", "c")``."""
    if "=" not in item:
        raise ValueError(f"override: expected key=value, got {item!r}")
    key, value = item.split("=", 1)
    key = key.strip()
    if not key:
        raise ValueError(f"override: empty key in {item!r}")
    return key, value


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
            _check_field(cfg, key, key)
            if key in SECTIONS:
                raise ValueError(f"override: {key!r} is a section; use {key}.<field>=value")
            tp = _hints(Config)[key]
            setattr(cfg, key, _coerce(raw, tp, key) if typed else _parse_scalar(raw, tp, key))
            continue
        section = parts[0]
        if section not in SECTIONS:
            _check_field(cfg, section, section)
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
            sec.options[opt] = raw if typed else _option_value(raw, cur, key)
            continue
        if len(parts) != 2:
            raise ValueError(f"override: unknown key {key!r}")
        _check_field(sec, parts[1], key)
        tp = _hints(type(sec))[parts[1]]
        setattr(sec, parts[1], _coerce(raw, tp, key) if typed else _parse_scalar(raw, tp, key))
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
    if cfg.seed < 0:
        raise ValueError(f"seed: must be >= 0, got {cfg.seed}")
    if cfg.threads is not None and cfg.threads < 1:
        raise ValueError(f"threads: must be >= 1 or none, got {cfg.threads}")
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
                       ("backbone.batch_size", cfg.backbone.batch_size, 1),
                       ("train.batch_size", cfg.train.batch_size, 1),
                       ("train.epochs", cfg.train.epochs, 0)):
        if v < lo:
            raise ValueError(f"{key}: must be >= {lo}, got {v}")
    if cfg.module.orth not in ("penalty", "project"):
        raise ValueError(f"module.orth: must be 'penalty' or 'project', got {cfg.module.orth!r}")
    if not 0.0 <= cfg.module.alpha <= 1.0:
        raise ValueError(f"module.alpha: must lie in [0, 1], got {cfg.module.alpha}")
    for key, v in (("train.lr", cfg.train.lr), ("train.weight_decay", cfg.train.weight_decay),
                   ("train.lambda_orth", cfg.train.lambda_orth),
                   ("train.lambda_l1", cfg.train.lambda_l1),
                   ("signature.reg_covar", cfg.signature.reg_covar)):
        if v < 0:
            raise ValueError(f"{key}: must be >= 0, got {v}")
    s = cfg.head.shrinkage
    if not (s == "auto" or (isinstance(s, float) and 0.0 <= s <= 1.0)):
        raise ValueError(f"head.shrinkage: must be 'auto' or a number in [0, 1], got {s!r}")
    if cfg.eval.kind not in ("auto", "centroid", "nll"):
        raise ValueError(f"eval.kind: must be auto, centroid or nll, got {cfg.eval.kind!r}")
    if cfg.eval.kind == "nll" and cfg.signature.kind == "kmeans":
        raise ValueError("eval.kind: 'nll' needs a mixture signature (gmm or dpgmm)")
    for key in ("sketch_rank", "train_sketch_rank"):
        val = getattr(cfg.eval, key)
        if val is not None and val < 1:
            raise ValueError(f"eval.{key}: must be >= 1 or none, got {val}")
    return cfg


def validate_backbone(cfg: Config) -> None:
    """Check the backbone name and options (imports torch through cft.backbones)."""
    import cft.backbones  # noqa: F401
    from cft.registry import BACKBONES

    _check_options("backbone", BACKBONES.get(cfg.backbone.name), cfg.backbone.options)


def resolve(preset_name: str, overrides: Iterable[str] = (), *, seed: int | None = None,
            check: bool = True) -> Config:
    """Preset -> method bundle -> overrides (-> ``seed`` if given) -> validation.

    The method is taken from a ``method=...`` override if present (so its bundle is
    applied before the other overrides, which win over it).
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
    apply_overrides(cfg, [i for i, (k, _) in zip(items, pairs) if k != "method"])
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed: must be a non-negative int, got {seed!r}")
        cfg.seed = seed
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
