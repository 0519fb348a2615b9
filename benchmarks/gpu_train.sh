#!/usr/bin/env bash
# Retrain models on one GPU, concurrently, then evaluate each on the held-out set. Device machine, repo root, with
# the ultralytics wheels in .whl/ (DEVELOPERS.md):
#   bash benchmarks/gpu_train.sh all 3.5 "mid rgb ir"    # render, train (minutes per model, all at once), evaluate
#   bash benchmarks/gpu_train.sh prepare                 # only render training + held-out pairs into /tmp/cache
#   EXTRA_midv8="model.family=yolov8 pretrained=320n.onnx" bash benchmarks/gpu_train.sh all 5 "midv8=mid rgb"
#                                                        # a run NAME=ARCH takes configs/ARCH_n.yaml, its own overrides
#                                                        # from EXTRA_NAME, and no INIT when they say pretrained=
# Env: N_TRAIN (2800), N_VAL (300), INIT (folder of fusedet checkpoints to fine-tune from, models/; "" = scratch),
#      WHEELS (.whl), EXTRA (more fusion.train overrides for every run, e.g. "augment.texture=0.3 augment.blur=1.5").
# Results under $OUT: <name>_n.pt (best by held-out mAP50-95, copied as soon as it exists, so a run cut short still
# returns its best so far), train_results.json, train_log.txt, mid_pr.png.
set -uo pipefail
PHASE=${1:-all}
MIN=${2:-3.5}
ARCHS=${3:-"mid rgb ir"}
N_TRAIN=${N_TRAIN:-2800}
N_VAL=${N_VAL:-300}
INIT=${INIT-models}
OUT=${OUT:-out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  "${WHEELS:-.whl}"/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD YOLO_OFFLINE=1 PYTHONUNBUFFERED=1
DATA="data.cache_dir=/tmp/cache data.n_train=$N_TRAIN data.n_val=$N_VAL"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
t0=$(date +%s)

if [ "$PHASE" = prepare ] || [ "$PHASE" = all ]; then
  python3 benchmarks/train_cache.py configs/mid_n.yaml $DATA workers=16 || exit 1
fi
[ "$PHASE" = prepare ] && exit 0
echo "prepared in $(( $(date +%s) - t0 )) s"

pids=()
NAMES=""
for run in $ARCHS; do
  a=${run%%=*}; arch=${run#*=}; own=EXTRA_$a; own=${!own:-}
  NAMES="$NAMES $a"
  init=$( [ -n "$INIT" ] && [[ "$own" != *pretrained=* ]] && echo init=$INIT/${arch}_n.pt )
  python3 -m fusion.train configs/${arch}_n.yaml out=/tmp/runs/$a $DATA workers=3 epochs=300 val_every=2 \
    time_budget_min=$MIN $init ${EXTRA:-} $own > /tmp/train_$a.log 2>&1 &
  pids+=($!)
done
ARCHS=$NAMES
( while sleep 15; do for a in $ARCHS; do  # the best so far comes back even if the call is cut short
    [ -f /tmp/runs/$a/best.pt ] && cp /tmp/runs/$a/best.pt "$OUT/${a}_n.pt.part" && mv "$OUT/${a}_n.pt.part" "$OUT/${a}_n.pt"
  done; done ) &
copier=$!
wait "${pids[@]}"
kill $copier 2>/dev/null
echo "trained in $(( $(date +%s) - t0 )) s"
for a in $ARCHS; do
  cp /tmp/runs/$a/best.pt "$OUT/${a}_n.pt"
  grep -E "INFO|Error|error" /tmp/train_$a.log | sed "s/^/[$a] /" >> "$OUT/train_log.txt"
  python3 -m fusion.evaluate /tmp/runs/$a/best.pt n=$N_VAL seed=1500 workers=4 cache_dir=/tmp/cache \
    out=/tmp/eval_$a.json $( [ $a = mid ] && echo plot=$OUT/mid_pr.png ) > /dev/null 2>> "$OUT/train_log.txt" &
done
wait
rm -f "$OUT"/mid_pr_F1_curve.png "$OUT"/mid_pr_P_curve.png "$OUT"/mid_pr_R_curve.png
python3 - $ARCHS <<'PY'
import json, os, sys, torch
from fusion.checkpoint import load_checkpoint
from fusion.models.build import model_stats
out, archs = os.environ.get("OUT", "out"), sys.argv[1:]
res = {"device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu", "n_train": int(os.environ.get("N_TRAIN", 2800)),
       "n_val": int(os.environ.get("N_VAL", 300))}
for a in archs:
    model, cfg, ckpt = load_checkpoint(f"/tmp/runs/{a}/best.pt")
    res[a] = {"eval": json.load(open(f"/tmp/eval_{a}.json")), "stats": model_stats(model),
              "epochs": int(ckpt["epoch"]) + 1, "history": json.loads(ckpt["history"])}
json.dump(res, open(f"{out}/train_results.json", "w"), indent=1)
slices = ["overall", "day", "dusk", "night", "fog", "clutter"]
print("model     " + " ".join(f"{s:>14}" for s in slices))
for a in archs:
    e = res[a]["eval"]
    print(f"{a:9} " + " ".join(f"{e[s]['mAP50']:.3f}/{e[s]['mAP50-95']:.3f}" for s in slices), res[a]["epochs"])
PY
echo "done in $(( $(date +%s) - t0 )) s"
