"""Hierarchical (video planner + fast executor): the backbone imagines a subgoal, a small net acts on it.

Planner: the shared backbone with its future group, trained with the video loss exactly as
inverse dynamics' video pass (the future noised, seeing the clean groups and itself). At test
time it imagines the future latents and one of them (`policy.hierarchical.subgoal_index`, default the last) is
the subgoal. The plan is made every `policy.hierarchical.plan_every` calls to `act` and cached in between;
`reset()` (called by `WamPolicy.reset`, i.e. at every episode start) drops it.

Executor: a small residual MLP, separate from the backbone (its weights live here, not in
`WamParts`: a policy-only module, fresh at `--init`), over
[obs latents, subgoal latent, proprio state] + the subgoal's offset (how many steps ahead it is)
-> action chunk (B, Ta, Da) by flow matching with its own few sample steps (`policy.hierarchical.executor_steps`).

The offset is an input because a cached plan ages: made for `F = future[subgoal_index]` steps ahead,
it is `F - j * s` steps ahead at the j-th call that reuses it, `s` the steps executed per call
(`policy.n_action_steps`, half the chunk by default, or 1 with `policy.ensemble`). Training draws,
per sample, a real future frame at one of the offsets <= F as the subgoal (teacher forcing) and
gives the executor that offset, so it has seen subgoals at the distances it meets; acting, it gets
the imagined subgoal and its remaining distance (at least 1).

    loss = action_weight * executor flow loss + video_weight * planner video loss
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from wam.errors import ConfigError
from wam.nn.flow import euler_sample, gaussian
from wam.nn.transformer import timestep_embedding
from wam.paradigms.base import (CLEAN, ParadigmBase, PolicyModelConfig, WamParts, future_loss, keep_mask,
                                mask_where, noise_group, sample_group, weighted_loss)

MASK = mask_where({"future": set(CLEAN) | {"future"}})  # the planner: no action group at all


class Executor(nn.Module):
    """A residual MLP: condition (obs, subgoal, state) once, then velocities of the action chunk."""

    def __init__(self, cond_dim: int, chunk: int, action_dim: int, width: int, depth: int):
        super().__init__()
        self.chunk, self.action_dim, self.width = chunk, action_dim, width
        self.cond = nn.Sequential(nn.Linear(cond_dim, width), nn.SiLU(), nn.Linear(width, width))
        self.time = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        self.offset = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        self.x_in = nn.Linear(chunk * action_dim, width)
        self.blocks = nn.ModuleList(nn.Sequential(nn.LayerNorm(width), nn.Linear(width, 2 * width), nn.SiLU(),
                                                  nn.Linear(2 * width, width)) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, chunk * action_dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def condition(self, obs: Tensor, subgoal: Tensor, state: Tensor, offset: Tensor) -> Tensor:
        """obs (B, To, C, h, w), subgoal (B, C, h, w), state (B, To, Ds), offset (B,) steps ahead -> (B, width)."""
        cond = self.cond(torch.cat([obs.flatten(1), subgoal.flatten(1), state.flatten(1)], 1))
        return cond + self.offset(timestep_embedding(offset.to(cond.device), self.width, scale=1.0).to(cond.dtype))

    def forward(self, x: Tensor, t: Tensor, cond: Tensor) -> Tensor:
        """x_t (B, Ta, Da), t (B,), cond (B, width) -> velocity (B, Ta, Da)."""
        c = cond + self.time(timestep_embedding(t, self.width))  # (B, W), re-injected in every block
        h = self.x_in(x.flatten(1)) + c
        for block in self.blocks:
            h = h + block(h + c)
        return self.out(self.norm(h)).reshape(-1, self.chunk, self.action_dim)


@dataclass
class Plan:
    """A cached subgoal and the instruction it was made for; `age` counts `act` calls since."""

    text: Tensor  # (B, 384)
    subgoal: Tensor  # (B, C, h, w)
    age: int = 0

    def serves(self, text: Tensor, plan_every: int) -> bool:
        return self.age < plan_every and self.text.shape == text.shape and torch.equal(self.text, text)


class Hierarchical(ParadigmBase):
    name = "hierarchical"
    integration = "tokens"
    architecture = "hierarchical"
    video = True
    imagines_when_acting = True
    acts_from_future = True
    backbone_actions = False  # the executor acts; the backbone only plans
    subgoal_offsets = True  # `act(..., given_subgoal=, offset=)` and `training_offsets()`
    settings = ("hierarchical",)

    def __init__(self, cfg: PolicyModelConfig, parts: WamParts):
        super().__init__(cfg, parts)
        n, own = len(cfg.future), cfg.hierarchical
        if not -n <= own.subgoal_index < n:
            raise ConfigError(f"policy.hierarchical.subgoal_index={own.subgoal_index} is not an index into the "
                              f"{n} future frames {tuple(cfg.future)} (policy.future)")
        c, g = parts.tokenizer.cfg.latent_channels, parts.grid
        cond_dim = (len(cfg.obs) + 1) * c * g * g + len(cfg.obs) * cfg.state_dim
        width = own.executor_width or cfg.backbone.resolved_width() // 2
        self.executor = Executor(cond_dim, cfg.chunk, cfg.action_dim, width, own.executor_depth)
        self.reset()

    def reset(self) -> None:
        """Forget the cached plan: the next `act` imagines a new subgoal (call at every episode start)."""
        self._plan: Plan | None = None

    @property
    def horizon(self) -> int:
        """F: how many steps ahead a fresh subgoal is."""
        return self.cfg.future[self.cfg.hierarchical.subgoal_index]

    def steps_per_call(self) -> int:
        """Environment steps between two `act` calls (the policy's execution settings)."""
        return 1 if self.cfg.ensemble else self.cfg.n_action_steps or max(self.cfg.chunk // 2, 1)

    def training_offsets(self) -> list[int]:
        """Indices into `future` of the frames that can serve as subgoals in training: offsets <= F."""
        return [i for i, k in enumerate(self.cfg.future) if k <= self.horizon]

    def loss(self, batch: dict, generator: torch.Generator | None = None) -> tuple[Tensor, dict]:
        video_loss = future_loss(self, batch, MASK, generator)
        a = noise_group(batch["action"], generator)
        future = batch["future.latent"]  # (B, Tf, C, h, w): real frames, one drawn per sample as its subgoal
        choices = torch.tensor(self.training_offsets(), device=future.device)
        pick = choices[torch.randint(len(choices), (future.shape[0],), generator=generator,
                                     device=generator.device if generator is not None else future.device).to(future.device)]
        offsets = torch.tensor(self.cfg.future, device=future.device, dtype=torch.float32)[pick]  # (B,)
        subgoal = future[torch.arange(future.shape[0], device=future.device), pick]  # (B, C, h, w)
        cond = self.executor.condition(batch["obs.latent"], subgoal, batch["obs.state"], offsets)
        action_loss = a.loss(self.executor(a.x_t, a.t, cond), keep_mask(batch["action_is_pad"], a.x0))
        return weighted_loss(self.cfg, action_loss, video_loss)

    @torch.no_grad()
    def imagine(self, batch: dict, generator: torch.Generator | None = None) -> Tensor:
        """(B, Tf, C, h, w): the planner's imagined future latents."""
        return sample_group(self, batch, MASK, "future", generator)

    def subgoal(self, batch: dict, generator: torch.Generator | None = None) -> tuple[Tensor, int]:
        """(B, C, h, w) and its remaining offset: the cached subgoal, re-imagined every `hierarchical.plan_every` calls or
        for a new instruction or batch size (a cached plan is for one episode: `reset()` between episodes)."""
        text = batch["text_emb"]
        if self._plan is None or not self._plan.serves(text, self.cfg.hierarchical.plan_every):
            self.last_future = self.imagine(batch, generator)  # (B, Tf, C, h, w), shown by the policy
            self._plan = Plan(text.clone(), self.last_future[:, self.cfg.hierarchical.subgoal_index])
        remaining = max(self.horizon - self._plan.age * self.steps_per_call(), 1)
        self._plan.age += 1
        return self._plan.subgoal, remaining

    @torch.no_grad()
    def act(self, batch: dict, generator: torch.Generator | None = None, *, given_future: Tensor | None = None,
            given_subgoal: Tensor | None = None, offset: int | None = None) -> Tensor:
        """(B, Ta, Da): the executor's chunk toward the (cached or new) subgoal, or a given one (B, C, h, w)
        `offset` steps ahead (default F), or the subgoal frame of a given future (B, Tf, C, h, w) (e.g. the
        real one: an upper bound)."""
        if given_future is not None:
            given_subgoal = given_future[:, self.cfg.hierarchical.subgoal_index]
        if given_subgoal is None:
            subgoal, offset = self.subgoal(batch, generator)
        else:
            subgoal, offset = given_subgoal, offset or self.horizon
        steps = torch.full((subgoal.shape[0],), float(offset), device=subgoal.device)
        cond = self.executor.condition(batch["obs.latent"], subgoal, batch["obs.state"], steps)
        noise = gaussian(self.parts.action_shape(cond.shape[0]), generator, cond.device)
        step = lambda x, t: {"action": self.executor(x["action"], t, cond)}  # noqa: E731
        return euler_sample(step, {"action": noise}, self.cfg.hierarchical.executor_steps)["action"]
