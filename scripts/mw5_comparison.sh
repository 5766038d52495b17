#!/usr/bin/env bash
# Issue 4's measured comparison on mw5 (reach, button-press-topdown, drawer-open, push, pick-place):
# the same 18 training demos a task (20 collected, 2 held out for validation), the same frame tokenizer,
# the same backbone shape, and the same CPU training budget for every variant: steps = 720 s x the
# variant's training samples/s (2 threads, idle machine) / batch 32, from benchmarks/paradigm_speed.py
# (block of 2026-11-25 16:24, commit 7682bac). Hierarchical was not in that block: its rate is estimated
# from its FLOPs per sample (1.60 GFLOP vs joint's 1.91, torch FlopCounterMode) at joint's GFLOP/s.
# conv_reference (the outside pixel policy) was added later: 3200 x its samples/s relative to action-only,
# 1.47 (1.40-1.56), measured interleaved with action-only in one process (1 thread, batch 32).
# Each variant is then evaluated on 10 episodes a task (50) with `wam eval` (scene seeds from 10,000).
#
#   wam collect --tasks=mw5 --episodes=20 --out=data/mw5_c4_96 --camera=corner4 --image_size=96 --workers=1
#   bash scripts/mw5_comparison.sh [VARIANT ...]     # default: all; 2 variants at a time
#
# Every process runs one thread: on 2 shared cores, two processes spinning 2 OpenMP threads each slow
# down ~20x. A variant whose eval_info.json exists is skipped; an interrupted training resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
WM=runs/wm_mt10_long          # `wam pretrain --config configs/pretrain_mt10.yaml` (action-free, mt10), 4,000 steps
TOK=runs/wm_mt10/tokenizer
DATA=data/mw5_c4_96
OUT=runs/mw5
export OMP_NUM_THREADS=1

one() {  # train + evaluate one variant
  local name=$1 steps args paradigm=$1
  case $name in
    action_only)      steps=3200; args="--tokenizer.path=$TOK" ;;
    joint)            steps=1650; args="--init=$WM" ;;
    representation)   steps=1780; args="--init=$WM" ;;
    inverse_dynamics) steps=1100; args="--init=$WM" ;;
    hierarchical)     steps=2000; args="--init=$WM" ;;
    conv_reference)   steps=4700; args="" ;;  # 1.47x action-only's samples/s, measured interleaved in one process
    # the matched ablations of the joint paradigm (same steps: same FLOPs per sample)
    joint_no_video)   steps=1650; paradigm=joint; args="--init=$WM --policy.video_weight=0" ;;
    joint_scratch)    steps=1650; paradigm=joint; args="--tokenizer.path=$TOK" ;;
    *) echo "unknown variant $name" >&2; return 2 ;;
  esac
  [ -f "$OUT/$name/eval/eval_info.json" ] && return 0
  .venv/bin/wam train --paradigm="$paradigm" $args --data.path=$DATA --out="$OUT/$name" \
    --optim.steps="$steps" --optim.ckpt_every=500 > "logs/mw5_$name.train.log" 2>&1
  .venv/bin/wam eval --policy="$OUT/$name" --episodes=10 --workers=1 --videos=3 > "logs/mw5_$name.eval.log" 2>&1
  echo "$name done: $(python3 -c "import json;o=json.load(open('$OUT/$name/eval/eval_info.json'))['overall'];print(o['success'], o['ci95'])")"
}
export -f one
export WM TOK DATA OUT
mkdir -p logs
printf '%s\n' ${@:-joint representation hierarchical inverse_dynamics action_only conv_reference joint_no_video joint_scratch} | xargs -P 2 -I{} bash -c 'one {}'
