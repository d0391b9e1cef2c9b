"""Stage 0, configuration: the run's sections (:mod:`.sections`), the presets, the typed
``key=value`` parser (:mod:`.overrides`), the one validator set (:mod:`.validation`), the one
seed deriver (:mod:`.seed`) and the registries every later stage registers into
(:mod:`.registry`). Nothing here imports a later stage; resolving a configuration against
the registered entries is :mod:`cft.run.resolve`.
"""

from .presets import PRESETS, preset, preset_names
from .sections import (
    BackboneConfig,
    Config,
    DataConfig,
    EvalConfig,
    HeadConfig,
    ModuleConfig,
    OutputConfig,
    RetrievalConfig,
    SignatureConfig,
    TrainConfig,
    apply_overrides,
    config_diff,
    describe,
    from_dict,
    primary_kind,
    to_dict,
)

__all__ = [
    "PRESETS",
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
    "preset",
    "preset_names",
    "primary_kind",
    "to_dict",
]
