"""Runner-level check of the adapted retrieval scores, with non-trivial (random) modules.

Training is replaced by random factors and coefficients (seeded per task), so that every
module changes the representation a lot and a wrong module index cannot go unnoticed.
The reference is computed here independently of the runner and of ``cft.evaluation.retrieval``:
``h_s(x)`` from the raw split inputs through ``Backbone.features`` with module ``s`` rebuilt
from ``module.safetensors``, and the nearest-centroid score written out in numpy.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import cft.data  # noqa: F401  (registers the datasets)
import cft.model.backbones  # noqa: F401  (registers the backbones)
from cft.config.registry import BACKBONES, DATASETS
from cft.evaluation.signatures import Signature
from cft.model.modules.proteus import ProteusAdapter
from cft.model.train import TrainResult
from cft.run.resolve import resolve
from cft.run.rundir import RunDir, load_npz
from cft.run.runner import Runner

M = 3


def _random_training(backbone, adapter, cache, labels, config=None, *, seed=0,
                     progress=False) -> TrainResult:
    """Stands in for ``cft.model.train.train_task``: random A, B and c, seeded by the task."""
    g = torch.Generator().manual_seed(1000 + adapter.task)
    with torch.no_grad():
        for n, (_, d_in) in adapter.shapes.items():
            adapter.A(n).normal_(0.0, d_in ** -0.5, generator=g)
            adapter.B(n).normal_(0.0, 1.0, generator=g)
            if adapter.task:
                adapter.c(n).uniform_(-1.0, 1.0, generator=g)
    return TrainResult(classes=np.unique(labels).astype(np.int64))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("scores") / "run"
    cfg = resolve("tiny", [f"data.n_tasks={M}"])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("cft.model.train.train_task", _random_training)
        Runner(cfg, path, echo=lambda s: None).run()
    stream = DATASETS.build(cfg.data.name, seed=cfg.seed, **cfg.data.options)
    bb = BACKBONES.build(cfg.backbone.name, **cfg.backbone.options)
    rd = RunDir(path)
    modules: list[ProteusAdapter] = []
    for t in range(M):
        state = load_file(str(rd.task_dir(t) / "module.safetensors"))
        modules.append(ProteusAdapter.from_state_dict(state, previous=modules))
    sigs = [Signature.from_arrays(load_npz(rd.task_dir(t) / "signature-adapted.npz"))
            for t in range(M)]
    return rd, stream, bb, modules, sigs


def _centroid(h: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    return np.sqrt(((h[:, None, :] - centroids[None]) ** 2).sum(-1)).min(1)


@pytest.mark.parametrize("split", ["calibration", "test"])
@pytest.mark.parametrize("k", [1, M - 1])
def test_adapted_column_s_is_signature_s_on_h_s(run, split: str, k: int) -> None:
    rd, stream, bb, modules, sigs = run
    x = np.concatenate([stream.task(j).split(split).inputs for j in range(k + 1)])
    h = [bb.features(x, modules[s]).double().numpy() for s in range(k + 1)]
    saved = load_npz(rd.step_dir(k) / split / "adapted-centroid.npz")["scores"]
    saved_nll = load_npz(rd.step_dir(k) / split / "adapted-nll.npz")["scores"]
    assert saved.shape == (len(x), k + 1)
    for s in range(k + 1):
        want = _centroid(h[s], sigs[s].centroids_)
        np.testing.assert_allclose(saved[:, s], want, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(saved_nll[:, s], sigs[s].cost(h[s], "nll"),
                                   rtol=1e-3, atol=1e-3)
        # the same comparison with the module index shifted by one fails: it can see a
        # wrong module (the runner was also checked by shifting its index by hand)
        wrong = _centroid(h[(s + 1) % (k + 1)], sigs[s].centroids_)
        assert not np.allclose(saved[:, s], wrong, rtol=1e-2, atol=1e-2)


def test_adapted_and_shared_scores_differ(run) -> None:
    rd = run[0]
    for split in ("calibration", "test"):
        for kind in ("centroid", "nll"):
            a = load_npz(rd.step_dir(M - 1) / split / f"adapted-{kind}.npz")["scores"]
            s = load_npz(rd.step_dir(M - 1) / split / f"shared-{kind}.npz")["scores"]
            rel = np.abs(a - s) / np.abs(s)
            assert np.median(rel) > 0.02 and rel.max() > 0.1, (split, kind)
