"""BackboneParts: WamParts' interface on a diffusers backbone; masks, LoRA, freezing and `--init` by structure."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("diffusers")

from wam.backbones.build import frame_tokenizer, model_parts, world_model  # noqa: E402
from wam.backbones.lora import LoraConfig  # noqa: E402
from wam.models.world_model import WorldModelConfig  # noqa: E402
from wam.nn.tokenizer import TokenizerConfig  # noqa: E402
from wam.nn.transformer import BackboneConfig  # noqa: E402
from wam.paradigms import PolicyModelConfig  # noqa: E402
from wam.paradigms.representation import MASK as REPRESENTATION  # noqa: E402


def _parts(kind: str, **kw):
    cfg = PolicyModelConfig(backbone=BackboneConfig(kind=kind, **kw.pop("backbone", {})), future=(4, 8), chunk=4, **kw)
    return model_parts(cfg, frame_tokenizer(cfg.backbone, TokenizerConfig(image_size=32)))


def _batch(seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"text_emb": torch.randn(2, 384, generator=g), "obs.latent": torch.randn(2, 1, 16, 4, 4, generator=g),
            "obs.state": torch.randn(2, 1, 4, generator=g)}


@pytest.mark.parametrize("kind,mot", [("wan", False), ("wan", True), ("cosmos", False)])
def test_representation_actions_never_see_the_future(kind, mot):
    parts = _parts(kind, backbone={"mot": mot}).eval()
    batch, t = _batch(), torch.full((2,), 0.7)
    a = torch.randn(2, 4, 4)
    with torch.no_grad():
        first = parts.run(batch, REPRESENTATION, future=(torch.randn(2, 2, 16, 4, 4), t), action=(a, t))
        second = parts.run(batch, REPRESENTATION, future=(torch.randn(2, 2, 16, 4, 4), t), action=(a, t))
        alone = parts.run(batch, REPRESENTATION, action=(a, t))  # acting: no future tokens at all
    assert torch.equal(first["action"], second["action"])
    assert (first["action"] - alone["action"]).abs().max() < 1e-5
    assert not torch.allclose(first["future"], second["future"])


def test_lora_trains_adapters_only_and_starts_as_the_base_model():
    base = _parts("wan").eval()
    lora = _parts("wan", lora=LoraConfig(rank=2)).eval()
    result = lora.load_state_dict(base.state_dict(), strict=False)  # plain weights into the LoRA-wrapped layers
    assert not result.unexpected_keys and result.missing_keys and all("lora_" in k for k in result.missing_keys)
    trainable = {n for n, p in lora.named_parameters() if p.requires_grad}
    assert any("lora_A" in n for n in trainable)
    assert not [n for n in trainable if n.startswith("backbone.model.") and "lora_" not in n]
    batch, t = _batch(1), torch.full((2,), 0.4)
    a = torch.randn(2, 4, 4)
    with torch.no_grad():
        assert torch.equal(base.run(batch, REPRESENTATION, action=(a, t))["action"],
                           lora.run(batch, REPRESENTATION, action=(a, t))["action"])  # lora_B starts at zero


def test_freezing_the_video_expert_keeps_the_action_expert_trainable():
    parts = _parts("wan", backbone={"mot": True}, lora=LoraConfig(freeze_video=True))
    trainable = {n for n, p in parts.named_parameters() if p.requires_grad}
    assert not [n for n in trainable if n.startswith("backbone.model.")]
    assert any(n.startswith("backbone.action_blocks.") for n in trainable) and "action_io.io.proj_in.weight" in trainable


def test_a_world_model_initialises_a_policy_by_structure():
    cfg = WorldModelConfig(backbone=BackboneConfig(kind="wan"), future=(4, 8))
    wm = world_model(cfg, frame_tokenizer(cfg.backbone, TokenizerConfig(image_size=32)))
    with torch.no_grad():
        for p in wm.backbone.parameters():
            p.add_(torch.randn_like(p))
    parts = _parts("wan", backbone={"mot": True}, lora=LoraConfig(rank=2))
    result = parts.load_world(wm.state_dict())
    assert not result.unexpected_keys
    assert {k.split(".")[0] for k in result.missing_keys} == {"state_in", "action_io", "backbone"}  # expert, LoRA
    video = wm.backbone.model.blocks[1].attn1.to_q.weight
    assert torch.equal(parts.backbone.model.blocks[1].attn1.to_q.base_layer.weight, video)
    assert torch.equal(parts.backbone.action_blocks[1].attn1.to_q.weight, video)  # the expert starts from it


@pytest.mark.parametrize("kind", ["wan", "cosmos"])
def test_checkpointing_gives_the_same_gradients_across_forwards_with_different_masks(kind):
    """Inverse dynamics runs two forwards (video alone, then actions given the future) before one backward:
    each recomputed block must get its own forward's mask back."""
    from wam.paradigms import build_paradigm

    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        cfg = PolicyModelConfig(backbone=BackboneConfig(kind=kind, checkpointing=checkpointing), future=(4, 8), chunk=4)
        p = build_paradigm("inverse_dynamics", cfg, frame_tokenizer(cfg.backbone, TokenizerConfig(image_size=32)))
        batch = {**_batch(2), "future.latent": torch.randn(2, 2, 16, 4, 4), "future_is_pad": torch.zeros(2, 2, dtype=torch.bool),
                 "action": torch.rand(2, 4, 4), "action_is_pad": torch.zeros(2, 4, dtype=torch.bool)}
        loss, _ = p.loss(batch, torch.Generator().manual_seed(1))
        loss.backward()
        grads.append(torch.cat([q.grad.flatten() for q in p.parameters() if q.grad is not None]))
    assert (grads[0] - grads[1]).abs().max() < 1e-5
