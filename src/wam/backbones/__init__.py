"""Large pretrained video backbones through diffusers: Wan 2.1/2.2 and Cosmos-Predict2 under every paradigm.

    base.py         the VideoBackbone protocol (token groups in, tokens out, GroupMask as data) and the
                    attention processor that carries the mask into diffusers' blocks
    wan.py          wam's groups on WanTransformer3DModel        cosmos.py   ... on CosmosTransformer3DModel
    vae.py          AutoencoderKLWan as wam's frame tokenizer    loading.py  local folders / random archs
    parts.py        BackboneParts: WamParts' interface on them   world_model.py  what `wam pretrain` trains
    lora.py         LoRA (peft) and freezing                     build.py    the one dispatch on backbone.kind

Select with `--model.backbone.kind=wan|cosmos` (pretrain) or `--policy.backbone.kind=...` (train);
weights from `--...backbone.pretrained=PATH` (a local diffusers folder) or random `--...backbone.arch`.
Nothing here imports diffusers until a diffusers backbone is built. See docs/backbones.md.
"""
