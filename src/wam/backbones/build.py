"""Building a backbone from its config: the one place workflows ask for a tokenizer, a world model or
a set of model parts, whatever `backbone.kind` is (wam's own transformer, or diffusers' Wan / Cosmos).

    tok = frame_tokenizer(cfg.model.backbone, cfg.tokenizer_config())   # FrameAutoencoder or VaeTokenizer
    wm = world_model(cfg.model, tok)                                   # VideoWorldModel or BackboneWorldModel
"""

from __future__ import annotations

from torch import nn

from wam.data.text import EMBED_DIM
from wam.errors import ConfigError


def is_diffusers(backbone_cfg) -> bool:
    return getattr(backbone_cfg, "kind", "wam") != "wam"


def frame_tokenizer(backbone_cfg, tok_cfg) -> nn.Module:
    """wam's small autoencoder (kind=wam, untrained: weights come from a checkpoint or training) or the
    backbone's AutoencoderKLWan at `tok_cfg.image_size`."""
    if not is_diffusers(backbone_cfg):
        from wam.nn.tokenizer import FrameAutoencoder
        return FrameAutoencoder(tok_cfg)
    from wam.backbones.loading import load_vae
    from wam.backbones.vae import VaeTokenizer
    return VaeTokenizer(load_vae(backbone_cfg.kind, backbone_cfg.pretrained, backbone_cfg.arch), tok_cfg.image_size)


def make_backbone(backbone_cfg, tokenizer: nn.Module, lora=None) -> nn.Module:
    """The wrapped diffusers transformer, checked against the tokenizer, LoRA/freezing applied."""
    from wam.backbones.cosmos import CosmosBackbone
    from wam.backbones.loading import load_transformer
    from wam.backbones.lora import apply_finetuning
    from wam.backbones.wan import WanBackbone

    model = load_transformer(backbone_cfg.kind, backbone_cfg.pretrained, backbone_cfg.arch)
    if backbone_cfg.kind == "wan":
        net = WanBackbone(model, checkpointing=backbone_cfg.checkpointing, mot=backbone_cfg.mot)
    elif backbone_cfg.mot:
        raise ConfigError("backbone.mot=true (an action expert beside the video blocks) is implemented for kind=wan; "
                          "on cosmos, actions share its blocks (mot=false) or enter as a latent frame")
    else:
        net = CosmosBackbone(model, checkpointing=backbone_cfg.checkpointing)
    c = tokenizer.cfg.latent_channels
    if net.latent_channels != c or net.in_channels != c:
        pretrained, arch = backbone_cfg.pretrained, backbone_cfg.arch
        where = f"{pretrained}/transformer/config.json" if pretrained else f"arch {arch}"
        raise ConfigError(f"{where}: the transformer reads {net.in_channels} and writes {net.latent_channels} latent "
                          f"channels, the VAE (vae/config.json z_dim) makes {c}")
    if lora is not None:
        apply_finetuning(model, lora, backbone_cfg.kind)
    return net


def text_input(backbone_cfg, backbone: nn.Module) -> nn.Module:
    """wam's (B, 384) instruction embedding -> the backbone's text width: as is, or a learned projection."""
    if backbone_cfg.text_adapter:
        return nn.Linear(EMBED_DIM, backbone.text_dim)
    if backbone.text_dim != EMBED_DIM:
        raise ConfigError(f"the {backbone_cfg.kind} transformer's text_dim is {backbone.text_dim}, wam's cached "
                          f"instruction embeddings are {EMBED_DIM} wide: set backbone.text_adapter=true")
    return nn.Identity()


def world_model(model_cfg, tokenizer: nn.Module) -> nn.Module:
    """The world model `wam pretrain` trains on this backbone."""
    if not is_diffusers(model_cfg.backbone):
        from wam.models.world_model import VideoWorldModel
        return VideoWorldModel(model_cfg, tokenizer)
    from wam.backbones.world_model import BackboneWorldModel
    return BackboneWorldModel(model_cfg, tokenizer)


def model_parts(cfg, tokenizer: nn.Module, **kwargs) -> nn.Module:
    """A paradigm's shared parts: WamParts, or BackboneParts on a diffusers backbone."""
    if not is_diffusers(cfg.backbone):
        from wam.paradigms.base import WamParts
        return WamParts(cfg, tokenizer, **kwargs)
    from wam.backbones.parts import BackboneParts
    return BackboneParts(cfg, tokenizer, **kwargs)
