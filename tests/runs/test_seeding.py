"""episode_generator: the same stream for the same (seed, task, episode) in any process, another otherwise."""

from __future__ import annotations

import os
import subprocess
import sys

import torch

from wam.runs.seeding import episode_generator, episode_seed

KEYS = [(10_000, "reach-v3", 0), (10_000, "reach-v3", 1), (10_000, "push-v3", 0), (10_001, "reach-v3", 0)]


def test_the_seed_is_the_same_in_another_process():
    code = ("from wam.runs.seeding import episode_seed\n"
            f"print([episode_seed(*k) for k in {KEYS!r}])")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # Python's own hash() would change with this
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.strip() == str([episode_seed(*k) for k in KEYS])


def test_each_episode_gets_its_own_stream():
    draws = [torch.randn(4, generator=episode_generator(*k)) for k in KEYS]
    assert all(not torch.equal(draws[i], draws[j]) for i in range(4) for j in range(i))
    assert torch.equal(draws[0], torch.randn(4, generator=episode_generator(*KEYS[0])))
    assert len({episode_seed(*k) for k in KEYS}) == 4 and all(0 <= episode_seed(*k) < 2**63 for k in KEYS)
