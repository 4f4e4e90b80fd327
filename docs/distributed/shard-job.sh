#!/usr/bin/env bash
# One shard of a distributed graft run: the body of a Slurm array task or a Kubernetes Indexed Job pod.
#
#   INDEX  0-based shard index   (Kubernetes: JOB_COMPLETION_INDEX; Slurm: SLURM_ARRAY_TASK_ID with --array=0-(N-1))
#   COUNT  number of shards      (Kubernetes: the Job's completions;  Slurm: SLURM_ARRAY_TASK_COUNT)
#   MODEL  graft model folder    DATA  labelled dataset (folder, CSV or IDX)    IMAGES  images to extract features of
#   OUT    shared folder every shard writes into (a volume, NFS, ...)
#   GRAFT  how to run graft (default: graft)
#
# graft's --shard is 1-based (i/n), job runners count from 0: shard INDEX+1 of COUNT. Each shard takes every
# COUNT-th image, so shards never overlap and together cover everything. --resume makes a retried task pick up
# where it stopped instead of starting over.
set -euo pipefail
INDEX="${INDEX:-${JOB_COMPLETION_INDEX:-${SLURM_ARRAY_TASK_ID:?set INDEX, JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID}}}"
COUNT="${COUNT:-${SLURM_ARRAY_TASK_COUNT:?set COUNT (the number of shards)}}"
GRAFT="${GRAFT:-graft}"
SHARD="$((INDEX + 1))/${COUNT}"
mkdir -p "$OUT"
if [ -n "${DATA:-}" ]; then
  $GRAFT -q evaluate --model "$MODEL" --data "$DATA" --shard "$SHARD" --out "$OUT/evaluate-$((INDEX + 1)).json" >/dev/null
fi
if [ -n "${IMAGES:-}" ]; then
  $GRAFT -q features --weights "$MODEL" "$IMAGES" --shard "$SHARD" --resume --out "$OUT/features-$((INDEX + 1)).csv"
fi
