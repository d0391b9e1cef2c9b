"""Where a run computes: ``device = auto | cpu | cuda | cuda:N``, ``precision = fp32 | bf16``.

* ``cpu`` (the default) reproduces the CPU results bit for bit: one seed gives
  byte-identical ``metrics.json``.
* ``auto`` is ``cuda`` (device 0) when ``torch.cuda.is_available()``, else ``cpu``.
* ``cuda`` / ``cuda:N``: the frozen backbone, the PROTEUS modules, the training and every
  representation run on that GPU; the signatures (k-means, GMMs), the LDA heads, the
  metrics and the bounds stay on the CPU (NumPy / scikit-learn) and get float32 arrays.
* ``precision = bf16`` runs the backbone's forward passes (lower-layer encoding, the adapted
  upper layers in training and in evaluation) under ``torch.autocast(dtype=bfloat16)``;
  parameters, optimiser state and the returned representations stay float32.  CUDA only.

Reproducibility on CUDA (see also docs/run-dir.md):

* A CUDA run sets ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` (unless set), turns off TF32 and the
  cuDNN autotuner, and asks torch for deterministic algorithms (``warn_only``).  Two runs
  with the same seed on the same GPU model, driver, CUDA, cuDNN and torch versions, with the
  same batch sizes, are then expected to give identical files.
* Not bitwise reproducible: CUDA against CPU results (different kernels and summation
  orders: representations differ in the last bits, which can move a k-means or GMM fit and
  therefore a few retrieval decisions); different GPU models or library versions; ``bf16``
  against ``fp32``; an op torch has no deterministic CUDA kernel for (torch warns).
* Seeds are still honoured: initialisation and shuffling use CPU generators, so the
  modules start from the same weights and see the same batches on every device.
"""

from __future__ import annotations

import os
import re
from typing import Any

__all__ = ["DEVICE_RE", "PRECISIONS", "amp_dtype", "check_device", "configure",
           "resolve_device"]

DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
PRECISIONS = ("fp32", "bf16")


def check_device(device: Any, precision: Any) -> None:
    """Syntax of the ``device`` and ``precision`` config values (no torch import)."""
    if not isinstance(device, str) or not DEVICE_RE.match(device):
        raise ValueError(f"device: must be auto, cpu, cuda or cuda:N, got {device!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision: must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "bf16" and device == "cpu":
        raise ValueError("precision: bf16 autocast is a CUDA option; use device=cuda or auto")


def resolve_device(spec: str) -> Any:
    """The ``torch.device`` of a config value; a one-line ``ValueError`` when CUDA is
    requested but not usable."""
    import torch

    check_device(spec, "fp32")
    if spec == "cpu":
        return torch.device("cpu")
    available = torch.cuda.is_available()
    if spec == "auto":
        return torch.device("cuda", 0) if available else torch.device("cpu")
    if not available:
        build = "a CPU-only torch build" if torch.version.cuda is None else "no visible GPU"
        raise ValueError(f"device: {spec!r} requested but CUDA is not available ({build}); "
                         f"use device=cpu or device=auto")
    index = int(spec.split(":", 1)[1]) if ":" in spec else 0
    count = torch.cuda.device_count()
    if index >= count:
        raise ValueError(f"device: {spec!r} requested but only {count} CUDA device(s)")
    return torch.device("cuda", index)


def amp_dtype(device: Any, precision: str) -> Any:
    """The autocast dtype for ``precision`` on ``device`` (``None`` = full float32)."""
    import torch

    if precision not in PRECISIONS:
        raise ValueError(f"precision: must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp32":
        return None
    if torch.device(device).type != "cuda":
        raise ValueError(f"precision: bf16 autocast needs a CUDA device, the run uses "
                         f"{str(device)!r}")
    return torch.bfloat16


def configure(device: Any) -> None:
    """Determinism settings for a CUDA device (nothing to do on the CPU)."""
    import torch

    if torch.device(device).type != "cuda":
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True, warn_only=True)
