"""Latent actions (LAPA / Genie), beyond the contract (tests/paradigms/test_contract.py and
tests/test_train.py run every registered variant, these two included): metrics and structure per
variant, the LAM separates motions into codes, action-free samples train everything but the action
decoder, acting decodes codebook vectors, and a world model still initialises the shared parts."""

from __future__ import annotations

import pytest
import torch

from tests.paradigms.test_contract import batch, perturbed, tiny, tokenizer
from wam.errors import ConfigError
from wam.models.world_model import VideoWorldModel, WorldModelConfig
from wam.nn.latent_action import LatentActionModel
from wam.nn.transformer import BackboneConfig
from wam.paradigms import VARIANTS, PolicyModelConfig, build_paradigm, variants
from wam.paradigms.latent_actions import decode_actions

NAMES = ("joint", "inverse_dynamics")
METRICS = {"action_loss", "video_loss", "lam_loss", "code_perplexity", "codes_used"}


def la(name: str, mot: bool = False, **kw):
    return tiny(name, mot, integration="latent_actions", **kw)


def grads(p, prefix: str) -> list[torch.Tensor]:
    return [q.grad for n, q in p.named_parameters() if n.startswith(prefix) and q.grad is not None]


@pytest.mark.parametrize("name,mot", [(n, m) for n in NAMES for m in (False, True)])
def test_metrics_and_no_action_tokens(name, mot):
    p = la(name, mot)
    assert p.parts.action_io is None  # actions never enter the backbone as tokens
    metrics = p.loss(batch())[1]
    assert METRICS | ({"code_loss"} if name == "joint" else set()) <= set(metrics)
    assert all(torch.isfinite(torch.as_tensor(v)) for v in metrics.values())
    p.act(batch())
    assert p.last_future.shape == (4, 2, 4, 4, 4)  # what the actions came with, for the policy to show


@pytest.mark.parametrize("name", NAMES)
def test_action_free_samples_train_everything_but_the_action_decoder(name):
    free = {**batch(), "action_is_pad": torch.ones(4, 3, dtype=torch.bool)}
    p = perturbed(la(name), 0.05)  # off adaLN-Zero's init, where backbone gradients are exactly zero
    loss, metrics = p.loss(free)
    loss.backward()
    assert metrics["action_loss"] == 0
    assert all(torch.all(g == 0) for g in grads(p, "decoder."))
    for part in ("lam.encoder.", "lam.decoder.", "lam.codebook", "parts.backbone."):
        assert any(g.abs().sum() > 0 for g in grads(p, part)), part
    # no "action" key at all (a video-only batch) is the same
    no_labels = {k: v for k, v in free.items() if k not in ("action", "action_is_pad")}
    assert la(name).loss(no_labels)[1]["action_loss"] == 0


def test_action_free_samples_do_not_change_the_action_loss():
    """Half the batch action-free: whatever its (garbage) actions are, the action loss is the same."""
    data = {**batch(), "action_is_pad": torch.tensor([[False, False, True]] * 2 + [[True] * 3] * 2)}
    other = {**data, "action": data["action"].clone()}
    other["action"][2:] = 100.0
    p = la("joint")
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    assert p.loss(data, generator=g())[1]["action_loss"] == p.loss(other, generator=g())[1]["action_loss"]
    other["action"][0, 0] += 1.0  # a labelled step does count
    assert p.loss(data, generator=g())[1]["action_loss"] != p.loss(other, generator=g())[1]["action_loss"]


MOVES = torch.randn(4, 4, 4, 4, generator=torch.Generator().manual_seed(5))  # 4 discrete "motions" in latent space


def moving(seed: int, b: int = 16) -> tuple[dict, torch.Tensor]:
    """Random frames; each sample's future moves by one of 4 fixed displacements per step."""
    data, motion = batch(b, seed), torch.arange(b) % len(MOVES)
    steps = torch.tensor([1.0, 2.0])[None, :, None, None, None]
    data["future.latent"] = data["obs.latent"][:, -1:] + MOVES[motion][:, None] * steps
    return data, motion


def test_lam_maps_different_motions_to_different_codes():
    p = la("joint")
    opt = torch.optim.AdamW([q for q in p.parameters() if q.requires_grad], lr=3e-3)
    for step in range(60):
        loss = p.loss(moving(step)[0])[0]
        opt.zero_grad()
        loss.backward()
        opt.step()
    data, motion = moving(1000)
    out = p.eval().lam(torch.cat([data["obs.latent"][:, -1:], data["future.latent"]], 1), ~data["future_is_pad"])
    index, motion = out.index.flatten(), motion.repeat_interleave(2)  # (B*Tf,) one code per frame pair
    assert out.used * p.cfg.lam_codes > 1 and out.perplexity > 1
    majority = [int(index[motion == m].mode().values) for m in range(len(MOVES))]
    assert len(set(majority)) == len(MOVES), majority  # each motion has its own code
    # purity: most pairs given a code share its motion (untrained, one code holds all: 0.25)
    purity = sum(int(torch.bincount(motion[index == c]).max()) for c in index.unique()) / len(index)
    assert purity >= 0.8, purity


def test_act_decodes_codebook_vectors():
    p = perturbed(la("joint"), 0.05)
    seen = []
    p.decoder.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    p.act(batch())
    codes, book = seen[-1].flatten(0, 1), p.lam.entries(torch.arange(p.cfg.lam_codes))
    assert torch.cdist(codes, book).min(1).values.max() < 1e-5


def test_inverse_dynamics_reads_the_codes_off_the_given_future():
    p = perturbed(la("inverse_dynamics"), 0.05)
    real = batch()["future.latent"]
    codes = [p.lam.quantise(torch.cat([batch()["obs.latent"][:, -1:], f], 1)) for f in (real, -real)]
    assert not torch.equal(*codes)
    a, b = (p.act(batch(), given_future=f) for f in (real, -real))
    assert not torch.allclose(a, b)


def test_world_model_checkpoint_initialises_the_shared_parts():
    wm = VideoWorldModel(WorldModelConfig(backbone=BackboneConfig(depth=2, width=64), obs=(-1, 0), future=(2, 4)),
                         tokenizer())
    for name in NAMES:
        result = la(name).parts.load_state_dict(wm.state_dict(), strict=False)
        assert not result.unexpected_keys
        assert {k.split(".")[0] for k in result.missing_keys} == {"state_in"}


def test_quantiser_straight_through_and_snap():
    lam = LatentActionModel(channels=4, codes=8, dim=6, width=16)
    frames = torch.randn(2, 3, 4, 4, 4, requires_grad=True)
    out = lam(frames, torch.ones(2, 2, dtype=torch.bool))
    assert out.codes.shape == (2, 2, 6) and out.index.shape == (2, 2)
    assert torch.allclose(out.codes, lam.entries(out.index), atol=1e-5)  # forward value: the code
    out.codes.sum().backward()
    assert frames.grad.abs().sum() > 0  # straight-through: the encoder gets the gradient
    assert torch.equal(lam.snap(out.codes.detach()), lam.entries(out.index))


def test_registry_and_config():
    assert {("joint", "latent_actions"), ("inverse_dynamics", "latent_actions")} <= set(VARIANTS)
    assert {(v.paradigm, v.integration) for v in variants() if v.valid} >= {("joint", "latent_actions")}
    with pytest.raises(ConfigError, match="lam_codes"):
        build_paradigm("joint", PolicyModelConfig(integration="latent_actions", lam_codes=1), tokenizer())


@pytest.mark.parametrize("name", NAMES)
def test_the_decoder_reads_codes_not_frames_and_the_lam_never_reads_actions(name):
    """LAPA: the codes come from frames alone (other actions: the same codes and LAM loss, no gradient into
    the LAM from the action loss); the decoder maps codes + proprio to actions, with no frame to bypass them."""
    p = perturbed(la(name), 0.05)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    other = batch()
    other["action"] = -other["action"]
    m1, m2 = p.loss(batch(), generator=g())[1], p.loss(other, generator=g())[1]
    assert torch.equal(m1["lam_loss"], m2["lam_loss"]) and not torch.equal(m1["action_loss"], m2["action_loss"])
    only_actions = perturbed(la(name, video_weight=0.0, lam_weight=0.0, code_weight=0.0), 0.05)
    only_actions.loss(batch(), generator=g())[0].backward()  # the action loss alone
    assert not any(q.abs().max() > 0 for q in grads(only_actions, "lam."))
    assert any(q.abs().max() > 0 for q in grads(only_actions, "decoder."))
    codes = torch.randn(4, 2, p.cfg.lam_dim)
    moved = batch()
    moved["obs.latent"] = moved["obs.latent"] + 1
    assert torch.equal(decode_actions(p, batch(), codes), decode_actions(p, moved, codes))
