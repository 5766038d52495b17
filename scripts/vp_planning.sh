#!/usr/bin/env bash
# Issue 11's planning arm in the video_pays setting (5 labelled demos a task, seed 0, the study's eval protocol):
# 1. action conditioning added to the world model pretrained on the action-free pool (`wam pretrain --init`),
#    fine-tuned on the labelled demos only, as many steps as a representation cell trains (370);
# 2. `wam plan`: the representation cell proposes, N candidates are imagined and scored toward the goal library
#    (last frames of the labelled demos), the best executed;
# 3. `wam eval` as the study evaluates a cell (20 episodes a task, scenes from 10,000, 150 steps at most).
# The planner's training budget is the representation cell's plus the world model's fine-tuning (about twice a
# cell's), and each chunk costs N imaginations: it is not an equal-budget arm; the note says so.
#
#   STUDY=runs/studies/video_pays_s0 WM=runs/vp/wm_pool_64d4 DATA=data/mw5_c2_128_64 OUT=runs/vp_plan \
#     bash scripts/vp_planning.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
PY=${PY:-.venv/bin/python}
STUDY=${STUDY:?the video_pays study folder}; WM=${WM:?the action-free world model}; DATA=${DATA:?labelled demos}
OUT=${OUT:?where the runs go}; N=${CANDIDATES:-16}
PROPOSAL=$STUDY/cells/representation__d5__s0
[ -d "$OUT/wm_act/checkpoints/last" ] || $PY -m wam pretrain --init="$WM" --model.action_chunk=16 \
    --data.path="$DATA" --data.image_size=64 --data.tasks=mw5 --data.episodes_per_task=5 --data.val_fraction=0.1 \
    --optim.steps=370 --optim.lr=0.0003 --optim.warmup=100 --optim.ckpt_every=185 --optim.val_every=185 \
    --out="$OUT/wm_act"
[ -f "$OUT/plan_n$N/plan.yaml" ] || $PY -m wam plan --world_model="$OUT/wm_act" --proposal="$PROPOSAL" \
    --policy.candidates=$N --policy.sample_steps=4 --out="$OUT/plan_n$N"
[ -f "$OUT/plan_n$N/eval/eval_info.json" ] || $PY -m wam eval --policy="$OUT/plan_n$N" --episodes=20 --seed=10000 \
    --workers=1 --max_steps=150 --videos=2
