"""The policy model's configuration (`policy.*` of `wam train`): the model family's shape, shared by every
paradigm, and each paradigm's own section (`wam.paradigms.settings`), with the retired flat keys old configs hold."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from wam.backbones.lora import LoraConfig
from wam.config import Retired
from wam.errors import ConfigError
from wam.nn.keypoints import KeypointConfig
from wam.nn.transformer import BackboneConfig
from wam.paradigms.auxiliary import AuxConfig
from wam.paradigms.settings import (HierarchicalConfig, JointConfig, LatentActionsConfig, LatentFrameConfig,
                                    MimicConfig)
from wam.reference_config import ReferenceConfig

# the per-paradigm keys that were flat in PolicyModelConfig, and their sections now (old configs still load)
MOVED: dict[str, tuple[type, str]] = {
    "feature_noise": (float, "mimic.feature_noise"), "independent_t": (bool, "joint.independent_t"),
    "state_frames": (bool, "latent_frame.state_frames"),
    **{k: (int, f"hierarchical.{k}") for k in ("subgoal_index", "plan_every", "executor_width", "executor_depth", "executor_steps")},
    **{f"ref_{k}": (t, f"reference.{k}") for k, t in (("channels", tuple[int, ...]), ("keypoints", int),
                                                       ("feature", int), ("unet", tuple[int, ...]), ("shift", int))},
    **{f"lam_{k}": (t, f"latent_actions.{k}") for k, t in (("codes", int), ("dim", int), ("width", int), ("beta", float))},
    "code_weight": (float, "latent_actions.code_weight"), "tune_backbone": (bool, "latent_actions.tune_backbone")}
MOVED_NOTE = ("each paradigm's settings moved into a section of their own; this and every other old flat key is read "
              "as its new one: policy.mimic.feature_noise, policy.joint.independent_t, "
              "policy.latent_frame.state_frames, policy.hierarchical.{subgoal_index,plan_every,executor_width,"
              "executor_depth,executor_steps}, "
              "policy.reference.{channels,keypoints,feature,unet,shift} (were ref_*), "
              "policy.latent_actions.{codes,dim,width,beta} (were lam_*), policy.latent_actions.{code_weight,tune_backbone}")


def _lam_weight(value: float) -> None:
    """`policy.lam_weight`, retired: the LAM trains in `wam pretrain`; old configs hold 1.0, another value is refused."""
    if value != 1.0:
        raise ConfigError("policy.lam_weight is retired: the latent-action model trains in `wam pretrain "
                          "--latent_actions=true` (its lam.* options), never in `wam train`")


@dataclass
class PolicyModelConfig:
    """The model family's shape, shared by every paradigm, and each paradigm's own section
    (`wam.paradigms.settings`; the outside reference's apart, `wam.reference_config`)."""

    backbone: BackboneConfig = field(default_factory=lambda: BackboneConfig(depth=4))
    patch: int = 2
    obs: tuple[int, ...] = (0,)
    future: tuple[int, ...] = (4, 8, 12, 16)
    chunk: int = 16  # actions predicted at once
    action_dim: int = 4
    state_dim: int = 4
    video_weight: float = 1.0  # weight of the video (future) loss: 0 = no video co-training
    action_weight: float = 1.0
    sample_steps: int = 10
    kv_cache: bool = True  # sampling: the clean groups' keys/values once, not at every step (from 2 steps)
    n_action_steps: int = 0  # actions executed per chunk (0 = half the chunk); ignored with `ensemble`
    ensemble: float = 0.0  # > 0: ACT's temporal ensembling with this decay (re-plan every step); 0 = off
    integration: str = "tokens"  # how actions enter the model: tokens | latent_frame | latent_actions
    # `--init` into a MoT policy (backbone.mot) from a world model without an action expert: the expert starts
    # as a copy of the world model's (video / shared) weights, or fresh at its initialisation
    action_expert: str = "copy"  # copy | fresh
    lora: LoraConfig = field(default_factory=LoraConfig)  # LoRA / freezing of a diffusers backbone (wam.backbones)
    aux: AuxConfig = field(default_factory=AuxConfig)  # auxiliary position targets of any paradigm (auxiliary.py)
    keypoints: KeypointConfig = field(default_factory=KeypointConfig)  # a pixel stream's positions as state (nn/keypoints.py)
    # each paradigm's own settings (wam.paradigms.settings), read only by the strategies that name them
    mimic: MimicConfig = field(default_factory=MimicConfig)
    joint: JointConfig = field(default_factory=JointConfig)
    latent_frame: LatentFrameConfig = field(default_factory=LatentFrameConfig)
    hierarchical: HierarchicalConfig = field(default_factory=HierarchicalConfig)
    latent_actions: LatentActionsConfig = field(default_factory=LatentActionsConfig)
    # the outside reference policy's (wam.reference, `--paradigm=conv_reference`), outside the WAM family
    reference: ReferenceConfig = field(default_factory=ReferenceConfig)

    RETIRED: ClassVar[dict[str, Retired]] = {**{old: Retired(kind, new, lambda v: v, MOVED_NOTE)
                                                for old, (kind, new) in MOVED.items()},
                                             "lam_weight": Retired(float, "", _lam_weight, "it has no effect")}
    SECTIONS: ClassVar[tuple[str, ...]] = ("mimic", "joint", "latent_frame", "hierarchical", "latent_actions",
                                           "reference")

    def check(self) -> None:
        self.backbone.check()
        self.lora.check()
        self.aux.check()
        self.keypoints.check()
        for section in self.SECTIONS:
            getattr(self, section).check()
        if self.chunk < 1 or self.video_weight < 0 or self.action_weight <= 0:
            raise ConfigError("policy.chunk must be >= 1, video_weight >= 0 and action_weight > 0")
        if not isinstance(self.n_action_steps, int) or not 0 <= self.n_action_steps <= self.chunk:
            raise ConfigError(f"policy.n_action_steps must be 0 (half the chunk) or 1..{self.chunk} (policy.chunk), "
                              f"got {self.n_action_steps!r}")
        for key, what in (("state_frames", "proprio"), ("value_frame", "a value")):
            if getattr(self.latent_frame, key) and self.integration != "latent_frame":
                raise ConfigError(f"policy.latent_frame.{key} writes {what} into latent frames beside the action "
                                  f"frame: it needs policy.integration=latent_frame, got {self.integration}")
        if self.keypoints.names() and self.latent_frame.state_frames:  # no state token to add the positions to
            raise ConfigError("policy.keypoints adds positions to the state token; state_frames replaces it: choose one")
        if self.joint.independent_t and self.integration == "latent_frame":
            raise ConfigError("policy.joint.independent_t needs the actions in a group of their own; with "
                              "policy.integration=latent_frame the action frame shares the future group's flow time")
        if self.action_expert not in ("copy", "fresh"):
            raise ConfigError(f"policy.action_expert must be copy or fresh, got {self.action_expert!r}")
        if self.action_expert == "fresh" and not self.backbone.mot:
            raise ConfigError("policy.action_expert=fresh starts a MoT action expert fresh; this backbone has none "
                              "(set policy.backbone.mot=true)")
        if self.ensemble < 0:
            raise ConfigError(f"policy.ensemble must be 0 (off) or a decay > 0, got {self.ensemble}")
