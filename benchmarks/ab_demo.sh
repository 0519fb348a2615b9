#!/usr/bin/env bash
# Is the CPU embedded default slower than at an earlier commit? Two-core machines differ by 2x from one to the next,
# so the answer is an A/B on one machine: that commit's own demo (its archive, models and configs/job.yaml) and this
# checkout's, run alternately with this checkout's .venv, each run into a fresh output folder.
#   bash benchmarks/ab_demo.sh 9b6a1b6 3 benchmarks/results/cpu_demo_ab.json    (after `make demo`; ~7 min a pair)
set -euo pipefail
old=${1:?usage: ab_demo.sh COMMIT [RUNS] [OUT.json]}
runs=${2:-3}
out=${3:-benchmarks/results/cpu_demo_ab.json}
root=$PWD
py=$root/.venv/bin/python
tmp=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$tmp/old" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
export YOLO_OFFLINE=1
git worktree add -q --detach "$tmp/old" "$old"
[ -d demo-output/archive ] || "$py" -m jobs.demo >/dev/null
(cd "$tmp/old" && PYTHONPATH=$tmp/old "$py" -m jobs.demo >/dev/null 2>&1)  # the old commit's own archive

one() {  # side dir pythonpath → the job's one-line JSON summary, tagged
    rm -rf "$tmp/o"
    (cd "$2" && PYTHONPATH=$3 "$py" -m jobs.detect configs/job.yaml input.archive=demo-output/archive \
        output.path="$tmp/o" 2>/dev/null | grep '^{' | sed "s/^/$1 /")
}
for _ in $(seq "$runs"); do
    one old "$tmp/old" "$tmp/old"
    one new "$root" ""
done | "$py" -c '
import json, os, platform, subprocess, sys
rows = [dict(json.loads(line.split(" ", 1)[1]), side=line.split(" ", 1)[0]) for line in sys.stdin]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
res = {"old_commit": sys.argv[1], "new_commit": head, "cores": os.cpu_count(), "cpu": cpu,
       "command": "bash benchmarks/ab_demo.sh " + " ".join(sys.argv[1:]),
       "runs": [{k: r[k] for k in ("side", "frames", "detections", "seconds", "pairs_per_s")} for r in rows]}
for side in ("old", "new"):
    v = [r["pairs_per_s"] for r in rows if r["side"] == side]
    res[side + "_pairs_per_s"] = {"min": min(v), "max": max(v), "mean": round(sum(v) / len(v), 2)}
json.dump(res, open(sys.argv[3], "w"), indent=1)
o, n = res["old_pairs_per_s"], res["new_pairs_per_s"]
print(f"old {sys.argv[1]}: {o}  new {head}: {n}  -> {sys.argv[3]}")
' "$old" "$runs" "$out"
