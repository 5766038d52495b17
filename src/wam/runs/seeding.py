"""Seeds that do not depend on the process: an evaluation episode's policy noise, a training run.

    g = episode_generator(seed=10_000, task="reach-v3", episode=3)
    action = policy.select_action(obs, generator=g)     # every step of that episode, the same g

A policy samples its flow noise from a generator. `wam eval` gives each episode its own, seeded by
(eval seed, task, episode index) through a hash that is the same in every process, so an episode's
rollout does not depend on the worker it ran in, on the episodes that worker ran before, or on the
number of workers: the same command gives the same rollouts. A policy server given the same three
values reproduces an evaluation episode exactly. `seed_run` seeds a training run before its models
are built, so `wam pretrain`/`wam train` with one seed on one device give the same weights.
"""

from __future__ import annotations

import hashlib

import torch


def episode_seed(seed: int, task: str, episode: int) -> int:
    """A 63-bit seed from (seed, task, episode), stable across processes and Python versions."""
    digest = hashlib.sha256(f"wam-episode/{int(seed)}/{task}/{int(episode)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def episode_generator(seed: int, task: str, episode: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A fresh generator for the policy's randomness in episode `episode` of `task` (see the module doc)."""
    return torch.Generator(device=device).manual_seed(episode_seed(seed, task, episode))


def seed_run(seed: int) -> None:
    """Seed torch's global RNG (and Python's, NumPy's legacy one) at the start of a training run, before
    any model is built: its initial weights, and so the whole run, then depend on `seed` alone."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
