"""What a run has learned so far, shared by the parts of the task loop: the modules, the
signatures, heads and learned rules of tasks ``0..t`` (one entry per task, in order), and
the per-step rows of test accuracies the metrics are built from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Hooks", "Learned"]


@dataclass
class Learned:
    """Grows by one entry per task (:class:`cft.run.task.TaskTrainer`); read by
    :class:`cft.run.step.StepEvaluator`."""

    modules: list[Any] = field(default_factory=list)
    sig_adapted: list[Any] = field(default_factory=list)
    sig_shared: list[Any] = field(default_factory=list)
    heads: list[Any] = field(default_factory=list)
    rules: list[Any] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Hooks:
    """The method's hooks, resolved once from the configuration; the loop branches on
    their declared capabilities, never on a method's name."""

    family: Any  # a cft.model.modules.ModuleFamily
    sig_cls: Any  # the signature class (``signature.family``)
    head_cls: Any  # the continual head class of a merged family, else None
    rule_cls: Any  # the learned retrieval rule class (``eval.rule``), else None
    kinds: list[str]  # the score kinds of the signatures (none when merged)
    kind: str | None  # the primary score kind of the summary metrics

    @property
    def merged(self) -> bool:
        return self.family.inference == "merged"
