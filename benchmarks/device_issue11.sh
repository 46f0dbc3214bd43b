#!/usr/bin/env bash
# The measurements of issue 11 that need more compute than 2 CPU cores give in a session, run once on a lent
# GPU machine (16 cores, one GPU) inside a 10-minute call, all three side by side:
#   A. proxy fidelity of the shipped proxy: studies/fidelity_bccd.yaml (12 points x 2 seeds, 150 steps at 256 px),
#      then `scalesearch fidelity --top-k 12 --factor 4`;
#   B. studies/bifpn_vs_panet_bccd.yaml (6 points x 3 seeds);
#   C. benchmarks/bench_multi_fidelity.py (flat vs halving vs prefilter at equal step-equivalents, fronts at 4x).
# Every process trains on the GPU with one CPU thread; the run folders come back as runs.tgz.
# Usage (repo root, with the wheels in .whl/, BCCD in .device_data/bccd and the package in .device_src/):
#   bash benchmarks/device_issue11.sh OUT_DIR [DEADLINE_SECONDS]
set -u
OUT_DIR=${1:?output folder}
DEADLINE=${2:-540}
ROOT=$(pwd)
START=$(date +%s)
export PYTHONUNBUFFERED=1 PYTHONSAFEPATH=1 PYTHONPATH="$ROOT/.device_src:$ROOT/benchmarks:${PYTHONPATH:-}"
RUNS=/tmp/runs
mkdir -p "$RUNS" "$OUT_DIR"
DATA="$ROOT/.device_data/bccd"
SET=(--set "dataset.path=$DATA" --set train.device=cuda --set search.threads_per_worker=1)
for item in ${EXTRA_SET:-}; do SET+=(--set "$item"); done  # a dry run elsewhere: EXTRA_SET="train.steps=4 ..."
PY=${PY:-python3}
SS="$PY -m scalesearch.cli"

nvidia-smi --query-gpu=name,memory.total --format=csv,noheader > "$OUT_DIR/gpu.txt" 2>&1

( $SS run studies/fidelity_bccd.yaml --quiet "${SET[@]}" --set "output=$RUNS/fidelity_bccd" --set search.workers=8 \
  && $SS fidelity "$RUNS/fidelity_bccd" --top-k 12 --factor 4 --workers 10
  echo "fidelity done rc=$? at $(( $(date +%s) - START )) s" ) > "$OUT_DIR/fidelity.log" 2>&1 &
( $SS run studies/bifpn_vs_panet_bccd.yaml --quiet "${SET[@]}" --set "output=$RUNS/bifpn_vs_panet_bccd" \
    --set search.workers=4
  echo "bvp done rc=$? at $(( $(date +%s) - START )) s" ) > "$OUT_DIR/bvp.log" 2>&1 &
( $PY benchmarks/bench_multi_fidelity.py --trials ${MF_TRIALS:-8} --workers 2 --retrain-workers 3 --out "$RUNS/multi_fidelity" \
    "${SET[@]}"
  echo "multi_fidelity done rc=$? at $(( $(date +%s) - START )) s" ) > "$OUT_DIR/multi_fidelity.log" 2>&1 &

while [ -n "$(jobs -rp)" ] && [ $(( $(date +%s) - START )) -lt "$DEADLINE" ]; do sleep 5; done
if [ -n "$(jobs -rp)" ]; then
  echo "deadline: stopping what still runs at $(( $(date +%s) - START )) s"
  pkill -TERM -f scalesearch.cli; pkill -TERM -f bench_multi_fidelity; sleep 5
  pkill -KILL -f scalesearch.cli; pkill -KILL -f bench_multi_fidelity; pkill -KILL -f multiprocessing
fi
tail -n 3 "$OUT_DIR"/*.log
cp reports/benchmarks/multi_fidelity.json "$OUT_DIR/" 2>/dev/null
tar czf "$OUT_DIR/runs.tgz" -C /tmp --exclude=cost_cache --exclude=.run.lock runs
echo "total $(( $(date +%s) - START )) s"
