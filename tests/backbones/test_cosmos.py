"""The real Cosmos-Predict2 transformer runs under wam: a tiny random CosmosTransformer3DModel (diffusers'
test shapes; concat_padding_mask off: no torchvision here), saved and loaded through wam, gives
diffusers' forward to 1e-5 (fp32), and wam's clean obs group is Cosmos's condition mask."""

from __future__ import annotations

import pytest
import torch

diffusers = pytest.importorskip("diffusers")

from wam.backbones.base import VideoGroup  # noqa: E402
from wam.backbones.cosmos import CosmosBackbone  # noqa: E402
from wam.backbones.loading import VAES, load_transformer  # noqa: E402
from wam.nn.token_groups import GroupMask  # noqa: E402

# diffusers' tests/models/transformers/test_models_transformer_cosmos.py (+1 condition-mask channel)
TINY = dict(in_channels=5, out_channels=4, num_attention_heads=2, attention_head_dim=16, num_layers=2, mlp_ratio=2,
            text_embed_dim=16, adaln_lora_dim=4, max_size=(4, 32, 32), patch_size=(1, 2, 2), rope_scale=(2.0, 1.0, 1.0),
            concat_padding_mask=False, extra_pos_embed_type="learnable")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(0)
    model = diffusers.CosmosTransformer3DModel(**TINY).eval()
    with torch.no_grad():  # the learnable position embedding starts at zero: make it count
        for p in model.learnable_pos_embed.parameters():
            p.normal_()
    root = tmp_path_factory.mktemp("cosmos")
    model.save_pretrained(root / "transformer")
    diffusers.AutoencoderKLWan(**VAES["tiny"]).save_pretrained(root / "vae")  # a whole pipeline folder
    return model, root


def _inputs(seed: int):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, 4, 3, 8, 8, generator=g), torch.rand(2, generator=g), torch.randn(2, 5, 16, generator=g)


def test_video_only_forward_equals_diffusers(saved):
    ref_model, root = saved
    net = CosmosBackbone(load_transformer("cosmos", str(root), "tiny").eval())
    x, t, text = _inputs(1)
    with torch.no_grad():
        ref = ref_model(x, t * 1000, text, condition_mask=torch.zeros(2, 1, 3, 8, 8)).sample
        out = net([VideoGroup("video", x.transpose(1, 2), t, (0, 1, 2))], GroupMask.full(), text)["video"]
    assert (out.transpose(1, 2) - ref).abs().max() < 1e-5


def test_clean_obs_is_the_condition_frame(saved):
    """obs (clean) + future (noised) = Cosmos's per-frame timesteps with the first frame conditioned."""
    ref_model, _ = saved
    net = CosmosBackbone(ref_model)
    x, t, text = _inputs(2)
    steps = torch.stack([torch.zeros(2), t * 1000, t * 1000], 1)[:, None, :, None, None]  # (B, 1, T, 1, 1)
    cond = torch.zeros(2, 1, 3, 8, 8)
    cond[:, :, 0] = 1
    with torch.no_grad():
        ref = ref_model(x, steps, text, condition_mask=cond).sample
        out = net([VideoGroup("obs", x[:, :, :1].transpose(1, 2), None, (0,)),
                   VideoGroup("future", x[:, :, 1:].transpose(1, 2), t, (1, 2))], GroupMask.full(), text)
    assert (torch.cat([out["obs"], out["future"]], 1).transpose(1, 2) - ref).abs().max() < 1e-5
