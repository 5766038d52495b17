"""episode_generator: the same stream for the same (seed, task, episode), another otherwise (that it is the same in
every process is tested end to end by tests/test_evaluate.py: 1 worker vs 2)."""

from __future__ import annotations

import torch

from wam.runs.seeding import episode_generator, episode_seed

KEYS = [(10_000, "reach-v3", 0), (10_000, "reach-v3", 1), (10_000, "push-v3", 0), (10_001, "reach-v3", 0)]


def test_each_episode_gets_its_own_stream():
    draws = [torch.randn(4, generator=episode_generator(*k)) for k in KEYS]
    assert all(not torch.equal(draws[i], draws[j]) for i in range(4) for j in range(i))
    assert torch.equal(draws[0], torch.randn(4, generator=episode_generator(*KEYS[0])))
    assert len({episode_seed(*k) for k in KEYS}) == 4 and all(0 <= episode_seed(*k) < 2**63 for k in KEYS)
