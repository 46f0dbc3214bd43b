#!/usr/bin/env bash
# Issue 22's measurement: the 12 architectures of reports/runs/fidelity_bccd (its 24 proxy trials, 150 steps,
# made on a lent GPU machine) retrained at 4x (600 steps) on 3 paired seeds, raw and EMA weights evaluated at the
# end of each training. reports/runs/fidelity_bccd_paired is that run folder with its study's train.device set
# to cpu (no GPU here) and without the unpaired fidelity.json; the retraining writes its fidelity.json there.
# Resumable: a rerun trains only the (point, seed) pairs that are missing, seed-major (every point's seed 0,
# then seed 1, then seed 2). On 2 CPU cores: about 6 min per training with 2 threads; one worker of 2 threads (measured here: 0.59 s/step, against 1.75 s/step for each of 2 one-thread workers).
# Usage (repo root, venv active): bash benchmarks/fidelity_paired_bccd.sh
set -eu
RUN=reports/runs/fidelity_bccd_paired
exec flock /tmp/scalesearch-cpu.lock scalesearch fidelity "$RUN" --top-k 12 --factor 4 --seeds 3 --workers 1
