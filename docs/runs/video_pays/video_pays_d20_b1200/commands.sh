# 2026-12-02 09:39 code cdfbdf5; rates.json copied from video_pays_s0 (measured there): representation 39.5, action_only 96.5 samples/s
OMP_NUM_THREADS=1 wam study vp_d20_b1200.yaml --data.path=/work/scratch/data/mw5_c2_128_64 --pretrain_run=/work/scratch/runs/vp/wm_pool_64d4 --out=/work/scratch/runs/studies/video_pays_d20_b1200 --demos=20 --seeds=0 --budget.cpu_seconds=1200
# vp_d20_b1200.yaml = configs/studies/video_pays.yaml less joint, conv_reference, mimic
