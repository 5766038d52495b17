"""`--init` by structure (wam.models.transfer): a policy's parts ARE a world model plus its own modules, and a
world model's weights land in them strictly: every tensor copied, fresh or declared unused, anything else refused."""

from __future__ import annotations

import pytest
import torch

from tests.paradigms.test_contract import batch, perturbed, tiny, tokenizer
from wam.errors import ConfigError
from wam.models.world_model import VideoWorldModel, WorldModelConfig
from wam.nn.transformer import BackboneConfig
from wam.paradigms.settings import LatentFrameConfig


def world(mot: bool = False, action_chunk: int = 0, width: int = 64) -> VideoWorldModel:
    """A world model of tiny()'s shape, moved off the init every policy starts from (the same seed)."""
    cfg = WorldModelConfig(backbone=BackboneConfig(depth=2, width=width, mot=mot), obs=(-1, 0), future=(2, 4),
                           action_chunk=action_chunk)
    torch.manual_seed(7)
    return perturbed(VideoWorldModel(cfg, tokenizer()), 0.05)


def tops(keys: list[str]) -> set[str]:
    return {k.split(".")[0] for k in keys}


@pytest.mark.parametrize("name,integration,mot,fresh,unused", [
    ("joint", "tokens", False, {"state_in", "action_io"}, set()),
    ("joint", "tokens", True, {"state_in", "action_io", "backbone"}, set()),  # + the MoT action expert
    ("action_only", "tokens", False, {"state_in", "action_io"}, {"future_io"}),  # no future head to fill
    ("hierarchical", "tokens", True, {"state_in", "backbone"}, set()),
])
def test_every_world_model_tensor_lands_and_only_the_policys_own_start_fresh(name, integration, mot, fresh, unused):
    wm, p = world(mot), tiny(name, mot, integration)
    loaded = p.parts.load_world(wm.state_dict())
    assert tops(loaded.missing_keys) == fresh and tops(loaded.unexpected_keys) == unused
    ours = p.parts.state_dict()
    assert all(torch.equal(ours[k], v) for k, v in wm.state_dict().items() if k not in loaded.unexpected_keys)
    experts = {k.split(".")[4] for k in loaded.missing_keys if k.startswith("backbone.blocks.")}
    assert experts == ({"action"} if mot else set())  # the backbone's fresh tensors: the action expert alone


def test_an_expert_and_an_action_embedder_the_policy_does_not_build_are_unused():
    """latent_frame with state frames has no token of the action modality; an action-conditioned MoT world model's
    action expert and action embedder have no place in it: reported unused, everything else copied."""
    wm = world(mot=True, action_chunk=3)
    p = tiny("joint", True, "latent_frame", latent_frame=LatentFrameConfig(state_frames=True))
    loaded = p.parts.load_world(wm.state_dict())
    assert not loaded.missing_keys
    assert tops(loaded.unexpected_keys) == {"backbone", "action_in"}
    assert {k.split(".")[4] for k in loaded.unexpected_keys if k.startswith("backbone.blocks.")} == {"action"}


def test_the_policy_parts_are_the_world_model():
    """Same layout (the state dict a checkpoint holds: the world model's names plus the policy's own modules,
    so checkpoints written before WamParts became a VideoWorldModel load unchanged) and, once loaded, the same
    imagined future as the world model's own."""
    wm, p = world(), tiny("joint")
    assert isinstance(p.parts, VideoWorldModel)
    assert set(p.parts.state_dict()) - set(wm.state_dict()) == {k for k in p.parts.state_dict()
                                                                 if k.startswith(("state_in.", "action_io."))}
    p.parts.load_world(wm.state_dict())
    b = batch()
    noise = torch.randn(4, 2, 4, 4, 4, generator=torch.Generator().manual_seed(3))
    theirs = wm.imagine_latents(b["obs.latent"], b["text_emb"], noise=noise, steps=2)
    assert torch.equal(p.parts.imagine_latents(b["obs.latent"], b["text_emb"], noise=noise, steps=2), theirs)


def test_a_world_model_that_lacks_a_backbone_tensor_is_refused():
    state = world().state_dict()
    gone = "backbone.blocks.1.experts.shared.qkv.weight"
    del state[gone]
    with pytest.raises(ConfigError, match=f"--init=wm lacks {gone} of the policy's world-model parts"):
        tiny("joint").parts.load_world(state, "--init=wm")


def test_a_world_model_tensor_with_no_place_in_a_shared_module_is_refused():
    state = {**world().state_dict(), "obs_in.proj_mid.weight": torch.zeros(3)}
    with pytest.raises(ConfigError, match="holds obs_in.proj_mid.weight, which the policy's obs_in has no place for"):
        tiny("joint").parts.load_world(state, "--init=wm")


def test_a_world_model_of_another_width_is_refused():
    with pytest.raises(ConfigError, match="--init=wm does not fit the policy"):
        tiny("joint").parts.load_world(world(width=128).state_dict(), "--init=wm")


@pytest.mark.parametrize("start", ["copy", "fresh"])
def test_a_monolithic_world_model_starts_every_expert_of_a_mot_policy(start):
    """Fast-WAM from a monolithic video model: each expert starts as the shared weights (the action expert fresh with
    `action_expert=fresh`); with copies the MoT policy computes exactly what the monolithic one does."""
    wm = world()
    mot, mono = tiny("representation", True, action_expert=start), tiny("representation")
    loaded = mot.parts.load_world(wm.state_dict())
    mono.parts.load_world(wm.state_dict())
    perturbed(mono.parts.state_in, 0.05), perturbed(mono.parts.action_io, 0.05)  # off the zero-init read-out
    mot.parts.state_in.load_state_dict(mono.parts.state_in.state_dict())
    mot.parts.action_io.load_state_dict(mono.parts.action_io.state_dict())
    assert not loaded.unexpected_keys
    fresh_experts = {k.split(".")[4] for k in loaded.missing_keys if k.startswith("backbone.blocks.")}
    assert fresh_experts == ({"action"} if start == "fresh" else set())
    ours, shared = mot.parts.state_dict(), wm.state_dict()
    for expert in ("text", "video"):
        key = f"backbone.blocks.1.experts.{expert}.qkv.weight"
        assert torch.equal(ours[key], shared["backbone.blocks.1.experts.shared.qkv.weight"])
    b, g = batch(), lambda: torch.Generator().manual_seed(5)
    same = torch.allclose(mot.act(b, g()), mono.act(b, g()), atol=1e-5)
    assert same == (start == "copy")


def test_a_fresh_action_expert_without_mot_is_refused():
    with pytest.raises(ConfigError, match="policy.action_expert=fresh .* has none"):
        tiny("representation", action_expert="fresh")
    with pytest.raises(ConfigError, match="must be copy or fresh"):
        tiny("representation", True, action_expert="new")
