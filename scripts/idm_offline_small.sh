#!/usr/bin/env bash
# Issue 11's small re-run of docs/results.md section 2 ("real vs imagined future", offline) with the faithful
# inverse dynamics, beside the future-conditioned policy (the old `inverse_dynamics`) and the hierarchical
# executor with offsets. A quickstart-sized setting on a shared 2-core CPU (1 thread a process): 2 tasks x 10
# demos (2 held out a task), a 32 px tokenizer, a depth-2 world model, every policy the same steps from it.
# Far too small to say anything about the paradigms' real standing: it checks the pipeline end to end and
# gives the direction of "real vs imagined future" for a barely trained world model.
#
#   bash scripts/idm_offline_small.sh        # writes runs/idm_small/<variant>/eval_offline.json
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/small_setting.sh
OUT=runs/idm_small
mkdir -p "$OUT"
[ -d "$OUT/wm/checkpoints/last" ] || $PY -m wam pretrain --data.path=$DATA --data.image_size=$SIZE \
    --data.val_fraction=0.2 --tokenizer.steps=$TOK_STEPS --tokenizer.batch_size=32 --tokenizer.base_channels=16 \
    --model.backbone.depth=2 --optim.steps=$WM_STEPS --optim.batch_size=16 --optim.lr=5e-4 --optim.warmup=50 \
    --optim.ckpt_every=200 --optim.val_every=200 --out=$OUT/wm
for v in inverse_dynamics future_conditioned hierarchical mimic; do
  [ -f "$OUT/$v/eval_offline.json" ] && continue
  $PY -m wam train --paradigm=$v --init=$OUT/wm --data.path=$DATA --data.val_fraction=0.2 --data.image_size=$SIZE \
      --optim.steps=$STEPS --optim.batch_size=16 --optim.warmup=30 --optim.ckpt_every=100 --optim.val_every=100 \
      --out=$OUT/$v
  $PY -m wam eval-offline --policy=$OUT/$v --given_future=real --windows_per_episode=8
done
# the action-only baseline for scale: same steps and backbone shape, the world model's tokenizer, no --init
# (as scripts/mw5_comparison.sh)
if [ ! -f "$OUT/action_only/eval_offline.json" ]; then
  $PY -m wam train --paradigm=action_only --tokenizer.path=$OUT/wm/tokenizer --policy.backbone.depth=2 \
      --data.path=$DATA --data.val_fraction=0.2 --data.image_size=$SIZE --optim.steps=$STEPS --optim.batch_size=16 \
      --optim.warmup=30 --optim.ckpt_every=100 --optim.val_every=100 --out=$OUT/action_only
  $PY -m wam eval-offline --policy=$OUT/action_only --windows_per_episode=8
fi
