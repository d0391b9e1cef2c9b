"""Benchmark: cost of adapted task retrieval per test sample as the number of tasks m grows.

For each m, with the modules, signatures and LDA heads of tasks ``0..m-1`` of a trained run
(``--run``: a run directory with at least max(m) complete tasks, e.g. the ``wordnet-fine-50``
run of ``bench/bench_memory.py``; the state after step m-1 is what a continual learner
holds after m tasks), on test samples of tasks ``0..m-1`` it times three ways of computing
the adapted retrieval and the class prediction, all through
:func:`cft.evaluation.retrieval.evaluate`:

* ``full``: m full passes of the backbone per sample (lower and upper layers under each
  module: ``Backbone.features``);
* ``cached``: the frozen lower layers once, then the adapted upper layers under each of the
  m modules (the runner's path without a shortlist);
* ``short-K``: the lower layers once, the frozen upper layers once (shared scores), and the
  adapted upper layers only for the K tasks of smallest shared score (``retrieval.shortlist``).

It prints the time per test sample (batched, ``backbone.batch_size``), the speed-ups over
``full``, and the accuracy of each (task retrieval, class-incremental), with shared retrieval
(one frozen pass) for reference. ``full`` and ``cached`` compute the same scores; ``full`` is
timed on the first ``--n-full`` of the samples (it is m times the cost of ``cached``'s lower
layers) and its retrieval is checked equal to ``cached``'s there.

Run: ``.venv/bin/python bench/bench_retrieval_cost.py --run RUN_DIR [--ms 5,10,20,50]
     [--n-test 200] [--n-full 40] [--shortlist 3]``
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np


def load_state(run: Path, m: int) -> tuple[Any, Any, list, list, list, list, Any]:
    """(config, stream, backbone, modules, adapted / shared signatures, heads) of the
    first m tasks of a run directory."""
    import torch

    import cft.data  # noqa: F401
    import cft.model.backbones  # noqa: F401
    from cft.config import from_dict
    from cft.config.registry import BACKBONES, DATASETS
    from cft.evaluation.heads.lda import LDAHead
    from cft.evaluation.signatures import Signature
    from cft.model.modules.proteus import ProteusAdapter
    from cft.run.rundir import RunDir

    rd = RunDir(run)
    if rd.completed_tasks() < m:
        raise SystemExit(f"--run: {run} has {rd.completed_tasks()} complete tasks, need {m}")
    cfg = from_dict(rd.config())
    stream = DATASETS.build(cfg.data.name, seed=cfg.seed, **cfg.data.options)
    bb = BACKBONES.build(cfg.backbone.name, **cfg.backbone.options)
    bb.place(torch.device("cpu"), None)
    modules: list[Any] = []
    sig_a, sig_s, heads = [], [], []
    for t in range(m):
        art = rd.read_task(t)
        modules.append(ProteusAdapter.from_state_dict(art.module, previous=list(modules)).eval())
        sig_a.append(Signature.from_arrays(art.signature_adapted))
        sig_s.append(Signature.from_arrays(art.signature_shared))
        heads.append(LDAHead.from_arrays(art.head))
    return cfg, stream, bb, modules, sig_a, sig_s, heads


class Memo:
    """``h_s`` of chosen samples, computed on first request and kept per (module, sample)
    (a sample's representation is computed once however often evaluate asks for it)."""

    def __init__(self, n: int, m: int, compute) -> None:
        self.n, self.m, self.compute = n, m, compute
        self.rows: list[dict[int, np.ndarray]] = [{} for _ in range(m)]
        self.passes = 0

    def get(self, s: int, rows: np.ndarray | None = None) -> np.ndarray:
        idx = np.arange(self.n) if rows is None else np.asarray(rows, dtype=np.int64)
        missing = np.array([i for i in idx.tolist() if i not in self.rows[s]], dtype=np.int64)
        if len(missing):
            reps = self.compute(s, missing)
            self.passes += len(missing)
            for i, r in zip(missing.tolist(), reps):
                self.rows[s][i] = r
        return np.stack([self.rows[s][i] for i in idx.tolist()])


def measure(cfg, stream, bb, modules, sig_a, sig_s, heads, m: int, n_test: int, n_full: int,
            k: int, kind: str) -> dict[str, Any]:
    import torch

    from cft.evaluation.retrieval import evaluate, representations

    bs = cfg.backbone.batch_size
    per = math.ceil(n_test / m)
    xs: list[Any] = []
    task, label = [], []
    for j in range(m):
        sp = stream.task(j).split("test")
        q = min(per, len(sp))
        xs += list(sp.inputs[:q])
        task += [j] * q
        label += sp.labels[:q].tolist()
    task_a, label_a = np.array(task), np.array(label)
    n = len(xs)
    out: dict[str, Any] = {"m": m, "n": n}

    def acc(ev, mode: str, sel=slice(None)) -> tuple[float, float]:
        got, pred = ev.retrieved[(mode, kind)], ev.pred[(mode, kind)]
        return (float(np.mean(got == task_a[sel])), float(np.mean(pred == label_a[sel])))

    with torch.inference_mode():
        # cached lower layers, every module's upper layers
        t0 = time.perf_counter()
        cache = bb.encode(xs, batch_size=bs)
        memo = Memo(n, m, lambda s, rows: representations(bb, cache.subset(rows), modules[s], bs))
        ev_c = evaluate(memo, None, sig_a, None, heads, kinds=[kind])
        out["cached"] = (time.perf_counter() - t0) / n
        out["acc_cached"] = acc(ev_c, "adapted")
        # shortlist of k
        t0 = time.perf_counter()
        cache = bb.encode(xs, batch_size=bs)
        memo_k = Memo(n, m, lambda s, rows: representations(bb, cache.subset(rows), modules[s],
                                                            bs))
        reps_s = representations(bb, cache, None, bs)
        ev_k = evaluate(memo_k, reps_s, sig_a, sig_s, heads, kinds=[kind], shortlist_k=k)
        out["short"] = (time.perf_counter() - t0) / n
        out["acc_short"] = acc(ev_k, "adapted")
        out["acc_shared"] = acc(ev_k, "shared")
        out["passes_short"] = memo_k.passes / n
        # m full passes, on the first n_full samples (spread over the tasks)
        sub = np.unique(np.linspace(0, n - 1, min(n_full, n)).round().astype(np.int64))
        xf = [xs[i] for i in sub]
        t0 = time.perf_counter()
        memo_f = Memo(len(sub), m, lambda s, rows: bb.features(
            [xf[i] for i in rows], modules[s], batch_size=bs).float().numpy())
        ev_f = evaluate(memo_f, None, sig_a, None, heads, kinds=[kind])
        out["full"] = (time.perf_counter() - t0) / len(sub)
        out["n_full"] = len(sub)
        same = np.mean(ev_f.retrieved[("adapted", kind)] == ev_c.retrieved[("adapted", kind)][sub])
        out["full_equals_cached"] = float(same)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True, type=Path)
    p.add_argument("--ms", default="5,10,20,50")
    p.add_argument("--n-test", type=int, default=200)
    p.add_argument("--n-full", type=int, default=40)
    p.add_argument("--shortlist", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    from cft.config import primary_kind

    if args.threads:
        torch.set_num_threads(args.threads)
    ms = [int(x) for x in args.ms.split(",")]
    k = args.shortlist
    print(f"run {args.run}; test samples per m: {args.n_test} (spread over the m tasks), "
          f"full passes timed on {args.n_full}; torch threads {torch.get_num_threads()}")
    print(f"{'m':>3} {'n':>4} | ms/sample: {'full':>7} {'cached':>7} {f'short-{k}':>8} | "
          f"x over full: {'cached':>6} {f'short-{k}':>8} | retrieval acc: {'shared':>6} "
          f"{'adapted':>7} {f'short-{k}':>8} | CIL acc: {'shared':>6} {'adapted':>7} "
          f"{f'short-{k}':>8} | full=cached")
    # loaded once: the first m tasks' modules, signatures and heads are a prefix (a module
    # depends only on the earlier ones)
    cfg, stream, bb, modules, sig_a, sig_s, heads = load_state(args.run, max(ms))
    kind = primary_kind(cfg)
    for m in ms:
        r = measure(cfg, stream, bb, modules[:m], sig_a[:m], sig_s[:m], heads[:m], m,
                    args.n_test, args.n_full, k, kind)
        print(f"{m:>3} {r['n']:>4} | {'':>10} {1e3 * r['full']:7.1f} {1e3 * r['cached']:7.1f} "
              f"{1e3 * r['short']:8.1f} | {'':>12} {r['full'] / r['cached']:6.1f} "
              f"{r['full'] / r['short']:8.1f} | {'':>14} {r['acc_shared'][0]:6.3f} "
              f"{r['acc_cached'][0]:7.3f} {r['acc_short'][0]:8.3f} | {'':>8} "
              f"{r['acc_shared'][1]:6.3f} {r['acc_cached'][1]:7.3f} {r['acc_short'][1]:8.3f} | "
              f"{r['full_equals_cached']:.3f}  ({r['passes_short']:.2f} adapted passes/sample "
              f"with the shortlist; kind {kind})", flush=True)


if __name__ == "__main__":
    main()
