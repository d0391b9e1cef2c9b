"""Validation and resolution of a configuration: preset -> method bundle -> the user's
``key=value`` overrides (-> seed) -> :func:`validate` (values, registry names, the options
of the registry factories, method hooks).


"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from cft.config.overrides import parse_override, parse_scalar
from cft.config.presets import PRESETS, preset
from cft.config.sections import Config, apply_overrides
from cft.config.validation import check_float, check_int, check_seed

__all__ = ["ENTRY_SECTIONS", "check_weights", "get_value", "resolve", "validate",
           "validate_backbone"]

#: sections naming a registry entry whose options follow the entry (:func:`resolve`)
ENTRY_SECTIONS = ("data", "backbone")


def _check_options(kind: str, factory: Callable[..., Any], options: Mapping[str, Any],
                   reserved: tuple[str, ...] = (), required: str | None = None) -> None:
    """Option names against the factory's signature; ``required`` (the entry's name, e.g.
    ``backbone 'vit'``): also refuse a missing option the factory requires."""
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return
    params = sig.parameters
    if required is not None:
        for n, par in params.items():
            if (n not in reserved and n != "self" and n not in options
                    and par.default is par.empty
                    and par.kind not in (par.VAR_KEYWORD, par.VAR_POSITIONAL)):
                raise ValueError(f"{kind}.{n}: required by {required} (set {kind}.{n}=...)")
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
    import cft.evaluation.signatures  # noqa: F401
    import cft.methods  # noqa: F401
    from cft.config.registry import DATASETS, METHODS, SIGNATURES

    if cfg.preset not in PRESETS:
        raise ValueError(f"preset: unknown preset {cfg.preset!r} (known: {', '.join(PRESETS)})")
    check_seed(cfg.seed)
    check_int("threads", cfg.threads, minimum=1, allow_none=True)
    from cft.model.device import check_device

    check_device(cfg.device, cfg.precision)
    METHODS.get(cfg.method)
    _check_options("data", DATASETS.get(cfg.data.name), cfg.data.options, reserved=("seed",),
                   required=f"dataset {cfg.data.name!r}")
    if cfg.signature.family not in SIGNATURES:
        SIGNATURES.get(cfg.signature.family)
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
    if cfg.module.orth not in ("penalty", "project"):
        raise ValueError(f"module.orth: must be 'penalty' or 'project', got {cfg.module.orth!r}")
    _check_hooks(cfg)
    check_float("module.reuse_weight", cfg.module.reuse_weight, low=0.0, high=1.0)
    check_float("signature.reg_covar", cfg.signature.reg_covar, low=0.0)
    s = cfg.head.shrinkage
    if not (s == "auto" or (isinstance(s, float) and 0.0 <= s <= 1.0)):
        raise ValueError(f"head.shrinkage: must be 'auto' or a number in [0, 1], got {s!r}")
    if cfg.eval.kind not in ("auto", "centroid", "nll"):
        raise ValueError(f"eval.kind: must be auto, centroid or nll, got {cfg.eval.kind!r}")
    if cfg.eval.kind == "nll" and cfg.signature.family == "kmeans":
        raise ValueError("eval.kind: 'nll' needs a mixture signature (gmm or dpgmm)")
    for key in ("sketch_rank", "train_sketch_rank"):
        check_int(f"eval.{key}", getattr(cfg.eval, key), minimum=1, allow_none=True)
    check_int("retrieval.shortlist", cfg.retrieval.shortlist, minimum=1, allow_none=True)
    if cfg.output.cache_mb is not None and cfg.output.cache_mb < 0:
        raise ValueError(f"output.cache_mb: must be >= 0 or none, got {cfg.output.cache_mb}")
    return cfg


def _check_hooks(cfg: Config) -> None:
    """Names and options of the method hooks (module family, head, retrieval rule)."""
    import cft.evaluation  # noqa: F401  (registers heads and rules)
    import cft.model.modules  # noqa: F401  (registers the module families)
    from cft.config.registry import HEADS, MODULE_FAMILIES, RULES

    fam = MODULE_FAMILIES.get(cfg.module.family)
    _check_options("module", fam, cfg.module.options)
    if cfg.module.orth not in fam.orth_modes:
        raise ValueError(f"module.orth: family {cfg.module.family!r} supports "
                         f"{', '.join(fam.orth_modes)}, got {cfg.module.orth!r}")
    _check_options("head", HEADS.get(cfg.head.kind), cfg.head.options,
                   reserved=("random_state", "shrinkage"))
    merged = fam(**cfg.module.options).inference == "merged"
    if merged:
        HEADS.get(cfg.head.kind)(**cfg.head.options)  # checks the option values
    if not merged and cfg.head.kind != "lda":
        raise ValueError(f"head.kind: {cfg.head.kind!r} needs a module family without task "
                         f"retrieval; {cfg.module.family!r} retrieves per-task LDA heads")
    if cfg.eval.rule is None and cfg.eval.options:
        raise ValueError(f"override: unknown key 'eval.{next(iter(cfg.eval.options))}' "
                         f"(eval.<option> passes an option to the learned rule eval.rule, "
                         f"which is not set)")
    if cfg.eval.rule is not None:
        rule = RULES.get(cfg.eval.rule)
        from bounds.rundir_schema import MODES

        # the rule's name is its score mode (files {mode}-{kind}.npz, summary[mode])
        if cfg.eval.rule in (*MODES, "merged", "task-aware", "task_aware", "retrieval") or \
                not cfg.eval.rule.replace("_", "").isalnum():
            raise ValueError(f"eval.rule: {cfg.eval.rule!r} cannot name a score mode (a "
                             f"built-in mode's name, or not letters, digits and '_'); "
                             f"register the rule under another name")
        if len(getattr(rule, "kinds", ())) != 1:
            raise ValueError(f"eval.rule: {cfg.eval.rule!r} must declare exactly one score "
                             f"kind in 'kinds', got {getattr(rule, 'kinds', None)!r}")
        _check_options("eval", rule, cfg.eval.options, reserved=("random_state",))
        rule(**cfg.eval.options)  # checks the option values
        if getattr(rule, "space", None) not in ("shared", "adapted"):
            raise ValueError(f"eval.rule: {cfg.eval.rule!r} declares space "
                             f"{getattr(rule, 'space', None)!r}; a rule scores the shared "
                             f"(frozen) or the adapted representations")
        if merged:
            raise ValueError(f"eval.rule: module family {cfg.module.family!r} has no task "
                             f"retrieval, so a retrieval rule does not apply")


def validate_backbone(cfg: Config) -> None:
    """Check the backbone name and options (imports torch through cft.model.backbones), and
    that a ``backbone.path`` can be loaded: a local folder, or a Hugging Face hub id that is
    in the local cache when downloads are off (``HF_HUB_OFFLINE=1``)."""
    import cft.model.backbones  # noqa: F401
    from cft.config.registry import BACKBONES

    _check_options("backbone", BACKBONES.get(cfg.backbone.name), cfg.backbone.options,
                   required=f"backbone {cfg.backbone.name!r}")
    path = cfg.backbone.options.get("path")
    if isinstance(path, str) and path:
        check_weights(path, "backbone.path")


def _offline() -> bool:
    import os

    on = {"1", "ON", "YES", "TRUE"}
    return any(os.environ.get(v, "").upper() in on
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def check_weights(path: str, key: str) -> None:
    """One-line ``ValueError`` (naming what to do) when the weights at ``path`` (a local
    folder or a hub id) cannot be loaded without a download while downloads are off."""
    from pathlib import Path

    local = Path(path).expanduser()
    if local.exists():
        return
    if local.is_absolute() or path.startswith((".", "~")) or path.count("/") > 1:
        raise ValueError(f"{key}: no such folder {path!r}; set {key}=DIR to a local copy of "
                         f"the model (config.json and the weights)")
    if not _offline():
        return  # transformers downloads it
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(path, "config.json")
    except Exception:  # noqa: BLE001 - a malformed id: let the loader say so
        cached = None
    if not isinstance(cached, str):
        raise ValueError(f"{key}: {path!r} is neither a local folder nor in the Hugging Face "
                         f"cache, and downloads are off (HF_HUB_OFFLINE=1); download it once "
                         f"with network access (`hf download {path}`) or set {key}=DIR to a "
                         f"local copy")


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
    the method's value: ``method=lora module.reuse_weight=0.5`` is refused with one line (the
    method would silently not be the method any more).
    """
    import cft.methods  # noqa: F401
    from cft.config.registry import METHODS

    items = list(overrides)
    pairs = [parse_override(i) for i in items]
    method_name = preset(preset_name).method
    for k, v in pairs:
        if k == "method":
            method_name = v.strip()
    method = METHODS.build(method_name)
    user = [(i, k) for i, (k, _) in zip(items, pairs) if k != "method"]

    def layered(fresh: frozenset[str] = frozenset()) -> tuple[Config, dict[str, Any]]:
        """preset (the sections in ``fresh`` without options) -> method -> user."""
        cfg = preset(preset_name)
        cfg.method = method_name
        for sec in fresh:
            getattr(cfg, sec).options = {}
        apply_overrides(cfg, list(method.overrides.items()))
        fixed = {k: get_value(cfg, k) for k in method.overrides}
        apply_overrides(cfg, [i for i, _ in user])
        return cfg, fixed

    # an override that changes data.name / backbone.name starts that section's options
    # from the new entry's own defaults: the preset's options belong to the preset's entry
    base = preset(preset_name)
    names = {sec: getattr(base, sec).name for sec in ENTRY_SECTIONS}
    for key, value in [*method.overrides.items(), *pairs]:
        sec = key.split(".")[0]
        if sec in names and key == f"{sec}.name":
            names[sec] = value if not isinstance(value, str) else parse_scalar(value, str, key)
    cfg, fixed = layered(frozenset(sec for sec in ENTRY_SECTIONS
                                   if names[sec] != getattr(base, sec).name))
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
