#!/usr/bin/env bash
# A multi-node Ray cluster on one machine: a head plus N worker nodes, each declaring logical GPUs, so that
# GPU-pinned actors schedule on a laptop or CPU CI exactly as on a GPU cluster.
#   cluster/local_multinode.sh start [workers=2] [gpus_per_worker=1] [port=6390]
#   cluster/local_multinode.sh stop [port=6390]
# Uses the project's Ray (.venv/bin/ray; $RAY overrides). `stop` ends only the processes of the cluster this script
# started on that port (found by its temp dir and GCS address), never other Ray clusters of the user.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
RAY=${RAY:-$here/.venv/bin/ray}
[ -x "$RAY" ] || RAY=$(command -v ray || true)
if [ -z "$RAY" ] || [ ! -x "$RAY" ]; then
  echo "error: no Ray found: run 'make demo' (creates .venv) or set RAY=/path/to/ray" >&2
  exit 2
fi
PY=$(dirname "$RAY")/python
[ -x "$PY" ] || PY=python3
cmd=${1:-start}
if [ "$cmd" = stop ]; then port=${2:-6390}; else workers=${2:-2}; gpus=${3:-1}; port=${4:-6390}; fi
dash=$((port + 1))
tmp=/tmp/fusedet-ray-$port
# Token authentication on every process of this cluster (head, workers, `ray job submit` from this shell):
# Ray reads or creates ~/.ray/auth_token. Export the same in the shell you submit from.
export RAY_AUTH_MODE=token
# The nodes run `python` of submitted jobs from their PATH: put the project's environment first, as an activated
# venv would, so `ray job submit -- python -m jobs.detect ...` runs with the project's packages.
export PATH="$(dirname "$RAY"):$PATH"

stop_cluster() {
  "$PY" - "$tmp" "$port" <<'PYEOF'
import os, re, sys, psutil
tmp, port = sys.argv[1], sys.argv[2]
own_dir = re.compile(re.escape(tmp) + r"(?![0-9])")  # its dirs (the head's, the workers' w1, w2 ...), not port 63901's
me = {os.getpid(), *(p.pid for p in psutil.Process().parents())}

def ours(args):  # the cluster's temp dir, or its GCS address given to a helper (the client server)
    return any(own_dir.search(a) or (a.startswith(("--address=", "--gcs-address=", "--gcs_address="))
                            and a.endswith(f":{port}")) for a in args)

roots = [p for p in psutil.process_iter(["cmdline"]) if p.pid not in me and ours(p.info["cmdline"] or [])]
procs = {}
for r in roots:
    for p in [r, *r.children(recursive=True)]:
        procs[p.pid] = p
for p in procs.values():
    try:
        p.terminate()
    except psutil.NoSuchProcess:
        pass
gone, alive = psutil.wait_procs(procs.values(), timeout=15)
for p in alive:
    p.kill()
print(f"stopped {len(procs)} process(es) of the cluster on port {port}")
PYEOF
}

case "$cmd" in
  stop) stop_cluster ;;
  start)
    stop_cluster >/dev/null  # a stale cluster of an earlier crashed run on this port
    # The head runs the driver and the dashboard (job submission) and takes no actors (0 CPUs, 0 GPUs).
    "$RAY" start --head --node-ip-address=127.0.0.1 --port="$port" --num-cpus=0 --num-gpus=0 \
      --include-dashboard=true --dashboard-host=127.0.0.1 --dashboard-port="$dash" --disable-usage-stats \
      --temp-dir="$tmp" >/dev/null
    # Each worker node gets its own temp dir (and agent HTTP port): nodes of one host sharing the head's session dir
    # share runtime_resources/, where one node's runtime-env agent deleted the job's working_dir while another
    # node's actor was starting in it (seen in the README test: "cd: .../_ray_pkg_...: No such file or directory",
    # the second actor never started). On a real cluster every node has its own disk.
    for i in $(seq 1 "$workers"); do
      "$RAY" start --address="127.0.0.1:$port" --node-ip-address=127.0.0.1 --num-cpus=2 --num-gpus="$gpus" \
        --temp-dir="$tmp/w$i" --dashboard-agent-listen-port=$((port + 100 + i)) --disable-usage-stats >/dev/null
    done
    # `ray start` returns before the head's job agent is up, and a `ray job submit` made then fails ("No available
    # agent to submit job"): wait until the cluster accepts a no-op job, so the next command works as written.
    for i in $(seq 1 60); do
      "$RAY" job submit --address "http://127.0.0.1:$dash" --no-wait -- true >/dev/null 2>&1 && break
      if [ "$i" = 60 ]; then echo "error: the cluster on port $port accepts no job after 2 min" >&2; exit 1; fi
      sleep 2
    done
    echo "head 127.0.0.1:$port  dashboard http://127.0.0.1:$dash  workers $workers x $gpus GPU  (stop: $0 stop $port)"
    ;;
  *) echo "usage: $0 start [workers] [gpus_per_worker] [port] | stop [port]" >&2; exit 2 ;;
esac
