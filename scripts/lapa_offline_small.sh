#!/usr/bin/env bash
# Issue 11 item 2, small: LAPA's three stages end to end (codes from action-free video, the backbone predicting
# them, a decoder from codes to actions on the demos), held-out action MSE beside the action-only baseline.
# The setting of scripts/idm_offline_small.sh (2 tasks x 10 demos, 2 held out a task, 32 px, depth-2 world model,
# every policy the same steps); far too small to rank anything: it checks the pipeline and the direction.
#
#   bash scripts/lapa_offline_small.sh       # writes runs/lapa_small/<variant>/eval_offline.json
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/small_setting.sh
OUT=runs/lapa_small
LAM_STEPS=${LAM_STEPS:-300}
COMMON="--data.path=$DATA --data.val_fraction=0.2 --data.image_size=$SIZE --optim.batch_size=16"
mkdir -p "$OUT"
[ -d "$OUT/wm/checkpoints/last" ] || $PY -m wam pretrain --latent_actions=true --lam.steps=$LAM_STEPS $COMMON \
    --tokenizer.steps=$TOK_STEPS --tokenizer.batch_size=32 --tokenizer.base_channels=16 --model.backbone.depth=2 \
    --optim.steps=$WM_STEPS --optim.lr=5e-4 --optim.warmup=50 --optim.ckpt_every=200 --optim.val_every=200 --out=$OUT/wm
run() {  # name, then `wam train` options
  local name=$1; shift
  [ -f "$OUT/$name/eval_offline.json" ] && return
  $PY -m wam train "$@" $COMMON --optim.steps=$STEPS --optim.warmup=30 --optim.ckpt_every=100 \
      --optim.val_every=100 --out=$OUT/$name
  $PY -m wam eval-offline --policy=$OUT/$name --windows_per_episode=8
}
run joint_latent_actions --paradigm=joint --policy.integration=latent_actions --init=$OUT/wm
run inverse_dynamics_latent_actions --paradigm=inverse_dynamics --policy.integration=latent_actions --init=$OUT/wm
run joint_latent_actions_tuned --paradigm=joint --policy.integration=latent_actions --init=$OUT/wm \
    --policy.latent_actions.tune_backbone=true
run action_only --paradigm=action_only --tokenizer.path=$OUT/wm/tokenizer --policy.backbone.depth=2
