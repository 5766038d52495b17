"""Planning (Sereact-style sampling-based MPC): an action-conditioned world model scores candidate chunks.

No network of its own is trained. At every call of `act`:

1. sample N candidate chunks (B, N, K, Da), in normalised action units ([-1, 1]):
   - with a proposal policy (any trained wam policy, e.g. action-only): N samples of the proposal for
     the same observation (one batched call, its own flow noise), each plus Gaussian noise of std
     `noise`;
   - without one: N draws from the dataset's per-dimension action statistics (mean, std), i.i.d. per
     step;
2. imagine each candidate's future with the world model (`VideoWorldModel` with `model.action_chunk=K`,
   the K actions as its action tokens, in the dataset's units): all B x N in one batch, every candidate
   of a row from the SAME noise (common random numbers), so scores differ by the actions alone;
3. score = - mean squared distance between the last imagined frame's latent and the goal's latent
   (normalised tokenizer latents), and execute the best. The goal: `batch["goal.latent"]` (B, C, h, w)
   when given (`wam plan --goal=PNG`), else from the goal library: among the demos of the row's
   instruction (the nearest instruction embedding), the one whose first frame is nearest to the current
   frame, and its last frame;
4. with `iterations > 1` (CEM), refit a per-step Gaussian to the `elites` best and sample again; the
   best candidate of all rounds is returned.

Everything random comes from `generator`: the same generator state gives the same chunk. The policy
wrapper (wam.policy.WamPolicy) feeds frames as pixels (`pixels = True`): the world model and the
proposal each encode them with their own tokenizer. `act` leaves the chosen candidate's imagined
future in `last_future`; `imagine` is that future. Built by `wam plan` (wam.planning), never trained.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from wam.errors import ConfigError
from wam.models.world_model import VideoWorldModel
from wam.nn.flow import gaussian
from wam.paradigms.base import Paradigm, ParadigmBase


@dataclass
class PlanConfig:
    """The planner's settings (`wam plan --policy.*`); chunk, obs and future are the world model's."""

    candidates: int = 64  # N chunks imagined and scored per call (one batch)
    iterations: int = 1  # sampling rounds; > 1: cross-entropy method (refit to the elites)
    elites: int = 8  # candidates kept to refit the Gaussian between rounds
    noise: float = 0.1  # std of the perturbation of proposal chunks (normalised action units)
    sample_steps: int = 0  # Euler steps of each imagination (0: the world model's own)
    n_action_steps: int = 0  # actions executed per chunk (0 = half the chunk)
    ensemble: float = 0.0  # > 0: temporal ensembling with this decay (re-plan every step)
    kv_cache: bool = True  # imagination: the clean groups' keys/values once, not at every Euler step (same result)
    # filled in by `wam plan` from the world model (not options)
    chunk: int = 0
    obs: tuple[int, ...] = (0,)
    future: tuple[int, ...] = ()

    def check(self) -> None:
        if not isinstance(self.candidates, int) or self.candidates < 1:
            raise ConfigError(f"policy.candidates must be an integer >= 1 (chunks scored per call), "
                              f"got {self.candidates!r}")
        if self.iterations < 1 or self.elites < 1:
            raise ConfigError(f"policy.iterations and policy.elites must be >= 1, got {self.iterations}, {self.elites}")
        if self.iterations > 1 and self.elites > self.candidates:
            raise ConfigError(f"policy.elites ({self.elites}) must be <= policy.candidates ({self.candidates})")
        if self.noise < 0 or self.sample_steps < 0 or self.n_action_steps < 0 or self.ensemble < 0:
            raise ConfigError("policy.noise, sample_steps, n_action_steps and ensemble must be >= 0")


@dataclass
class Goals:
    """The goal library: per demo its instruction embedding (E, 384), first and last frame latents (E, C, h, w)."""

    text: Tensor
    first: Tensor
    last: Tensor
    names: list[str] = field(default_factory=list)  # the instructions, for messages


class Planner(ParadigmBase):
    name = "planning"
    architecture = "world-model-mpc"
    video = True  # `imagine` returns the chosen chunk's imagined future
    imagines_when_acting = True
    pixels = True  # each model encodes the frames with its own tokenizer

    def __init__(self, cfg: PlanConfig, world_model: VideoWorldModel, units: nn.Module, goals: Goals,
                 proposal: Paradigm | None = None, prior: tuple[Tensor, Tensor] | None = None):
        """`units.unaction`: normalised actions -> the world model's (the dataset's) units (the policy's
        `Normalizer`). `prior`: (mean, std) (Da,) of the dataset's actions in normalised units, the
        proposal when `proposal` is None."""
        cfg.check()
        if not world_model.cfg.action_chunk:
            raise ConfigError("planning needs an action-conditioned world model (model.action_chunk > 0)")
        if proposal is None and prior is None:
            raise ConfigError("planning needs a proposal policy or the dataset's action statistics")
        super().__init__(cfg, world_model)  # type: ignore[arg-type]  (the world model stands in for WamParts)
        self.proposal, self.units = proposal, units
        for name, value in (("goal_text", goals.text), ("goal_first", goals.first), ("goal_last", goals.last)):
            self.register_buffer(name, value.float(), persistent=False)
        mean, std = prior if prior is not None else (torch.zeros(0), torch.zeros(0))
        self.register_buffer("prior_mean", mean.float(), persistent=False)
        self.register_buffer("prior_std", std.float(), persistent=False)
        # the last round, for inspection: candidates (B, N, K, Da), imagined futures (B, N, Tf, C, h, w), scores (B, N)
        self.last_candidates: Tensor | None = None
        self.last_imagined: Tensor | None = None
        self.last_scores: Tensor | None = None

    def reset(self) -> None:
        """A new episode: the proposal forgets its test-time state (e.g. a hierarchical policy's cached plan)."""
        getattr(self.proposal, "reset", lambda: None)()

    def loss(self, batch: dict, generator: torch.Generator | None = None) -> tuple[Tensor, dict]:
        raise ConfigError("planning is not trained: `wam plan --world_model=RUN` builds it from a world model")

    # -- acting ---------------------------------------------------------------------------------
    @torch.no_grad()
    def act(self, batch: dict, generator: torch.Generator | None = None, *,
            given_future: Tensor | None = None) -> Tensor:
        """(B, K, Da) normalised actions: the best of the candidates by imagined progress to the goal."""
        self.no_given_future(given_future)
        wm, n = self.parts, self.cfg.candidates
        obs = batch["obs.latent"] if "obs.latent" in batch else wm.encode(batch["obs.image"])  # (B, To, C, h, w)
        text = batch["text_emb"]
        b = obs.shape[0]
        goal = batch["goal.latent"] if "goal.latent" in batch else self.goal(obs[:, -1], text)  # (B, C, h, w)
        noise = gaussian(wm.future_shape(b), generator, obs.device)  # one noise per row, shared by its candidates
        many = lambda x: x.repeat_interleave(n, 0)  # noqa: E731  (B, ...) -> (B * N, ...)
        cands = self._first_candidates(batch, b, generator)  # (B, N, K, Da)
        best_score = torch.full((b,), -torch.inf, device=obs.device)
        best, best_future = cands[:, 0], None
        for round_ in range(self.cfg.iterations):
            actions = self.units.unaction(cands.flatten(0, 1))  # (B * N, K, Da) in the world model's units
            future = wm.imagine_latents(many(obs), many(text), actions, steps=self.cfg.sample_steps or None,
                                        noise=many(noise), kv_cache=self.cfg.kv_cache)
            future = future.unflatten(0, (b, n))  # (B, N, Tf, C, h, w)
            scores = self.score(future[:, :, -1], goal)  # (B, N)
            top = scores.argmax(1)
            rows = torch.arange(b, device=obs.device)
            better = scores[rows, top] > best_score
            best_score = torch.where(better, scores[rows, top], best_score)
            best = torch.where(better[:, None, None], cands[rows, top], best)
            pick = future[rows, top]
            best_future = pick if best_future is None else torch.where(better[:, None, None, None, None], pick,
                                                                        best_future)
            self.last_candidates, self.last_imagined, self.last_scores = cands, future, scores
            if round_ + 1 < self.cfg.iterations:
                cands = self._refit(cands, scores, generator)
        self.last_future = best_future
        return best

    @staticmethod
    def score(last: Tensor, goal: Tensor) -> Tensor:
        """(B, N, C, h, w) last imagined frames, (B, C, h, w) goal -> (B, N): minus the mean squared latent distance."""
        return -(last - goal[:, None]).square().flatten(2).mean(-1)

    @torch.no_grad()
    def imagine(self, batch: dict, generator: torch.Generator | None = None) -> Tensor:
        """(B, Tf, C, h, w): the imagined future of the chunk `act` chooses."""
        self.act(batch, generator)
        return self.last_future

    def goal(self, current: Tensor, text: Tensor) -> Tensor:
        """(B, C, h, w) goal latents from the library: the demos of the nearest instruction, of those the one
        whose first frame is nearest to `current` (B, C, h, w), its last frame."""
        if not len(self.goal_text):
            raise ConfigError("this planner has no goal library: give a goal (wam plan --goal=PNG)")
        sim = nn.functional.normalize(text.float(), dim=-1) @ nn.functional.normalize(self.goal_text, dim=-1).T
        same = sim >= sim.amax(1, keepdim=True) - 1e-4  # (B, E) demos of the nearest instruction
        dist = (current[:, None].float() - self.goal_first[None]).square().flatten(2).mean(-1)  # (B, E)
        return self.goal_last[dist.masked_fill(~same, torch.inf).argmin(1)]

    def _first_candidates(self, batch: dict, b: int, generator: torch.Generator | None) -> Tensor:
        """(B, N, K, Da) normalised candidates of the first round: the proposal's (perturbed) or the prior's."""
        n, k = self.cfg.candidates, self.cfg.chunk
        device = batch["text_emb"].device
        if self.proposal is None:
            draw = gaussian((b, n, k, self.prior_mean.numel()), generator, device)
            return (self.prior_mean + self.prior_std * draw).clamp(-1, 1)
        many = {key: v.repeat_interleave(n, 0) for key, v in batch.items()
                if key in ("obs.image", "obs.latent", "obs.state", "text_emb")}
        if not self.proposal.pixels and "obs.image" in many:  # its own tokenizer's latents
            many["obs.latent"] = self.proposal.parts.tokenizer.normalize(
                self.proposal.parts.tokenizer.encode(many.pop("obs.image")))
        chunks = self.proposal.act(many, generator)[:, :k]  # (B * N, K, Da)
        chunks = chunks + self.cfg.noise * gaussian(chunks.shape, generator, device)
        return chunks.clamp(-1, 1).unflatten(0, (b, n))

    def _refit(self, cands: Tensor, scores: Tensor, generator: torch.Generator | None) -> Tensor:
        """New candidates from a per-step Gaussian fitted to the `elites` best (CEM)."""
        top = scores.topk(min(self.cfg.elites, scores.shape[1]), dim=1).indices  # (B, E)
        elite = cands.gather(1, top[..., None, None].expand(-1, -1, *cands.shape[2:]))  # (B, E, K, Da)
        mean, std = elite.mean(1, keepdim=True), elite.std(1, keepdim=True, unbiased=False) + 1e-3
        return (mean + std * gaussian(cands.shape, generator, cands.device)).clamp(-1, 1)
