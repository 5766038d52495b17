#!/usr/bin/env bash
# Issue 14's closed-loop comparison: one policy on mw5, local synchronous eval vs the same policy through
# `wam serve` (synchronous, then asynchronous chunked control joined by blending and by RTC), same seeds.
#   bash scripts/serve_closed_loop.sh DATASET OUT      (e.g. a `wam collect --tasks=mw5` dataset)
# As run for docs/serving.md: DATASET = mw5, corner2, 128 px, 24 demos a task; the policy was stopped at
# its step-500 checkpoint (of 1000 planned) to fit the session; then the four evals below.
set -euo pipefail
D=${1:?usage: serve_closed_loop.sh DATASET OUT}; P=${2:?usage: serve_closed_loop.sh DATASET OUT}
W=.venv/bin/wam
[ -f "$P/checkpoints/last" ] || $W train --paradigm=representation --data.path="$D" --data.image_size=64 \
   --tokenizer.steps=300 --optim.steps=1000 --optim.ckpt_every=500 --out="$P"
$W eval --policy="$P" --episodes=6 --workers=2 --precision=fp32 --out="$P/eval_local"
OMP_NUM_THREADS=1 $W serve --policy="$P" --precision=fp32 --port=8765 > "$P/serve.log" 2>&1 &
SP=$!
trap 'kill $SP 2>/dev/null' EXIT
for _ in $(seq 60); do curl -sf http://127.0.0.1:8765/health >/dev/null && break; sleep 2; done
$W eval --remote=127.0.0.1:8765 --episodes=6 --workers=2 --out="$P/eval_remote_sync"
$W eval --remote=127.0.0.1:8765 --episodes=6 --workers=2 --threshold=4 --merge=blend --asynchronous=true --out="$P/eval_remote_blend"
$W eval --remote=127.0.0.1:8765 --episodes=6 --workers=2 --threshold=4 --merge=rtc --asynchronous=true --out="$P/eval_remote_rtc"
