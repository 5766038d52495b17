# twelfth session, 2026-12-03, code at the session's HEAD; run from /work/scratch with the repo's venv
export OMP_NUM_THREADS=1 PYTHONPATH=/work/main/src
python goal_spread.py              # -> goal_spread.log
python single_view_ceiling.py      # -> single_view_ceiling.log
python kp_probe.py 128 c3 600 all  # -> kp_probe.log (first block)
python kp_probe.py 64 cf 600 all   # -> kp_probe.log (second block)
python kp_probe.py 64 dil 600 all  # -> kp_probe.log (third line; stopped after pick-place: 172 s a task)

# thirteenth session, 2026-12-03: the scratch folder was lost with the machine, so the data and the pool world model
# were built again with the same commands (docs/results.md section 5); study code bea789e (e799484 + eval-offline's
# xyz_r2), copied to src_s13; each study one cell at a time with OMP_NUM_THREADS=1, two studies side by side
wam collect --tasks=mw5 --episodes=64 --camera=corner2 --image_size=128 --out=data/mw5_c2_128_64                      # 2.7 min
cp -r data/mw5_c2_128_64 data/pool_c2_128 && wam collect --tasks=door-open,drawer-close,peg-insert-side,window-open,\
  window-close,button-press,plate-slide,faucet-open,handle-press,coffee-button --episodes=50 --camera=corner2 \
  --image_size=128 --workers=2 --out=data/pool_c2_128                                                 # 6.7 min
wam pretrain --data.path=data/pool_c2_128 --data.image_size=64 --tokenizer.downsample=4 --tokenizer.steps=1500 \
  --tokenizer.base_channels=16 --model.patch=4 --model.backbone.depth=4 --optim.steps=3000 --optim.lr=0.0005 \
  --optim.warmup=200 --optim.val_every=500 --optim.ckpt_every=250 --out=runs/vp/wm_pool_64d4  # 55 min beside CI and a study; val loss 0.0192
# one study folder a variant: kp_d5ao, kp_d5rep, kp3_d20a, kp_d5more0..2 (their study.yaml names the out folder);
# rates.json copied in first: representation 39.5054, action-only 96.46415 samples/s, the rates of video_pays_s0,
# so the steps are those of every earlier 5- and 20-demo cell (370 / 904 at 300 CPU-s, 1,481 at 1,200); kp_d5eq*:
# the representation arm with action-only's rate, so 904 steps (equal steps, 2.4x the CPU); kp_d5nv*: the
# representation arm with policy.video_weight=0 (no video loss in fine-tuning), 370 steps
for s in kp_d5ao kp_d5rep kp3_d20a kp_d5more0 kp_d5more1 kp_d5more2 kp_d5eq0 kp_d5eq1 kp_d5nv0 kp_d5nv1; do
  out=$(grep '^out:' $s/study.yaml | cut -d' ' -f2); mkdir -p $out && cp $s/rates.json $out/
  wam study $s/study.yaml --data.path=data/mw5_c2_128_64 --pretrain_run=runs/vp/wm_pool_64d4
done
python kp_xyz_probe.py runs/vp_kp_d5ao/cells/action_only_kp_world__d5__s0 data/mw5_c2_128_64        # -> kp_xyz_probe.log
python kp_xyz_probe.py runs/vp_kp_d20a/cells/representation_kp_world__d20__s0 data/mw5_c2_128_64   # -> kp_xyz_probe.log (second block)

# fourteenth session, 2026-12-03: the per-task lift (`policy.keypoints.per_task=true`, code 227631d copied to src_s14;
# later commits before the session's end changed no behaviour); the same data and world model as the thirteenth
# session's; the same rates (so the same steps); two studies side by side, OMP_NUM_THREADS=1
python lift_choice.py runs/vp_kp_d5ao/cells/action_only_kp_world__d5__s0 data/mw5_c2_128_64              # -> lift_choice.log
python lift_choice.py runs/vp_kp_d20a/cells/representation_kp_world__d20__s0 data/mw5_c2_128_64        # (second block)
for s in kpt_d20ao kpt_d20rep kpt_d5ao kpt_d5rep kpt_d5aopre kpt_d20rep_s1 kpt_d20ao_s1 kpt_d5vw; do
  out=$(grep '^out:' $s/study.yaml | cut -d' ' -f2); mkdir -p $out && cp $s/rates.json $out/
  wam study $s/study.yaml --data.path=data/mw5_c2_128_64 --pretrain_run=runs/vp/wm_pool_64d4
done   # 20 demos: 28-32 min a cell, 5 demos: ~12 (two side by side)

# fifteenth session, 2026-12-03: MoT over the monolithic world model (`policy.backbone.mot=true`, code 7349e43 copied
# to src_s15; `policy.action_expert=copy|fresh`) and inverse dynamics with and without the other training episodes
# (actions hidden); the same data, world model and scenes; representation's rate for the MoT arms (a MoT step measured
# 0.95x a monolithic one, same process, 1 thread: mot_rate.py, run from the folder that holds runs/vp, so the same 370 steps), inverse dynamics'
# own (22.7342 samples/s: 213 steps); two studies side by side, OMP_NUM_THREADS=1
for s in kpt_d5mot kpt_d5motf kpt_d5idm kpt_d5idmmore kpt_d20motf kpt_d5motf_s2 kpt_d5vw_s2 kpt_d20motf_s1 kpt_d20motf_s2; do
  out=$(grep '^out:' $s/study.yaml | cut -d' ' -f2); mkdir -p $out && cp $s/rates.json $out/
  wam study $s/study.yaml --data.path=data/mw5_c2_128_64 --pretrain_run=runs/vp/wm_pool_64d4
done   # MoT: 5-demo cells ~12 min, 20-demo ~30; inverse dynamics ~20; kpt_d5idmmore was stopped after seed 0
# tables: the `python scripts/vp_tables.py` lines in docs/results.md section 5 (MoT, inverse dynamics, video_weight)

# sixteenth session, 2026-12-03: a second camera for the keypoint stream (code 3b535f1 copied to src_s16w;
# `wam collect --views`, `policy.keypoints.views`). The two-view ceiling first (exact projections, no training):
python two_view_ceiling.py data/mw5_c2_128_64                                                      # -> two_view_ceiling.log
# the same 320 scenes (seeds 0.. a task, the same first 64 successes) filmed by corner2 and corner; 1 worker, 15 min
# beside two studies. corner2's frames are bit-identical to data/mw5_c2_128_64's for a scene; the episode order within
# a task differs (1 worker vs 2), so the first 20 labelled demos a task are not the same 20 as the one-camera cells'.
wam collect --tasks=mw5 --episodes=64 --out=data/mw5_c2c_128 --camera=corner2 --views=corner --image_size=128 --workers=1 --seed=0
# MoT (fresh action expert) and action-only, each with the per-task stream read from both cameras; the same world
# model (corner2 only), rates and scenes as the fifteenth session's 20-demo cells; and two one-camera MoT arms on the
# old data: at action-only's 3,617 steps (rates.json says action-only's rate: 2.4x the CPU) and with video_weight 0.1
for s in kpt_d20motfeq kpt_d20motfvw; do
  out=$(grep '^out:' $s/study.yaml | cut -d' ' -f2); mkdir -p $out && cp $s/rates.json $out/
  wam study $s/study.yaml --data.path=data/mw5_c2_128_64 --pretrain_run=runs/vp/wm_pool_64d4
done
for s in kpt_d20motf2v kpt_d20ao2v kpt_d20motf2v_s1; do
  out=$(grep '^out:' $s/study.yaml | cut -d' ' -f2); mkdir -p $out && cp $s/rates.json $out/
  wam study $s/study.yaml --data.path=data/mw5_c2c_128 --pretrain_run=runs/vp/wm_pool_64d4
done   # two lanes side by side (OMP_NUM_THREADS=1); the detector on two views: ~7.5 min of a cell

# seventeenth session, 2026-12-03: the code at 84eb97f (src_s17: the detector's fit seeded by the cell alone, so the
# two arms of a seed share one detector). Two lanes side by side, OMP_NUM_THREADS=1, ~20 min a 5-demo cell:
#   lane a: kpt_d5motf2v (seeds 0-2), then kpt_d20motf2v_s2;  lane b: kpt_d5ao2v (seeds 0-2), then kpt_d20ao2v_s2
for s in kpt_d5motf2v kpt_d5ao2v kpt_d20motf2v_s2 kpt_d20ao2v_s2; do
  out=$(grep '^out:' $s/study.yaml | cut -d' ' -f2); mkdir -p $out && cp $s/rates.json $out/
  wam study $s/study.yaml --data.path=data/mw5_c2c_128 --pretrain_run=runs/vp/wm_pool_64d4
done
# the inverse-dynamics labels of the action-free episodes, offline (~12 min beside two cells; docs/runs/idm_labels)
OMP_NUM_THREADS=1 python docs/runs/idm_labels/label_quality.py --data data/mw5_c2c_128 --out idm_labels

# eighteenth session, 2026-12-03: actions inferred for the action-free episodes (`data.actionless_actions=
# inverse_dynamics`, code b65719a copied to src_s18b; the demos-only control d5ao runs the same code path at 69cc47f,
# src_s18a). Studies in docs/runs/idm_labels/<name>/ (rates.json copied into each out folder first). Two lanes,
# OMP_NUM_THREADS=1, from /work/scratch:
#   lane a: d5ao (seeds 0-2, action-only on the 5 demos only, hand+object+goal stream), then d5ao_idm (seeds 0, 1)
#   lane b: d5motf (seeds 0-2, MoT fresh + inferred actions), then d5ao_idm_s2 (seed 2)
REPO=/work/main  # the repository's root
idm_cells() {  # run (or resume) the committed idm_labels study folders named, one after another, reusing the data,
  # the pool world model and each folder's rates.json (so every cell gets the steps its arm was given)
  for s in "$@"; do
    d=$REPO/docs/runs/idm_labels/$s; out=$(grep '^out:' $d/study.yaml | cut -d' ' -f2); mkdir -p $out && cp $d/rates.json $out/
    wam study $d/study.yaml --data.path=data/mw5_c2c_128 --pretrain_run=runs/vp/wm_pool_64d4
  done
}
idm_cells d5ao d5motf d5ao_idm d5ao_idm_s2
# the 300 CPU-s studies were stopped after d5ao's seeds 0, 1 and d5motf's seed 0 (the MoT cell gained nothing at 370
# steps); then the same arms at 1,200 CPU-s (the 20-demo budget), two lanes:
#   lane a: d5ao_b1200 (seed 0), d5ao_idm_b1200 (seed 0), d5ao_b1200_s1;  lane b: d5motf_b1200 (seeds 0, 1), d5ao_idm_b1200_s1
idm_cells d5ao_b1200 d5ao_idm_b1200 d5ao_b1200_s1 d5motf_b1200 d5ao_idm_b1200_s1

# nineteenth session, 2026-12-04: a third seed for the 1,200 CPU-s arms (code d9c16e7, src_s19: the eighteenth
# session's labels, 8 frames ahead, not clipped), then the same MoT arm with the labels of 7c04abb (4 frames behind
# too, clipped to the demos' range; src_s19b, `labels.ahead: 8`, `labels.behind: 4` in the variant's overrides) at
# seeds 0-2, and action-only with them at seed 0. Two lanes, OMP_NUM_THREADS=1, from /work/scratch:
#   lane a: d5motf_b1200_s2, d5motf_v2_b1200 (seed 0), d5ao_idm_v2_b1200 (seed 0)
#   lane b: d5ao_b1200_s2, d5motf_v2_b1200_s1, d5motf_v2_b1200_s2
idm_cells d5motf_b1200_s2 d5ao_b1200_s2 d5motf_v2_b1200 d5motf_v2_b1200_s1 d5motf_v2_b1200_s2 d5ao_idm_v2_b1200
# the labels' settings, offline (~10 min beside two cells; docs/runs/idm_labels/label_config.json)
OMP_NUM_THREADS=1 python docs/runs/idm_labels/label_config.py --data data/mw5_c2c_128 --cache idm_labels/xyz_d5_s0.npz

# twentieth session, 2026-12-04: the scratch folder was lost again, so data/mw5_c2c_128 (the sixteenth session's
# command above, 1 worker: its labels came out byte-identical), data/pool_c2_128 and the pool world model were built
# again with the thirteenth session's commands; the world model was stopped at its first checkpoint (step 250) since
# only its tokenizer and config serve an action-only cell (no MoT cell ran). Is that tokenizer the old one? The
# committed action-only + new labels seed-0 cell re-run for 20 steps (inside its warmup) with it
# (/work/scratch/s20/repro.sh): action_labels.json byte-identical; train loss 1.32722 / 1.21874 at steps 10 / 20
# against the committed 1.32719 / 1.2187: the rebuilt tokenizer is close, not bit-identical.
# Code f1d65b1 (src_s20). Two lanes, OMP_NUM_THREADS=1, from /work/scratch (lane_a20.sh). Both lanes and repro.sh
# started together on the fresh data and decoded the same frame cache at once: lane b's first study died of SIGBUS
# (the cache bug fixed in 6518581) and its lane went on to d2ao_idm_v2_b1200; d5ao_idm_v2_b1200_s2 ran last. Order:
#   lane a: d5ao_idm_v2_b1200_s1, then d5ao_idm_v2_b1200_s2;  lane b: d2ao_idm_v2_b1200, then d2ao_b1200
idm_cells d5ao_idm_v2_b1200_s1 d5ao_idm_v2_b1200_s2 d2ao_b1200 d2ao_idm_v2_b1200

# twenty-first session, 2026-12-04: the scratch folder was lost again before the twentieth session's last two cells
# were gathered, so the data, the pool and the tokenizer were built again as in the twentieth session (rebuild.sh:
# the sixteenth and thirteenth sessions' commands above, the world model stopped at its first checkpoint), and the two
# cells run again from scratch with code 3558c43 (src_s21: 0fdeda4 + the frame cache's orphan sweep and
# setup_cost.json, neither of which changes what trains). Two lanes, OMP_NUM_THREADS=1, from /work/scratch
# (lanes21.sh), the second started 4 minutes after the first so that only one decodes the fresh frame cache:
#   lane a: d5ao_idm_v2_b1200_s2;  lane b: d2ao_b1200
idm_cells d5ao_idm_v2_b1200_s2 d2ao_b1200
# the same 20-step re-run as the twentieth session's repro.sh, with this session's rebuilt tokenizer; beside the lanes
# (docs/runs/idm_labels/repro/repro21.log: labels byte-identical; losses those of the twentieth session's rebuild)
C=$REPO/docs/runs/idm_labels/d5ao_idm_v2_b1200/cells/action_only_kp_task_idm2__d5__s0
wam train --config $C/config.yaml --optim.steps=20 --optim.val_every=1000 --optim.ckpt_every=1000 --out=runs/repro21_ao_s0
# then seed 1 of both 2-demo arms (copies of the two study folders with `seeds: [1]` and their own out), side by side
idm_cells d2ao_b1200_s1 d2ao_idm_v2_b1200_s1

# twenty-second session, 2026-12-04: the scratch folder survived this time. The two seed-1 cells' evaluations, cut
# off at the twenty-first session's end, were run again by re-running the same loop (lanes21b.sh: `wam study` resumes
# a cell whose training finished and evaluates it from the first episode). Then (lanes22.sh, code 09e6887 in
# src_s22, whose changes since 3558c43 do not touch single-process training): lane a resumed the pool world model
# from its step-250 checkpoint with the thirteenth session's command (3,000 steps, val loss 0.01923; the thirteenth
# session's 0.0192) and ran the MoT + labels 2-demo cell; lane b ran seed 2 of both 2-demo action-only arms
wam pretrain --data.path=data/pool_c2_128 --data.image_size=64 --tokenizer.downsample=4 --tokenizer.steps=1500 \
  --tokenizer.base_channels=16 --model.patch=4 --model.backbone.depth=4 --optim.steps=3000 --optim.lr=0.0005 \
  --optim.warmup=200 --optim.val_every=500 --optim.ckpt_every=250 --out=runs/vp/wm_pool_64d4  # 61 min beside a cell
idm_cells d2motf_v2_b1200   # lane a, after the world model
idm_cells d2ao_b1200_s2 d2ao_idm_v2_b1200_s2   # lane b

# twenty-third session, 2026-12-04: the scratch folder survived again. Seeds 1 and 2 of the MoT + labels 2-demo cell,
# started at the twenty-second session's end and killed with it during their keypoint fits, were run again from the
# start with the same loop (lanes22b.sh, code 09e6887 in src_s22), side by side (a clean-clone CI ran beside them for
# 37 min of their training, so their wall time says little)
idm_cells d2motf_v2_b1200_s1 d2motf_v2_b1200_s2

# twenty-fourth session, 2026-12-04: the twenty-third session's `video_only_tasks` re-run (configs/studies as is: 4
# tasks' settings on MT10, the 64 px tokenizer that erases the small objects) was dropped before its pretraining ended,
# for the study below, which gives the video-only tasks the routes that paid at 2 demos (keypoint stream, labels
# inferred from the video, the pool world model that already saw all ten MT10 tasks' video). Its data (5 min):
wam collect --tasks=mt10 --episodes=24 --camera=corner2 --views=corner --image_size=128 --workers=2 --out=data/mt10_c2c_128
# seed 0, two cells side by side, 1 thread each (vokp24.sh; code 94abb1b in src_s24: the rate measurement's 1-step
# fits, 9aa01f3, and the detector kept in the dataset's cache, 94abb1b; neither changes what a cell trains)
OMP_NUM_THREADS=1 wam study configs/studies/video_only_tasks_kp.yaml --data.path=data/mt10_c2c_128 \
  --pretrain_run=runs/vp/wm_pool_64d4 --seeds=0 --parallel=2 --eval.workers=1 --out=runs/vokp
# seed 1 in its own folder (the seed-0 folder stays locked by its study until its last cell ends), started when
# the seed-0 MoT cell had finished (chain24b.sh), with seed 0's rates so that every arm gets seed 0's steps
mkdir -p runs/vokp_s1 && cp runs/vokp/rates.json runs/vokp_s1/
OMP_NUM_THREADS=1 wam study configs/studies/video_only_tasks_kp.yaml --data.path=data/mt10_c2c_128 \
  --pretrain_run=runs/vp/wm_pool_64d4 --seeds=1 --parallel=2 --eval.workers=1 --out=runs/vokp_s1
# tables and plot (docs/results.md 4.3b), from the two study folders
T="python scripts/vp_tables.py --study runs/vokp --study runs/vokp_s1 --demos 5 --base action_only_kp"
$T; $T --tasks window-open,window-close --title "video_only_tasks_kp, video-only tasks" \
  --plot docs/media/video_only_tasks_kp.png
python scripts/vp_tables.py --study runs/vokp --study runs/vokp_s1 --pair_demos 5 --tasks window-open,window-close \
  --pairs action_only_kp_idm:action_only_kp,representation_kp_motfresh_idm:action_only_kp,representation_kp_motfresh_idm:action_only_kp_idm,inverse_dynamics_kp:action_only_kp

# twenty-fifth session, 2026-12-05: seed 2 of video_only_tasks_kp (started at the last session's end, killed with
# it during the keypoint fits, before any training; re-run whole: vokp_s2.sh, code 94abb1b as seeds 0-1; 48 min)
mkdir -p runs/vokp_s2 && cp runs/vokp/rates.json runs/vokp_s2/
OMP_NUM_THREADS=1 wam study configs/studies/video_only_tasks_kp.yaml --data.path=data/mt10_c2c_128 \
  --pretrain_run=runs/vp/wm_pool_64d4 --seeds=2 --parallel=2 --eval.workers=1 --out=runs/vokp_s2
# tables and plot over the three seeds (docs/results.md 4.3b)
S="--study runs/vokp --study runs/vokp_s1 --study runs/vokp_s2"
T="python scripts/vp_tables.py $S --demos 5 --base action_only_kp"
$T; $T --tasks window-open,window-close --title "video_only_tasks_kp, video-only tasks" \
  --plot docs/media/video_only_tasks_kp.png
python scripts/vp_tables.py $S --pair_demos 5 --tasks window-open,window-close \
  --pairs action_only_kp_idm:action_only_kp,representation_kp_motfresh_idm:action_only_kp,representation_kp_motfresh_idm:action_only_kp_idm,inverse_dynamics_kp:action_only_kp
python scripts/vp_tables.py $S --pair_demos 5 \
  --tasks button-press-topdown,door-open,drawer-close,drawer-open,peg-insert-side,pick-place,push,reach \
  --pairs action_only_kp_idm:action_only_kp,representation_kp_motfresh_idm:action_only_kp_idm
# language_grounding_one_scene (docs/results.md 4.4b): the keypoint stream with the pooled lift added before it first
# ran (5cd2f0c); code 38812b6 (src_s25); seeds 0 and 1 done at the session's end (1 h 40 min), seed 2 running
OMP_NUM_THREADS=1 wam study configs/studies/language_grounding_one_scene.yaml --data.path=data/mw5_c2c_128 \
  --pretrain_run=runs/vp/wm_pool_64d4 --parallel=2 --eval.workers=1 --out=runs/lg1
# its tables and plot (lg_tables.sh): the training-instruction evaluation read as `<variant>_instr`
P="python scripts/vp_tables.py --study runs/lg1 --also eval_paraphrase-1=_instr"
$P --demos 20 --base action_only_kp; $P --demos 20 --base action_only_kp --tasks reach,pick-place \
  --title "language_grounding_one_scene, reach + pick-place" --plot docs/media/language_grounding_one_scene.png
R=representation_kp; S=representation_kp_scratch; A=action_only_kp
PAIRS="$R:$S,$R:$A,$S:$A,$R:${R}_instr,$S:${S}_instr,$A:${A}_instr,${R}_instr:${S}_instr,$R-${R}_instr:$S-${S}_instr,$R-${R}_instr:$A-${A}_instr"
$P --pair_demos 20 --pairs $PAIRS; $P --pair_demos 20 --pairs $PAIRS --tasks reach,pick-place

# twenty-sixth session, 2026-12-05: the scratch folder was lost again with seed 2's action-only cell of
# language_grounding_one_scene unfinished. Rebuilt with the commands above (code f2153b4's src in src_s26, two lanes,
# OMP_NUM_THREADS=1; laneA.sh / laneB.sh): data/mw5_c2_128_64 and data/pool_c2_128 (thirteenth session), the pool
# world model wm_pool_64d4 (3,000 steps, 59 min), data/mw5_c2c_128 (sixteenth), data/mt10_c2c_128 (twenty-fourth).
# The action-only cell (it reads the world model's tokenizer, not its weights) ran on a copy of the world model's
# folder taken at its first checkpoint (runs/vp/wm_tok), with the committed seed-2 cells copied into the study folder
# (a cell whose evaluations are all written counts as finished) and the committed rates.json (so 1,551 steps again):
mkdir -p runs/lg1/cells && cp $REPO/docs/runs/studies/language_grounding_one_scene/rates.json runs/lg1/ \
  && cp -r $REPO/docs/runs/studies/language_grounding_one_scene/cells/* runs/lg1/cells/
OMP_NUM_THREADS=1 wam study configs/studies/language_grounding_one_scene.yaml --data.path=data/mw5_c2c_128 \
  --pretrain_run=runs/vp/wm_tok --seeds=2 --parallel=1 --eval.workers=1 --out=runs/lg1   # 34 min
# then the same command without --seeds (every cell finished: it only writes summary.json and the report over 9 cells);
# the tables and plot of docs/results.md 4.4b from the committed folder:
P="python scripts/vp_tables.py --study docs/runs/studies/language_grounding_one_scene --also eval_paraphrase-1=_instr"
$P --demos 20 --base action_only_kp; $P --demos 20 --base action_only_kp --tasks reach,pick-place \
  --title "language_grounding_one_scene, reach + pick-place" --plot docs/media/language_grounding_one_scene.png
$P --pair_demos 20 --pairs $PAIRS; $P --pair_demos 20 --pairs $PAIRS --tasks reach,pick-place
# the MoT WAM at action-only's steps for video_only_tasks_kp (`representation_kp_motfresh_idm_steps`, steps_of), seeds 0
# and 1 side by side on the rebuilt world model and data/mt10_c2c_128 (vokp_seed.sh): each seed's committed cells
# copied into its study folder so that only the new arm trains (its own rate is measured first; 52 min a cell)
mkdir -p runs/vokp/cells && cp $REPO/docs/runs/studies/video_only_tasks_kp/rates.json runs/vokp/ \
  && cp -r $REPO/docs/runs/studies/video_only_tasks_kp/cells/* runs/vokp/cells/
OMP_NUM_THREADS=1 wam study configs/studies/video_only_tasks_kp.yaml --data.path=data/mt10_c2c_128 \
  --pretrain_run=runs/vp/wm_pool_64d4 --seeds=0 --parallel=1 --eval.workers=1 --out=runs/vokp
# seed 1 the same with _s1 (folder runs/vokp_s1, cells from video_only_tasks_kp_s1, seed 0's rates.json); its tables:
S="--study docs/runs/studies/video_only_tasks_kp --study docs/runs/studies/video_only_tasks_kp_s1 --study docs/runs/studies/video_only_tasks_kp_s2"
M=representation_kp_motfresh_idm; E=${M}_steps; A=action_only_kp
python scripts/vp_tables.py $S --demos 5 --base $A --tasks window-open,window-close; python scripts/vp_tables.py $S --demos 5 --base $A
python scripts/vp_tables.py $S --pair_demos 5 --tasks window-open,window-close --pairs $E:${A}_idm,$E:$M,$E:$A,$M:${A}_idm
python scripts/vp_tables.py $S --pair_demos 5 --pairs $E:${A}_idm,$E:$M,$E:$A \
  --tasks button-press-topdown,door-open,drawer-close,drawer-open,peg-insert-side,pick-place,push,reach
