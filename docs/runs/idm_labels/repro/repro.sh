#!/bin/bash
# Is the rebuilt pool world model's tokenizer the nineteenth session's? The committed action-only + new labels
# seed-0 cell, re-run for its first 20 steps (inside the 100-step warmup, so the LR is the same) with the rebuilt
# tokenizer: its log rows and its action_labels.json against the committed ones.
export OMP_NUM_THREADS=1 PYTHONPATH=/work/scratch/src_s20
cd /work/scratch
while [ ! -e runs/vp/wm_pool_64d4/checkpoints/last ]; do sleep 20; done
C=/work/main/docs/runs/idm_labels/d5ao_idm_v2_b1200/cells/action_only_kp_task_idm2__d5__s0
/work/main/.venv/bin/wam train --config $C/config.yaml --optim.steps=20 --optim.val_every=1000 --optim.ckpt_every=1000 --out=runs/repro_ao_s0
head -3 $C/log.csv; head -3 runs/repro_ao_s0/log.csv
cmp $C/action_labels.json runs/repro_ao_s0/action_labels.json && echo LABELS IDENTICAL
