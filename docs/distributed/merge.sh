#!/usr/bin/env bash
# After every shard has finished: one report from the shard reports, one feature file from the shard files.
#   OUT    the shared folder the shards wrote into      GRAFT  how to run graft (default: graft)
# The merged report equals a single run's. The merged features hold the same rows as a single run, grouped by
# shard; sort by the file column if the order matters (pandas: df.sort_values('file')).
set -euo pipefail
GRAFT="${GRAFT:-graft}"
shopt -s nullglob
reports=("$OUT"/evaluate-*.json)
if [ ${#reports[@]} -gt 0 ]; then
  $GRAFT -q report --merge "${reports[@]}" --out "$OUT/report.json" --format json,md >/dev/null
fi
features=("$OUT"/features-*.csv)
if [ ${#features[@]} -gt 0 ]; then
  head -n 1 "${features[0]}" > "$OUT/features.csv.tmp"
  for f in "${features[@]}"; do tail -n +2 "$f" >> "$OUT/features.csv.tmp"; done
  mv "$OUT/features.csv.tmp" "$OUT/features.csv"
fi
