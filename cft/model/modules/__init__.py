"""Module families: the method hook that says how a task's module is built, trained and
combined at inference (``cft.config.registry.MODULE_FAMILIES``, config ``module.family``).

A family declares two capabilities the runner branches on (it never branches on a name):

* ``inference``: ``"retrieval"`` -- one module per task, a sample is routed to a task's
  module by task retrieval (PROTEUS, independent LoRA); ``"merged"`` -- the latest module
  alone serves every task (its update already holds every earlier task's part: summed or
  sequentially fine-tuned), so there is no retrieval and a continual head over every class
  seen classifies (``head.kind``, :mod:`cft.evaluation.heads.continual`);
* ``cumulative``: task ``t``'s module is trained on the training data of tasks ``0..t``
  (the joint upper bound), and its head is refitted on them.

and four operations: :meth:`ModuleFamily.build` (a new module; may look at the task's
training cache, e.g. InfLoRA's input subspace), :meth:`ModuleFamily.after_train`,
:meth:`ModuleFamily.state` / :meth:`ModuleFamily.load` (``tasks/NNN/module.safetensors``).

Families here: ``proteus`` (:class:`cft.model.modules.proteus.ProteusAdapter`, also independent LoRA
with ``alpha = 0``), ``sequential`` (one LoRA fine-tuned through all tasks), ``joint`` (one
LoRA trained from scratch on tasks ``0..t``), ``frozen`` (no module); ``summed`` and
``sd-lora`` in :mod:`cft.model.modules.summed`, ``inflora`` in :mod:`cft.model.modules.inflora`.
"""

from . import inflora as _inflora  # noqa: F401  (registers its family)
from . import summed as _summed  # noqa: F401
from .base import BuildContext, Frozen, Joint, ModuleFamily, Proteus, Sequential
from .proteus import ProteusAdapter

__all__ = [
    "BuildContext", "Frozen", "Joint", "ModuleFamily", "Proteus", "ProteusAdapter", "Sequential",
]
