#!/bin/bash
# The larger-trunk runs of issue 18: large-source, then large-grid as one process per (seed, size), two at a time,
# each single-threaded; a job not started by CUTOFF (UTC HH:MM) is skipped so that the report can be written in time.
# Run `npm run build` first; merge afterwards with `npm run experiment -- --only report --merge <the folders under $L>`
# from a work folder whose results.json holds the other rows (docs/fashion-mnist-results.json).
cd "$(dirname "$0")/.." || exit 1
L=${L:-out/large}
EXTRA=${EXTRA:-}
NICE=${NICE:-0}
SEEDS=${SEEDS:-1 2 3 4 5}
SIZES=${SIZES:-5 10 20 50}
CUTOFF=${CUTOFF:-08:54}
mkdir -p $L/logs $L/source $L/data
ln -sfn ../data $L/source/data
echo "source start $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
nice -n $NICE node dist/scripts/fashion-mnist-experiment.js --work $L/source --only large-source $EXTRA > $L/logs/source.log 2>&1
rc=$?
echo "source end $(date -u +%T) rc $rc load $(cut -d' ' -f1-3 /proc/loadavg)"
[ -f $L/source/runs/large-0-4/graft.json ] || { echo "no trunk"; exit 1; }
job() {
  s=$1; n=$2; m=$3
  name=g-s$s-$m-n${n//,/-}
  if [[ "$(date -u +%H:%M)" > "$CUTOFF" ]]; then echo "skip $name at $(date -u +%T)"; return; fi
  w=$L/$name
  mkdir -p $w && ln -sfn ../data $w/data
  echo "job $name start $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)"
  GRAFT_THREADS=1 nice -n $NICE node dist/scripts/fashion-mnist-experiment.js --work $w --only large-grid --large-trunk $L/source/runs/large-0-4 \
    --first-seed $s --seeds 1 --sizes $n --methods $m $EXTRA > $L/logs/$name.log 2>&1
  rc=$?
  echo "job $name end $(date -u +%T) rc $rc load $(cut -d' ' -f1 /proc/loadavg)"
}
export -f job; export L CUTOFF EXTRA NICE
# Frozen trunk + head for every seed first (cheap), then fine-tuning seed by seed until the cutoff.
{ for s in $SEEDS; do echo "$s ${SIZES// /,} frozen"; done; for s in $SEEDS; do for n in $SIZES; do echo "$s $n finetune"; done; done; } | xargs -P 2 -L 1 bash -c 'job $0 $1 $2'
echo "all done $(date -u +%T)"
