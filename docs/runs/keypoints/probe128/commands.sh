cd /work/scratch
export OMP_NUM_THREADS=1 PYTHONPATH=/work/scratch/src_s16x
rm -rf runs/probe128
/work/main/.venv/bin/wam train --paradigm=action_only --data.path=data/mw5_c2c_128 --data.episodes_per_task=20 --data.tasks=mw5 \
  --data.image_size=64 --tokenizer.steps=10 --optim.steps=10 --optim.batch_size=8 --out=runs/probe128 \
  --policy.keypoints.targets=object,goal --policy.keypoints.world=true --policy.keypoints.per_task=true \
  --policy.keypoints.views=corner --policy.keypoints.image_size=128 --policy.keypoints.steps=750
/work/main/.venv/bin/wam eval-offline --policy=runs/probe128
