# issue 12's leftover: the serve closed-loop comparison after the env reset fix (e4c6bc5), code of this session's HEAD
set -euo pipefail
cd /work/scratch
W=/work/main/.venv/bin/wam
P=/work/scratch/runs/oracle/proprio/cells/action_only__d5__s0
O=/work/scratch/runs/serve_s10
E="--episodes=6 --max_steps=150 --videos=0"
$W eval --policy="$P" $E --workers=2 --precision=fp32 --out="$O/local"
OMP_NUM_THREADS=1 $W serve --policy="$P" --precision=fp32 --port=8767 > "$O/serve.log" 2>&1 &
SP=$!
trap 'kill $SP 2>/dev/null' EXIT
for _ in $(seq 60); do curl -sf http://127.0.0.1:8767/health >/dev/null && break; sleep 2; done
$W eval --remote=127.0.0.1:8767 $E --workers=2 --out="$O/remote_sync_w2"
$W eval --remote=127.0.0.1:8767 $E --workers=1 --out="$O/remote_sync_w1"
$W eval --remote=127.0.0.1:8767 $E --workers=2 --threshold=4 --merge=blend --asynchronous=true --out="$O/remote_blend"
$W eval --remote=127.0.0.1:8767 $E --workers=2 --threshold=4 --merge=rtc --asynchronous=true --out="$O/remote_rtc"
/work/main/.venv/bin/python - <<'PY'
import json
O = "/work/scratch/runs/serve_s10"
names = ("local", "remote_sync_w2", "remote_sync_w1", "remote_blend", "remote_rtc")
runs = {k: json.load(open(f"{O}/{k}/eval_info.json")) for k in names}
key = lambda e: (e["task"], e["seed"])
base = {key(e): e for e in runs["local"]["episodes"]}
for k, info in runs.items():
    eps = info["episodes"]
    same = sum(base[key(e)]["action_digest"] == e["action_digest"] for e in eps)
    ok = sum(bool(e["success"]) for e in eps)
    print(f"{k}: success {ok}/{len(eps)}, action digests equal to local {same}/{len(eps)}")
PY
echo SERVE_DONE
