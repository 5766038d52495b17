"""Fine-tuning a large backbone: LoRA adapters through peft, a frozen video expert.

    --policy.lora.rank=16                       # LoRA on the video transformer's attention (0 = off)
    --policy.lora.targets=to_q,to_k,to_v,to_out.0
    --policy.lora.freeze_video=true             # train only what wam adds (embedders, heads, action expert)

The adapters are injected with diffusers' own `add_adapter` (peft under the hood) into the video
transformer; its original weights are then frozen, so only the adapters (and wam's own modules)
train. Targets are module-name suffixes, checked up front: a list that matches nothing is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from wam.errors import ConfigError


@dataclass
class LoraConfig:
    rank: int = 0  # 0 = no LoRA
    alpha: float = 0.0  # 0 = rank (scale 1)
    targets: str = "to_q,to_k,to_v,to_out.0"  # module-name suffixes in the video transformer, comma-separated
    freeze_video: bool = False  # freeze the whole video transformer (LoRA adapters, if any, still train)

    def check(self) -> None:
        if not isinstance(self.rank, int) or self.rank < 0:
            raise ConfigError(f"policy.lora.rank must be an integer >= 0, got {self.rank!r}")
        if self.alpha < 0:
            raise ConfigError(f"policy.lora.alpha must be >= 0, got {self.alpha!r}")
        if self.rank and not self.names():
            raise ConfigError("policy.lora.targets is empty: name the modules to adapt, e.g. to_q,to_k,to_v")

    def names(self) -> list[str]:
        return [t.strip() for t in self.targets.split(",") if t.strip()]


def matching_modules(model: nn.Module, targets: list[str]) -> list[str]:
    """Names of the Linear modules of `model` whose name ends with one of `targets`."""
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear)
            and any(n == t or n.endswith("." + t) for t in targets)]


def apply_finetuning(model: nn.Module, cfg: LoraConfig, kind: str) -> None:
    """Freeze and/or add LoRA adapters to the diffusers video transformer `model`, in place."""
    cfg.check()
    if cfg.rank:
        targets = cfg.names()
        if not matching_modules(model, targets):
            raise ConfigError(f"policy.lora.targets={cfg.targets!r} matches no Linear module of the {kind} "
                              f"transformer (e.g. {', '.join(_examples(model))})")
        try:
            from peft import LoraConfig as PeftLora
        except ImportError as e:  # pragma: no cover
            raise ConfigError("policy.lora.rank > 0 needs peft: pip install 'wam[backbones]'") from e
        model.requires_grad_(False)
        model.add_adapter(PeftLora(r=cfg.rank, lora_alpha=cfg.alpha or cfg.rank, target_modules=targets,
                                   init_lora_weights=True))
        for name, p in model.named_parameters():
            p.requires_grad_("lora_" in name)
    elif cfg.freeze_video:
        model.requires_grad_(False)


def _examples(model: nn.Module) -> list[str]:
    seen = []
    for n, m in model.named_modules():
        last = n.split(".")[-1] if not n.split(".")[-1].isdigit() else ".".join(n.split(".")[-2:])
        if isinstance(m, nn.Linear) and last not in seen:
            seen.append(last)
    return seen[:6]
