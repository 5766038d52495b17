"""Auxiliary perception targets: the policy's features of the current frame regress named world positions.

    --policy.aux.targets=object,goal --policy.aux.weight=1.0

A small head (`AuxHead`) reads the backbone's output tokens of the current observation frame and regresses
the named positions of the recorded `observation.environment_state` (Meta-World's 39 numbers: hand 0:3,
object 4:7, goal 36:39; `wam.envs.target_masks.TARGETS`), standardised with the training episodes'
statistics; its squared error, times `weight`, joins every paradigm's loss. The obs group is clean and
sees only the clean groups (text, obs, state) in every paradigm's mask, so its tokens are the same in every
pass a paradigm makes: `WamParts.run` keeps the last pass's in `aux_features`, and
`auxiliary_loss` reads them after the paradigm's loss. The positions are a training signal only: the
head is never read when acting, and the environment's state is never an input. It asks whether a
policy whose features are made to hold the object and the goal acts better than one that is not (the
oracle of docs/results.md section 5 feeds the true positions as input; this teaches them instead).

Shapes: obs tokens (B, To * n, W), n = (grid / patch)^2 per frame -> head (B, D), D = 3 per target.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wam.envs.target_masks import ENV_STATE_KEY, TARGETS
from wam.errors import ConfigError
from wam.nn.token_groups import CLEAN, GroupMask

AUX_KEY = ENV_STATE_KEY  # the dataset column the targets are read from
SQUEEZE = 16  # channels each token keeps before the tokens are read together
CLEAN_ONLY = GroupMask(allowed={g: set(CLEAN) for g in CLEAN})  # one pass of the clean groups


@dataclass
class AuxConfig:
    """Which world positions the policy's features are trained to hold (none by default)."""

    targets: str = ""  # comma list of hand, object, goal ("" = no auxiliary head)
    weight: float = 1.0  # weight of the auxiliary regression loss beside the action (and video) loss

    def names(self) -> list[str]:
        return [n.strip() for n in self.targets.split(",") if n.strip()]

    def columns(self) -> list[int]:
        """Indices into the 39-dim environment state, target by target."""
        return [i for n in self.names() for i in range(TARGETS[n].start, TARGETS[n].stop)]

    def check(self) -> None:
        unknown = [n for n in self.names() if n not in TARGETS]
        if unknown:
            raise ConfigError(f"policy.aux.targets: a comma list of {', '.join(TARGETS)} (positions of "
                              f"{AUX_KEY}), got {self.targets!r}")
        if len(set(self.names())) != len(self.names()):
            raise ConfigError(f"policy.aux.targets names a target twice: {self.targets!r}")
        if self.names() and not self.weight > 0:
            raise ConfigError(f"policy.aux.weight must be > 0 when policy.aux.targets is set, got {self.weight}")


class AuxHead(nn.Module):
    """The current frame's tokens (B, n, W) -> standardised target positions (B, D)."""

    def __init__(self, cfg: AuxConfig, width: int, tokens: int):
        super().__init__()
        self.tokens = tokens  # tokens of one frame: the head reads the last frame of the obs group
        self.norm = nn.LayerNorm(width)
        self.squeeze = nn.Linear(width, SQUEEZE)
        self.out = nn.Linear(tokens * SQUEEZE, len(cfg.columns()))
        self.register_buffer("columns", torch.tensor(cfg.columns(), dtype=torch.long))
        self.register_buffer("target_mean", torch.zeros(len(cfg.columns())))
        self.register_buffer("target_std", torch.ones(len(cfg.columns())))

    def set_stats(self, stats: dict[str, np.ndarray]) -> None:
        """Standardise targets with the training episodes' `mean` / `std` of the environment state."""
        cols = self.columns.cpu().numpy()
        self.target_mean.copy_(torch.as_tensor(np.asarray(stats["mean"])[cols], dtype=torch.float32))
        self.target_std.copy_(torch.as_tensor(np.asarray(stats["std"])[cols], dtype=torch.float32).clamp_min(1e-6))

    def target(self, env_state: Tensor) -> Tensor:
        """(B, 39) recorded environment state -> (B, D) standardised targets."""
        return (env_state[:, self.columns].float() - self.target_mean) / self.target_std

    def forward(self, obs_tokens: Tensor) -> Tensor:
        x = F.silu(self.squeeze(self.norm(obs_tokens[:, -self.tokens:])))  # (B, n, SQUEEZE)
        return self.out(x.flatten(1)).float()  # (B, D)


def auxiliary_loss(parts: nn.Module, batch: dict, loss: Tensor, metrics: dict) -> tuple[Tensor, dict]:
    """`loss` plus the auxiliary regression of `batch["aux.target"]` (B, 39) from the last pass's obs
    tokens, when the parts have a head and the batch its targets; `aux_loss` joins the metrics."""
    head = getattr(parts, "aux_head", None)
    if head is None or "aux.target" not in batch:
        return loss, metrics
    features = getattr(parts, "aux_features", None)
    if features is None:
        raise RuntimeError("the auxiliary head has no features: the paradigm's loss made no pass over the obs group")
    parts.aux_features = None  # one loss, one read
    aux = F.mse_loss(head(features), head.target(batch["aux.target"]))
    weight = parts.policy_cfg.aux.weight
    return loss + weight * aux, {**metrics, "aux_loss": aux.detach()}


@torch.no_grad()
def perceive(parts: nn.Module, batch: dict) -> Tensor:
    """(B, D) the head's standardised positions from one pass of the clean groups (text, obs, state): for
    inspection (`wam eval-offline`'s `aux_r2`); acting never calls it."""
    if getattr(parts, "aux_head", None) is None:
        raise ConfigError("this policy has no auxiliary head (policy.aux.targets is empty)")
    parts.run(batch, CLEAN_ONLY)
    features, parts.aux_features = parts.aux_features, None
    return parts.aux_head(features)


def aux_r2(pred: np.ndarray, true: np.ndarray, tasks: np.ndarray, names: list[str]) -> dict:
    """R^2 of the head's positions (N, 3 * len(names)) against the recorded ones, per target: over all windows
    (`all`, which credits telling the tasks apart) and within each task (a task's own spread only); None where
    a target does not vary (a fixed goal in one task's held-out windows)."""
    def r2(p: np.ndarray, t: np.ndarray) -> float | None:
        total = float(((t - t.mean(0)) ** 2).sum())
        return None if total < 1e-9 * max(len(t), 1) else round(1 - float(((p - t) ** 2).sum()) / total, 4)

    groups = {"all": np.ones(len(tasks), bool), **{str(t): tasks == t for t in dict.fromkeys(tasks)}}
    return {name: {g: r2(pred[m, 3 * i:3 * i + 3], true[m, 3 * i:3 * i + 3]) for g, m in groups.items()}
            for i, name in enumerate(names)}
