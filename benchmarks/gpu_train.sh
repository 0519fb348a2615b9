#!/usr/bin/env bash
# Train all five n-scale models concurrently on one GPU, then evaluate each on the held-out set.
# Run on the device machine from the repo root with the wheels in .whl/ (see README "Benchmarks"):
#   bash benchmarks/gpu_train.sh <minutes per model>     # results under $OUT
set -uo pipefail
MIN=${1:-6.5}
OUT=${OUT:-out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD YOLO_OFFLINE=1 PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 - <<'PY'
import time
from fusion.data.pairs import SyntheticPairs
t = time.time()
SyntheticPairs(n=3000, seed=0, size=(640, 512), cache_dir="/tmp/cache", workers=16)
SyntheticPairs(n=500, seed=1500, size=(640, 512), cache_dir="/tmp/cache", workers=16)
print(f"cache built in {time.time() - t:.1f}s")
PY
for a in mid early decision rgb ir; do
  python3 -m fusion.train configs/${a}_n.yaml out=/tmp/runs/$a data.cache_dir=/tmp/cache workers=3 \
    epochs=300 val_every=10 time_budget_min=$MIN > /tmp/train_$a.log 2>&1 &
done
wait
for a in mid early decision rgb ir; do
  grep -E "INFO|Error|error" /tmp/train_$a.log | sed "s/^/[$a] /" >> "$OUT/train_log.txt"
  python3 -m fusion.evaluate /tmp/runs/$a/best.pt n=500 seed=1500 workers=3 out=/tmp/eval_$a.json \
    $( [ $a = mid ] && echo plot=$OUT/mid_pr.png ) > /dev/null 2>> "$OUT/train_log.txt" &
done
wait
rm -f "$OUT"/mid_pr_F1_curve.png "$OUT"/mid_pr_P_curve.png "$OUT"/mid_pr_R_curve.png  # $OUT returns 8 files at most
python3 - <<'PY'
import json, os, shutil, torch
from fusion.checkpoint import load_checkpoint
from fusion.models.build import model_stats
out = os.environ.get("OUT", "out")
res = {}
for a in ["mid", "early", "decision", "rgb", "ir"]:
    model, cfg, ckpt = load_checkpoint(f"/tmp/runs/{a}/best.pt")
    res[a] = {"eval": json.load(open(f"/tmp/eval_{a}.json")), "stats": model_stats(model),
              "epochs": int(ckpt["epoch"]) + 1, "history": json.loads(ckpt["history"])}
    shutil.copy(f"/tmp/runs/{a}/best.pt", f"{out}/{a}_n.pt")
res["device"] = torch.cuda.get_device_name(0)
json.dump(res, open(f"{out}/train_results.json", "w"), indent=1)
slices = ["overall", "day", "dusk", "night", "fog", "clutter"]
print("model     " + " ".join(f"{s:>14}" for s in slices))
for a in ["mid", "early", "decision", "rgb", "ir"]:
    e = res[a]["eval"]
    print(f"{a:9} " + " ".join(f"{e[s]['mAP50']:.3f}/{e[s]['mAP50-95']:.3f}" for s in slices), res[a]["epochs"])
PY
