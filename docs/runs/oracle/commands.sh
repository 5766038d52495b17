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

# 2026-12-02 (eighth session), code f4b37e0 (collect --state=object|goal, layouts by name); one process a core, beside each other
# which of the two the +0.36 is: the goal alone, the object alone (the same 1,137 steps: priv's rates.json)
wam collect --tasks=mw5 --episodes=64 --camera=corner2 --image_size=128 --workers=1 --state=goal --out=data/mw5_c2_128_64_goal      # ~6 min
wam collect --tasks=mw5 --episodes=64 --camera=corner2 --image_size=128 --workers=1 --state=object --out=data/mw5_c2_128_64_object  # ~6 min
mkdir -p runs/oracle/goal runs/oracle/object && cp runs/oracle/priv/rates.json runs/oracle/goal/ && cp runs/oracle/priv/rates.json runs/oracle/object/
wam study docs/runs/oracle/oracle.yaml --data.path=data/mw5_c2_128_64_goal --pretrain_run=runs/oracle/wm_tok --demos=5 --seeds=0,1,2 --out=runs/oracle/goal
wam study docs/runs/oracle/oracle.yaml --data.path=data/mw5_c2_128_64_object --pretrain_run=runs/oracle/wm_tok --demos=5 --seeds=0,1,2 --out=runs/oracle/object
# 20 demos, seed 0, 1,200 CPU-s (3,747 steps at the rate measured here; the proprio arm copies it), code f0cd201
wam study docs/runs/oracle/oracle.yaml --data.path=data/mw5_c2_128_64_priv --pretrain_run=runs/oracle/wm_tok --demos=20 --seeds=0 --budget.cpu_seconds=1200 --out=runs/oracle/priv_d20
mkdir -p runs/oracle/proprio_d20 && cp runs/oracle/priv_d20/rates.json runs/oracle/proprio_d20/
wam study docs/runs/oracle/oracle.yaml --data.path=data/mw5_c2_128_64 --pretrain_run=runs/oracle/wm_tok --demos=20 --seeds=0 --budget.cpu_seconds=1200 --out=runs/oracle/proprio_d20
# tables and the plot: every folder's cells linked into one folder, each arm renamed apart
#   for arm in priv:action_only_privileged goal:action_only_goal object:action_only_object proprio:action_only priv_d20:action_only_privileged proprio_d20:action_only; do
#     for d in runs/oracle/${arm%%:*}/cells/action_only__*; do n=$(basename $d); ln -sfn $PWD/$d runs/oracle/combined8/cells/${n/action_only/${arm##*:}}; done; done
#   for D in 5 2 20; do python scripts/vp_tables.py --study runs/oracle/combined8 --demos $D; done
#   python scripts/vp_tables.py --study runs/oracle/combined8 --pairs action_only_privileged:action_only,action_only_goal:action_only,action_only_object:action_only,action_only_privileged:action_only_goal,action_only_privileged:action_only_object --pair_demos 2,5,20 --pair_plot docs/media/oracle_state_mw5.png
# the conv reference from 64 vs 128 px, equal steps (code baff564; 51 min beside the runs above)
wam study docs/runs/oracle/conv_size.yaml --data.path=data/mw5_c2_128_64 --pretrain_run=runs/oracle/wm_tok --out=runs/oracle/conv_size
#   python scripts/vp_tables.py --study runs/oracle/conv_size --pairs conv128:conv64 --pair_demos 5

# 2026-12-02 (ninth session), code 76bdc96 (policy.aux); one process a core
# teaching the positions instead of giving them: the proprio dataset, an auxiliary head regressing object and goal
# xyz from the current frame's tokens (never an input), the same 1,137 steps (priv's rate copied)
mkdir -p runs/oracle/aux && echo '{"action_only_aux": 121.2995}' > runs/oracle/aux/rates.json
wam study docs/runs/oracle/aux.yaml --data.path=data/mw5_c2_128_64 --pretrain_run=runs/oracle/wm_tok --demos=5 --seeds=0,1,2 --out=runs/oracle/aux
# the head's R^2 on the held-out demos (code 88a7333, `aux_r2`), per seed
for s in 0 1 2; do wam eval-offline --policy=runs/oracle/aux/cells/action_only_aux__d5__s$s --out=runs/oracle/aux/aux_r2_s$s.json; done
# the pair in the plot: the aux cells linked into runs/oracle/combined8 as action_only_aux, then
#   python scripts/vp_tables.py --study runs/oracle/combined8 --pairs action_only_privileged:action_only,action_only_goal:action_only,action_only_object:action_only,action_only_aux:action_only,action_only_privileged:action_only_goal,action_only_privileged:action_only_object --pair_demos 2,5,20 --pair_plot docs/media/oracle_state_mw5.png
# 20 demos, seed 0, the 20-demo oracle arms' steps (code 88a7333)
mkdir -p runs/oracle/aux_d20 && echo '{"action_only_aux": 99.92615}' > runs/oracle/aux_d20/rates.json
wam study docs/runs/oracle/aux.yaml --data.path=data/mw5_c2_128_64 --pretrain_run=runs/oracle/wm_tok --demos=20 --seeds=0 --budget.cpu_seconds=1200 --out=runs/oracle/aux_d20
wam eval-offline --policy=runs/oracle/aux_d20/cells/action_only_aux__d20__s0 --out=runs/oracle/aux_d20/aux_r2_s0.json
# the proprio arm's policies evaluated again after the env reset fix (e4c6bc5): every one of the 300 episodes ends as before
for s in 0 1 2; do wam eval --policy=runs/oracle/proprio/cells/action_only__d5__s$s --episodes=20 --seed=10000 --workers=1 --max_steps=150 --videos=0 --out=runs/oracle/proprio_reeval/s$s; done
# 20 demos, seeds 1 and 2, both arms side by side at the 20-demo rate (code ca5bc18 src; 41 min, 2 cells at a time)
mkdir -p runs/oracle/aux_pair_d20 && echo '{"action_only": 99.92615, "action_only_aux": 99.92615}' > runs/oracle/aux_pair_d20/rates.json
wam study docs/runs/oracle/aux_pair.yaml --data.path=data/mw5_c2_128_64 --pretrain_run=runs/oracle/wm_tok --out=runs/oracle/aux_pair_d20
# the three seeds together (seed 0 from proprio_d20 and aux_d20)
python scripts/vp_tables.py --study runs/oracle/proprio_d20 --study runs/oracle/aux_d20 --study runs/oracle/aux_pair_d20 --demos 20 --base action_only
# 20 demos, seed 0: action-only + aux that also reads every other training episode of each task, actions hidden (code 02131df)
mkdir -p runs/oracle/aux_more_d20 && echo '{"action_only_aux_more": 99.92615}' > runs/oracle/aux_more_d20/rates.json
wam study docs/runs/oracle/aux_more.yaml --data.path=data/mw5_c2_128_64 --pretrain_run=runs/oracle/wm_tok --out=runs/oracle/aux_more_d20
