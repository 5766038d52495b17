# The small offline setting shared by scripts/idm_offline_small.sh and scripts/lapa_offline_small.sh (sourced,
# from the repository root): 2 tasks x 10 demos collected at 64 px into data/idm_small, frames resized to
# $SIZE, the same policy / world-model / tokenizer steps. Every value can be overridden from the environment.
export OMP_NUM_THREADS=1
PY=${PY:-.venv/bin/python}
DATA=data/idm_small
TASKS=${TASKS:-button-press-topdown-v3,drawer-open-v3}
STEPS=${STEPS:-150}      # policy steps
WM_STEPS=${WM_STEPS:-200}
TOK_STEPS=${TOK_STEPS:-150}
SIZE=${SIZE:-32}         # frames resized for the tokenizer (collected at 64)
[ -f "$DATA/meta/info.json" ] || $PY -m wam collect --tasks=$TASKS --episodes=10 --out=$DATA --camera=corner4 \
    --image_size=64 --workers=1
