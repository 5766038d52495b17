cd /work/scratch
export OMP_NUM_THREADS=1 PYTHONPATH=/work/scratch/src_s11b
date
/work/main/.venv/bin/python src_s11b/tokenizer_sweep.py --data data/probe3_c2_128 --out runs/tok_sweep --steps 1500 --only 64_d4_b16_tw30 --probe train_data=data/mw5_c2_128_64 --probe tasks=reach-v3,push-v3,pick-place-v3 --probe stride=16 --probe targets=object,goal --probe pixels=false
date
echo TW_DONE
