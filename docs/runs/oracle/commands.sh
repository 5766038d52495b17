# 2026-12-02, code 67d6fbe (collect --state) + e296dd1 (wilson fix; the first run stopped writing its report, see results.md)
# one process, OMP_NUM_THREADS=1, beside other jobs; paths were under /work/scratch
wam collect --tasks=reach-v3,push-v3,pick-place-v3 --episodes=200 --camera=corner2 --image_size=128 --seed=20000 --workers=1 --out=data/probe3_c2_128   # (the probe's data; not used here)
wam collect --tasks=mw5 --episodes=64 --camera=corner2 --image_size=128 --workers=1 --out=data/mw5_c2_128_64                       # 4.5 min
wam collect --tasks=mw5 --episodes=64 --camera=corner2 --image_size=128 --workers=1 --state=privileged --out=data/mw5_c2_128_64_priv  # 5 min
wam pretrain --data.path=data/mw5_c2_128_64 --data.image_size=64 --tokenizer.downsample=4 --tokenizer.steps=1500 --tokenizer.base_channels=16 --tokenizer.batch_size=64 --model.patch=4 --model.backbone.depth=4 --optim.steps=20 --optim.val_every=20 --optim.ckpt_every=20 --out=runs/oracle/wm_tok   # the tokenizer (~6 min); 20 world-model steps (action-only does not use them)
wam study docs/runs/oracle/oracle.yaml --data.path=data/mw5_c2_128_64_priv --pretrain_run=runs/oracle/wm_tok --demos=5 --seeds=0,1,2 --out=runs/oracle/priv
mkdir -p runs/oracle/proprio && cp runs/oracle/priv/rates.json runs/oracle/proprio/   # the same steps (1,137 at 5 demos)
wam study docs/runs/oracle/oracle.yaml --data.path=data/mw5_c2_128_64 --pretrain_run=runs/oracle/wm_tok --demos=5 --seeds=0,1,2 --out=runs/oracle/proprio
# 2 demos, seed 0: the same two commands with --demos=2 --seeds=0
# tables: cells of both folders linked into one, the privileged ones renamed action_only_privileged
#   python scripts/vp_tables.py --study runs/oracle/combined --demos 5
#   python scripts/vp_tables.py --study runs/oracle/combined --pairs action_only_privileged:action_only --pair_demos 2,5 --pair_plot docs/media/oracle_state_mw5.png
