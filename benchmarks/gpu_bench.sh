#!/usr/bin/env bash
# Engine benchmarks on one GPU (H100 here). From the repo root on the device machine, wheels in .whl/:
#   bash benchmarks/gpu_bench.sh          # JSON under $OUT
set -uo pipefail
OUT=${OUT:-out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD YOLO_OFFLINE=1 PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
B="backends=[torch-eager,torch-compile,onnxruntime,tensorrt] ort_max_batch=1 iters=50"
python3 -m trt.bench models=[mid_n] batches=[1,32,128] $B out=$OUT/bench_mid_n.json 2>&1 | grep -vE "INFO|Warning|warn"
python3 -m trt.bench models=[rgb_n,ir_n] batches=[32] extra_sizes=[[320,256]] \
  backends=[torch-eager,torch-compile] iters=50 out=$OUT/bench_single.json 2>&1 | grep -vE "INFO|Warning|warn"
