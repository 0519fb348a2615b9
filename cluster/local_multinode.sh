#!/usr/bin/env bash
# A multi-node Ray cluster on one machine: a head plus N worker nodes, each declaring logical GPUs, so that
# GPU-pinned actors schedule on a laptop or CPU CI exactly as on a GPU cluster.
#   cluster/local_multinode.sh start [workers=2] [gpus_per_worker=1] [port=6390]
#   RAY_AUTH_MODE=token ray job submit --address http://127.0.0.1:<port+1> --working-dir . \
#       --runtime-env cluster/runtime_env.yaml -- python -m jobs.detect configs/job.yaml \
#       cluster.address=auto cluster.gpus_per_actor=1 cluster.actors=2
#   cluster/local_multinode.sh stop
set -euo pipefail
RAY=${RAY:-ray}
cmd=${1:-start}; workers=${2:-2}; gpus=${3:-1}; port=${4:-6390}
dash=$((port + 1))
# Token authentication on every process of this cluster (head, workers, `ray job submit` from this shell):
# Ray reads or creates ~/.ray/auth_token. Export the same in the shell you submit from.
export RAY_AUTH_MODE=token
# `ray stop` ends every Ray process of this user on the machine: run it only where this cluster is the only one.
$RAY stop --force >/dev/null 2>&1 || true  # also clears a stale cluster left by a crashed run
[ "$cmd" = stop ] && exit 0
# The head runs the driver and the dashboard (job submission) and takes no actors (0 CPUs, 0 GPUs).
$RAY start --head --node-ip-address=127.0.0.1 --port="$port" --num-cpus=0 --num-gpus=0 --include-dashboard=true \
  --dashboard-host=127.0.0.1 --dashboard-port="$dash" --disable-usage-stats >/dev/null
for i in $(seq 1 "$workers"); do
  $RAY start --address="127.0.0.1:$port" --node-ip-address=127.0.0.1 --num-cpus=2 --num-gpus="$gpus" \
    --disable-usage-stats >/dev/null
done
echo "head 127.0.0.1:$port  dashboard http://127.0.0.1:$dash  workers $workers x $gpus GPU"
