#!/usr/bin/env bash
# Issue 4's measured comparison on mw5 (reach, button-press-topdown, drawer-open, push, pick-place):
# the same 18 training demos a task (20 collected, 2 held out for validation), the same frame tokenizer,
# the same backbone shape, and the same CPU training budget for every variant: steps = 720 s x the
# variant's training samples/s measured by benchmarks/paradigm_speed.py (block of 2026-11-25, commit
# 7682bac) / batch 32. Each variant is evaluated on 10 episodes a task (50) with `wam eval` (seeds from 10,000).
#
#   wam collect --tasks=mw5 --episodes=20 --out=data/mw5_c4_96 --camera=corner4 --image_size=96 --workers=1
#   bash scripts/mw5_comparison.sh [VARIANT ...]     # default: all, action-only first
set -euo pipefail
# one thread: on 2 shared cores, two processes spinning 2 OpenMP threads each slow down ~20x
cd "$(dirname "$0")/.."
WM=runs/wm_mt10_long          # `wam pretrain --config configs/pretrain_mt10.yaml` (action-free, mt10), 4,000 steps
TOK=runs/wm_mt10/tokenizer
DATA=data/mw5_c4_96
OUT=runs/mw5
declare -A STEPS=([action_only]=3200 [joint]=1650 [representation]=1780 [inverse_dynamics]=1100)
declare -A ARGS=([action_only]="--tokenizer.path=$TOK" [joint]="--init=$WM" [representation]="--init=$WM"
                 [inverse_dynamics]="--init=$WM")
for v in "${@:-action_only joint representation inverse_dynamics}"; do
  for name in $v; do
    run=$OUT/$name
    if [ ! -f "$run/eval/eval_info.json" ]; then
      OMP_NUM_THREADS=1 .venv/bin/wam train --paradigm="$name" ${ARGS[$name]} --data.path=$DATA --out="$run" \
        --optim.steps="${STEPS[$name]}" --optim.ckpt_every=500
      OMP_NUM_THREADS=1 .venv/bin/wam eval --policy="$run" --episodes=10 --workers=2 --videos=3
    fi
  done
done
