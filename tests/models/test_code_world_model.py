"""The two pretraining stages of latent actions (wam.models.code_world_model): the LAM learns codes from
frame pairs alone and refuses a batch carrying actions; the world model predicts the frozen LAM's codes,
and its video path never reads them (so imagining without codes is the trained path)."""

from __future__ import annotations

import pytest
import torch

from tests.paradigms.test_contract import batch, perturbed, tokenizer
from wam.errors import ConfigError, WamError
from wam.models.code_world_model import CodeWorldModel, LamStage, code_tokens, frame_pairs
from wam.models.world_model import WorldModelConfig
from wam.nn.latent_action import LatentActionModel
from wam.nn.transformer import BackboneConfig

CFG = dict(backbone=BackboneConfig(depth=2, width=64), obs=(-1, 0), future=(2, 4))
MOVES = torch.randn(4, 4, 4, 4, generator=torch.Generator().manual_seed(5))  # 4 discrete "motions" in latent space


def video_batch(seed: int = 1, b: int = 4) -> dict:
    """What pretraining windows hold: frames, their padding and the instruction; no action, no state."""
    return {k: v for k, v in batch(b, seed).items() if k not in ("action", "action_is_pad", "obs.state")}


def moving(seed: int, b: int = 16) -> tuple[dict, torch.Tensor]:
    """Random frames; each sample's future moves by one of 4 fixed displacements per step."""
    data, motion = video_batch(seed, b), torch.arange(b) % len(MOVES)
    steps = torch.tensor([1.0, 2.0])[None, :, None, None, None]
    data["future.latent"] = data["obs.latent"][:, -1:] + MOVES[motion][:, None] * steps
    return data, motion


def test_the_lam_stage_maps_different_motions_to_different_codes():
    torch.manual_seed(0)
    stage = LamStage(LatentActionModel(4, codes=16, dim=16, width=64))
    opt = torch.optim.AdamW(stage.parameters(), lr=3e-3)
    for step in range(60):
        loss = stage.loss(moving(step)[0])[0]
        opt.zero_grad()
        loss.backward()
        opt.step()
    data, motion = moving(1000)
    out = stage.eval().lam(frame_pairs(data["obs.latent"], data["future.latent"]), ~data["future_is_pad"])
    index, motion = out.index.flatten(), motion.repeat_interleave(2)  # (B*Tf,) one code per frame pair
    assert out.used * 16 > 1 and out.perplexity > 1
    majority = [int(index[motion == m].mode().values) for m in range(len(MOVES))]
    assert len(set(majority)) == len(MOVES), majority  # each motion has its own code
    # purity: most pairs given a code share its motion (untrained, one code holds all: 0.25)
    purity = sum(int(torch.bincount(motion[index == c]).max()) for c in index.unique()) / len(index)
    assert purity >= 0.8, purity


def test_the_lam_stage_refuses_a_batch_that_carries_actions():
    stage = LamStage(LatentActionModel(4, codes=8, dim=6, width=16))
    assert torch.isfinite(stage.loss(video_batch())[0])
    with pytest.raises(WamError, match="action-free"):
        stage.loss({**video_batch(), "action": batch()["action"]})


def code_world_model(**kw) -> CodeWorldModel:
    torch.manual_seed(0)
    lam = LatentActionModel(4, codes=16, dim=8, width=16)
    lam.seed_codebook(frame_pairs(batch()["obs.latent"], batch()["future.latent"]))
    return perturbed(CodeWorldModel(WorldModelConfig(**CFG, **kw), tokenizer(), lam), 0.05)


def test_the_world_model_learns_the_frozen_lams_codes_and_never_trains_the_lam():
    wm = code_world_model()
    before = {k: v.clone() for k, v in wm.lam.state_dict().items()}
    data = video_batch()
    loss, metrics = wm.loss(data, generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert metrics["code_loss"] > 0 and torch.allclose(loss, metrics["video_loss"] + metrics["code_loss"])
    assert all(q.grad is None for q in wm.lam.parameters()) and not any(q.requires_grad for q in wm.lam.parameters())
    assert wm.code_io.proj_out.weight.grad.abs().max() > 0  # the code head learns
    assert all(torch.equal(v, wm.lam.state_dict()[k]) for k, v in before.items())
    # the target: the LAM's codebook vectors of the real pairs
    target = wm.codes(data["obs.latent"], data["future.latent"])
    book = wm.lam.entries(torch.arange(16))
    assert torch.cdist(target.flatten(0, 1), book).min(1).values.max() < 1e-4


def test_the_video_path_never_reads_the_codes():
    """Imagining (no code group) is the path trained: the future's velocity is the same whatever the codes are."""
    wm = code_world_model().eval()
    data, g = video_batch(), torch.Generator().manual_seed(3)
    x, t = torch.randn(4, 2, 4, 4, 4, generator=g), torch.rand(4, generator=g)
    alone = wm.velocity(x, t, data["obs.latent"], data["text_emb"])
    for codes in (torch.randn(4, 2, 8, generator=g), torch.randn(4, 2, 8, generator=g)):
        out = wm.run_groups(x, t, data["obs.latent"], data["text_emb"], extra=[code_tokens(wm.code_io, codes, t, wm.code_pos)])
        assert torch.allclose(wm.future_io.read_out(out["future"], 2, 4, 4), alone, atol=1e-5)


def test_an_action_conditioned_world_model_is_refused():
    with pytest.raises(ConfigError, match="action_chunk"):
        code_world_model(action_chunk=2)
