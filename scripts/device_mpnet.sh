#!/usr/bin/env bash
# The mpnet demo on a GPU (issue 23, item 5): speed-up of device=cuda over device=cpu and
# the peak GPU memory, written as JSON to $OUT/device_mpnet.json (with the run logs).
#
# Two steps.
#   1. Here, once (needs scripts/ensure-mpnet.sh's model and WordNet):
#        bash scripts/device_mpnet.sh --prepare
#      fills runs/device-mpnet-carry/ (ignored by git, about 8 MB): all-mpnet-base-v2's
#      config, tokenizer and 1_Pooling files -- NOT its 438 MB of weights, which cannot
#      travel (64 MiB limit) -- and WordNet's data.* files, gzipped.
#   2. On the GPU machine (one try, at most about 9 minutes; the device tool's `run`):
#        command: bash scripts/device_mpnet.sh     carry: ["runs/device-mpnet-carry"]
#        timeout_s: 540   (its steps stop themselves after 120 + 210 + 120 s; plus unpacking)
#
# On the device, python3 (its torch with CUDA, transformers, scikit-learn, scipy, sympy)
# runs the working tree through PYTHONPATH: nothing is installed. The MPNet there has the
# real architecture, config and tokenizer but seeded RANDOM weights (the real ones cannot be
# carried): the cost of every forward/backward pass is that of all-mpnet-base-v2, the
# accuracies are not (the CPU-side signature/LDA fits see other representations). Steps,
# each with its own time limit, the JSON rewritten after each:
#   a. micro-benchmark of the backbone per batch: lower-layer encoding (64 glosses), one
#      training step of the top 2 layers with a PROTEUS module (batch 32), adapted
#      upper-layer inference (64), on cpu, cuda fp32 and cuda bf16;
#   b. `python -m cft run --preset wordnet-mpnet device=cuda` (all 5 tasks; time per task
#      step from each task's done.json, peak GPU memory);
#   c. the same run with device=cpu, stopped after its first task(s) by a time limit: the
#      end-to-end speed-up of task 1 on the same machine.
set -uo pipefail
cd "$(dirname "$0")/.."
CARRY=runs/device-mpnet-carry

if [ "${1:-}" = --prepare ]; then
  set -e
  MPNET="$(scripts/ensure-mpnet.sh)"
  WN="${CFT_WORDNET_DIR:-/usr/share/wordnet}"
  [ -f "$WN/data.noun" ] || { echo "WordNet not found in $WN: run scripts/ensure-wordnet.sh or set CFT_WORDNET_DIR" >&2; exit 1; }
  rm -rf "$CARRY.tmp" && mkdir -p "$CARRY.tmp/mpnet/1_Pooling" "$CARRY.tmp/wordnet"
  for f in config.json tokenizer.json tokenizer_config.json vocab.txt special_tokens_map.json \
           modules.json sentence_bert_config.json 1_Pooling/config.json; do
    cp "$MPNET/$f" "$CARRY.tmp/mpnet/$f"
  done
  for p in noun verb adj adv; do gzip -9c "$WN/data.$p" >"$CARRY.tmp/wordnet/data.$p.gz"; done
  rm -rf "$CARRY" && mv "$CARRY.tmp" "$CARRY"
  du -sh "$CARRY"
  exit 0
fi

OUT="${OUT:-runs/device-mpnet-out}"
mkdir -p "$OUT"
[ -d "$CARRY/mpnet" ] || { echo "{\"error\": \"$CARRY missing: run bash scripts/device_mpnet.sh --prepare here and carry $CARRY\"}" >"$OUT/device_mpnet.json"; cat "$OUT/device_mpnet.json"; exit 1; }
PY="${PYTHON:-python3}"
WORK="${TMPDIR:-/tmp}/device-mpnet"
rm -rf "$WORK" && mkdir -p "$WORK/wordnet" "$WORK/runs"
for p in noun verb adj adv; do gunzip -c "$CARRY/wordnet/data.$p.gz" >"$WORK/wordnet/data.$p"; done
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 \
  TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false CFT_WORDNET_DIR="$WORK/wordnet" \
  CFT_MPNET_DIR="$WORK/mpnet" MPLBACKEND=Agg
JSON="$OUT/device_mpnet.json"

timeout -k 10 "${BENCH_LIMIT:-120}" "$PY" - "$CARRY/mpnet" "$WORK/mpnet" "$JSON" <<'EOF' 2>&1 | tee "$OUT/setup-bench.log"
# setup: the random-weight MPNet directory, then (a) the per-batch micro-benchmark
import json, os, platform, shutil, sys, time, traceback
src, dst, out = sys.argv[1:4]
res = {"note": "all-mpnet-base-v2 architecture/config/tokenizer with seeded random weights "
               "(the real weights cannot be carried): timings and memory are the model's, "
               "accuracies are not"}
def save():
    with open(out, "w") as f:
        json.dump(res, f, indent=1)
try:
    import torch, transformers
    res["env"] = {"python": platform.python_version(), "torch": torch.__version__,
                  "cuda": torch.version.cuda, "transformers": transformers.__version__,
                  "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                  "cpu_threads": torch.get_num_threads()}
    save()
    from transformers import MPNetConfig, MPNetModel
    shutil.copytree(src, dst)
    torch.manual_seed(0)
    MPNetModel(MPNetConfig.from_pretrained(dst)).save_pretrained(dst)
    import numpy as np
    from cft.config.registry import BACKBONES
    from cft.config.sections import TrainConfig
    from cft.data.wordnet import parse_data_file
    from cft.model.modules.proteus import ProteusAdapter
    from cft.model.train import train_task
    texts = [g for _, _, g in parse_data_file(os.path.join(os.environ["CFT_WORDNET_DIR"],
                                                          "data.noun"))][:4096:16][:256]
    bench = {}
    for dev, prec in (("cuda", "bf16"), ("cuda", "fp32"), ("cpu", "fp32")):
        if dev == "cuda" and not torch.cuda.is_available():
            continue
        key = f"{dev}-{prec}"
        bb = BACKBONES.build("mpnet", max_length=32, adapt_layers=2)
        bb.place(dev, torch.bfloat16 if prec == "bf16" else None)
        sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
        n = 64 if dev == "cpu" else 256  # CPU: a few batches only
        bb.encode(texts[:64], batch_size=64); sync()  # warm-up
        t = time.perf_counter(); cache = bb.encode(texts[:n], batch_size=64); sync()
        enc = (time.perf_counter() - t) / (n / 64)
        ad = ProteusAdapter.for_backbone(bb, rank=8, seed=0).to(dev)
        labels = np.arange(len(cache)) % 5
        cfg = TrainConfig(epochs=1, batch_size=32, lr=2e-3, lambda_l1=0.03)
        train_task(bb, ad, cache.subset(range(64)), labels[:64], cfg, seed=0); sync()
        t = time.perf_counter()
        train_task(bb, ad, cache, labels, cfg, seed=1); sync()
        step = (time.perf_counter() - t) / (len(cache) / 32)
        bb.upper_cache(cache.subset(range(64)), ad, batch_size=64); sync()
        t = time.perf_counter(); bb.upper_cache(cache, ad, batch_size=64); sync()
        up = (time.perf_counter() - t) / (len(cache) / 64)
        bench[key] = {"encode_lower_s_per_batch64": enc, "train_step_s_per_batch32": step,
                      "upper_adapted_s_per_batch64": up, "n_samples": len(cache)}
        if dev == "cuda":
            bench[key]["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20
            torch.cuda.reset_peak_memory_stats()
        del bb, ad, cache
        res["microbench"] = bench
        save()
    if "cpu-fp32" in bench:
        for key in [k for k in bench if k.startswith("cuda")]:
            res.setdefault("speedup_microbench", {})[key] = {
                m: bench["cpu-fp32"][m] / bench[key][m] for m in bench[key]
                if m.endswith("batch32") or m.endswith("batch64")}
    save()
except Exception:
    res["setup_error"] = traceback.format_exc()[-3000:]
    save()
    print(res["setup_error"])
    sys.exit(1)
EOF
[ -f "$WORK/mpnet/model.safetensors" ] || { cat "$JSON"; exit 1; }

run_cft() {  # run_cft NAME TIMEOUT OVERRIDES...: one run, peak GPU memory, per-task seconds
  local name="$1" limit="$2"; shift 2
  timeout -k 10 "$limit" "$PY" - "$WORK/runs/$name" "$@" <<'EOF' >"$OUT/run-$name.log" 2>&1
import json, sys, time, torch
from cft.cli import main
t = time.perf_counter()
rc = main(["run", "--preset", "wordnet-mpnet", "--out", sys.argv[1], "--seed", "0",
           *sys.argv[2:]])
print(json.dumps({"rc": rc, "wall_s": time.perf_counter() - t,
                  "peak_gpu_mib": torch.cuda.max_memory_allocated() / 2**20
                  if torch.cuda.is_available() else None}))
sys.exit(rc)
EOF
  echo "run $name: exit $? (124 = stopped by its time limit)" >>"$OUT/run-$name.log"
  tail -n 3 "$OUT/run-$name.log"
}
run_cft gpu "${GPU_LIMIT:-210}" device=cuda output.progress=false
run_cft cpu "${CPU_LIMIT:-120}" device=cpu output.progress=false

"$PY" - "$WORK/runs" "$OUT" "$JSON" <<'EOF'
# collect: per-task seconds from done.json, peak GPU memory, end-to-end speed-up of task 1
import glob, json, os, sys
runs, out, path = sys.argv[1:4]
res = json.load(open(path))
for name in ("gpu", "cpu"):
    d = os.path.join(runs, name)
    tasks = sorted(glob.glob(os.path.join(d, "tasks", "*", "done.json")))
    done = [json.load(open(f)) for f in tasks]
    entry = {"tasks_complete": len(done),
             "task_seconds": [x["seconds"] for x in done],
             "train_seconds": [x["train_seconds"] for x in done]}
    log = os.path.join(out, f"run-{name}.log")
    for line in open(log, errors="replace") if os.path.exists(log) else []:
        if line.startswith("{\"rc\""):
            entry.update(json.loads(line))
    for f in ("run.json", "metrics.json"):
        p = os.path.join(d, f)
        if os.path.exists(p):
            j = json.load(open(p))
            if f == "run.json":
                entry["run"] = {k: j.get(k) for k in ("status", "device", "device_name",
                                                       "cuda", "wall_seconds")}
            else:
                entry["summary"] = j.get("summary")
    res[f"run_{name}"] = entry
g, c = res["run_gpu"]["task_seconds"], res["run_cpu"]["task_seconds"]
if g and c:
    res["speedup_task1_end_to_end"] = c[0] / g[0]
    res["speedup_task1_train"] = res["run_cpu"]["train_seconds"][0] / res["run_gpu"]["train_seconds"][0]
json.dump(res, open(path, "w"), indent=1)
print(json.dumps(res, indent=1))
EOF
