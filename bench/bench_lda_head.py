"""The LDA head against scikit-learn's ``LinearDiscriminantAnalysis`` (issue: library
replacements), on frozen MiniLM features of the WordNet stream (preset wordnet-minilm).

Per task: fit on the train split, accuracy on the test split, fit time. Compared:

* ``cft.evaluation.heads.lda.LDAHead``: class means, pooled within-class covariance shrunk toward
  ``(tr S / d) I`` with the Ledoit-Wolf weight, equal class priors;
* ``sklearn`` ``LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")`` with
  ``priors`` uniform (our priors) and with its default (class frequencies).

Usage: ``python bench/bench_lda_head.py [--preset wordnet-minilm] [--seed 0]``.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv: list[str] | None = None) -> int:
    import cft.data  # noqa: F401
    import cft.model.backbones  # noqa: F401
    from cft.config.registry import BACKBONES, DATASETS
    from cft.evaluation.heads.lda import LDAHead
    from cft.run.resolve import resolve

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="wordnet-minilm")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis as LDA

    cfg = resolve(a.preset, seed=a.seed)
    stream = DATASETS.build(cfg.data.name, seed=cfg.seed, **cfg.data.options)
    bb = BACKBONES.build(cfg.backbone.name, **cfg.backbone.options)
    heads = {
        "cft LDAHead": lambda: LDAHead(shrinkage="auto"),
        "sklearn lsqr auto, uniform priors": lambda k: LDA(
            solver="lsqr", shrinkage="auto", priors=np.full(k, 1.0 / k)),
        "sklearn lsqr auto, class priors": lambda k: LDA(solver="lsqr", shrinkage="auto"),
    }
    acc = {h: [] for h in heads}
    sec = {h: 0.0 for h in heads}
    for t in range(stream.n_tasks):
        task = stream.task(t)
        Xtr = bb.features(task.train.inputs, batch_size=cfg.backbone.batch_size).numpy()
        Xte = bb.features(task.test.inputs, batch_size=cfg.backbone.batch_size).numpy()
        ytr, yte = task.train.labels, task.test.labels
        k = len(np.unique(ytr))
        for name, make in heads.items():
            t0 = time.perf_counter()
            h = make() if name.startswith("cft") else make(k)
            h.fit(Xtr.astype(np.float64), ytr)
            sec[name] += time.perf_counter() - t0
            acc[name].append(float(np.mean(h.predict(Xte.astype(np.float64)) == yte)))
    print(f"{a.preset}, seed {a.seed}, {stream.n_tasks} tasks, frozen features "
          f"(dim {Xtr.shape[1]}); test accuracy per task, mean, fit seconds (all tasks)")
    base = np.mean(acc["cft LDAHead"])
    for name in heads:
        per = " ".join(f"{x:.3f}" for x in acc[name])
        print(f"  {name:<36} {per} | mean {np.mean(acc[name]):.4f} "
              f"({np.mean(acc[name]) - base:+.4f}) | fit {sec[name]:.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
