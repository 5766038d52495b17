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


def perturbed(model: VideoWorldModel, scale: float = 0.05) -> VideoWorldModel:
    """Move trainable weights off adaLN-Zero's init: at init every block is the identity (zero gates), so no
    token's output depends on any other token and a mask test would pass whatever the mask."""
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(scale * torch.randn_like(p))
    return model


def test_clean_groups_never_see_the_noisy_future():
    """Changing the noisy future must not change what obs/text tokens compute (they are cacheable), while
    the future tokens' own outputs do change (so the weights really mix tokens)."""
    model = perturbed(tiny()).eval()
    outputs = []
    model.backbone.register_forward_hook(lambda _, __, out: outputs.append({k: v.detach().clone()
                                                                           for k, v in out.items()}))
    obs, text = torch.randn(2, 2, 4, 4, 4), torch.randn(2, 384)
    t = torch.full((2,), 0.7)
    model.velocity(torch.randn(2, 2, 4, 4, 4), t, obs, text)
    model.velocity(torch.randn(2, 2, 4, 4, 4), t, obs, text)
    first, second = outputs
    assert torch.equal(first["obs"], second["obs"]) and torch.equal(first["text"], second["text"])
    assert not torch.allclose(first["future"], second["future"], atol=1e-3)


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
    """Classifier-free guidance: v = uncond + g * (cond - uncond). g = 0 ignores the instruction, g = 1 is the
    conditional model, and g = 3 matches that formula integrated by hand."""
    from wam.nn.flow import euler_sample

    model = perturbed(tiny()).eval()
    frames = torch.randint(0, 255, (2, 2, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    out = model.imagine(frames, torch.randn(2, 384), steps=2, generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 2, 3, 32, 32) and 0 <= out.min() and out.max() <= 1
    obs, a, b = model.encode(frames), torch.randn(2, 384), torch.randn(2, 384)
    lat = lambda text, g: model.imagine_latents(obs, text, steps=3, guidance=g,  # noqa: E731
                                                generator=torch.Generator().manual_seed(0))
    assert torch.allclose(lat(a, 0.0), lat(b, 0.0), atol=1e-5)  # the unconditional model: text unused
    assert not torch.allclose(lat(a, 1.0), lat(b, 1.0), atol=1e-3)
    null = torch.ones(2, dtype=torch.bool)
    by_hand = lambda x, t: (model.velocity(x, t, obs, a, None, null)  # noqa: E731
                            + 3.0 * (model.velocity(x, t, obs, a) - model.velocity(x, t, obs, a, None, null)))
    x1 = torch.randn((2, 2, 4, 4, 4), generator=torch.Generator().manual_seed(0))
    assert torch.allclose(lat(a, 3.0), euler_sample(by_hand, x1, 3), atol=1e-5)
    assert not torch.allclose(lat(a, 3.0), lat(a, 1.0), atol=1e-3)


@pytest.mark.parametrize("mot,causal,actions,guidance", [(False, False, 0, 1.0), (True, True, 3, 1.0),
                                                          (False, False, 3, 2.0), (True, False, 0, 2.0)])
def test_the_kv_cache_computes_the_clean_groups_once_for_the_same_imagination(mot, causal, actions, guidance):
    model = perturbed(tiny(mot=mot, causal=causal, actions=actions)).eval()
    obs, text = model.encode(torch.randint(0, 255, (2, 2, 3, 32, 32), dtype=torch.uint8)), torch.randn(2, 384)
    acts = torch.randn(2, actions, 4) if actions else None
    calls = []
    embed = model.clean_groups
    model.clean_groups = lambda *a, **k: calls.append(1) or embed(*a, **k)
    run = lambda cache: model.imagine_latents(obs, text, acts, steps=4, guidance=guidance,  # noqa: E731
                                              generator=torch.Generator().manual_seed(0), kv_cache=cache)
    slow = run(False)
    assert len(calls) == 4 * (1 if guidance == 1.0 else 2)  # every Euler step, (un)conditional
    calls.clear()
    fast = run(True)
    assert len(calls) == (1 if guidance == 1.0 else 2)  # once per sample
    assert torch.allclose(fast, slow, atol=1e-5)


def test_action_conditioned_model_needs_actions():
    model = tiny(actions=3)
    with pytest.raises(ConfigError, match="conditioned on actions"):
        model.velocity(torch.randn(1, 2, 4, 4, 4), torch.ones(1), torch.randn(1, 2, 4, 4, 4), torch.randn(1, 384))


def test_bad_config():
    with pytest.raises(ConfigError):
        tiny(time_sampling="beta")
