"""What every paradigm shares: the model family's parts and the flow-matching plumbing.

`WamParts` is the one model family: a `VideoWorldModel` (the frozen frame tokenizer, the token-group
backbone, the text / obs / future embedders) plus the policy's own embedders (proprio state, action
chunk), so a `wam pretrain` checkpoint initialises the shared parts by structure (`load_world`,
wam.models.transfer: strict, every tensor accounted for). With `action_frame` (the latent_frame integration) there are no action tokens at
all: the future group gets one more frame, one stride after the last future offset, that holds
the packed action chunk, and no action embedder exists. A paradigm (joint.py, representation.py,
latent_frame.py, ...) is a small strategy over these parts: which groups it noises, which mask it
uses, how it samples at test time. No paradigm inherits from another; shared steps are the
functions below.

Batches seen by a paradigm are already normalised by the policy:

    obs.latent (B, To, C, h, w)   obs.state (B, To, Ds)   text_emb (B, 384)
    future.latent (B, Tf, C, h, w) + future_is_pad (B, Tf)
    action (B, Ta, Da) in [-1, 1] + action_is_pad (B, Ta)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor, nn

from wam.errors import ConfigError
from wam.models.groups import VectorTokens, next_offset, vector_positions
from wam.models.transfer import Loaded, load_world
from wam.models.world_model import VideoWorldModel, WorldModelConfig
from wam.nn.flow import euler_sample, flow_loss, gaussian, interpolate, sample_time
from wam.nn.tokenizer import FrameAutoencoder
from wam.nn.token_groups import CLEAN, GroupMask, TokenGroup  # noqa: F401  (CLEAN: the paradigms import it from here)
from wam.nn.transformer import SHARED, KVCache
from wam.paradigms.auxiliary import AuxHead
from wam.paradigms.policy_config import PolicyModelConfig  # noqa: F401  (imported from here too)

EXPERT_KEY = re.compile(r"^backbone\.(?:blocks\.\d+\.experts|final_ada)\.(\w+)\.")  # a MoT expert's tensors


class WamParts(VideoWorldModel):
    """A video world model (the tokenizer, backbone and group embedders of `VideoWorldModel`, under its
    names) plus the policy's own modules (`POLICY_ONLY`): `run` denoises the groups a paradigm noises.

    `video`: a future group exists. `actions=False` leaves out the backbone's action head (a paradigm
    that acts with its own network). `action_frame`: actions are one more frame of the future group
    (at `next_offset(cfg.future)`), not tokens, so there is no action embedder either.
    A strategy's own token groups join `run` as `extra`. `load_world` starts it from a pretrained world
    model by structure (wam.models.transfer). `self.cfg` is the world model's config (its future
    offsets include the action / state frames); the policy's is `self.policy_cfg`."""

    POLICY_ONLY = ("state_in", "action_io", "aux_head")  # the policy's own modules: fresh at `--init`

    def __init__(self, cfg: PolicyModelConfig, tokenizer: FrameAutoencoder, video: bool = True,
                 actions: bool = True, action_frame: bool = False):
        cfg.check()
        if action_frame and not video:
            raise ConfigError("actions written into a latent frame need the future (video) group")
        state_frame = action_frame and cfg.latent_frame.state_frames  # proprio as frames: no state token
        future = (*cfg.future, next_offset(cfg.future)) if action_frame else tuple(cfg.future)
        if state_frame:  # the future states' frame one stride after the action frame
            future = (*future, next_offset(future))
        if action_frame and cfg.latent_frame.value_frame:  # the value's frame one stride after the last
            future = (*future, next_offset(future))
        # the current state's frame (latent_frame.state_frames): first in the obs group, one step before the
        # earliest obs frame
        obs = (min(cfg.obs) - 1, *cfg.obs) if state_frame else tuple(cfg.obs)
        world = WorldModelConfig(backbone=cfg.backbone, patch=cfg.patch, obs=obs, future=future,
                                 action_dim=cfg.action_dim, sample_steps=cfg.sample_steps)
        groups = ([] if state_frame else ["state"]) + ([] if action_frame else ["action"])
        super().__init__(world, tokenizer, groups=groups, video=video)
        self.policy_cfg = cfg
        width = cfg.backbone.resolved_width()
        self.state_in = None if state_frame else VectorTokens(cfg.state_dim, width)
        self.action_io = VectorTokens(cfg.action_dim, width, out=True) if actions and not action_frame else None
        self.obs_times = obs
        self.register_buffer("state_pos", vector_positions(cfg.obs), persistent=False)
        self.register_buffer("action_pos", vector_positions(range(cfg.chunk)), persistent=False)
        rows = self.grid // cfg.patch
        self.aux_head = AuxHead(cfg.aux, width, rows * rows) if cfg.aux.names() else None
        self.aux_features: Tensor | None = None  # the last pass's obs tokens (B, To * n, W), for aux_head

    def extension(self, key: str, other: dict) -> bool:
        """`key` is a MoT expert's tensor and `other` (a state dict) has none of that expert."""
        expert = _expert(key)
        return expert not in (None, SHARED) and not any(_expert(k) == expert for k in other)

    def load_world(self, state: dict[str, Tensor], source: str = "the world model") -> Loaded:
        """A world model's weights, strictly and by structure (wam.models.transfer). Into a MoT policy from a
        monolithic world model, every expert starts as a copy of the shared weights (the action expert fresh
        with `policy.action_expert=fresh`)."""
        return load_world(self, self._spread_shared(state), source)

    def _spread_shared(self, state: dict[str, Tensor]) -> dict[str, Tensor]:
        """A monolithic world model's `...experts.shared.*` / `final_ada.shared.*` under each of this MoT
        backbone's experts (the action expert's left out when it starts fresh); otherwise `state` as is."""
        if not self.backbone.cfg.mot or any(_expert(k) not in (None, SHARED) for k in state):
            return state
        copy = [k for k in self.backbone.keys if k != "action" or self.policy_cfg.action_expert == "copy"]
        out = {k: v for k, v in state.items() if _expert(k) != SHARED}
        for k, v in state.items():
            if _expert(k) == SHARED:
                out.update({k.replace(f".{SHARED}.", f".{e}.", 1): v for e in copy})  # load_state_dict copies
        return out

    def _groups(self, batch: dict, future: tuple[Tensor, Tensor] | None, action: tuple[Tensor, Tensor] | None,
                skip: set[str] = frozenset()) -> list[TokenGroup]:
        make = {"text": lambda: TokenGroup("text", self.text(batch["text_emb"]), None, self.text_pos, "text"),
                "obs": lambda: TokenGroup("obs", self.obs_in.embed(batch["obs.latent"]), None, self.obs_pos, "video")}
        if self.state_in is not None:  # else the paradigm packed the state into the obs group's first frame
            make["state"] = lambda: TokenGroup("state", self.state_in.embed(batch["obs.state"]), None, self.state_pos,
                                               "action")
        if future is not None:
            make["future"] = lambda: TokenGroup("future", self.future_io.embed(future[0]), future[1], self.future_pos,
                                                "video")
        if action is not None:
            make["action"] = lambda: TokenGroup("action", self.action_io.embed(action[0]), action[1], self.action_pos,
                                                "action")
        return [fn() for name, fn in make.items() if name not in skip]

    def prefill(self, batch: dict, mask: GroupMask, future: tuple[Tensor, Tensor] | None = None) -> KVCache | None:
        """The K/V cache of the clean groups (text, obs, state, and a clean `future` if given) for
        sampling, or None where the mask lets them see a noised group (then nothing can be cached)."""
        groups = self._groups(batch, future, None)
        try:
            return self.backbone.prefill(groups, mask)
        except ValueError:
            return None

    def run(self, batch: dict, mask: GroupMask, future: tuple[Tensor, Tensor] | None = None,
            action: tuple[Tensor, Tensor] | None = None, extra: Sequence[TokenGroup] = (),
            cache: KVCache | None = None) -> dict[str, Tensor]:
        """Velocities of the given (x_t, t) groups; a group with t == 0 everywhere is clean input.
        `extra` groups (a strategy's own, already embedded) come back as raw (B, N, width) tokens.
        Groups in `cache` (from `prefill`) are not recomputed."""
        cached = cache.names if cache is not None else set()
        out = self.backbone([*self._groups(batch, future, action, cached), *extra], mask, cache=cache)
        if self.aux_head is not None and "obs" in out:  # training and validation passes (acting: cached)
            self.aux_features = out["obs"]  # clean: the same in every pass (wam.paradigms.auxiliary)
        result = {g.name: out[g.name] for g in extra}
        if future is not None and "future" not in cached:
            frames = len(self.future_times)
            result["future"] = self.future_io.read_out(out["future"], frames, self.grid, self.grid).float()
        if action is not None:
            result["action"] = self.action_io.read_out(out["action"]).float()
        return result

    def action_shape(self, b: int) -> tuple[int, ...]:
        return (b, self.policy_cfg.chunk, self.policy_cfg.action_dim)


def _expert(key: str) -> str | None:
    """The MoT expert a backbone tensor belongs to (SHARED on a monolithic backbone), None if no expert's."""
    found = EXPERT_KEY.match(key)
    return found.group(1) if found else None


def mask_where(sees: dict[str, set[str]]) -> GroupMask:
    """A GroupMask in which the clean groups see only clean groups, plus the given rules."""
    return GroupMask(allowed={**{g: set(CLEAN) for g in CLEAN}, **sees})


@dataclass
class Noised:
    """A group's clean data, noise, flow time and noisy input."""

    x0: Tensor
    noise: Tensor
    t: Tensor
    x_t: Tensor

    def loss(self, pred: Tensor, keep: Tensor) -> Tensor:
        return flow_loss(pred, self.x0, self.noise, keep)

    def frames(self, which: slice) -> Noised:
        """The same noising restricted to some frames (dim 1) of the group."""
        return Noised(self.x0[:, which], self.noise[:, which], self.t, self.x_t[:, which])


def noise_group(x0: Tensor, generator: torch.Generator | None, t: Tensor | None = None) -> Noised:
    """Noise `x0` at a drawn (or given) flow time t (B,)."""
    noise = gaussian(x0.shape, generator, x0.device, x0.dtype)
    t = sample_time(x0.shape[0], generator=generator, device=x0.device) if t is None else t
    return Noised(x0, noise, t, interpolate(x0, noise, t))


def keep_mask(is_pad: Tensor, like: Tensor) -> Tensor:
    """(B, T) padding flags -> a keep mask broadcast to `like` (B, T, ...)."""
    return (~is_pad).reshape(*is_pad.shape, *[1] * (like.dim() - 2)).expand_as(like)


CAPABILITIES = ("video", "imagines_when_acting", "acts_from_future", "subgoal_offsets", "keeps_prefix")


class Paradigm(Protocol):
    """What every strategy offers the policy and the workflows (ParadigmBase subclasses satisfy it)."""

    cfg: PolicyModelConfig
    parts: WamParts
    video: bool  # the capabilities are class attributes: see CAPABILITIES
    imagines_when_acting: bool
    acts_from_future: bool
    subgoal_offsets: bool
    keeps_prefix: bool
    last_future: Tensor | None

    def loss(self, batch: dict, generator: torch.Generator | None = None) -> tuple[Tensor, dict]: ...

    def act(self, batch: dict, generator: torch.Generator | None = None, *,
            given_future: Tensor | None = None) -> Tensor: ...

    def imagine(self, batch: dict, generator: torch.Generator | None = None) -> Tensor | None: ...

    def reset(self) -> None: ...


def missing_members(obj: object) -> list[str]:
    """The `Paradigm` members `obj` lacks. Not `isinstance` on a runtime-checkable protocol: from Python
    3.12 that looks members up statically and misses an nn.Module's submodules (`parts`)."""
    methods = [n for n, v in vars(Paradigm).items() if callable(v) and not n.startswith("_")]
    return [n for n in (*Paradigm.__annotations__, *methods) if not hasattr(obj, n)]


def capabilities(cls: type) -> tuple[str, ...]:
    """The capabilities a strategy class declares (`video`: it has a video head, `imagine` returns frames)."""
    return tuple(c for c in CAPABILITIES if getattr(cls, c, False))


class ParadigmBase(nn.Module):
    """Holds the config and the shared parts; paradigms derive from this, never from each other."""

    name = ""
    integration = "tokens"  # the action-integration axis this strategy implements
    architecture = "backbone"  # "backbone" (monolithic or MoT by backbone.mot) or "hierarchical"
    video = True
    backbone_actions = True  # False: the paradigm acts with its own network, the backbone has no action head
    pixels = False  # the policy feeds tokenizer latents (True: raw frames, as to the outside reference policy)
    # the sections of PolicyModelConfig it reads (policy.<section>.*) beyond the shared shape, or flat key patterns
    settings: tuple[str, ...] = ()
    # declared capabilities (CAPABILITIES; tests/paradigms/test_contract.py checks each against behaviour)
    imagines_when_acting = False  # `act` leaves the future it imagined in `last_future`
    acts_from_future = False  # `act(batch, *, given_future=(B, Tf, C, h, w))` acts from that future instead
    subgoal_offsets = False  # hierarchical: `act(..., given_subgoal=, offset=)` and `training_offsets()`
    keeps_prefix = False  # `act(..., prefix=(B, P, Da))` keeps the first P actions fixed (real-time chunking)

    def __init__(self, cfg: PolicyModelConfig, parts: WamParts):
        super().__init__()
        self.cfg, self.parts = cfg, parts
        self.last_future: Tensor | None = None  # latents imagined by the last `act`, where it imagines

    def reset(self) -> None:
        """Forget any test-time state (none here); called at every episode start."""

    def no_given_future(self, given_future: Tensor | None) -> None:
        """Refuse a future handed to a paradigm that does not act from one (`acts_from_future`)."""
        if given_future is not None:
            raise ConfigError(f"{self.name} + {self.integration} does not act from a future, so there is none to "
                              f"replace (given_future applies to paradigms with acts_from_future)")

    @property
    def image_size(self) -> int:
        """The frame size (px) the policy feeds: the tokenizer's."""
        return self.parts.tokenizer.cfg.image_size


def video_and_action_loss(paradigm: ParadigmBase, batch: dict, mask: GroupMask, same_t: bool,
                          generator: torch.Generator | None) -> tuple[Tensor, dict]:
    """One pass with both future and actions noised (joint and representation-only training)."""
    a = noise_group(batch["action"], generator)
    f = noise_group(batch["future.latent"], generator, a.t if same_t else None)
    out = paradigm.parts.run(batch, mask, future=(f.x_t, f.t), action=(a.x_t, a.t))
    action_loss = a.loss(out["action"], keep_mask(batch["action_is_pad"], a.x0))
    video_loss = f.loss(out["future"], keep_mask(batch["future_is_pad"], f.x0))
    return weighted_loss(paradigm.cfg, action_loss, video_loss)


def weighted_loss(cfg: PolicyModelConfig, action_loss: Tensor, video_loss: Tensor) -> tuple[Tensor, dict]:
    """The training loss `action_weight * action + video_weight * video`, and both as metrics."""
    loss = cfg.action_weight * action_loss + cfg.video_weight * video_loss
    return loss, {"action_loss": action_loss.detach(), "video_loss": video_loss.detach()}


def future_loss(paradigm: ParadigmBase, batch: dict, mask: GroupMask, generator: torch.Generator | None) -> Tensor:
    """The video loss alone: the future noised, no action group (inverse dynamics, hierarchical)."""
    f = noise_group(batch["future.latent"], generator)
    video = paradigm.parts.run(batch, mask, future=(f.x_t, f.t))["future"]
    return f.loss(video, keep_mask(batch["future_is_pad"], f.x0))


def given_future_action_loss(paradigm: ParadigmBase, batch: dict, mask: GroupMask,
                             generator: torch.Generator | None) -> Tensor:
    """The action loss with the actions noised and the REAL future clean (an inverse-dynamics pass)."""
    a = noise_group(batch["action"], generator)
    clean = torch.zeros_like(a.t)
    action = paradigm.parts.run(batch, mask, future=(batch["future.latent"], clean), action=(a.x_t, a.t))["action"]
    return a.loss(action, keep_mask(batch["action_is_pad"], a.x0))


@torch.no_grad()
def imagine_then_act(paradigm: ParadigmBase, batch: dict, video_mask: GroupMask, action_mask: GroupMask,
                     generator: torch.Generator | None, given_future: Tensor | None,
                     prefix: Tensor | None = None) -> Tensor:
    """(B, Ta, Da): sample the future (unless given), then the actions given it as clean input (`prefix`:
    committed actions kept fixed, RTC); the future is left in `paradigm.last_future` (what the
    actions were inferred from)."""
    future = sample_group(paradigm, batch, video_mask, "future", generator) if given_future is None else given_future
    paradigm.last_future = future
    return sample_group(paradigm, batch, action_mask, "action", generator, clean_future=future, prefix=prefix)


@torch.no_grad()
def sample_group(paradigm: ParadigmBase, batch: dict, mask: GroupMask, name: str,
                 generator: torch.Generator | None = None, clean_future: Tensor | None = None,
                 future_t: float = 0.0, t_end: float = 0.0, prefix: Tensor | None = None) -> Tensor:
    """Denoise one group ("future" or "action") from noise down to `t_end`; `clean_future` joins as input
    at flow time `future_t` (0: clean); `prefix` (B, P, ...) keeps the group's first P entries fixed
    (real-time chunking). The groups that do not change (text, obs, state, the given future) are run
    once into a K/V cache when the mask allows it (`kv_cache`, from 2 steps)."""
    parts = paradigm.parts
    b = batch["text_emb"].shape[0]
    shape = parts.future_shape(b) if name == "future" else parts.action_shape(b)
    device = batch["text_emb"].device
    given = {} if clean_future is None else {"future": (clean_future, torch.full((b,), future_t, device=device))}
    cache = parts.prefill(batch, mask, **given) if paradigm.cfg.kv_cache and paradigm.cfg.sample_steps > 1 else None
    step = lambda x, t: parts.run(batch, mask, **given, **{name: (x[name], t)}, cache=cache)  # noqa: E731
    fixed = None if prefix is None else {name: prefix}
    return euler_sample(step, {name: gaussian(shape, generator, device)}, paradigm.cfg.sample_steps, t_end=t_end,
                        fixed=fixed)[name]
