"""`wam train`: fine-tune a WAM policy (any paradigm) from a `wam pretrain` run, or from scratch.

    wam train --paradigm=representation --init=runs/wm --data.path=data/mt10 --out=runs/repr

Same data path as pretraining (frames decoded once, encoded once by the frozen tokenizer, windows
over latents), plus proprio state and action chunks. `--init` loads the world model's tokenizer
and shared weights (text, obs/future embedders, backbone); without it the tokenizer is trained (or
loaded from `tokenizer.path`) and the backbone starts from scratch: the matched baselines
("video loss without pretraining", the action-only policy) are this with `--paradigm` and
`--policy.video_weight` set. The trainer is the one `wam pretrain` uses (EMA, exact resume, logs).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from wam.checkpoint import load_checkpoint
from wam.config import parse_config, save_config
from wam.data.frames import cached_frames
from wam.data.lerobot_format import LeRobotDataset
from wam.data.text import get_text_encoder
from wam.data.windows import ACTION_KEY, STATE_KEY, WindowSpec
from wam.errors import ConfigError
from wam.imagination import load_world_model
from wam.nn.tokenizer import FrameAutoencoder
from wam.paradigms import PolicyModelConfig, build_paradigm, strategy
from wam.policy import WamPolicy
from wam.pretrain import (DataConfig, LatentCollate, PretrainConfig, TokenizerTrainConfig, encode_all,
                          frame_rows, latent_windows, prepare_tokenizer, split_episodes)
from wam.trainer import OptimConfig, train

KIND = "wam-policy"


@dataclass
class TrainConfig:
    paradigm: str = "representation"
    init: str = ""  # a `wam pretrain` run or checkpoint; empty = from scratch
    data: DataConfig = field(default_factory=DataConfig)
    policy: PolicyModelConfig = field(default_factory=PolicyModelConfig)
    tokenizer: TokenizerTrainConfig = field(default_factory=TokenizerTrainConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    text_encoder: str = "minilm"
    out: str = "runs/policy"

    def check(self) -> None:
        strategy(self.paradigm, self.policy.integration)  # refuses unknown or invalid combinations
        self.policy.check()
        self.optim.check()
        if self.data.episodes_per_task < 0:
            raise ConfigError(f"data.episodes_per_task must be >= 0 (0 = all), got {self.data.episodes_per_task}")


def _tokenizer_and_init(cfg: TrainConfig, frames, ds: LeRobotDataset, train_eps, val_eps, out: Path):
    """The tokenizer (and world-model weights to start from, when `init` is set)."""
    if cfg.init:
        world_model, wm_cfg = load_world_model(cfg.init)
        if wm_cfg.data.image_size != cfg.data.image_size:
            raise ConfigError(f"--init was pretrained on {wm_cfg.data.image_size} px frames, "
                              f"--data.image_size is {cfg.data.image_size}")
        # the initialisation defines the architecture: tokenizer, backbone and patch size
        cfg.tokenizer, cfg.policy.backbone, cfg.policy.patch = wm_cfg.tokenizer, wm_cfg.model.backbone, wm_cfg.model.patch
        return world_model.tokenizer, world_model.state_dict()
    pre = PretrainConfig(data=cfg.data, tokenizer=cfg.tokenizer, optim=cfg.optim)
    return prepare_tokenizer(pre, frames, frame_rows(ds, train_eps), frame_rows(ds, val_eps), out), None


def trained_tasks(ds: LeRobotDataset) -> list[str]:
    """The Meta-World task names of a dataset's episodes (empty for data without that field)."""
    return sorted({e.extras["env_task"] for e in ds.episodes if e.extras.get("env_task")})


def build_policy(cfg: TrainConfig, tokenizer: FrameAutoencoder, stats: dict, image_key: str,
                 source_size: int | None = None) -> WamPolicy:
    paradigm = build_paradigm(cfg.paradigm, cfg.policy, tokenizer)
    return WamPolicy(paradigm, stats, image_key, get_text_encoder(cfg.text_encoder), source_size=source_size)


def train_policy(cfg: TrainConfig, progress: bool = True, stop_at: int | None = None) -> dict:
    """Run (or resume) a policy training run; returns its last logged metrics."""
    cfg.check()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    ds = LeRobotDataset(cfg.data.path)
    key = cfg.data.image_key or (ds.video_keys[0] if ds.video_keys else "")
    cfg.data.image_key = key
    cfg.data.source_size = int(ds.feature(key)["shape"][0])
    frames = cached_frames(ds, key, image_size=cfg.data.image_size, progress=progress).frames
    train_eps, val_eps = split_episodes(ds, cfg.data.val_fraction, cfg.data.episodes_per_task)
    tokenizer, init_state = _tokenizer_and_init(cfg, frames, ds, train_eps, val_eps, out)
    save_config(cfg, out / "config.yaml")
    (out / "split.json").write_text(json.dumps({"train": train_eps, "val": val_eps}))
    (out / "tasks.json").write_text(json.dumps({"env_tasks": trained_tasks(ds), "instructions": list(ds.tasks)}, indent=1))
    latents = encode_all(tokenizer, frames)
    policy = build_policy(cfg, tokenizer, ds.stats, key, cfg.data.source_size)
    if init_state is not None:
        policy.paradigm.parts.load_state_dict(init_state, strict=False)
    text_table = get_text_encoder(cfg.text_encoder, cache_path=out / "text_cache.npz").encode(ds.tasks)
    video = policy.paradigm.video
    spec = WindowSpec(obs=cfg.policy.obs, future=cfg.policy.future if video else (),
                      action=tuple(range(cfg.policy.chunk)), state=True, image_key=key)
    train_set, val_set = (latent_windows(ds, spec, latents, eps) for eps in (train_eps, val_eps))
    collate = LatentCollate(text_table)
    picks = np.linspace(0, len(val_set) - 1, min(len(val_set), 2 * cfg.optim.batch_size)).astype(int)
    val_batches = [collate([val_set[int(i)] for i in chunk]) for chunk in np.array_split(picks, 2) if len(chunk)]
    n = sum(p.numel() for p in policy.parameters() if p.requires_grad)
    print(f"{cfg.paradigm} policy: {n / 1e6:.2f}M trainable parameters, init {'from ' + cfg.init if cfg.init else 'scratch'}, "
          f"{len(train_set)} training windows, {len(val_eps)} held-out episodes")
    return train(policy, train_set, collate, cfg.optim, out, KIND, cfg, val_batches, progress=progress, stop_at=stop_at)


def load_policy(path: str | Path, use_ema: bool = True) -> tuple[WamPolicy, TrainConfig]:
    """A trained policy from one checkpoint folder (EMA weights by default)."""
    ckpt = load_checkpoint(path, kind=KIND)
    cfg = parse_config(TrainConfig, ["--config", str(ckpt.path / "config.yaml")])
    tok_cfg = PretrainConfig(data=cfg.data, tokenizer=cfg.tokenizer).tokenizer_config()
    dims = {STATE_KEY: cfg.policy.state_dim, ACTION_KEY: cfg.policy.action_dim}
    stats = {k: {s: np.zeros(d) for s in ("mean", "std", "min", "max")} for k, d in dims.items()}
    policy = build_policy(cfg, FrameAutoencoder(tok_cfg), stats, cfg.data.image_key, cfg.data.source_size or None)
    policy.load_state_dict(ckpt.model)
    if use_ema and ckpt.ema is not None:
        params = dict(policy.named_parameters())
        with torch.no_grad():
            for name, value in ckpt.ema.items():
                params[name].copy_(value)
    return policy.eval(), cfg
