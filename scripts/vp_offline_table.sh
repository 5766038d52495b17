#!/usr/bin/env bash
# Issue 11's "real vs imagined future" table (docs/results.md section 2) in the setting of the video_pays study:
# each paradigm that acts from a future is trained exactly as a video_pays cell at 5 labelled demos a task, seed 0
# (the cell's config.yaml, only the paradigm and the output folder changed; 370 steps, the representation cell's
# count), from the world model pretrained on the action-free pool, then evaluated offline on the held-out demos
# (7 a task) with its imagined future and with the real one, paired on the same windows and noise.
#
#   STUDY=runs/studies/video_pays_s0 OUT=runs/vp_offline bash scripts/vp_offline_table.sh
#   # writes $OUT/<paradigm>/eval_offline.json; the study's cells hold the other rows' eval_offline.json
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
PY=${PY:-.venv/bin/python}
STUDY=${STUDY:?the video_pays study folder}
OUT=${OUT:?where the runs go}
BASE=$STUDY/cells/representation__d5__s0/config.yaml
[ -f "$BASE" ] || { echo "no $BASE: run the video_pays study at 5 demos, seed 0 first" >&2; exit 2; }
mkdir -p "$OUT"
for v in ${VARIANTS:-inverse_dynamics future_conditioned hierarchical}; do
  [ -f "$OUT/$v/eval_offline.json" ] && continue
  [ -d "$OUT/$v/checkpoints/last" ] || $PY -m wam train --config="$BASE" --paradigm=$v --out="$OUT/$v"
  $PY -m wam eval-offline --policy="$OUT/$v" --given_future=real
done
