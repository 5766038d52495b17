"""`wam train`: fine-tune a WAM policy (any paradigm) from a `wam pretrain` run, or from scratch.

    wam train --paradigm=representation --init=runs/wm --data.path=data/mt10 --out=runs/repr

Same data path as pretraining (frames decoded once, encoded once by the frozen tokenizer, windows
over latents), plus proprio state and action chunks. `--init` loads the world model's tokenizer
and shared weights (text, obs/future embedders, backbone) by structure and strictly (the parts are a
world model: `parts.load_world`, wam.models.transfer; a missing tensor is refused); without it the tokenizer is trained (or
loaded from `tokenizer.path`) and the backbone starts from scratch: the matched baselines
("video loss without pretraining", the action-only policy) are this with `--paradigm` and
`--policy.video_weight` set. The trainer is the one `wam pretrain` uses (EMA, exact resume, logs).
`--data.video_only_tasks` trains some tasks from video alone: their actions are masked out of every
action loss and of the action statistics; tasks.json records them (they still count as trained).
`--data.actionless_per_task=N` (with `--data.episodes_per_task`) adds each task's next N training episodes
with their actions hidden the same way (video loss and policy.aux read them, the keypoint detector does not),
`--data.labelled_share` keeps the labelled windows' share of training windows (docs/policies.md).
`--data.actionless_actions=inverse_dynamics` gives those episodes actions inferred from their video instead
(an inverse-dynamics model on the keypoint detector's hand motion, fitted on the labelled demos: wam.action_labels).

`--paradigm=conv_reference` trains the outside reference policy (wam.reference: a conv image policy,
not a WAM) the same way, on the same windows with the frames as pixels: no tokenizer, no `--init`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from wam.action_labels import LabelConfig, actionless_extras, check_labels, infer_actions, trained_tasks, video_only
from wam.backbones.build import frame_tokenizer
from wam.checkpoint import load_checkpoint, read_config, resolve_checkpoint
from wam.config import changed_since, contradictions, save_config
from wam.data.check import require_clean
from wam.data.frames import cached_frames
from wam.data.lerobot_format import LeRobotDataset
from wam.data.stats import vector_stats
from wam.data.text import get_text_encoder
from wam.data.windows import ACTION_KEY, STATE_KEY, WindowDataset, WindowSpec, with_labelled_share
from wam.errors import ConfigError, DatasetError, WamError
from wam.imagination import load_world_model
from wam.nn.keypoints import KeypointNet
from wam.nn.tokenizer import FrameAutoencoder
from wam.paradigms import PARADIGM_NAMES, PolicyModelConfig, build_paradigm, strategy
from wam.paradigms.auxiliary import AUX_KEY
from wam.paradigms.keypoints import fit_keypoints, view_keys
from wam.paradigms.latent_actions import adopt_pretrained
from wam.paradigms.settings import LatentActionsConfig
from wam.policy import WamPolicy
from wam.pretrain import (DataConfig, LatentCollate, PretrainConfig, TokenizerTrainConfig, encode_all,
                          frame_rows, latent_windows, prepare_tokenizer, split_episodes)
from wam.reference import REFERENCES
from wam.runs import distributed
from wam.runs.device import check_device, resolve_device
from wam.runs.lock import holding_lock
from wam.runs.seeding import seed_run
from wam.runs.train_log import SetupCost
from wam.trainer import OptimConfig, runtime_report, train

KIND = "wam-policy"


@dataclass
class TrainConfig:
    paradigm: str = "representation"
    init: str = ""  # a `wam pretrain` run or checkpoint; empty = from scratch
    data: DataConfig = field(default_factory=DataConfig)
    policy: PolicyModelConfig = field(default_factory=PolicyModelConfig)
    tokenizer: TokenizerTrainConfig = field(default_factory=TokenizerTrainConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    labels: LabelConfig = field(default_factory=LabelConfig)  # inverse dynamics, for data.actionless_actions
    text_encoder: str = "minilm"
    out: str = "runs/policy"
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps

    def check(self) -> None:
        check_device(self.device)
        names = (*PARADIGM_NAMES, *REFERENCES)
        if self.paradigm not in names:
            raise ConfigError(f"unknown paradigm '{self.paradigm}'; choose one of {', '.join(names)}")
        if self.paradigm in REFERENCES:  # outside the WAM family: no world model, no action integration
            if self.init or self.policy.integration != "tokens":
                raise ConfigError(f"'{self.paradigm}' is the outside reference policy: it trains from scratch on "
                                  f"pixels, so --init and --policy.integration do not apply")
            if self.policy.aux.names():
                raise ConfigError(f"policy.aux.targets trains a head on the WAM backbone's features; the outside "
                                  f"reference ({self.paradigm}) has none")
        else:
            strategy(self.paradigm, self.policy.integration)  # refuses invalid combinations
        if self.policy.integration == "latent_actions" and not self.init:
            raise ConfigError("--policy.integration=latent_actions fine-tunes an action decoder on codes learned in "
                              "pretraining: run `wam pretrain --latent_actions=true` first and pass --init=RUN")
        self.policy.check()
        self.optim.check()
        if self.data.episodes_per_task < 0:
            raise ConfigError(f"data.episodes_per_task must be >= 0 (0 = all), got {self.data.episodes_per_task}")
        self._check_actionless()

    def _check_actionless(self) -> None:
        """`data.actionless_per_task` needs labelled demos to add to and a loss that reads episodes without actions."""
        d = self.data
        check_labels(self)
        self.labels.check()
        if not 0 <= d.labelled_share < 1:
            raise ConfigError(f"data.labelled_share must be in [0, 1) (0 = windows as they come), got {d.labelled_share}")
        if d.actionless_per_task < -1:
            raise ConfigError(f"data.actionless_per_task must be >= -1 (-1 = all the rest), got {d.actionless_per_task}")
        if not d.actionless_per_task:
            return
        if not d.episodes_per_task:
            raise ConfigError("data.actionless_per_task adds episodes after the labelled demos of "
                              "data.episodes_per_task; with it 0 every training episode is labelled already")
        video = self.paradigm not in REFERENCES and strategy(self.paradigm, self.policy.integration).video
        if not (video or self.policy.aux.names() or self.policy.keypoints.names()):  # inverse dynamics reads keypoints
            raise ConfigError(f"data.actionless_per_task: nothing in a '{self.paradigm}' policy learns from episodes "
                              f"without actions; add policy.aux.targets or policy.keypoints.targets, or use a "
                              f"paradigm with a video loss")


def _tokenizer_and_init(cfg: TrainConfig, frames, ds: LeRobotDataset, train_eps, val_eps, out: Path,
                        device: torch.device | str = "cpu"):
    """The tokenizer (and world-model weights to start from, when `init` is set)."""
    if cfg.init:
        world_model, wm_cfg = load_world_model(cfg.init)
        if wm_cfg.data.image_size != cfg.data.image_size:
            raise ConfigError(f"--init was pretrained on {wm_cfg.data.image_size} px frames, "
                              f"--data.image_size is {cfg.data.image_size}")
        # the initialisation defines the architecture: tokenizer, backbone and patch size
        _refuse_contradictions(cfg, wm_cfg.model)
        own = cfg.policy.backbone  # the run keeps its action expert (MoT) and checkpointing choices
        cfg.tokenizer, cfg.policy.backbone, cfg.policy.patch = wm_cfg.tokenizer, wm_cfg.model.backbone, wm_cfg.model.patch
        if cfg.policy.backbone.kind == "wam":  # MoT over a monolithic world model: its shared weights start each expert
            if cfg.policy.backbone.mot and not own.mot:  # `mot=false` cannot be told from the default: say it
                print("policy.backbone.mot=true: the world model of --init is a Mixture-of-Transformers (kept)")
            cfg.policy.backbone.mot = own.mot or cfg.policy.backbone.mot
        else:
            cfg.policy.backbone.mot, cfg.policy.backbone.checkpointing = own.mot, own.checkpointing
        return world_model.tokenizer.to(device), world_model.state_dict()
    pre = PretrainConfig(data=cfg.data, tokenizer=cfg.tokenizer, optim=cfg.optim)
    pre.model.backbone = cfg.policy.backbone  # a diffusers backbone brings its own VAE
    return prepare_tokenizer(pre, frames, frame_rows(ds, train_eps), frame_rows(ds, val_eps), out, device), None


def _refuse_contradictions(cfg: TrainConfig, model) -> None:
    """A `--policy.backbone.*` / `--policy.patch` set away from its default to a value the world model of
    `--init` does not have is refused (it would be overridden silently). A value set equal to the default
    cannot be told from the default: the world model's wins, and `--init`'s report shows it."""
    default = PolicyModelConfig()
    # MoT may be this run's choice (a monolithic world model's weights start every expert); a diffusers backbone's
    # checkpointing too
    own = {"mot", "checkpointing"} if model.backbone.kind != "wam" else {"mot"}
    ours = {k: v for k, v in asdict(cfg.policy.backbone).items() if k not in own}
    clash = contradictions(ours, asdict(model.backbone), asdict(default.backbone), "policy.backbone.")
    clash += contradictions({"patch": cfg.policy.patch}, {"patch": model.patch}, {"patch": default.patch}, "policy.")
    if clash:
        raise ConfigError(f"--init={cfg.init} defines the architecture; drop or match {', '.join(clash)}")


def _adopt_latent_actions(cfg: TrainConfig, wm_cfg: PretrainConfig) -> None:
    """LAPA: the LAM's shape and the frame offsets its codes describe come from the `--init` world model,
    which must have learned codes; a `--policy` value set to something else is refused."""
    if not wm_cfg.latent_actions:
        raise ConfigError(f"--init={cfg.init} was pretrained without latent-action codes (no LAM in it); "
                          f"--policy.integration=latent_actions needs a world model from `wam pretrain "
                          f"--latent_actions=true`")
    lam, ours = wm_cfg.lam, cfg.policy.latent_actions
    theirs = {"codes": lam.codes, "dim": lam.dim, "width": lam.width, "beta": lam.beta}
    clash = contradictions({k: getattr(ours, k) for k in theirs}, theirs,
                           {k: getattr(LatentActionsConfig(), k) for k in theirs}, "policy.latent_actions.")
    want = tuple(wm_cfg.model.future)
    clash += contradictions({"future": tuple(cfg.policy.future)}, {"future": want},
                            {"future": tuple(PolicyModelConfig().future)}, "policy.")
    if clash:
        raise ConfigError(f"--init={cfg.init} defines the latent actions; drop or match {', '.join(clash)}")
    cfg.policy.latent_actions = replace(ours, **theirs)
    cfg.policy.future = want


def load_report(result, loaded: dict, init: str) -> str:
    """One line on what `--init` gave the policy: tensors loaded, the policy's own (fresh) modules and
    world-model modules the policy has no use for."""
    top = lambda keys: sorted({k.split(".")[0] for k in keys})  # noqa: E731
    used = [k for k in loaded if k not in set(result.unexpected_keys)]
    fresh, unused = top(result.missing_keys), top(result.unexpected_keys)
    return (f"--init {init}: loaded {len(used)} tensors ({', '.join(top(used))}); fresh: {', '.join(fresh) or 'none'}"
            f"{'; not used: ' + ', '.join(unused) if unused else ''}")


def build_policy(cfg: TrainConfig, tokenizer: FrameAutoencoder | None, stats: dict, image_key: str,
                 source_size: int | None = None) -> WamPolicy:
    """A WAM paradigm over `tokenizer`, or the outside reference policy (which needs none)."""
    kp = cfg.policy.keypoints
    model_cfg = replace(cfg.policy, state_dim=cfg.policy.state_dim + kp.extra_dims())  # the detector's positions
    if cfg.paradigm in REFERENCES:
        paradigm = REFERENCES[cfg.paradigm](model_cfg, cfg.data.image_size)
    else:
        paradigm = build_paradigm(cfg.paradigm, model_cfg, tokenizer)
        if getattr(paradigm.parts, "aux_head", None) is not None and AUX_KEY in stats:  # else: loaded with the weights
            paradigm.parts.aux_head.set_stats(stats[AUX_KEY])
    return WamPolicy(paradigm, stats, image_key, get_text_encoder(cfg.text_encoder), source_size=source_size,
                     n_action_steps=cfg.policy.n_action_steps or None, ensemble=cfg.policy.ensemble or None,
                     state_names=cfg.data.state_names,
                     keypoints=KeypointNet(kp, kp.image_size or cfg.data.image_size).requires_grad_(False) if kp.names() else None)


def open_data(cfg: TrainConfig, progress: bool = True) -> tuple[LeRobotDataset, np.ndarray, list[int], list[int]]:
    """The dataset, its frames (decoded once, resized) and its training / held-out episodes; fills in
    `cfg.data.image_key` and `cfg.data.source_size`."""
    ds = LeRobotDataset(cfg.data.path)
    require_clean(ds, cfg.data.check)
    key = cfg.data.image_key or (ds.video_keys[0] if ds.video_keys else "")
    cfg.data.image_key = key
    cfg.data.source_size = int(ds.feature(key)["shape"][0])
    frames = cached_frames(ds, key, image_size=cfg.data.image_size, progress=progress).frames
    return ds, frames, *split_episodes(ds, cfg.data.val_fraction, cfg.data.episodes_per_task, cfg.data.tasks)


def adopt_dims(cfg: TrainConfig, ds: LeRobotDataset) -> None:
    """`policy.state_dim` and `policy.action_dim` from the dataset's features (a robot's, or
    `wam collect --state=privileged`'s 10-dim state), said when they differ from the config's;
    `data.state_names` from the state's per-dimension names (how `wam eval` rebuilds the env's state)."""
    for key, field in ((STATE_KEY, "state_dim"), (ACTION_KEY, "action_dim")):
        if key not in ds.features:
            continue
        dim = int(np.prod(ds.feature(key)["shape"]))
        if dim != getattr(cfg.policy, field):
            print(f"policy.{field}: {dim} ({key} of {cfg.data.path}; the config said {getattr(cfg.policy, field)})")
            setattr(cfg.policy, field, dim)
        names = ds.feature(key).get("names")
        if key == STATE_KEY and isinstance(names, list) and len(names) == dim and all(isinstance(n, str) for n in names):
            cfg.data.state_names = tuple(names)


def training_stats(ds: LeRobotDataset, train_eps: list[int], labelled: list[int], aux: bool = False) -> dict:
    """Normalisation statistics from the training episodes only (never held-out ones, nor tasks left
    out by `data.tasks`); the actions' from `labelled`, those whose actions are used."""
    stats = {STATE_KEY: vector_stats(ds.read_columns([STATE_KEY], train_eps)[STATE_KEY]),
             ACTION_KEY: vector_stats(ds.read_columns([ACTION_KEY], labelled)[ACTION_KEY])}
    if aux:  # the auxiliary targets' standardisation (policy.aux), from the same episodes
        stats[AUX_KEY] = vector_stats(ds.read_columns([AUX_KEY], train_eps)[AUX_KEY])
    return stats


def policy_windows(cfg: TrainConfig, ds: LeRobotDataset, latents: np.ndarray, episodes: list[int], video: bool,
                   actionless: Sequence[int] = (), keypoints: np.ndarray | None = None,
                   labels: dict[int, np.ndarray] | None = None) -> WindowDataset:
    """Windows over latents (or pixels, (N, H, W, 3)) with what a policy trains on: obs, state, the action
    chunk (`labels`' inferred ones for their episodes), the future if `video`, the detector's positions (N, K, 2)."""
    spec = WindowSpec(obs=cfg.policy.obs, future=cfg.policy.future if video else (),
                      action=tuple(range(cfg.policy.chunk)), state=True, image_key=cfg.data.image_key,
                      aux_key=AUX_KEY if cfg.policy.aux.names() else None)
    derived = None if keypoints is None else {"keypoints": keypoints}
    return latent_windows(ds, spec, latents, episodes, actionless, derived, labels)


def policy_and_inputs(cfg: TrainConfig, frames: np.ndarray, ds: LeRobotDataset, train_eps: list[int],
                      val_eps: list[int], stats: dict, out: Path,
                      device: torch.device | str = "cpu") -> tuple[WamPolicy, np.ndarray]:
    """The policy and what its windows read, (N, h, w, C): the tokenizer's latents (WAMs) or the
    frames themselves (the pixel reference)."""
    key, size = cfg.data.image_key, cfg.data.source_size
    if cfg.paradigm in REFERENCES:
        return build_policy(cfg, None, stats, key, size), frames
    tokenizer, init_state = _tokenizer_and_init(cfg, frames, ds, train_eps, val_eps, out, device)
    policy = build_policy(cfg, tokenizer, stats, key, size)
    if init_state is not None:
        result = policy.paradigm.parts.load_world(init_state, f"--init={cfg.init}")  # strict, by structure
        trains = ""
        if cfg.policy.integration == "latent_actions":  # the world model's LAM and code head; what trains
            result, trains = adopt_pretrained(policy.paradigm, init_state, result,
                                              cfg.policy.latent_actions.tune_backbone)
        print(load_report(result, init_state, cfg.init) + (f"\n{trains}" if trains else ""))
    return policy.to(device), encode_all(tokenizer, frames)


def _check_resumable(cfg: TrainConfig, out: Path) -> None:
    """A run folder holding another variant's checkpoints is refused (its weights would load silently:
    joint and representation-only have the same parameters)."""
    if not (out / "checkpoints" / "last").exists():
        return
    saved = read_config(TrainConfig, resolve_checkpoint(out))
    if (saved.paradigm, saved.policy.integration) != (cfg.paradigm, cfg.policy.integration):
        raise ConfigError(f"{out} holds a '{saved.paradigm}' ({saved.policy.integration}) policy; this run asks for "
                          f"'{cfg.paradigm}' ({cfg.policy.integration}): choose another --out, or resume with the "
                          f"same paradigm")


def _say_changes(cfg: TrainConfig, out: Path) -> None:
    """A run resumed under other settings than it started with trains on both: said (one line), not refused, since
    more steps are a reason to resume. Compared with the run's config.yaml as this point saved it last time."""
    if (out / "checkpoints" / "last").exists() and (out / "config.yaml").is_file():
        changes = changed_since(out / "config.yaml", cfg)
        if changes:
            print(f"resuming {out} with settings changed since it started: {'; '.join(changes)}", file=sys.stderr)


@holding_lock(lambda cfg: cfg.out)
def train_policy(cfg: TrainConfig, progress: bool = True, stop_at: int | None = None) -> dict:
    """Run (or resume) a policy training run; returns its last logged metrics."""
    device = resolve_device(cfg.device)
    ctx = distributed.setup(device)  # one process, or one rank of a torchrun / accelerate launch run
    cfg.optim.world_size, progress = ctx.world_size, progress and ctx.is_main
    cfg.check()
    seed_run(cfg.optim.seed)  # model initialisation included: a seed gives one run
    out = Path(cfg.out)
    _check_resumable(cfg, out)
    if cfg.policy.integration == "latent_actions":  # before any data is read: the world model must have codes
        _adopt_latent_actions(cfg, read_config(PretrainConfig, resolve_checkpoint(cfg.init)))
    out.mkdir(parents=True, exist_ok=True)
    if ctx.is_main:
        runtime_report(out, device, cfg.optim.precision)
    distributed.wait_for_rank_zero()  # rank 0 decodes, trains a tokenizer and writes first; the others read
    ds, frames, train_eps, val_eps = open_data(cfg, progress)
    adopt_dims(cfg, ds)
    for key, value in (("aux", cfg.policy.aux.targets), ("keypoints", cfg.policy.keypoints.targets)):
        if value and AUX_KEY not in ds.features:
            raise DatasetError(f"policy.{key}.targets={value} reads {AUX_KEY}, which {cfg.data.path} has not got "
                               f"(a real robot's data records no object or goal positions)")
    view_keys(cfg.policy.keypoints, ds)  # more cameras for the detector: refused now if the dataset has not got them
    hidden_tasks, hidden = video_only(cfg, ds)
    extra = actionless_extras(cfg, ds, train_eps)
    train_eps, hidden = sorted(train_eps + extra), hidden + extra
    labelled = sorted(set(train_eps) - set(hidden))  # their actions train; the keypoint detector learns from them only
    stats = training_stats(ds, train_eps, labelled, aux=bool(cfg.policy.aux.names()))
    policy, inputs = policy_and_inputs(cfg, frames, ds, train_eps, val_eps, stats, out, device)
    if ctx.is_main:
        _say_changes(cfg, out)
        save_config(cfg, out / "config.yaml")
        (out / "tasks.json").write_text(json.dumps({"env_tasks": trained_tasks(ds, cfg.data.tasks), "video_only_tasks": hidden_tasks,
                                                    "instructions": list(ds.tasks)}, indent=1))
        split = {"train": train_eps, "val": val_eps, "actionless": extra, "labelled": labelled}
        (out / "split.json").write_text(json.dumps(split))
    text_table = get_text_encoder(cfg.text_encoder, cache_path=out / "text_cache.npz").encode(ds.tasks)
    distributed.rank_zero_done()
    video = policy.paradigm.video
    cost = SetupCost(out / "setup_cost.json" if ctx.is_main else None)  # fits outside optim.steps, timed
    found = cost("keypoint_fit", fit_keypoints, policy, ds, frames, labelled, cfg.data.image_key, progress, val_eps,
                 cfg.optim.seed)
    labels = cost("action_labels", _inferred, cfg, ds, found, labelled, hidden, val_eps, out, ctx.is_main)
    hidden = [e for e in hidden if e not in labels]  # inferred actions train like recorded ones
    train_set, val_set = (policy_windows(cfg, ds, inputs, eps, video, hidden, found, labels)
                          for eps in (train_eps, val_eps))
    train_set, share = with_labelled_share(train_set, cfg.data.labelled_share)
    collate = LatentCollate(text_table, latents=not policy.paradigm.pixels)
    picks = np.linspace(0, len(val_set) - 1, min(len(val_set), 2 * cfg.optim.batch_size)).astype(int)
    val_batches = [collate([val_set[int(i)] for i in chunk]) for chunk in np.array_split(picks, 2) if len(chunk)]
    n = sum(p.numel() for p in policy.parameters() if p.requires_grad)
    verb = "inferred" if labels else "hidden"
    also = f", actions {verb} for {', '.join(hidden_tasks)}" if hidden_tasks else ""
    also += f", {len(extra)} more episodes with actions {verb}" if extra else ""
    also += f" ({share:.0%} of windows labelled)" if extra and not labels else ""
    print(f"{cfg.paradigm} policy: {n / 1e6:.2f}M trainable parameters, init {'from ' + cfg.init if cfg.init else 'scratch'}, "
          f"{len(train_set)} training windows, {len(val_eps)} held-out episodes{also}")
    return train(policy, train_set, collate, cfg.optim, out, KIND, cfg, val_batches, progress=progress, stop_at=stop_at,
                 device=device)


def _inferred(cfg: TrainConfig, ds: LeRobotDataset, found: np.ndarray | None, labelled: list[int], hidden: list[int],
              val_eps: list[int], out: Path, main: bool) -> dict[int, np.ndarray]:
    """The actions inverse dynamics infers for the `hidden` episodes ({} unless `data.actionless_actions` asks),
    its report printed and saved as action_labels.json."""
    if cfg.data.actionless_actions != "inverse_dynamics" or not hidden:
        return {}
    names = cfg.policy.keypoints.names()
    labels, report = infer_actions(ds, found, names, labelled, hidden, val_eps, cfg.optim.seed, cfg.labels)
    print(f"inverse dynamics ({report['reads']}) labels {len(labels)} episodes; R^2 (per action dimension) on "
          f"held-out episodes {report.get('held_out_r2')}, against their own recorded actions {report['recorded_r2']}")
    if main:
        (out / "action_labels.json").write_text(json.dumps(report, indent=1))
    return labels


def load_policy(path: str | Path, use_ema: bool = True, device: str = "cpu",
                precision: str = "fp32") -> tuple[WamPolicy, TrainConfig]:
    """A trained policy from one checkpoint folder (EMA weights by default), on `device` (a `--device`
    name), acting in `precision` (a `--precision` name; auto measures, see wam.runs.precision)."""
    ckpt = load_checkpoint(path, kind=KIND)
    cfg = ckpt.config(TrainConfig)
    tok_cfg = PretrainConfig(data=cfg.data, tokenizer=cfg.tokenizer).tokenizer_config()
    dims = {STATE_KEY: cfg.policy.state_dim, ACTION_KEY: cfg.policy.action_dim}
    stats = {k: {s: np.zeros(d) for s in ("mean", "std", "min", "max")} for k, d in dims.items()}
    tokenizer = None if cfg.paradigm in REFERENCES else frame_tokenizer(cfg.policy.backbone, tok_cfg)
    policy = build_policy(cfg, tokenizer, stats, cfg.data.image_key, cfg.data.source_size or None)
    try:
        policy.load_state_dict(ckpt.model)
    except RuntimeError as exc:  # missing / unexpected keys or other shapes
        raise WamError(f"{ckpt.path / 'config.yaml'} does not describe the weights in {ckpt.path} "
                       f"({str(exc).splitlines()[-1].strip()[:200]}); was the config edited?") from None
    if use_ema and ckpt.ema is not None:
        params = dict(policy.named_parameters())
        with torch.no_grad():
            for name, value in ckpt.ema.items():
                params[name].copy_(value)
    return policy.to_runtime(device, precision).eval(), cfg
