#!/bin/sh
# The full-data Fashion-MNIST run of docs/recipes/fashion-mnist-full.json, timed as one job: `graft train` on the
# 60,000 training images (10% held out for validation, the best validation epoch kept), then `graft evaluate` on the
# 10,000 t10k test images. Wall time and peak RSS come from /usr/bin/time -v around both commands; the load average
# is printed before and after, because the machine it was measured on is shared.
#
#   scripts/fashion-mnist-full.sh [out-folder] [extra graft train flags...]
#   scripts/fashion-mnist-full.sh models/fashion-mnist-full
#   scripts/fashion-mnist-full.sh /tmp/fm-noaug --aug none
# FASHION_MNIST_DIR names another IDX folder; REPORT another folder for the evaluation report (default <out>-report);
# RECIPE another config (default docs/recipes/fashion-mnist-full.json); EVAL_FLAGS extra graft evaluate flags (--tta-crop).
set -eu
cd "$(dirname "$0")/.."
OUT=${1:-models/fashion-mnist-full}
[ $# -gt 0 ] && shift
IDX=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
REPORT=${REPORT:-$OUT-report}
RECIPE=${RECIPE:-docs/recipes/fashion-mnist-full.json}
EVAL_FLAGS=${EVAL_FLAGS:-}
echo "start $(date -u +%FT%TZ) load $(cat /proc/loadavg)"
/usr/bin/time -v sh -c '
  set -eu
  idx=$1 out=$2 report=$3 recipe=$4 evalflags=$5
  shift 5
  node bin/graft train --config "$recipe" --data "$idx" --out "$out" "$@"
  echo "train done $(date -u +%FT%TZ) load $(cat /proc/loadavg)"
  mkdir -p "$report"
  node bin/graft evaluate --model "$out" --data "$idx/t10k-images-idx3-ubyte.gz" --batch-size 256 \
    --out "$report/report.json" --format text,json,md,html $evalflags
' sh "$IDX" "$OUT" "$REPORT" "$RECIPE" "$EVAL_FLAGS" "$@"
echo "end $(date -u +%FT%TZ) load $(cat /proc/loadavg)"
