#!/usr/bin/env bash
# A diffusers backbone (tiny Wan) with LoRA under torchrun, DDP and FSDP2, against one process that
# accumulates the same micro-batches: the three loss curves must be equal (issue 13, item 4).
#   bash scripts/check_backbone_distributed.sh DATASET [OUT]     (a wam collect dataset with reach and push)
set -uo pipefail
D=${1:?usage: check_backbone_distributed.sh DATASET [OUT]}; R=${2:-runs/check_backbone_distributed}
export OMP_NUM_THREADS=1
W=".venv/bin/python -m wam"; TR=.venv/bin/torchrun
rm -rf "$R/one" "$R/ddp" "$R/fsdp"; mkdir -p "$R"
[ -d "$R/wm/checkpoints" ] || $W pretrain --config configs/backbones/wan_tiny.yaml --data.path="$D" --out="$R/wm" \
   --optim.steps=4 --optim.ckpt_every=4 --optim.val_every=4 --text_encoder=hash --data.tasks=reach,push > "$R/pretrain.log" 2>&1 \
   || { tail -5 "$R/pretrain.log"; exit 1; }
A="train --init=$R/wm --paradigm=representation --data.path=$D --data.tasks=reach,push --policy.lora.rank=2
   --data.image_size=32 --policy.future=4,8 --policy.chunk=4 --policy.sample_steps=2 --optim.steps=6 --optim.batch_size=4
   --optim.micro_batch=2 --optim.log_every=1 --optim.val_every=6 --optim.ckpt_every=6 --optim.precision=fp32 --text_encoder=hash"
$W $A --out="$R/one" > "$R/one.log" 2>&1 || { tail -5 "$R/one.log"; exit 1; }
$TR --nproc_per_node=2 -m wam $A --out="$R/ddp" > "$R/ddp.log" 2>&1 || tail -8 "$R/ddp.log"
$TR --nproc_per_node=2 -m wam $A --optim.distributed=fsdp --out="$R/fsdp" > "$R/fsdp.log" 2>&1 || tail -8 "$R/fsdp.log"
for r in one ddp fsdp; do
  echo "$r: $(grep -o 'world size [^,]*' "$R/$r.log" | head -1): $(cut -d, -f1-2 "$R/$r/log.csv" | tail -n +2 | tr '\n' ' ')"
done
