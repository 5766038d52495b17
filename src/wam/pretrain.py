"""`wam pretrain`: train the video world model on action-free video.

    wam pretrain --data.path=data/mt10 --out=runs/wm --optim.steps=3000

1. frames of the dataset's camera, decoded once and resized (`data.image_size`);
2. the frame tokenizer: trained on the training episodes' frames (or loaded from
   `tokenizer.path`), its reconstruction quality written to `<out>/tokenizer/report.json`;
3. every frame encoded once to normalised latents (the world model trains on latents, never on
   pixels, so no frame is encoded twice);
4. instructions embedded once with the frozen MiniLM encoder;
5. the backbone trained by flow matching to predict future latents from the current ones and the
   instruction (and the next actions if `model.action_chunk > 0`; otherwise the action column is
   never read). Held-out episodes (`data.val_fraction` of each task) give the validation loss.

`--latent_actions=true` (LAPA, Genie; wam.models.code_world_model) runs two stages in the same run,
one after the other: (a) the latent-action model learns codes from the action-free windows, its own
run in `<out>/lam` (`lam.steps`, with checkpoints and resume like any run); (b) the backbone learns
to predict those codes, from the frozen LAM, beside its video loss (`lam.code_weight`), in `<out>`.
Sequential, not alternating: LAPA labels the video with a finished LAM, and a LAM still training
would move the backbone's target (and re-map codes at every codebook restart). The LAM is saved
inside the world model's checkpoints, so `wam train --init=<out> --policy.integration=latent_actions`
finds it.

`--init=RUN` starts from another world model: its tokenizer, architecture (backbone, patch, obs and future
frames) and EMA weights (wam.models.transfer.extend_world); a value of those set here to something else is
refused. The use: add action conditioning (`model.action_chunk=K`, fresh action parts) to a world model
pretrained on action-free video, fine-tuned on the few labelled demos (`wam plan` needs one).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from wam.backbones.build import frame_tokenizer, is_diffusers, world_model
from wam.checkpoint import resolve_checkpoint
from wam.config import contradictions, flatten_tree, save_config
from wam.data.check import require_clean
from wam.data.frames import ArrayFrames, cached_frames, episode_starts, frame_rows
from wam.data.lerobot_format import LeRobotDataset
from wam.data.tasks import resolve_tasks
from wam.data.text import get_text_encoder
from wam.data.windows import WindowDataset, WindowSpec, collate_windows
from wam.envs.target_masks import camera_of, dataset_centres, require_target_state
from wam.errors import ConfigError
from wam.models.code_world_model import CodeWorldModel, LamStage
from wam.models.transfer import extend_world
from wam.models.world_model import VideoWorldModel, WorldModelConfig
from wam.nn.latent_action import LatentActionModel
from wam.nn.tokenizer import (FrameAutoencoder, TokenizerConfig, load_tokenizer, reconstruction_report,
                              save_tokenizer, train_autoencoder)
from wam.runs import distributed
from wam.runs.device import check_device, resolve_device
from wam.runs.lock import holding_lock
from wam.runs.seeding import seed_run
from wam.trainer import OptimConfig, runtime_report, train


@dataclass
class DataConfig:
    path: str = "data/mw5"
    image_key: str = ""  # video feature; empty = the dataset's first
    image_size: int = 64
    val_fraction: float = 0.1  # of each task's episodes, held out (at least one a task)
    source_size: int = 0  # the dataset's frame size (filled in by training; 0 = unknown)
    state_names: tuple[str, ...] = ()  # observation.state's per-dimension names (filled in by training; () = unknown)
    episodes_per_task: int = 0  # train on the first N training episodes of each task (0 = all); val unchanged
    # tasks learned from video alone (`wam train`): Meta-World task names or a suite, comma-separated;
    # their episodes keep frames and states, their actions are treated as missing (masked out of
    # every action loss) and left out of the action normalisation statistics
    video_only_tasks: str = ""
    # `wam train` with episodes_per_task: the next N training episodes of each task train too, actions hidden
    # (frames for a video loss, recorded positions for policy.aux); -1 = all the rest, 0 = none
    actionless_per_task: int = 0
    labelled_share: float = 0.0  # `wam train`: share of training windows from labelled episodes (repeated); 0 = as they come
    # `wam train`: what the episodes without recorded actions (actionless_per_task, video_only_tasks) train with:
    # hidden (masked out of the action losses) | inverse_dynamics (inferred from their video, wam.action_labels)
    actionless_actions: str = "hidden"
    # train (and hold out) only these tasks of the dataset: Meta-World names or a suite, comma-separated; empty = all
    tasks: str = ""
    check: str = "cheap"  # verify the dataset at start (`wam data check`): off | cheap | full (decode every frame)


@dataclass
class TokenizerTrainConfig:
    path: str = ""  # a trained tokenizer folder to reuse; empty = train one in <out>/tokenizer
    steps: int = 1500
    batch_size: int = 64
    latent_channels: int = 8
    base_channels: int = 32
    downsample: int = 8
    foreground_weight: float = 0.0  # extra loss weight on pixels that differ from the mean frame (objects, goals)
    target_weight: float = 0.0  # extra loss weight inside discs around the recorded object and goal (Meta-World data)
    target_radius: float = 0.05  # those discs' radius, a fraction of the frame


@dataclass
class LamConfig:
    """The latent-action model of `--latent_actions=true` (wam.nn.latent_action) and its two stages."""

    steps: int = 1500  # stage 1: training steps of the LAM (the rest of `optim` as the world model's)
    codes: int = 16  # codebook size
    dim: int = 16  # dimension of a code vector
    width: int = 64  # channels of the LAM's conv encoder / decoder
    beta: float = 0.25  # VQ commitment weight
    code_weight: float = 1.0  # stage 2: weight of the code-prediction loss beside the video loss

    def check(self) -> None:
        if self.steps < 1 or self.codes < 2 or self.dim < 1 or self.width < 1:
            raise ConfigError(f"lam.steps, lam.dim and lam.width must be >= 1 and lam.codes >= 2; got {self.steps}, "
                              f"{self.dim}, {self.width}, {self.codes}")
        if self.beta < 0 or self.code_weight < 0:
            raise ConfigError(f"lam.beta and lam.code_weight must be >= 0, got {self.beta}, {self.code_weight}")

    def build(self, channels: int) -> LatentActionModel:
        return LatentActionModel(channels, self.codes, self.dim, self.width, self.beta)


@dataclass
class PretrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerTrainConfig = field(default_factory=TokenizerTrainConfig)
    model: WorldModelConfig = field(default_factory=WorldModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    # LAPA: learn latent-action codes from the video (stage 1, <out>/lam), then pretrain the backbone to predict them
    latent_actions: bool = False
    lam: LamConfig = field(default_factory=LamConfig)
    text_encoder: str = "minilm"  # or "hash" (no semantics; tests only)
    init: str = ""  # a `wam pretrain` run to start from: its tokenizer, architecture and weights
    out: str = "runs/pretrain"
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps

    def check(self) -> None:
        check_device(self.device)
        self.model.check()
        self.optim.check()
        if not 0 < self.data.val_fraction < 1:
            raise ConfigError(f"data.val_fraction must be in (0, 1), got {self.data.val_fraction}")
        if self.data.episodes_per_task < 0:
            raise ConfigError(f"data.episodes_per_task must be >= 0 (0 = all), got {self.data.episodes_per_task}")
        if self.data.actionless_per_task or self.data.labelled_share or self.data.actionless_actions != "hidden":
            raise ConfigError("data.actionless_per_task, data.labelled_share and data.actionless_actions choose a "
                              "policy's training windows "
                              "(`wam train`); pretraining reads every training episode's video")
        if self.data.video_only_tasks and self.model.action_chunk:
            raise ConfigError("data.video_only_tasks hides actions from `wam train`; an action-conditioned world "
                              "model (model.action_chunk > 0) cannot be pretrained without them")
        if self.latent_actions:
            self.lam.check()
            if self.model.action_chunk:
                raise ConfigError("--latent_actions=true learns actions as codes from action-free video; it cannot be "
                                  "combined with an action-conditioned world model (model.action_chunk > 0): set "
                                  "model.action_chunk=0")
            if is_diffusers(self.model.backbone):
                raise ConfigError(f"--latent_actions=true is implemented for model.backbone.kind=wam, not "
                                  f"{self.model.backbone.kind}")
        if self.init and (self.latent_actions or is_diffusers(self.model.backbone)):
            raise ConfigError("--init starts a wam world model from another one; it is not implemented with "
                              "--latent_actions=true or a diffusers backbone")

    def tokenizer_config(self) -> TokenizerConfig:
        t = self.tokenizer
        return TokenizerConfig(image_size=self.data.image_size, latent_channels=t.latent_channels,
                               base_channels=t.base_channels, downsample=t.downsample,
                               foreground_weight=t.foreground_weight, target_weight=t.target_weight,
                               target_radius=t.target_radius)


def adopt_init(cfg: PretrainConfig) -> dict[str, torch.Tensor]:
    """`--init`: the run's tokenizer and architecture become the init world model's (a value set here to another
    one is refused: it would be overridden silently); returns its weights (EMA)."""
    from wam.imagination import load_world_model  # imagination builds world models from this module's configs

    world, theirs = load_world_model(cfg.init)
    if theirs.data.image_size != cfg.data.image_size:
        raise ConfigError(f"--init={cfg.init} was pretrained on {theirs.data.image_size} px frames, "
                          f"--data.image_size is {cfg.data.image_size}")
    shape = ("backbone", "patch", "obs", "future")
    ours, base, want = (flatten_tree(json.loads(json.dumps(asdict(m)))) for m in (cfg.model, WorldModelConfig(),
                                                                                  theirs.model))
    clash = contradictions({k: v for k, v in ours.items() if k.split(".")[0] in shape}, want, base, "model.")
    if cfg.tokenizer.path:
        clash.append(f"tokenizer.path={cfg.tokenizer.path}")
    if clash:
        raise ConfigError(f"--init={cfg.init} defines the tokenizer and architecture; drop or match {', '.join(clash)}")
    for k in shape:
        setattr(cfg.model, k, getattr(theirs.model, k))
    run = resolve_checkpoint(cfg.init).parent.parent  # <run>/checkpoints/step_N
    cfg.tokenizer = replace(theirs.tokenizer, path=theirs.tokenizer.path or str(run / "tokenizer"))
    return world.state_dict()


def held_out_count(n: int, val_fraction: float) -> int:
    """Episodes of a task with `n` episodes held out for validation: ceil(fraction * n), at least one, at most n - 1."""
    return min(max(int(np.ceil(val_fraction * n)), 1), n - 1)


def split_episodes(ds: LeRobotDataset, val_fraction: float, per_task: int = 0,
                   tasks: str = "") -> tuple[list[int], list[int]]:
    """Per task, the last ceil(fraction * n) episodes are held out (at least one when n > 1); of the
    rest, the first `per_task` train (all when 0). The held-out episodes do not depend on `per_task`.
    `tasks` (names or a suite, comma-separated) keeps only those Meta-World tasks' episodes."""
    keep = set(resolve_tasks(tasks)) if tasks else None
    if keep is not None:
        present = {e.extras.get("env_task") for e in ds.episodes}
        missing = sorted(keep - present)
        if missing:
            raise ConfigError(f"data.tasks names {', '.join(missing)}, which {ds.root} does not hold "
                              f"(its tasks: {', '.join(sorted(t for t in present if t)) or 'none recorded'})")
    by_task: dict[str, list[int]] = {}
    for ep in ds.episodes:
        if keep is None or ep.extras.get("env_task") in keep:
            by_task.setdefault(ep.tasks[0], []).append(ep.index)
    train_eps, val_eps = [], []
    for task, eps in by_task.items():
        n_val = held_out_count(len(eps), val_fraction)
        n_train = len(eps) - n_val
        if per_task > n_train:
            raise ConfigError(f"data.episodes_per_task={per_task}, but task {task!r} has only {n_train} training "
                              f"episodes ({len(eps)} minus {n_val} held out for validation)")
        train_eps += eps[: per_task or n_train]
        val_eps += eps[n_train:]
    return sorted(train_eps), sorted(val_eps)


def prepare_tokenizer(cfg: PretrainConfig, frames: np.ndarray, train_rows: np.ndarray, val_rows: np.ndarray,
                      out: Path, device: torch.device | str = "cpu") -> FrameAutoencoder:
    """Load the tokenizer named in the config, or train one on the training frames (on `device`,
    in `optim.precision`) and report it."""
    folder = out / "tokenizer"
    if is_diffusers(cfg.model.backbone):  # the backbone's own VAE, frozen as loaded
        return frame_tokenizer(cfg.model.backbone, cfg.tokenizer_config())
    if cfg.tokenizer.path or (folder / "tokenizer.json").exists():
        return adopt_tokenizer(cfg, load_tokenizer(cfg.tokenizer.path or folder)).to(device)
    torch.manual_seed(cfg.optim.seed)
    model = FrameAutoencoder(cfg.tokenizer_config()).to(device)
    train_autoencoder(model, np.asarray(frames[train_rows]), steps=cfg.tokenizer.steps,
                      batch_size=cfg.tokenizer.batch_size, seed=cfg.optim.seed, precision=cfg.optim.precision,
                      centres=target_centres(cfg, train_rows) if cfg.tokenizer.target_weight > 0 else None)
    report = reconstruction_report(model, np.asarray(frames[val_rows[:: max(len(val_rows) // 512, 1)]]))
    save_tokenizer(model, folder)
    (folder / "report.json").write_text(json.dumps(report, indent=2))
    print("tokenizer on held-out frames: " + ", ".join(f"{k} {v:.4g}" for k, v in report.items()))
    return model


def target_centres(cfg: PretrainConfig, rows: np.ndarray) -> np.ndarray:
    """The object's and goal's pixel centres (len(rows), 2, 2) in the training frames, for tokenizer.target_weight."""
    ds = LeRobotDataset(cfg.data.path)
    key = cfg.data.image_key or ds.video_keys[0]
    return dataset_centres(ds, camera_of(key), cfg.data.image_size)[rows]


def adopt_tokenizer(cfg: PretrainConfig, tokenizer: FrameAutoencoder) -> FrameAutoencoder:
    """Make the run's tokenizer fields describe a loaded tokenizer (the saved config rebuilds it)."""
    t = tokenizer.cfg
    if t.image_size != cfg.data.image_size:
        raise ConfigError(f"the tokenizer in {cfg.tokenizer.path or 'the run'} takes {t.image_size} px frames, "
                          f"data.image_size is {cfg.data.image_size}")
    cfg.tokenizer.latent_channels, cfg.tokenizer.base_channels = t.latent_channels, t.base_channels
    cfg.tokenizer.downsample, cfg.tokenizer.foreground_weight = t.downsample, t.foreground_weight
    cfg.tokenizer.target_weight, cfg.tokenizer.target_radius = t.target_weight, t.target_radius
    return tokenizer


@torch.no_grad()
def encode_all(tokenizer: FrameAutoencoder, frames: np.ndarray, batch: int = 256) -> np.ndarray:
    """Normalised latents of every frame, channels last: (N, h, w, C) float32."""
    out = []
    for i in range(0, len(frames), batch):
        x = torch.from_numpy(np.array(frames[i:i + batch])).permute(0, 3, 1, 2)  # a copy: memmaps are read-only
        out.append(tokenizer.normalize(tokenizer.encode(x)).permute(0, 2, 3, 1).cpu().numpy())
    return np.concatenate(out)


class LatentCollate:
    """Batch latent windows: rename frames to latents, attach each sample's text embedding.
    With `latents=False` the frames are pixels and stay uint8 `*.image` (the outside reference policy)."""

    def __init__(self, text_table: torch.Tensor, latents: bool = True):
        self.text_table, self.latents = text_table, latents

    def __call__(self, samples: list[dict]) -> dict:
        batch = collate_windows(samples)
        for name in ("obs", "future") if self.latents else ():
            if f"{name}.image" in batch:
                batch[f"{name}.latent"] = batch.pop(f"{name}.image").float()
        batch["text_emb"] = self.text_table[batch["task_index"]]
        return batch


def latent_windows(ds: LeRobotDataset, spec: WindowSpec, latents: np.ndarray, episodes: list[int],
                   actionless: Sequence[int] = (), derived: dict[str, np.ndarray] | None = None,
                   labels: dict[int, np.ndarray] | None = None) -> WindowDataset:
    """Windows whose frames are the precomputed latents (N, h, w, C) of every dataset frame
    (`actionless` episodes: actions treated as missing; `derived`: per-frame arrays served as `obs.<name>`;
    `labels`: actions given for those episodes instead of their recorded ones)."""
    return WindowDataset(ds, spec, episodes=episodes, frames=ArrayFrames(latents, episode_starts(ds)),
                         actionless=actionless, derived=derived, labels=labels)


def build_windows(cfg: PretrainConfig, ds: LeRobotDataset, latents: np.ndarray, episodes: list[int]) -> WindowDataset:
    m = cfg.model
    spec = WindowSpec(obs=m.obs, future=m.future, action=tuple(range(m.action_chunk)), state=False,
                      image_key=cfg.data.image_key or None)
    return latent_windows(ds, spec, latents, episodes)


def build_world_model(cfg: PretrainConfig, tokenizer: nn.Module) -> nn.Module:
    """The world model a pretrain config describes (with a LAM and a code head under `latent_actions`)."""
    if cfg.latent_actions:
        lam = cfg.lam.build(tokenizer.cfg.latent_channels)
        return CodeWorldModel(cfg.model, tokenizer, lam, cfg.lam.code_weight)
    return world_model(cfg.model, tokenizer)


def learn_latent_actions(cfg: PretrainConfig, channels: int, train_set: WindowDataset, collate, val_batches: list,
                         out: Path, progress: bool, stop_at: int | None, device) -> LatentActionModel | None:
    """Stage 1 of `latent_actions`: the LAM trained on the action-free windows, a run of its own in `<out>/lam`
    (resumed like any run). Returns the LAM with its last raw weights (not EMA: an average of codebooks across
    dead-code restarts is no codebook), or None when `stop_at` ended the stage early."""
    seed_run(cfg.optim.seed)  # the LAM's initialisation does not depend on how the tokenizer was obtained
    stage = LamStage(cfg.lam.build(channels))
    print(f"latent actions, stage 1: the latent-action model ({cfg.lam.codes} codes x {cfg.lam.dim}) on action-free "
          f"video, {cfg.lam.steps} steps in {out / 'lam'}")
    train(stage, train_set, collate, replace(cfg.optim, steps=cfg.lam.steps), out / "lam", LamStage.kind, cfg,
          val_batches, progress=progress, stop_at=stop_at, device=device)
    return None if stop_at is not None and stop_at < cfg.lam.steps else stage.lam.cpu()


@holding_lock(lambda cfg: cfg.out)
def pretrain(cfg: PretrainConfig, progress: bool = True, stop_at: int | None = None) -> dict:
    """Run (or resume) a pretraining run; returns its last logged metrics."""
    device = resolve_device(cfg.device)
    ctx = distributed.setup(device)  # one process, or one rank of a torchrun / accelerate launch run
    cfg.optim.world_size, progress = ctx.world_size, progress and ctx.is_main
    cfg.check()
    start = adopt_init(cfg) if cfg.init else None  # refused before anything runs or is written
    seed_run(cfg.optim.seed)  # model initialisation included: a seed gives one run
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if ctx.is_main:
        runtime_report(out, device, cfg.optim.precision)  # before the tokenizer: say what runs where, and why
    distributed.wait_for_rank_zero()  # rank 0 decodes, trains the tokenizer and writes first; the others read
    ds = LeRobotDataset(cfg.data.path)
    require_clean(ds, cfg.data.check)
    if cfg.tokenizer.target_weight > 0 and not cfg.tokenizer.path:
        require_target_state(ds)  # before any frame is decoded
    key = cfg.data.image_key or (ds.video_keys[0] if ds.video_keys else "")
    frames = cached_frames(ds, key, image_size=cfg.data.image_size, progress=progress).frames
    train_eps, val_eps = split_episodes(ds, cfg.data.val_fraction, cfg.data.episodes_per_task, cfg.data.tasks)
    if ctx.is_main:
        (out / "split.json").write_text(json.dumps({"train": train_eps, "val": val_eps}))
    tokenizer = prepare_tokenizer(cfg, frames, frame_rows(ds, train_eps), frame_rows(ds, val_eps), out, device)
    if ctx.is_main:
        save_config(cfg, out / "config.yaml")  # after the tokenizer: its fields describe the one used
    latents = encode_all(tokenizer, frames)
    text_table = get_text_encoder(cfg.text_encoder, cache_path=out / "text_cache.npz").encode(ds.tasks)
    distributed.rank_zero_done()
    collate = LatentCollate(text_table)
    train_set = build_windows(cfg, ds, latents, train_eps)
    val_set = build_windows(cfg, ds, latents, val_eps)
    picks = np.linspace(0, len(val_set) - 1, min(len(val_set), 4 * cfg.optim.batch_size)).astype(int)
    val_batches = [collate([val_set[int(i)] for i in chunk]) for chunk in np.array_split(picks, 4) if len(chunk)]
    if cfg.latent_actions:  # windows without action offsets (model.action_chunk is 0): the action column is never read
        lam = learn_latent_actions(cfg, tokenizer.cfg.latent_channels, train_set, collate, val_batches, out, progress,
                                   stop_at, device)
        if lam is None:
            return {}
        seed_run(cfg.optim.seed)  # the world model's initialisation does not depend on stage 1
        model = CodeWorldModel(cfg.model, tokenizer, lam, cfg.lam.code_weight)
        print("latent actions, stage 2: the backbone predicts the frozen LAM's codes beside the video")
    else:
        model = world_model(cfg.model, tokenizer)
    if start is not None:
        print(extend_world(model, start, f"--init={cfg.init}"))
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f"world model: {n_params / 1e6:.2f}M trainable parameters, {len(train_set)} training windows "
          f"from {len(train_eps)} episodes, {len(val_eps)} held out; config {asdict(cfg.model.backbone)}")
    return train(model, train_set, collate, cfg.optim, out, VideoWorldModel.kind, cfg, val_batches,
                 progress=progress, stop_at=stop_at, device=device)
