"""`wam plan`: a planning policy (wam.paradigms.planning) from an action-conditioned world model.

    wam pretrain --model.action_chunk=8 --data.path=data/mw5 --out=runs/wm_act
    wam plan --world_model=runs/wm_act [--proposal=runs/action_only] [--policy.candidates=64] --out=runs/plan
    wam eval --policy=runs/plan --episodes=10

Nothing is trained. `wam plan` checks that the models fit together and writes a small policy folder:

    plan.yaml     this config (world model and proposal as absolute paths; chunk/obs/future filled in)
    tasks.json    the world model's tasks (what `wam eval` runs by default)
    goals.npz     the goal library: per training demo of the world model's dataset, its instruction
                  embedding and the latents of its first and last frame (or the one `--goal` PNG)
    stats.json    the normalisation: the proposal policy's, else the dataset's training episodes'

`load_planner` (what `wam eval` calls on a folder holding plan.yaml) loads the world model and the
proposal from their runs, so moving or retraining those changes the planner. Without `--proposal`
candidates come from the dataset's action statistics (mean, std per dimension).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from wam.config import load_config, save_config
from wam.data.frames import cached_frames
from wam.data.lerobot_format import LeRobotDataset
from wam.data.text import EMBED_DIM, get_text_encoder
from wam.data.windows import ACTION_KEY
from wam.errors import ConfigError
from wam.imagination import load_start_image, load_world_model
from wam.models.world_model import VideoWorldModel
from wam.paradigms.planning import Goals, PlanConfig, Planner
from wam.policy import Normalizer, WamPolicy
from wam.pretrain import PretrainConfig, split_episodes
from wam.runs.folders import output_file
from wam.train import TrainConfig, load_policy, trained_tasks, training_stats

PLAN_FILE = "plan.yaml"


@dataclass
class PlanRunConfig:
    world_model: str = ""  # a `wam pretrain` run with --model.action_chunk=K (> 0)
    proposal: str = ""  # a `wam train` run (any paradigm, chunk K) proposing candidates; "" = dataset statistics
    goal: str = ""  # a goal frame (PNG) for every task; "" = the goal library of the world model's training demos
    policy: PlanConfig = field(default_factory=PlanConfig)
    out: str = "runs/plan"
    # filled in by `wam plan` from the world model's dataset (not options)
    image_key: str = ""
    source_size: int = 0

    def check(self) -> None:
        if not self.world_model:
            raise ConfigError("--world_model is required: a `wam pretrain` run with --model.action_chunk=K")
        self.policy.check()


def is_plan_folder(path: str | Path) -> bool:
    return (Path(path) / PLAN_FILE).is_file()


def load_runnable(path: str | Path, device: str = "cpu", precision: str = "fp32"):
    """What `wam eval` and `wam serve` run: a `wam train` run's policy, or a `wam plan` folder's planner; with
    the run's config (or, for a planner, the part of one they read: `data`, `policy`)."""
    load = load_planner if is_plan_folder(path) else load_policy
    return load(path, device=device, precision=precision)


def check_world_model(model: VideoWorldModel, path: str) -> None:
    if not model.cfg.action_chunk:
        raise ConfigError(f"--world_model {path} was pretrained without actions (model.action_chunk=0): planning "
                          f"needs an action-conditioned world model (wam pretrain --model.action_chunk=K)")


def check_proposal(model: VideoWorldModel, wm_cfg: PretrainConfig, tcfg: TrainConfig, path: str) -> None:
    """The proposal must produce what the world model takes: K actions of its dimension, from the same frames."""
    m, p = model.cfg, tcfg.policy
    clash = [f"{what} {ours} (the world model has {theirs})" for what, ours, theirs in (
        ("policy.chunk", p.chunk, m.action_chunk), ("policy.action_dim", p.action_dim, m.action_dim),
        ("policy.obs", tuple(p.obs), tuple(m.obs)), ("data.image_size", tcfg.data.image_size, wm_cfg.data.image_size),
        ("text_encoder", tcfg.text_encoder, wm_cfg.text_encoder)) if ours != theirs]
    if clash:
        raise ConfigError(f"--proposal {path} does not match --world_model: {'; '.join(clash)}")


def make_plan(cfg: PlanRunConfig) -> Path:
    """Check the world model (and proposal) and write the planning policy folder; returns it."""
    cfg.check()
    model, wm_cfg = load_world_model(cfg.world_model)
    check_world_model(model, cfg.world_model)
    m = model.cfg
    _fill(cfg.policy, chunk=m.action_chunk, obs=tuple(m.obs), future=tuple(m.future))
    stats = None
    if cfg.proposal:
        proposal, tcfg = load_policy(cfg.proposal)
        check_proposal(model, wm_cfg, tcfg, cfg.proposal)
        stats = _normalizer_stats(proposal.normalizer)
    out = output_file(Path(cfg.out) / PLAN_FILE).parent
    ds = LeRobotDataset(wm_cfg.data.path)
    key = wm_cfg.data.image_key or ds.video_keys[0]
    _fill(cfg, image_key=key, source_size=int(ds.feature(key)["shape"][0]))
    train_eps, _ = split_episodes(ds, wm_cfg.data.val_fraction, wm_cfg.data.episodes_per_task, wm_cfg.data.tasks)
    stats = stats or {k: {s: v.tolist() for s, v in d.items()}
                      for k, d in training_stats(ds, train_eps, train_eps).items()}  # every episode labelled
    goals = _goal_frames(cfg, model, wm_cfg, ds, train_eps)
    np.savez(out / "goals.npz", text=goals.text.numpy(), first=goals.first.numpy(), last=goals.last.numpy(),
             names=np.array(goals.names))
    (out / "stats.json").write_text(json.dumps(stats))
    (out / "tasks.json").write_text(json.dumps({"env_tasks": trained_tasks(ds, wm_cfg.data.tasks),
                                                "instructions": list(ds.tasks)}, indent=1))
    cfg.world_model = str(Path(cfg.world_model).resolve())
    cfg.proposal = str(Path(cfg.proposal).resolve()) if cfg.proposal else ""
    save_config(cfg, out / PLAN_FILE)
    return out


def _fill(cfg, **values) -> None:
    """Set fields that come from the world model; one a user set (away from its default) to another value
    is refused rather than overridden."""
    default = type(cfg)()
    for name, value in values.items():
        given = getattr(cfg, name)
        if given != getattr(default, name) and given != value:
            raise ConfigError(f"{name}={given} is taken from the world model, which has {value}: leave it out")
        setattr(cfg, name, value)


def _normalizer_stats(norm: Normalizer) -> dict:
    """A policy's normaliser as stats (what `Normalizer` is built from)."""
    f = lambda t: t.detach().cpu().double().tolist()  # noqa: E731
    return {"observation.state": {"mean": f(norm.state_mean), "std": f(norm.state_std)},
            ACTION_KEY: {"min": f(norm.action_min), "max": f(norm.action_min + norm.action_span)}}


def _goal_frames(cfg: PlanRunConfig, model: VideoWorldModel, wm_cfg: PretrainConfig, ds: LeRobotDataset,
                 episodes: list[int]) -> Goals:
    """The `--goal` PNG as the one goal, else each training demo's first and last frame (as latents)."""
    def encode(frames: list[np.ndarray]) -> torch.Tensor:  # (H, W, 3) uint8 each -> (E, C, h, w) latents
        return model.encode(torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2)[:, None])[:, 0]

    if cfg.goal:
        latent = encode([load_start_image(cfg.goal, wm_cfg.data.image_size)])
        return Goals(torch.zeros(1, EMBED_DIM), latent, latent, ["--goal " + cfg.goal])
    frames = cached_frames(ds, cfg.image_key, image_size=wm_cfg.data.image_size, progress=False)
    starts = [frames.episode_start(e) for e in episodes]
    ends = [s + ds.episodes[e].length - 1 for s, e in zip(starts, episodes)]
    names = [ds.episode_task(e) for e in episodes]
    text = get_text_encoder(wm_cfg.text_encoder).encode(names).float()
    return Goals(text, encode(list(frames.get(np.array(starts)))), encode(list(frames.get(np.array(ends)))), names)


def load_planner(path: str | Path, device: str = "cpu", precision: str = "fp32") -> tuple[WamPolicy, SimpleNamespace]:
    """The planning policy of a `wam plan` folder, on `device` in `precision` (what `wam eval` runs), and
    what `wam eval` reads of a training run's config: `data` (the world model's, frame sizes filled in)
    and `policy` (the planner's settings)."""
    cfg = load_config(PlanRunConfig, Path(path) / PLAN_FILE)
    model, wm_cfg = load_world_model(cfg.world_model)
    check_world_model(model, cfg.world_model)
    proposal = None
    if cfg.proposal:
        proposal_policy, tcfg = load_policy(cfg.proposal)
        check_proposal(model, wm_cfg, tcfg, cfg.proposal)
        proposal = proposal_policy.paradigm
    saved = json.loads((Path(path) / "stats.json").read_text())
    stats = {k: {s: np.asarray(v) for s, v in d.items()} for k, d in saved.items()}
    units = Normalizer(stats)
    prior = None
    if "mean" in stats[ACTION_KEY]:  # the dataset's action statistics, in normalised units
        mean = torch.as_tensor(stats[ACTION_KEY]["mean"], dtype=torch.float32)
        std = torch.as_tensor(stats[ACTION_KEY]["std"], dtype=torch.float32)
        prior = (units.action(mean), 2 * std / units.action_span)
    with np.load(Path(path) / "goals.npz") as g:
        goals = Goals(*(torch.from_numpy(g[k]) for k in ("text", "first", "last")), list(g["names"]))
    planner = Planner(cfg.policy, model, units, goals, proposal, prior)
    policy = WamPolicy(planner, stats, cfg.image_key, get_text_encoder(wm_cfg.text_encoder),
                       n_action_steps=cfg.policy.n_action_steps or None, ensemble=cfg.policy.ensemble or None,
                       source_size=cfg.source_size or None)
    data = replace(wm_cfg.data, image_key=cfg.image_key, source_size=cfg.source_size)
    return policy.to_runtime(device, precision).eval(), SimpleNamespace(data=data, policy=cfg.policy, plan=cfg)
