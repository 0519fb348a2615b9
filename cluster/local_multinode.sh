#!/usr/bin/env bash
# A multi-node Ray cluster on one machine: a head plus N worker nodes, each declaring logical GPUs, so that
# GPU-pinned actors schedule on a laptop or CPU CI exactly as on a GPU cluster.
#   cluster/local_multinode.sh start [workers=2] [gpus_per_worker=1] [port=6390]
#   ray job submit --address http://127.0.0.1:<port+1> -- python -m jobs.detect configs/job.yaml \
#       cluster.address=auto cluster.gpus_per_actor=1 cluster.actors=2
#   cluster/local_multinode.sh stop
set -euo pipefail
RAY=${RAY:-ray}
cmd=${1:-start}; workers=${2:-2}; gpus=${3:-1}; port=${4:-6390}
dash=$((port + 1))
if [ "$cmd" = stop ]; then
  $RAY stop --force >/dev/null 2>&1 || true
  exit 0
fi
# The head runs the driver and the dashboard (job submission) and takes no actors (0 CPUs, 0 GPUs).
$RAY start --head --port="$port" --num-cpus=0 --num-gpus=0 --include-dashboard=true \
  --dashboard-host=127.0.0.1 --dashboard-port="$dash" --disable-usage-stats >/dev/null
for i in $(seq 1 "$workers"); do
  $RAY start --address="127.0.0.1:$port" --num-cpus=2 --num-gpus="$gpus" --disable-usage-stats >/dev/null
done
echo "head 127.0.0.1:$port  dashboard http://127.0.0.1:$dash  workers $workers x $gpus GPU"
