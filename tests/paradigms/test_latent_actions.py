"""Latent actions (LAPA / Genie), beyond the contract (tests/paradigms/test_contract.py and
tests/test_train.py run every registered variant, these two included): metrics and structure per
variant, the frozen LAM (it never trains in a policy, never reads actions), what `adopt_pretrained`
loads and leaves trainable, acting decodes codebook vectors, and the policy's backbone computes what
the latent-action world model was pretrained to compute. The LAM's own learning (stage 1) is in
tests/models/test_code_world_model.py."""

from __future__ import annotations

import pytest
import torch

from tests.paradigms.test_contract import batch, perturbed, tiny, tokenizer
from wam.errors import ConfigError
from wam.models.code_world_model import CODE_MASK, CodeWorldModel, code_tokens, frame_pairs
from wam.models.world_model import WorldModelConfig
from wam.nn.latent_action import LatentActionModel
from wam.nn.transformer import BackboneConfig
from wam.paradigms import VARIANTS, PolicyModelConfig, build_paradigm, variants
from wam.paradigms.latent_actions import adopt_pretrained, decode_actions
from wam.paradigms.settings import LatentActionsConfig

NAMES = ("joint", "inverse_dynamics")
METRICS = {"action_loss", "video_loss"}


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
def test_action_free_samples_train_the_backbone_never_the_decoder_nor_the_lam(name):
    free = {**batch(), "action_is_pad": torch.ones(4, 3, dtype=torch.bool)}
    p = perturbed(la(name), 0.05)  # off adaLN-Zero's init, where backbone gradients are exactly zero
    loss, metrics = p.loss(free)
    loss.backward()
    assert metrics["action_loss"] == 0
    assert all(torch.all(g == 0) for g in grads(p, "decoder."))
    assert not any(q.requires_grad for q in p.lam.parameters())  # the LAM never trains in a policy
    assert any(g.abs().sum() > 0 for g in grads(p, "parts.backbone."))
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


def test_act_decodes_codebook_vectors():
    p = perturbed(la("joint"), 0.05)
    seen = []
    p.decoder.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    p.act(batch())
    codes, book = seen[-1].flatten(0, 1), p.lam.entries(torch.arange(p.cfg.latent_actions.codes))
    assert torch.cdist(codes, book).min(1).values.max() < 1e-5


def test_inverse_dynamics_reads_the_codes_off_the_given_future():
    p = perturbed(la("inverse_dynamics"), 0.05)
    real = batch()["future.latent"]
    p.lam.seed_codebook(frame_pairs(batch()["obs.latent"], real))  # as a trained LAM: codes spread over pairs
    codes = [p.lam.quantise(torch.cat([batch()["obs.latent"][:, -1:], f], 1)) for f in (real, -real)]
    assert not torch.equal(*codes)
    a, b = (p.act(batch(), given_future=f) for f in (real, -real))
    assert not torch.allclose(a, b)


def code_world_model(mot: bool = False) -> CodeWorldModel:
    torch.manual_seed(1)
    cfg = WorldModelConfig(backbone=BackboneConfig(depth=2, width=64, mot=mot), obs=(-1, 0), future=(2, 4))
    lam = LatentActionModel(4, codes=16, dim=16, width=64)
    wm = perturbed(CodeWorldModel(cfg, tokenizer(), lam), 0.05)
    with torch.no_grad():
        for q in wm.lam.parameters():
            q.add_(0.05 * torch.randn_like(q))  # unlike the policy's fresh LAM
    return wm


def adopted(name: str, wm: CodeWorldModel, tune_backbone: bool = False, mot: bool = False):
    p = la(name, mot)
    result, line = adopt_pretrained(p, wm.state_dict(), p.parts.load_world(wm.state_dict()), tune_backbone)
    return p, result, line


@pytest.mark.parametrize("name", NAMES)
def test_a_latent_action_world_model_initialises_every_part_but_the_decoder(name):
    wm = code_world_model()
    p, result, line = adopted(name, wm)
    assert not result.missing_keys  # no fresh embedder: the backbone sees only what it was pretrained on
    assert result.unexpected_keys == ([] if name == "joint" else [k for k in wm.state_dict() if k.startswith("code_io.")])
    ours = p.state_dict()
    for k, v in wm.state_dict().items():
        key = k if k.startswith(("lam.", "code_io.")) else f"parts.{k}"
        assert key not in ours or torch.equal(ours[key], v), k
    assert all(k in ours for k in wm.state_dict() if k.startswith("lam."))
    assert line.startswith("latent actions: trains decoder (")


@pytest.mark.parametrize("mot", [False, True])
def test_the_policy_backbone_computes_what_was_pretrained(mot):
    """The same weights, the same inputs: the joint policy's velocities of the future and of the codes are the
    latent-action world model's (one mask, one group layout, no proprio token), so `--init` transfers exactly."""
    wm = code_world_model(mot).eval()
    p, _, _ = adopted("joint", wm, mot=mot)
    data, g = batch(), torch.Generator().manual_seed(2)
    x, codes, t = torch.randn(4, 2, 4, 4, 4, generator=g), torch.randn(4, 2, 16, generator=g), torch.rand(4, generator=g)
    out = wm.run_groups(x, t, data["obs.latent"], data["text_emb"], extra=[code_tokens(wm.code_io, codes, t, wm.code_pos)])
    ours = p._run(data, x, codes, t, t)
    assert torch.allclose(wm.future_io.read_out(out["future"], 2, 4, 4), ours["future"], atol=1e-5)
    assert torch.allclose(wm.code_io.read_out(out["latent_action"]), ours["latent_action"], atol=1e-5)
    assert not CODE_MASK.sees("future", "latent_action")  # imagining needs no codes


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("tune_backbone", [False, True])
def test_after_adopting_only_the_decoder_trains_unless_the_backbone_is_tuned(name, tune_backbone):
    p, _, line = adopted(name, code_world_model(), tune_backbone)
    loss, metrics = p.loss(batch())
    loss.backward()
    trained = {n.split(".")[0] if not n.startswith("parts.") else n.split(".")[1] for n, q in p.named_parameters()
               if q.grad is not None and q.grad.abs().max() > 0}
    expected = {"decoder"} | ({"backbone", "obs_in", "future_io", "text"} | ({"code_io"} if name == "joint" else set())
                              if tune_backbone else set())
    assert trained == expected, trained
    trainable = {n.split(".")[1] if n.startswith("parts.") else n.split(".")[0] for n, q in p.named_parameters()
                 if q.requires_grad}
    assert trainable == expected, trainable  # frozen, not merely left without a gradient
    assert ("video_loss" in metrics) == tune_backbone
    assert ("--policy.latent_actions.tune_backbone=true" in line) != tune_backbone


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
    with pytest.raises(ConfigError, match=r"policy\.latent_actions\.codes"):
        build_paradigm("joint", PolicyModelConfig(integration="latent_actions",
                                                  latent_actions=LatentActionsConfig(codes=1)), tokenizer())


@pytest.mark.parametrize("name", NAMES)
def test_the_decoder_reads_codes_not_frames_and_the_lam_never_reads_actions(name):
    """LAPA: the codes come from frames alone (other actions: the same codes; the LAM is frozen, so no gradient
    can reach it); the decoder maps codes + proprio to actions, with no frame to bypass them."""
    p = perturbed(la(name), 0.05)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    other = batch()
    other["action"] = -other["action"]
    m1, m2 = p.loss(batch(), generator=g())[1], p.loss(other, generator=g())[1]
    assert torch.equal(m1["video_loss"], m2["video_loss"]) and not torch.equal(m1["action_loss"], m2["action_loss"])
    codes = [p.lam.quantise(frame_pairs(b["obs.latent"], b["future.latent"])) for b in (batch(), other)]
    assert torch.equal(*codes)
    assert not any(q.requires_grad for q in p.lam.parameters())
    codes = torch.randn(4, 2, p.cfg.latent_actions.dim)
    moved = batch()
    moved["obs.latent"] = moved["obs.latent"] + 1
    assert torch.equal(decode_actions(p, batch(), codes), decode_actions(p, moved, codes))
