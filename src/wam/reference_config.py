"""The outside reference policy's own settings (`wam.reference`, `--paradigm=conv_reference`), at `policy.reference`.

    --policy.reference.channels=32,64,128,256 --policy.reference.keypoints=32 --policy.reference.shift=4

Apart from the WAM family's (`wam.paradigms.settings`): the reference is a conv image policy outside
it. It also reads the family's shared `policy.obs`, `chunk`, the dims, `sample_steps` and
`action_weight`. A module of its own, beside reference.py, so that `PolicyModelConfig` nests it
without importing the model. The old keys `policy.ref_*` still load (`PolicyModelConfig.RETIRED`).
"""

from __future__ import annotations

from dataclasses import dataclass

from wam.errors import ConfigError


@dataclass
class ReferenceConfig:
    """Diffusion Policy's recipe, small: ResNet + spatial softmax -> a FiLM 1D temporal U-Net."""

    channels: tuple[int, ...] = (32, 64, 128, 256)  # ResNet stages (GroupNorm); each after the first halves
    keypoints: int = 32  # spatial-softmax keypoints per frame (0 = global average pooling)
    feature: int = 64  # image feature per frame and instruction feature, in the denoiser's condition
    unet: tuple[int, ...] = (48, 96, 192)  # channels of the 1D temporal U-Net's levels (FiLM-conditioned)
    shift: int = 4  # random-shift augmentation at training, in pixels (0 = none)

    def check(self) -> None:
        if not self.channels or not self.unet or min(*self.channels, *self.unet, self.feature) < 1:
            raise ConfigError(f"policy.reference.channels and policy.reference.unet need channels >= 1 and "
                              f"policy.reference.feature >= 1; got {self.channels}, {self.unet}, {self.feature}")
        if self.keypoints < 0 or self.shift < 0:
            raise ConfigError(f"policy.reference.keypoints and policy.reference.shift must be >= 0, got "
                              f"{self.keypoints}, {self.shift}")
