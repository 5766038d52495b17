"""The video world model on tiny configs: every weight-sharing and mask option trains; masks hold."""

from __future__ import annotations

import pytest
import torch

from wam.models.world_model import VideoWorldModel, WorldModelConfig
from wam.nn.tokenizer import FrameAutoencoder, TokenizerConfig
from wam.nn.transformer import BackboneConfig
from wam.errors import ConfigError


def tiny(mot=False, causal=False, actions=0, **kw) -> VideoWorldModel:
    torch.manual_seed(0)
    tok = FrameAutoencoder(TokenizerConfig(image_size=32, latent_channels=4, base_channels=8, downsample=8))
    cfg = WorldModelConfig(backbone=BackboneConfig(depth=2, width=64, mot=mot), patch=2, obs=(-1, 0),
                           future=(2, 4), action_chunk=actions, causal_future=causal, **kw)
    return VideoWorldModel(cfg, tok)


def batch(model: VideoWorldModel, b: int = 3) -> dict:
    g = torch.Generator().manual_seed(1)
    out = {
        "obs.image": torch.randint(0, 255, (b, 2, 3, 32, 32), dtype=torch.uint8, generator=g),
        "future.image": torch.randint(0, 255, (b, 2, 3, 32, 32), dtype=torch.uint8, generator=g),
        "future_is_pad": torch.tensor([[False, False], [False, True], [False, False]])[:b],
        "text_emb": torch.randn(b, 384, generator=g),
    }
    if model.cfg.action_chunk:
        out["action"] = torch.randn(b, model.cfg.action_chunk, 4, generator=g)
    return out


@pytest.mark.parametrize("mot,causal,actions", [(False, False, 0), (True, False, 0), (False, True, 0),
                                                 (True, True, 3), (False, False, 3)])
def test_forward_backward_every_option(mot, causal, actions):
    model = tiny(mot, causal, actions)
    loss, metrics = model.loss(batch(model))
    assert torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert not any(n.startswith("tokenizer.") for n in trainable)  # the tokenizer stays frozen
    no_grad = [n for n, p in trainable.items() if p.grad is None]
    assert not no_grad, no_grad


def test_clean_groups_never_see_the_noisy_future():
    """Changing the noisy future must not change what obs/text tokens compute (they are cacheable)."""
    model = tiny().eval()
    outputs = {}

    def grab(_, __, out):
        outputs["obs"] = out["obs"].detach().clone()

    model.backbone.register_forward_hook(grab)
    obs, text = torch.randn(2, 2, 4, 4, 4), torch.randn(2, 384)
    t = torch.full((2,), 0.7)
    model.velocity(torch.randn(2, 2, 4, 4, 4), t, obs, text)
    first = outputs["obs"]
    model.velocity(torch.randn(2, 2, 4, 4, 4), t, obs, text)
    assert torch.equal(first, outputs["obs"])


def test_loss_falls_when_overfitting_one_batch():
    model = tiny()
    data = batch(model)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731  same noise every step
    first = model.loss(data, generator=g())[0].item()
    for _ in range(60):
        loss, _ = model.loss(data, generator=g())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert model.loss(data, generator=g())[0].item() < 0.5 * first


def test_padded_future_frames_do_not_count():
    model = tiny()
    data = batch(model, 3)
    data["future_is_pad"][:] = False
    data["future_is_pad"][:, 1] = True
    base = model.loss(data, generator=torch.Generator().manual_seed(0))[0]
    data["future.image"][:, 1] = 255 - data["future.image"][:, 1]  # change only padded frames
    again = model.loss(data, generator=torch.Generator().manual_seed(0))[0]
    assert torch.allclose(base, again, atol=1e-6)


def test_imagine_shapes_and_guidance():
    model = tiny()
    frames = torch.randint(0, 255, (2, 2, 3, 32, 32), dtype=torch.uint8)
    out = model.imagine(frames, torch.randn(2, 384), steps=2, generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 2, 3, 32, 32) and 0 <= out.min() and out.max() <= 1
    guided = model.imagine(frames, torch.randn(2, 384), steps=2, guidance=2.0)
    assert guided.shape == out.shape


def test_action_conditioned_model_needs_actions():
    model = tiny(actions=3)
    with pytest.raises(ConfigError, match="conditioned on actions"):
        model.velocity(torch.randn(1, 2, 4, 4, 4), torch.ones(1), torch.randn(1, 2, 4, 4, 4), torch.randn(1, 384))


def test_bad_config():
    with pytest.raises(ConfigError):
        tiny(time_sampling="beta")
