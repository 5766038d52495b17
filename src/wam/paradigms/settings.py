"""Each paradigm's own settings: one small dataclass per paradigm, nested in `PolicyModelConfig`.

    --policy.mimic.feature_noise=0.3         Mimic                  (paradigms/mimic.py)
    --policy.joint.independent_t=true        Joint, JointLatentActions (paradigms/joint.py, latent_actions.py)
    --policy.latent_frame.state_frames=true  JointLatentFrame       (paradigms/latent_frame.py)
    --policy.latent_frame.value_frame=true   JointLatentFrame       (paradigms/latent_frame.py)
    --policy.hierarchical.plan_every=4       Hierarchical           (paradigms/hierarchical.py)
    --policy.latent_actions.tune_backbone=true  JointLatentActions, InverseDynamicsLatentActions (latent_actions.py)

They live in one module (not beside each strategy) so that `base.PolicyModelConfig` and the
strategies import them without an import cycle. A strategy names the sections it reads in its
`settings` class attribute (`wam variants` prints them). Each `check()` validates its own fields,
its errors naming the full key; rules that span sections (state and value frames need the latent_frame
integration) stay in `PolicyModelConfig.check`. The outside reference's settings are apart:
`wam.reference_config`. The old flat keys (`policy.feature_noise`, ...) still load: see
`base.PolicyModelConfig.RETIRED`.
"""

from __future__ import annotations

from dataclasses import dataclass

from wam.errors import ConfigError


@dataclass
class MimicConfig:
    """mimic-video: the video features the actions read are held at a fixed noise level."""

    feature_noise: float = 0.5  # the flow time in [0, 1) of the video features the actions read (0: denoised)

    def check(self) -> None:
        if not 0 <= self.feature_noise < 1:
            raise ConfigError(f"policy.mimic.feature_noise must be in [0, 1) (0: fully denoised video features), "
                              f"got {self.feature_noise}")


@dataclass
class JointConfig:
    """Joint prediction: how the video and the action chunk are noised together in training."""

    independent_t: bool = False  # one flow time for video and action (False), or one each

    def check(self) -> None:
        """Nothing to check alone (a bool); latent_frame refuses `independent_t` (one group, one time)."""


@dataclass
class LatentFrameConfig:
    """Actions written into a latent frame (Cosmos Policy), and optionally the proprio state and a value too."""

    # proprio as latent frames, no state token: the current state packed into a clean frame of the obs
    # group, the future states into one more (predicted) future frame (Cosmos Policy's state)
    state_frames: bool = False
    # one more predicted future frame holding the value (Cosmos Policy's value): the target is the discounted
    # time to success gamma ** (actions left after the chunk) of the (successful) demo, see latent_frame.py
    value_frame: bool = False
    gamma: float = 0.99  # the discount of the value target, in (0, 1]
    value_weight: float = 1.0  # weight of the value frame's flow loss
    value_candidates: int = 1  # acting: sample this many chunks (batched), execute the one of highest value

    def check(self) -> None:
        """Its own fields; needing integration=latent_frame is checked in PolicyModelConfig.check."""
        if isinstance(self.gamma, bool) or not 0 < self.gamma <= 1:
            raise ConfigError(f"policy.latent_frame.gamma (the value's discount) must be in (0, 1], got {self.gamma}")
        if not self.value_weight >= 0:
            raise ConfigError(f"policy.latent_frame.value_weight must be >= 0, got {self.value_weight}")
        if isinstance(self.value_candidates, bool) or not isinstance(self.value_candidates, int) \
                or self.value_candidates < 1:
            raise ConfigError(f"policy.latent_frame.value_candidates must be an integer >= 1 (1: no best-of-N), "
                              f"got {self.value_candidates!r}")
        if self.value_candidates > 1 and not self.value_frame:
            raise ConfigError(f"policy.latent_frame.value_candidates={self.value_candidates} picks chunks by their "
                              f"predicted value: it needs policy.latent_frame.value_frame=true")


@dataclass
class HierarchicalConfig:
    """The backbone plans (imagines a subgoal frame), a small separate executor acts toward it."""

    subgoal_index: int = -1  # which imagined future frame is the subgoal (an index into policy.future)
    plan_every: int = 2  # calls to `act` per plan; the imagined subgoal is cached in between
    executor_width: int = 0  # 0 = half the backbone's width
    executor_depth: int = 2  # residual MLP blocks
    executor_steps: int = 5  # the executor's own flow-matching sample steps

    def check(self) -> None:
        for name in ("plan_every", "executor_depth", "executor_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"policy.hierarchical.{name} must be an integer >= 1, got {value!r}")
        if not isinstance(self.executor_width, int) or self.executor_width < 0:
            raise ConfigError(f"policy.hierarchical.executor_width must be 0 (half the backbone's width) or >= 1, "
                              f"got {self.executor_width!r}")


@dataclass
class LatentActionsConfig:
    """Latent actions (LAPA / Genie, integration=latent_actions): a decoder from the pretrained codes to actions.
    The LAM's shape (codes, dim, width, beta) comes from the `--init` world model (`wam pretrain
    --latent_actions=true`, its lam.* options); a value set here to another one is refused."""

    codes: int = 16  # codebook size of the latent-action model
    dim: int = 16  # dimension of a code vector
    width: int = 64  # channels of the LAM's conv encoder / decoder
    beta: float = 0.25  # VQ commitment weight
    code_weight: float = 1.0  # weight of the code-prediction (flow) loss, with tune_backbone
    tune_backbone: bool = False  # also fine-tune the backbone (video + code losses), not only the decoder

    def check(self) -> None:
        if self.codes < 2 or self.dim < 1 or self.width < 1:
            raise ConfigError(f"policy.latent_actions.codes must be >= 2, dim and width >= 1; got {self.codes}, "
                              f"{self.dim}, {self.width}")
        if self.beta < 0 or self.code_weight < 0:
            raise ConfigError(f"policy.latent_actions.beta and code_weight must be >= 0, got {self.beta}, "
                              f"{self.code_weight}")
