"""Hierarchical: the planner runs every `policy.hierarchical.plan_every` calls, reset re-plans, the executor is
small and acts toward the subgoal it is given."""

from __future__ import annotations

import pytest
import torch

from tests.paradigms.test_contract import batch, perturbed, tiny, tokenizer
from wam.errors import ConfigError
from wam.models.world_model import VideoWorldModel, WorldModelConfig
from wam.nn.tokenizer import FrameAutoencoder, TokenizerConfig
from wam.nn.transformer import BackboneConfig
from wam.paradigms import PolicyModelConfig, build_paradigm
from wam.paradigms.settings import HierarchicalConfig


def g(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def counting(p) -> list[int]:
    """Counts backbone passes: the planner is the only user of the backbone at test time."""
    calls: list[int] = []
    p.parts.backbone.register_forward_hook(lambda *_: calls.append(1))
    return calls


def test_plans_every_plan_every_calls_and_reset_replans():
    p = tiny("hierarchical", hierarchical=HierarchicalConfig(plan_every=2))
    calls, steps = counting(p), p.cfg.sample_steps
    data = batch(1)
    for _ in range(5):
        assert p.act(data, generator=g()).shape == (1, 3, 4)
    assert len(calls) == 3 * steps  # plans on calls 1, 3, 5
    p.reset()  # the plan of call 5 has served once; a reset still forces a new one
    p.act(data, generator=g())
    assert len(calls) == 4 * steps
    p.act(data, generator=g())
    assert len(calls) == 4 * steps  # cached again


def test_a_new_instruction_or_batch_size_replans():
    p = tiny("hierarchical", hierarchical=HierarchicalConfig(plan_every=10))
    calls, steps = counting(p), p.cfg.sample_steps
    p.act(batch(1), generator=g())
    p.act(batch(1), generator=g())
    assert len(calls) == steps
    p.act(batch(2), generator=g())  # batch size changed
    other = batch(2)
    other["text_emb"] = other["text_emb"] + 1  # a new instruction
    p.act(other, generator=g())
    assert len(calls) == 3 * steps


def test_cached_calls_act_toward_the_cached_subgoal():
    p = perturbed(tiny("hierarchical", hierarchical=HierarchicalConfig(plan_every=2, subgoal_index=0)), 0.05)
    data = batch(1)
    subgoal = p.imagine(data, generator=g(1))[:, 0]  # what the first act call will imagine
    p.act(data, generator=g(1))
    again = batch(1, seed=5)
    again["text_emb"] = data["text_emb"]  # same episode, a new observation
    cached = p.act(again, generator=g(2))
    # one call later the subgoal (F = 2 steps ahead when made) is 2 - 1 = 1 step ahead (1 step a call here)
    assert torch.equal(cached, p.act(again, generator=g(2), given_subgoal=subgoal, offset=1))
    assert not torch.allclose(cached, p.act(again, generator=g(2), given_subgoal=subgoal + 1, offset=1))
    assert not torch.allclose(cached, p.act(again, generator=g(2), given_subgoal=subgoal, offset=2))


def offsets_seen(p) -> list[tuple[list[float], torch.Tensor]]:
    """Records what the executor is conditioned on: (offsets, subgoal) per call."""
    seen, real = [], p.executor.condition

    def spy(obs, subgoal, state, offset):
        seen.append((offset.tolist(), subgoal.clone()))
        return real(obs, subgoal, state, offset)

    p.executor.condition = spy
    return seen


@pytest.mark.parametrize("execution,expected", [({}, [8, 4, 1, 8]), ({"n_action_steps": 2}, [8, 6, 4, 8]),
                                                ({"ensemble": 0.5}, [8, 7, 6, 8])])
def test_a_cached_subgoal_is_given_its_remaining_offset(execution, expected):
    """A plan made for F = 8 steps ahead ages by the steps executed per call (half the chunk = 4 by default,
    n_action_steps, or 1 with ensembling); at least 1 step remains."""
    p = tiny("hierarchical", hierarchical=HierarchicalConfig(plan_every=3), future=(4, 8), chunk=8, **execution)
    seen = offsets_seen(p)
    for _ in range(4):
        p.act(batch(1), generator=g())
    assert [o[0] for o, _ in seen] == expected


def test_the_executor_trains_on_subgoals_at_the_offsets_it_meets():
    """Each training sample's subgoal is the real future frame at an offset <= F, given with that offset:
    over a few batches every such offset occurs, and the frame matches its offset."""
    # F = 4: offsets 2 and 4, never 6
    p = tiny("hierarchical", future=(2, 4, 6), hierarchical=HierarchicalConfig(subgoal_index=1))
    seen, data = offsets_seen(p), batch(8)
    data["future.latent"] = torch.randn(8, 3, 4, 4, 4, generator=g(7))
    data["future_is_pad"] = torch.zeros(8, 3, dtype=torch.bool)
    for seed in range(3):
        p.loss(data, generator=g(seed))
    offsets = [k for o, _ in seen for k in o]
    assert set(offsets) == {2.0, 4.0}
    frames = {2.0: data["future.latent"][:, 0], 4.0: data["future.latent"][:, 1]}
    for o, subgoal in seen:
        for j, k in enumerate(o):
            assert torch.equal(subgoal[j], frames[k][j])


def test_executor_is_much_smaller_than_the_backbone():
    p = build_paradigm("hierarchical", PolicyModelConfig(), FrameAutoencoder(TokenizerConfig()))  # (8, 8, 8) latents
    count = lambda m: sum(q.numel() for q in m.parameters())  # noqa: E731
    assert count(p.executor) < count(p.parts.backbone) / 4
    assert p.parts.action_io is None  # the backbone has no action head to train


def test_world_model_checkpoint_loads_into_the_planner():
    wm = VideoWorldModel(WorldModelConfig(backbone=BackboneConfig(depth=2, width=64), obs=(-1, 0), future=(2, 4)),
                         tokenizer())
    result = tiny("hierarchical").parts.load_world(wm.state_dict())
    assert not result.unexpected_keys
    assert {k.split(".")[0] for k in result.missing_keys} == {"state_in"}


@pytest.mark.parametrize("change,needle", [({"subgoal_index": 2}, "policy.hierarchical.subgoal_index"),
                                           ({"plan_every": 0}, "policy.hierarchical.plan_every"),
                                           ({"executor_steps": 0}, "policy.hierarchical.executor_steps")])
def test_bad_config_is_refused(change, needle):
    with pytest.raises(ConfigError, match=needle):
        tiny("hierarchical", hierarchical=HierarchicalConfig(**change))
