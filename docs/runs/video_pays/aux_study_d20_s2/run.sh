cd /work/scratch
export OMP_NUM_THREADS=1 PYTHONPATH=/work/scratch/src_s11
/work/main/.venv/bin/wam study vp_aux_d20.yaml --data.path=data/mw5_c2_128_64 --pretrain_run=runs/vp/wm_pool_64d4 --demos=20 --seeds=2 --budget.cpu_seconds=1200 --parallel=1 --out=runs/vp_aux_d20_s2
echo S2_DONE
