#!/usr/bin/env bash
# Planning smoke test (issue 11 item 6; not run in CI): a tiny action-conditioned world model on one easy
# Meta-World task, then the planning policy closed loop, beside the same proposal distribution without a
# choice (1 candidate: the dataset's action statistics, executed blind). Prints success and ms per chunk.
# Sized for a shared 2-core CPU (1 thread a process, ~10 CPU-minutes): it checks `pretrain
# --model.action_chunk -> plan -> eval` end to end; at this size the world model is barely trained, so
# success says little about planning itself.
#
#   bash scripts/planning_smoke.sh        # runs/planning_smoke/plan_n*/eval/eval_info.json
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
PY=${PY:-.venv/bin/python}
OUT=${OUT:-runs/planning_smoke}
DATA=${DATA:-data/planning_smoke}
TASK=${TASK:-drawer-close-v3}
K=${K:-8}                 # actions the world model is conditioned on = the planned chunk
CANDIDATES=${CANDIDATES:-16}
EPISODES=${EPISODES:-5}
WM_STEPS=${WM_STEPS:-300}
[ -f "$DATA/meta/info.json" ] || $PY -m wam collect --tasks=$TASK --episodes=12 --out=$DATA --camera=corner4 \
    --image_size=64 --workers=1
# the imagined horizon is the chunk (future frames 2..K), so the scored last frame follows from the K actions alone
[ -e "$OUT/wm/checkpoints/last" ] || $PY -m wam pretrain --data.path=$DATA --data.image_size=32 \
    --data.val_fraction=0.2 --model.action_chunk=$K --model.future=2,4,6,$K --model.backbone.depth=2 \
    --tokenizer.steps=150 --tokenizer.batch_size=32 --tokenizer.base_channels=16 --optim.steps=$WM_STEPS \
    --optim.batch_size=16 --optim.lr=5e-4 --optim.warmup=50 --optim.ckpt_every=$WM_STEPS \
    --optim.val_every=$WM_STEPS --out=$OUT/wm
for n in 1 $CANDIDATES; do
  $PY -m wam plan --world_model=$OUT/wm --policy.candidates=$n --policy.sample_steps=4 --out=$OUT/plan_n$n
  $PY -m wam eval --policy=$OUT/plan_n$n --episodes=$EPISODES --workers=1 --max_steps=150 --videos=0
done
$PY - "$OUT" "$CANDIDATES" <<'EOF'
import json, sys
out, n = sys.argv[1], sys.argv[2]
print("| candidates | success | 95% CI | ms per chunk |\n|---|---|---|---|")
for c in ("1", n):
    o = json.load(open(f"{out}/plan_n{c}/eval/eval_info.json"))["overall"]
    print(f"| {c} | {o['successes']}/{o['episodes']} | [{o['ci95'][0]:.2f}, {o['ci95'][1]:.2f}] | {o['ms_per_chunk']:.1f} |")
EOF
