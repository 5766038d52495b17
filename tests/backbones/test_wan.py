"""The real Wan transformer runs under wam: a tiny random WanTransformer3DModel (diffusers' own test shapes),
saved with save_pretrained and loaded through wam, gives diffusers' forward to 1e-5 (fp32)."""

from __future__ import annotations

import pytest
import torch

diffusers = pytest.importorskip("diffusers")

from wam.backbones.base import Group, VideoGroup  # noqa: E402
from wam.backbones.loading import VAES, load_transformer  # noqa: E402
from wam.backbones.wan import WanBackbone  # noqa: E402
from wam.nn.token_groups import GroupMask  # noqa: E402

# diffusers' tests/models/transformers/test_models_transformer_wan.py
TINY = dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=4, out_channels=4,
            text_dim=16, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True,
            qk_norm="rms_norm_across_heads", rope_max_seq_len=32)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(0)
    model = diffusers.WanTransformer3DModel(**TINY).eval()
    root = tmp_path_factory.mktemp("wan")
    model.save_pretrained(root / "transformer")
    diffusers.AutoencoderKLWan(**VAES["tiny"]).save_pretrained(root / "vae")  # a whole pipeline folder
    return model, root


def test_video_only_forward_equals_diffusers(saved):
    ref_model, root = saved
    net = WanBackbone(load_transformer("wan", str(root), "tiny").eval())
    g = torch.Generator().manual_seed(1)
    x, t, text = torch.randn(2, 4, 3, 8, 8, generator=g), torch.rand(2, generator=g), torch.randn(2, 5, 16, generator=g)
    with torch.no_grad():
        ref = ref_model(x, t * 1000, text).sample  # (B, C, T, h, w)
        out = net([VideoGroup("video", x.transpose(1, 2), t, (0, 1, 2))], GroupMask.full(), text)["video"]
    assert (out.transpose(1, 2) - ref).abs().max() < 1e-5


def test_clean_obs_and_noised_future_equal_the_wan22_per_token_timesteps(saved):
    """wam's obs (clean) + future (noised) groups = Wan 2.2 TI2V's per-token timesteps (first frame at 0)."""
    ref_model, _ = saved
    net = WanBackbone(ref_model)
    g = torch.Generator().manual_seed(2)
    x, t, text = torch.randn(2, 4, 3, 8, 8, generator=g), torch.rand(2, generator=g), torch.randn(2, 5, 16, generator=g)
    per_frame = 16  # (8/2) * (8/2) tokens a frame
    steps = torch.cat([torch.zeros(2, per_frame), (t * 1000)[:, None].expand(2, 2 * per_frame)], 1)  # (B, N)
    with torch.no_grad():
        ref = ref_model(x, steps, text).sample
        out = net([VideoGroup("obs", x[:, :, :1].transpose(1, 2), None, (0,)),
                   VideoGroup("future", x[:, :, 1:].transpose(1, 2), t, (1, 2))], GroupMask.full(), text)
    assert (torch.cat([out["obs"], out["future"]], 1).transpose(1, 2) - ref).abs().max() < 1e-5


def test_the_group_mask_reaches_self_attention(saved):
    """Under a mask in which the actions never see the future, changing the future leaves them unchanged
    (and without the mask it does not)."""
    model, _ = saved
    net = WanBackbone(model)
    g = torch.Generator().manual_seed(3)
    obs, fut, text = torch.randn(1, 1, 4, 8, 8, generator=g), torch.randn(1, 2, 4, 8, 8, generator=g), torch.randn(1, 1, 16)
    act = torch.randn(1, 3, net.width, generator=g)
    masked = GroupMask(allowed={"obs": {"obs"}, "action": {"obs", "action"}})

    def actions(future: torch.Tensor, mask: GroupMask) -> torch.Tensor:
        with torch.no_grad():
            return net([VideoGroup("obs", obs, None, (0,)), VideoGroup("future", future, torch.full((1,), 0.5), (1, 2)),
                        Group("action", act, torch.full((1,), 0.5))], mask, text)["action"]

    other = fut + 1
    assert torch.equal(actions(fut, masked), actions(other, masked))
    assert not torch.allclose(actions(fut, GroupMask.full()), actions(other, GroupMask.full()))


def test_mot_with_an_expert_equal_to_the_video_blocks_is_the_monolithic_model(saved):
    """The action expert starts as a copy of the video blocks: then the MoT layer computes exactly what the
    shared blocks do; once the expert's weights differ, only the token groups' outputs move at first layer."""
    model, _ = saved
    mono, mot = WanBackbone(model), WanBackbone(model, mot=True)
    g = torch.Generator().manual_seed(4)
    obs, text = torch.randn(2, 1, 4, 8, 8, generator=g), torch.randn(2, 1, 16, generator=g)
    act = torch.randn(2, 3, mono.width, generator=g)
    mask = GroupMask(allowed={"obs": {"obs"}, "action": {"obs", "action"}})
    groups = [VideoGroup("obs", obs, None, (0,)), Group("action", act, torch.full((2,), 0.3))]
    with torch.no_grad():
        a, b = mono(groups, mask, text), mot(groups, mask, text)
        assert all((a[k] - b[k]).abs().max() < 1e-5 for k in a)
        for p in mot.action_blocks.parameters():
            p.add_(0.1)
        c = mot(groups, mask, text)
    assert (c["obs"] - a["obs"]).abs().max() < 1e-5  # obs never sees the actions: untouched by their expert
    assert (c["action"] - a["action"]).abs().max() > 1e-3
