"""Where a backbone's weights come from: a local diffusers folder, or a named architecture built with
random weights (no download ever happens).

    PATH/                               a diffusers pipeline folder, e.g. Wan2.1-T2V-1.3B-Diffusers,
      transformer/config.json           Wan2.2-TI2V-5B-Diffusers or Cosmos-Predict2-2B-Video2World
      transformer/*.safetensors         (diffusers' save_pretrained layout: one file or shards + index)
      vae/config.json + *.safetensors   AutoencoderKLWan (the frame tokenizer of both families)

`ARCHS` names the random architectures: `tiny` (diffusers' own tiny test shapes, what CI runs),
`medium` (~50M parameters, CPU benchmarks) and the real sizes (`wan2.1-1.3b`, `wan2.2-5b`,
`cosmos2-2b`: the GPU script builds them with random weights). Every mistake in a folder is one
ConfigError naming the file or field.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from wam.errors import ConfigError

CLASSES = {"wan": "WanTransformer3DModel", "cosmos": "CosmosTransformer3DModel"}
VAE_CLASS = "AutoencoderKLWan"
TEXT_DIM = 384  # wam's cached MiniLM instruction embeddings: the tiny and medium archs read them directly

_WAN = dict(patch_size=(1, 2, 2), in_channels=16, out_channels=16, freq_dim=256, cross_attn_norm=True,
            qk_norm="rms_norm_across_heads", eps=1e-6)
_COSMOS = dict(in_channels=17, out_channels=16, patch_size=(1, 2, 2), rope_scale=(2.0, 1.0, 1.0),
               concat_padding_mask=False, extra_pos_embed_type="learnable")
_VAE_TINY = dict(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True])

ARCHS: dict[str, dict[str, dict]] = {
    "wan": {
        "tiny": dict(_WAN, num_attention_heads=2, attention_head_dim=12, text_dim=TEXT_DIM, ffn_dim=32, num_layers=2,
                     rope_max_seq_len=32),
        "medium": dict(_WAN, num_attention_heads=8, attention_head_dim=64, text_dim=TEXT_DIM, ffn_dim=2048,
                       num_layers=12, rope_max_seq_len=256),
        "wan2.1-1.3b": dict(_WAN, num_attention_heads=12, attention_head_dim=128, text_dim=4096, ffn_dim=8960,
                            num_layers=30, rope_max_seq_len=1024),
        "wan2.2-5b": dict(_WAN, in_channels=48, out_channels=48, num_attention_heads=24, attention_head_dim=128,
                          text_dim=4096, ffn_dim=14336, num_layers=30, rope_max_seq_len=1024),
    },
    "cosmos": {
        "tiny": dict(_COSMOS, num_attention_heads=2, attention_head_dim=16, num_layers=2, mlp_ratio=2,
                     text_embed_dim=TEXT_DIM, adaln_lora_dim=4, max_size=(8, 64, 64)),
        "medium": dict(_COSMOS, num_attention_heads=8, attention_head_dim=64, num_layers=12, mlp_ratio=3,
                       text_embed_dim=TEXT_DIM, adaln_lora_dim=64, max_size=(32, 128, 128)),
        "cosmos2-2b": dict(_COSMOS, num_attention_heads=16, attention_head_dim=128, num_layers=28, mlp_ratio=4,
                           text_embed_dim=1024, adaln_lora_dim=256, max_size=(128, 240, 240)),
    },
}
VAES = {"tiny": _VAE_TINY, "medium": _VAE_TINY, "wan2.1-1.3b": {}, "cosmos2-2b": {},
        "wan2.2-5b": dict(base_dim=160, decoder_base_dim=256, z_dim=48, is_residual=True, in_channels=12,
                          out_channels=12, patch_size=2, scale_factor_spatial=16, dim_mult=[1, 2, 4, 4],
                          temperal_downsample=[False, True, True])}


def _diffusers():
    try:
        import diffusers
    except ImportError as e:  # pragma: no cover - the extra is part of the test install
        raise ConfigError("backbone kinds wan/cosmos need diffusers: pip install 'wam[backbones]'") from e
    return diffusers


def read_config(folder: Path, expected: str) -> dict:
    """A diffusers config.json, checked to be of the expected class."""
    path = folder / "config.json"
    if not path.is_file():
        raise ConfigError(f"{path} is missing: --model.backbone.pretrained must be a diffusers pipeline folder with "
                          f"transformer/ and vae/ (each config.json + *.safetensors)")
    try:
        cfg = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path} is not valid JSON ({e})") from None
    found = cfg.get("_class_name") if isinstance(cfg, dict) else None
    if found != expected:
        raise ConfigError(f"{path}: _class_name is {found!r}, this backbone kind needs {expected!r}")
    return cfg


def _check_weights(folder: Path) -> None:
    if not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin")):
        raise ConfigError(f"{folder} holds no weights (*.safetensors): not a diffusers model folder")


def load_pretrained(cls_name: str, folder: Path) -> nn.Module:
    """A diffusers model from a local folder (config class and weights checked first)."""
    read_config(folder, cls_name)
    _check_weights(folder)
    cls = getattr(_diffusers(), cls_name)
    try:
        return cls.from_pretrained(folder, local_files_only=True, torch_dtype=torch.float32)
    except (OSError, ValueError, RuntimeError) as e:
        raise ConfigError(f"{folder}: diffusers could not load it ({str(e).splitlines()[0]})") from None


def random_model(kind: str, arch: str, seed: int = 0) -> nn.Module:
    """A named architecture with random weights (seeded: the same arch and seed give the same weights)."""
    table = ARCHS[kind]
    if arch not in table:
        raise ConfigError(f"backbone.arch={arch!r} is not a {kind} architecture; choose one of {', '.join(table)} "
                          f"or set backbone.pretrained to a diffusers folder")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return getattr(_diffusers(), CLASSES[kind])(**table[arch])


def random_vae(arch: str, seed: int = 0) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        return getattr(_diffusers(), VAE_CLASS)(**VAES.get(arch, _VAE_TINY))


def load_transformer(kind: str, pretrained: str, arch: str) -> nn.Module:
    """The backbone's diffusers transformer: from `pretrained`/transformer, or `arch` with random weights."""
    if kind not in CLASSES:
        raise ConfigError(f"backbone.kind={kind!r} has no diffusers model; choose one of wam, {', '.join(CLASSES)}")
    if not pretrained:
        return random_model(kind, arch)
    return load_pretrained(CLASSES[kind], check_folder(kind, pretrained) / "transformer")


def load_vae(kind: str, pretrained: str, arch: str) -> nn.Module:
    """The AutoencoderKLWan of the same folder (or arch)."""
    return load_pretrained(VAE_CLASS, check_folder(kind, pretrained) / "vae") if pretrained else random_vae(arch)


def check_folder(kind: str, pretrained: str) -> Path:
    """The pipeline folder, with both configs of the right class and weights beside them (checked before
    anything is loaded, so the first complaint is about the first thing wrong)."""
    root = Path(pretrained).expanduser()
    if not root.is_dir():
        raise ConfigError(f"backbone.pretrained={pretrained}: no such folder")
    if kind not in CLASSES:
        raise ConfigError(f"backbone.kind={kind!r} has no diffusers model; choose one of wam, {', '.join(CLASSES)}")
    for sub, cls in (("transformer", CLASSES[kind]), ("vae", VAE_CLASS)):
        read_config(root / sub, cls)
        _check_weights(root / sub)
    return root
