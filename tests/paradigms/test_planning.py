"""The planning policy (sampling-based MPC) on a tiny action-conditioned world model: it executes the
candidate whose imagined future ends nearest the goal, is deterministic under a generator, and takes its
goal from the demos of the same instruction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.paradigms.test_contract import perturbed, tokenizer
from wam.errors import ConfigError
from wam.models.world_model import VideoWorldModel, WorldModelConfig
from wam.nn.transformer import BackboneConfig
from wam.paradigms.planning import Goals, PlanConfig, Planner
from wam.policy import Normalizer

K, DA = 3, 4


def stats() -> dict:
    return {"observation.state": {"mean": np.zeros(4), "std": np.ones(4)},
            "action": {"min": -2 * np.ones(DA), "max": 2 * np.ones(DA)}}


def world_model(action_chunk: int = K) -> VideoWorldModel:
    torch.manual_seed(0)
    cfg = WorldModelConfig(backbone=BackboneConfig(depth=2, width=64), obs=(0,), future=(2, 4),
                           action_chunk=action_chunk, action_dim=DA, sample_steps=2)
    return perturbed(VideoWorldModel(cfg, tokenizer()), 0.05)  # off adaLN-Zero's init: the future depends on actions


def no_goals() -> Goals:
    return Goals(torch.zeros(0, 384), torch.zeros(0, 4, 4, 4), torch.zeros(0, 4, 4, 4))


def tiny_planner(proposal=None, goals: Goals | None = None, **kw) -> Planner:
    cfg = PlanConfig(**{"candidates": 8, "chunk": K, "obs": (0,), "future": (2, 4), **kw})
    prior = (torch.zeros(DA), 0.5 * torch.ones(DA))
    return Planner(cfg, world_model(), Normalizer(stats()), goals or no_goals(), proposal, prior)


def batch(b: int = 2, seed: int = 1) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"obs.latent": torch.randn(b, 1, 4, 4, 4, generator=g), "obs.state": torch.randn(b, 1, 4, generator=g),
            "obs.image": torch.randint(0, 255, (b, 1, 3, 32, 32), generator=g, dtype=torch.uint8),
            "text_emb": torch.randn(b, 384, generator=g), "goal.latent": torch.randn(b, 4, 4, 4, generator=g),
            "future.latent": torch.randn(b, 2, 4, 4, 4, generator=g)}  # what a policy batch may hold; never read


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_the_candidate_whose_imagined_future_reaches_the_goal_is_executed():
    """A goal made from candidate j's own imagined last frame (j: not the winner for the first goal) makes
    j win: the same seed gives the same candidates and the same imagination noise, so j's distance is 0."""
    p, data = tiny_planner(), batch()
    first = p.act(data, generator=gen())
    cands, imagined, scores = p.last_candidates, p.last_imagined, p.last_scores
    assert cands.shape == (2, 8, K, DA) and imagined.shape == (2, 8, 2, 4, 4, 4)
    assert torch.equal(first, cands[torch.arange(2), scores.argmax(1)])
    j = (scores.argmax(1) + 3) % 8  # another candidate in each row
    rows = torch.arange(2)
    assert imagined[rows, j, -1].sub(imagined[rows, scores.argmax(1), -1]).abs().max() > 1e-3  # the choice matters
    chosen = p.act({**data, "goal.latent": imagined[rows, j, -1]}, generator=gen())
    assert torch.equal(chosen, cands[rows, j])
    assert torch.equal(p.last_future, imagined[rows, j])  # what the policy shows is the executed chunk's future


def test_every_candidate_of_a_row_is_imagined_from_the_same_noise():
    """Common random numbers: two equal candidates get the same imagined future, so scores differ by actions alone."""
    class Twins(torch.nn.Module):  # a proposal whose samples come in equal pairs
        pixels = True  # takes the frames as they are: no tokenizer

        def act(self, batch, generator=None, **_):
            half = torch.rand(batch["text_emb"].shape[0] // 2, K, DA, generator=generator) * 2 - 1
            return half.repeat_interleave(2, 0)

    p = tiny_planner(proposal=Twins(), noise=0.0)
    p.act(batch(), generator=gen())
    futures = p.last_imagined  # (B, N, Tf, C, h, w)
    assert torch.equal(futures[:, 0], futures[:, 1]) and not torch.allclose(futures[:, 0], futures[:, 2])


def test_a_generator_gives_the_same_chunk_and_another_seed_another():
    p, data = tiny_planner(iterations=2, elites=3), batch()
    a, b, c = (p.act(data, generator=gen(s)) for s in (5, 5, 6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_cem_rounds_never_return_worse_than_the_first_round():
    data = batch()
    one = tiny_planner()
    one.act(data, generator=gen())
    first_best = one.last_scores.amax(1)
    cem = tiny_planner(iterations=3, elites=3)
    chunk = cem.act(data, generator=gen())
    # the returned chunk, imagined again from the same noise (the generator's first draw) and scored
    wm = world_model()
    noise = torch.randn(wm.future_shape(2), generator=gen())
    future = wm.imagine_latents(data["obs.latent"], data["text_emb"], Normalizer(stats()).unaction(chunk), noise=noise)
    score = Planner.score(future[:, None, -1], data["goal.latent"])[:, 0]
    assert (score >= first_best - 1e-5).all()


def test_proposal_chunks_are_perturbed_and_clamped():
    class Fixed(torch.nn.Module):
        pixels = True  # takes the frames as they are: no tokenizer

        def act(self, batch, generator=None, **_):
            return torch.full((batch["text_emb"].shape[0], K, DA), 0.95)

    p = tiny_planner(proposal=Fixed(), noise=0.2)
    p.act(batch(), generator=gen())
    cands = p.last_candidates
    assert cands.max() <= 1 and cands.min() >= -1 and (cands == 1).any()  # clamped
    assert 0.05 < (cands - 0.95).std() < 0.3  # perturbed around the proposal


def test_the_goal_is_the_last_frame_of_the_same_instruction_demo_that_starts_nearest():
    text = torch.eye(3, 384)[[0, 0, 1]]  # demos 0 and 1: instruction A; demo 2: instruction B
    first = torch.stack([torch.full((4, 4, 4), v) for v in (0.0, 1.0, 0.9)])
    last = torch.stack([torch.full((4, 4, 4), v) for v in (10.0, 11.0, 12.0)])
    p = tiny_planner(goals=Goals(text, first, last))
    current = torch.full((2, 4, 4, 4), 0.8)  # nearest start: demo 2 (0.9), but row 0 says A: demo 1 (1.0)
    goals = p.goal(current, torch.eye(3, 384)[[0, 1]] + 0.01)
    assert goals[0].mean().item() == 11.0 and goals[1].mean().item() == 12.0


def test_planning_refuses_a_world_model_without_actions_and_no_candidates():
    with pytest.raises(ConfigError, match="action_chunk"):
        Planner(PlanConfig(chunk=K), world_model(action_chunk=0), Normalizer(stats()), no_goals(),
                prior=(torch.zeros(DA), torch.ones(DA)))
    with pytest.raises(ConfigError, match="candidates"):
        tiny_planner(candidates=0)
    with pytest.raises(ConfigError, match="not trained"):
        tiny_planner().loss(batch())
