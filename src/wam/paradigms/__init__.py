"""Paradigms: small strategy objects over one model family (see base.py), and the registry of
valid (paradigm, action integration, architecture) combinations.

    paradigm = build_paradigm("representation", PolicyModelConfig(), tokenizer)
    loss, metrics = paradigm.loss(batch)          # training
    chunk = paradigm.act(batch)                   # (B, Ta, Da) normalised actions
    future = paradigm.imagine(batch)              # (B, Tf, C, h, w) latents, or None

Each strategy class declares `name` (paradigm), `integration`, `architecture` and its capabilities
(`base.CAPABILITIES`: video, imagines_when_acting, acts_from_future, subgoal_offsets) and the sections
of the config it reads (`settings`: e.g. `policy.mimic`, see paradigms/settings.py); the registry is
keyed by (paradigm, integration). Combinations that make no sense are listed in `INVALID` with
the reason, so `build_paradigm` refuses them with that reason instead of a generic "unknown".
None inherits from another.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from wam.backbones.build import model_parts
from wam.errors import ConfigError
from wam.nn.tokenizer import FrameAutoencoder
from wam.paradigms.action_only import ActionOnly
from wam.paradigms.base import CAPABILITIES, Paradigm, PolicyModelConfig, WamParts, capabilities
from wam.paradigms.future_conditioned import FutureConditioned
from wam.paradigms.hierarchical import Hierarchical
from wam.paradigms.inverse_dynamics import InverseDynamics
from wam.paradigms.joint import Joint
from wam.paradigms.latent_frame import JointLatentFrame
from wam.paradigms.latent_actions import InverseDynamicsLatentActions, JointLatentActions
from wam.paradigms.mimic import Mimic
from wam.paradigms.planning import Planner
from wam.paradigms.representation import Representation

INTEGRATIONS = ("tokens", "latent_frame", "latent_actions")
STRATEGIES: tuple[type[nn.Module], ...] = (Joint, Representation, Mimic, InverseDynamics, FutureConditioned,
                                          Hierarchical, ActionOnly, JointLatentFrame, JointLatentActions,
                                          InverseDynamicsLatentActions)
VARIANTS: dict[tuple[str, str], type[nn.Module]] = {(s.name, s.integration): s for s in STRATEGIES}
PARADIGMS: dict[str, type[nn.Module]] = {s.name: s for s in STRATEGIES if s.integration == "tokens"}
# acting-only rows: built from trained models by a command of their own, never by `wam train`
PLANNERS: dict[tuple[str, str], type[nn.Module]] = {(Planner.name, Planner.integration): Planner}
PARADIGM_NAMES: tuple[str, ...] = tuple(dict.fromkeys([*(s.name for s in STRATEGIES), Planner.name]))

# (paradigm, integration) -> why it is not a valid combination
INVALID: dict[tuple[str, str], str] = {
    ("representation", "latent_frame"):
        "representation-only acts without future frames, so there is no latent frame to write actions into",
    ("action_only", "latent_frame"):
        "the action-only baseline has no video frames to write actions into",
    ("action_only", "latent_actions"):
        "latent actions are learned from video; the action-only baseline sees no video",
    ("inverse_dynamics", "latent_frame"):
        "inverse dynamics infers actions in a second pass given the future; actions written into the "
        "future's latent frames would be denoised with it, which is the joint paradigm (joint + latent_frame)",
    ("future_conditioned", "latent_frame"):
        "the future-conditioned policy acts in a second pass given the future, as inverse dynamics; actions "
        "written into the future's latent frames would be denoised with it (joint + latent_frame)",
    ("future_conditioned", "latent_actions"):
        "latent actions are read off (frame, future) by the latent-action model without the instruction: that "
        "is inverse_dynamics + latent_actions",
    ("mimic", "latent_frame"):
        "mimic's actions are decoded from partly denoised video features in a pass of their own; actions "
        "written into a latent frame would be denoised with the video (joint + latent_frame)",
    ("planning", "latent_frame"):
        "the planner's world model takes candidate actions as tokens (model.action_chunk), not as a latent frame",
    ("planning", "latent_actions"):
        "the planner scores real action chunks with an action-conditioned world model; latent codes cannot be executed",
    ("hierarchical", "latent_frame"):
        "the hierarchical executor is a small separate network, not the video model, so there is no video "
        "frame to write its actions into; the planner's frames are the subgoal",
}


@dataclass(frozen=True)
class Variant:
    paradigm: str
    integration: str
    architecture: str
    valid: bool
    reason: str = ""
    capabilities: tuple[str, ...] = ()  # of base.CAPABILITIES, declared by the strategy class
    settings: tuple[str, ...] = ()  # the config sections it reads (policy.<section>), declared by the class


def variants() -> list[Variant]:
    """Every (paradigm, integration) pair: the implemented ones and the refused ones with reasons."""
    out = []
    for name in PARADIGM_NAMES:
        for integration in INTEGRATIONS:
            cls = VARIANTS.get((name, integration)) or PLANNERS.get((name, integration))
            if cls is not None:
                out.append(Variant(name, integration, cls.architecture, True, capabilities=capabilities(cls),
                                   settings=cls.settings))
            else:
                reason = INVALID.get((name, integration), "valid in principle, not implemented yet")
                out.append(Variant(name, integration, "", False, reason))
    return out


def strategy(name: str, integration: str = "tokens") -> type[nn.Module]:
    """The strategy class of a combination, or a ConfigError saying why there is none."""
    if name not in PARADIGM_NAMES:
        raise ConfigError(f"unknown paradigm '{name}'; choose one of {', '.join(PARADIGM_NAMES)}")
    if integration not in INTEGRATIONS:
        raise ConfigError(f"unknown action integration '{integration}'; choose one of {', '.join(INTEGRATIONS)}")
    if (name, integration) in PLANNERS:
        raise ConfigError(f"'{name}' is not trained: build it from an action-conditioned world model with "
                          f"`wam plan --world_model=RUN`, then `wam eval --policy=<its --out>`")
    cls = VARIANTS.get((name, integration))
    if cls is None:
        reason = INVALID.get((name, integration), "this combination is not implemented yet")
        raise ConfigError(f"paradigm '{name}' with integration '{integration}' is refused: {reason}")
    return cls


def build_paradigm(name: str, cfg: PolicyModelConfig, tokenizer: FrameAutoencoder) -> Paradigm:
    """A paradigm by name (and `cfg.integration`) over a fresh set of model parts."""
    cls = strategy(name, cfg.integration)
    # video_weight is unused without video; latent_frame builds no action tokens (no action embedder)
    parts = model_parts(cfg, tokenizer, video=cls.video, actions=cls.backbone_actions,
                        action_frame=cls.integration == "latent_frame")
    return cls(cfg, parts)
