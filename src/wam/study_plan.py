"""A study's plan and its checks against the data it names, before anything runs.

    wam study video_pays --dry_run        prints the cells, the budget arithmetic and the wall time

`preflight(cfg)` refuses, with one line, a study whose demos per task exceed the training episodes
of an existing dataset (`data.path`), whose existing datasets hold the evaluation's scene seeds, or
whose cells cannot fit `budget.total_cpu_hours`. `plan_lines(cfg)` is the arithmetic behind it;
`arms_seen(...)` says what data each variant saw (summary.json's `data`, the report).
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from wam.config import apply_overrides
from wam.data.lerobot_format import LeRobotDataset
from wam.data.tasks import resolve_tasks
from wam.errors import ConfigError
from wam.pretrain import held_out_count
from wam.reference import REFERENCES
from wam.study_config import Cell, StudyConfig, VariantSpec, plan_cells, study_dir

# CPU s a collected episode: ~64 steps x ~12 ms (a 128 px corner2 step, measured) + expert + video encoding;
# MACHINE.md measured 0.5-1 s idle at 96 px; beside other jobs the wall time was 4.5-10 s an episode
COLLECT_S_PER_EPISODE = 1.5


def _task_of(ep) -> str:
    return str(ep.extras.get("env_task") or ep.tasks[0])


def target_tasks(cfg: StudyConfig, ds: LeRobotDataset | None = None) -> list[str]:
    """The tasks cells train on and are evaluated on: `train.data.tasks`, else the labelled data's."""
    if cfg.train.data.tasks:
        return resolve_tasks(cfg.train.data.tasks)
    if ds is not None:
        return sorted({_task_of(e) for e in ds.episodes})
    return resolve_tasks(cfg.data.collect.tasks) if not cfg.data.path else []


def check_labelled(cfg: StudyConfig, path: Path) -> None:
    """Every target task of the labelled dataset has `max(demos)` training episodes (after held-out ones), and
    as many more as a variant's `data.actionless_per_task` adds (-1: at least one)."""
    ds = LeRobotDataset(path)
    counts = Counter(_task_of(e) for e in ds.episodes)
    more = max([0] + [abs(int(v.overrides.get("data.actionless_per_task", 0))) for v in cfg.variants])
    frac, want = cfg.train.data.val_fraction, max(cfg.demos) + more
    for task in target_tasks(cfg, ds):
        n = counts.get(task, 0)
        n_val = held_out_count(n, frac) if n > 1 else n
        if want > n - n_val:
            asked = f"demos {max(cfg.demos)}" + (f" + {more} without actions (data.actionless_per_task)" if more else "")
            raise ConfigError(f"{asked} per task, but {path} holds {n} episodes of {task} ({n - n_val} for "
                              f"training, {n_val} held out at train.data.val_fraction={frac}); collect more or ask "
                              f"for fewer demos")


def _check_scenes(cfg: StudyConfig, name: str, path: Path) -> None:
    """An existing dataset's recorded scene seeds must not be the evaluation's."""
    lo, hi = cfg.eval.seed, cfg.eval.seed + cfg.eval.episodes
    seeds = {int(e.extras["seed"]) for e in LeRobotDataset(path).episodes if e.extras.get("seed") is not None}
    clash = sorted(s for s in seeds if lo <= s < hi)
    if clash:
        raise ConfigError(f"{name}={path} holds scene seeds {clash[0]}..{clash[-1]}, which the evaluation uses "
                          f"({lo}..{hi - 1}: eval.seed, eval.episodes): move eval.seed")


def check_video_pool(cfg: StudyConfig, labelled: Path | None) -> None:
    """The world model learns from the camera the policies act from (the pool's and the demos' video key)."""
    pool = cfg.data.video
    if not pool.enabled or cfg.pretrain_run or not (pool.path or labelled):
        return  # both collected: StudyConfig.check compares the cameras
    pool_keys = LeRobotDataset(pool.path).video_keys if pool.path else [f"observation.images.{pool.collect.camera}"]
    demo_keys = LeRobotDataset(labelled).video_keys if labelled else [f"observation.images.{cfg.data.collect.camera}"]
    seen = cfg.pretrain.data.image_key or (pool_keys[:1] or [""])[0]
    acts = cfg.train.data.image_key or (demo_keys[:1] or [""])[0]
    if seen != acts:
        where = f"data.video.path={pool.path}" if pool.path else f"data.video.collect.camera={pool.collect.camera}"
        raise ConfigError(f"{where}: the world model would learn from {seen or 'no video'}, the policies act from "
                          f"{acts or 'no video'}: film the pool with the demos' camera")


def check_views(cfg: StudyConfig, labelled: Path | None) -> None:
    """A variant whose keypoint detector reads more cameras (`policy.keypoints.views`) needs the labelled demos filmed
    by them: the dataset's video features, or `data.collect.views` when the study collects."""
    have = LeRobotDataset(labelled).video_keys if labelled else \
        [f"observation.images.{c}" for c in cfg.data.collect.cameras()]
    for v in cfg.variants:
        views = str(v.overrides.get("policy.keypoints.views", cfg.train.policy.keypoints.views))
        missing = [c for c in views.split(",") if c.strip() and f"observation.images.{c.strip()}" not in have]
        if missing:
            where = f"data.path={labelled}" if labelled else f"data.collect.views={cfg.data.collect.views or '(none)'}"
            raise ConfigError(f"variant {v.name}: policy.keypoints.views={views} reads camera {', '.join(missing)}, "
                              f"which {where} does not film")


def preflight(cfg: StudyConfig) -> None:
    """cfg.check(), then the checks that read the existing datasets and the total budget."""
    cfg.check()
    labelled = Path(cfg.data.path) if cfg.data.path else None
    if labelled:
        check_labelled(cfg, labelled)
        _check_scenes(cfg, "data.path", labelled)
    if cfg.data.video.path and not cfg.pretrain_run:
        _check_scenes(cfg, "data.video.path", Path(cfg.data.video.path))
    check_video_pool(cfg, labelled)
    check_views(cfg, labelled)
    check_total(cfg)


@dataclass
class Cost:
    """CPU seconds of the cells: training (the budget) and evaluation (an estimate)."""

    cells: int
    train_s: float  # per cell (0: unknown, a step budget)
    eval_episodes: int  # per cell, every evaluation it runs
    eval_s: float  # per cell (every episode to eval.max_steps at budget.eval_ms_per_step)

    @property
    def total_s(self) -> float:
        return self.cells * (self.train_s + self.eval_s)


def cell_cost(cfg: StudyConfig, n_tasks: int) -> Cost:
    evals = 1 + len(cfg.extra_paraphrases)
    episodes = evals * cfg.eval.episodes * n_tasks
    eval_s = episodes * cfg.eval.max_steps * cfg.budget.eval_ms_per_step / 1000
    return Cost(len(plan_cells(cfg)), cfg.budget.cpu_seconds, episodes, eval_s)


def _n_tasks(cfg: StudyConfig) -> int:
    labelled = LeRobotDataset(cfg.data.path) if cfg.data.path and Path(cfg.data.path).is_dir() else None
    return len(target_tasks(cfg, labelled))


def check_total(cfg: StudyConfig) -> None:
    cap = cfg.budget.total_cpu_hours
    if not cap:
        return
    if not cfg.budget.cpu_seconds:
        raise ConfigError("budget.total_cpu_hours needs budget.cpu_seconds (a step budget has no known CPU time)")
    c = cell_cost(cfg, _n_tasks(cfg))
    if c.total_s > cap * 3600:
        raise ConfigError(f"budget.total_cpu_hours={cap:g} is {cap * 3600:.0f} CPU s, but the cells need "
                          f"{c.cells} cells x ({c.train_s:.0f} s training + {c.eval_s:.0f} s evaluation: "
                          f"{c.eval_episodes} episodes x {cfg.eval.max_steps} steps x "
                          f"{cfg.budget.eval_ms_per_step:g} ms) = {c.total_s:.0f} CPU s "
                          f"({c.total_s / 3600:.1f} h); raise the cap or shrink the grid")


def cell_done(cfg: StudyConfig, cell: Cell, root: Path) -> bool:
    """Trained and every evaluation the study asks for written (evaluations added later still run)."""
    folder = root / cell.run
    wanted = [folder / "eval/eval_info.json", *(folder / f"eval_paraphrase{k}/eval_info.json"
                                                for k in cfg.extra_paraphrases)]
    if cfg.offline.enabled:
        wanted.append(folder / "eval_offline.json")
    return all(p.exists() for p in wanted)


def _h(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def plan_lines(cfg: StudyConfig) -> list[str]:
    """The cells, what each arm sees, the budget arithmetic and the estimated wall time."""
    n_tasks = _n_tasks(cfg)
    c = cell_cost(cfg, n_tasks)
    v, d, s = len(cfg.variants), len(cfg.demos), len(cfg.seeds)
    lines = [f"study {cfg.name}: {c.cells} cells = {v} variants x {d} demo sizes {cfg.demos} x {s} seeds {cfg.seeds}"]
    for variant in cfg.variants:
        lines.append(f"  {variant.name:<24} {variant.paradigm}/{variant.integration}, {variant.init}: "
                     f"{_sees(cfg, variant)}")
    lines.append(f"labelled demos: {_labelled_text(cfg)}; {n_tasks or '?'} target tasks, evaluated there")
    lines.append(f"pretraining video: {_pool_text(cfg)}")
    wall = 0.0
    pool = cfg.data.video
    stages = [("labelled", cfg.data.collect, not cfg.data.path),
              ("video", pool.collect, pool.collect.tasks and not (pool.path or cfg.pretrain_run))]
    for name, spec, used in stages:
        if used:
            n = len(resolve_tasks(spec.tasks))
            seconds = n * spec.episodes * COLLECT_S_PER_EPISODE / spec.workers
            wall += seconds
            lines.append(f"collect {name}: {n} tasks x {spec.episodes} episodes x ~{COLLECT_S_PER_EPISODE:g} CPU s / "
                         f"{spec.workers} workers ~ {_h(seconds)}")
    if not cfg.pretrain_run:
        lines.append(f"pretrain: tokenizer {cfg.pretrain.tokenizer.steps} steps + world model "
                     f"{cfg.pretrain.optim.steps} steps, one process (not estimated here: see the config's header)")
    if cfg.budget.cpu_seconds:
        train = f"{c.train_s:.0f} s training (budget.cpu_seconds)"
    else:
        train = f"{cfg.budget.steps} steps training (budget.steps: CPU time unknown until the rates are measured)"
    lines.append(f"each cell: {train} + {c.eval_s:.0f} s evaluation (estimate: {c.eval_episodes} episodes x "
                 f"{cfg.eval.max_steps} steps x {cfg.budget.eval_ms_per_step:g} ms, every episode to the step cap)")
    equal = [f"{v.name} (as {v.steps_of})" for v in cfg.variants if v.steps_of]
    if equal and cfg.budget.cpu_seconds:
        lines.append(f"equal steps, not equal CPU (steps_of): {', '.join(equal)}; these cells spend more than "
                     "budget.cpu_seconds where their step is slower, and the totals below do not count it")
    lines += _steps_lines(cfg) if cfg.budget.cpu_seconds else []
    cap = cfg.budget.total_cpu_hours
    lines.append(f"cells: {c.cells} x {c.train_s + c.eval_s:.0f} s = {c.total_s:.0f} CPU s ({_h(c.total_s)})"
                 + (f", cap budget.total_cpu_hours={cap:g} h" if cap else ""))
    done = sum(cell_done(cfg, cell, study_dir(cfg)) for cell in plan_cells(cfg))
    left = (c.cells - done) * (c.train_s + c.eval_s)
    if done:
        lines.append(f"finished already in {study_dir(cfg)}: {done} cells; to run: {c.cells - done} cells, "
                     f"{left:.0f} CPU s ({_h(left)})")
    side = f"{cfg.parallel} cells side by side (parallel)" if cfg.parallel > 1 else "one cell at a time (parallel: 1)"
    lines.append(f"wall time, {side}: collect ~{_h(wall)} + pretrain + cells ~{_h(left / cfg.parallel)} "
                 f"(an upper bound if the cores are free: successful episodes end early)")
    return lines


def cell_steps(cfg: StudyConfig, variant: VariantSpec, rates: dict[str, float]) -> int:
    """A cell's optimizer steps: budget.steps, or budget.cpu_seconds at the variant's measured samples/s (with
    `steps_of`, at the rate of the variant it names: the same steps)."""
    if cfg.budget.steps:
        return cfg.budget.steps
    if variant.steps_of:
        return cell_steps(cfg, next(v for v in cfg.variants if v.name == variant.steps_of), rates)
    return max(1, round(cfg.budget.cpu_seconds * rates[variant.name] / _batch(cfg, variant)))


def _batch(cfg: StudyConfig, variant: VariantSpec) -> int:
    """The variant's training batch size (a cell's samples a step)."""
    return apply_overrides(copy.deepcopy(cfg.train), variant.overrides).optim.batch_size


def _steps_lines(cfg: StudyConfig) -> list[str]:
    """Each arm's steps at the rates measured in the study folder (rates.json), when it has them."""
    try:
        rates = json.loads((study_dir(cfg) / "rates.json").read_text())
    except (OSError, ValueError):
        return []
    known = [v for v in cfg.variants if v.name in rates or (v.rate_of and v.rate_of in rates)]
    rate = {v.name: rates[v.rate_of] if v.rate_of else rates[v.name] for v in known}
    arms = ", ".join(_arm_steps(cfg, v, rate) for v in known if not v.steps_of or v.steps_of in rate)
    return [f"steps a cell at the rates measured in {study_dir(cfg) / 'rates.json'}: {arms}"] if known else []


def _arm_steps(cfg: StudyConfig, v: VariantSpec, rate: dict[str, float]) -> str:
    """`name steps (rate samples/s)`; an arm with `steps_of` also says the CPU its equal steps cost."""
    steps = cell_steps(cfg, v, rate)
    if not v.steps_of:
        return f"{v.name} {steps} ({rate[v.name]:.1f} samples/s)"
    return (f"{v.name} {steps} (steps_of {v.steps_of}: ~{steps * _batch(cfg, v) / rate[v.name]:.0f} CPU s a cell at its "
            f"{rate[v.name]:.1f} samples/s)")


def _labelled_text(cfg: StudyConfig) -> str:
    where = cfg.data.path or "STUDY/data"
    return f"the first {cfg.demos} training episodes a task of {where}"


def _pool_text(cfg: StudyConfig) -> str:
    if cfg.pretrain_run:
        return f"as the reused world model {cfg.pretrain_run} saw (summary.json's data says)"
    pool = cfg.data.video
    if pool.path:
        return f"{pool.path} (action-free: actions never read)"
    if pool.collect.tasks:
        return (f"STUDY/video: {pool.collect.tasks} x {pool.collect.episodes} episodes, scene seeds from "
                f"{pool.collect.seed} (action-free: actions never read)")
    reads = "actions read: pretrain.model.action_chunk > 0" if cfg.pretrain.model.action_chunk else "action-free"
    return f"{cfg.pretrain.data.path or 'the labelled dataset'}, every training episode ({reads})"


def _sees(cfg: StudyConfig, variant) -> str:
    if variant.paradigm in REFERENCES:
        size = variant.overrides.get("data.image_size")
        return f"labelled demos only (pixels{f' at {size} px' if size else ''}; no tokenizer, no world model)"
    aux, more = variant.overrides.get("policy.aux.targets"), variant.overrides.get("data.actionless_per_task")
    kp = variant.overrides.get("policy.keypoints.targets")
    also = f"; their recorded {aux} positions as training targets (policy.aux)" if aux else ""
    also += f"; a pixel keypoint detector trained on their recorded {kp} positions (policy.keypoints)" if kp else ""
    inferred = variant.overrides.get("data.actionless_actions") == "inverse_dynamics"
    how = "inferred from their video (inverse dynamics fitted on the demos)" if inferred else "hidden"
    if more:
        count = "all the other" if int(more) < 0 else f"{more} more"
        also += (f"; {count} training episodes a task with actions {how}"
                 f"{' (their recorded positions as policy.aux targets)' if aux else ''}")
    video_only = variant.overrides.get("data.video_only_tasks", cfg.train.data.video_only_tasks if cfg else "")
    if video_only:
        also += f"; the episodes of {video_only} (tasks seen only as video) with actions {how}"
    if variant.init == "scratch":
        only = "" if more or (video_only and inferred) else " only"
        return f"labelled demos{only}, through the frozen tokenizer trained on the pretraining video{also}"
    return f"labelled demos + the world model pretrained on the pretraining video{also}"


def arms_seen(cfg: StudyConfig, wm: Path, data: Path) -> dict:
    """What each arm saw, for summary.json: the labelled episodes per demo size, the world model's video."""
    from wam.checkpoint import read_config, resolve_checkpoint
    from wam.pretrain import PretrainConfig, split_episodes

    labelled = LeRobotDataset(data)
    tasks = target_tasks(cfg, labelled)
    per_demos = {}
    for d in sorted(cfg.demos):
        train_eps, _ = split_episodes(labelled, cfg.train.data.val_fraction, d, cfg.train.data.tasks)
        per_demos[str(d)] = {"episodes": len(train_eps), "frames": sum(labelled.episodes[e].length for e in train_eps)}
    wm_cfg = read_config(PretrainConfig, resolve_checkpoint(wm))
    split = json.loads((wm / "split.json").read_text()) if (wm / "split.json").exists() else {}
    pool = {"path": wm_cfg.data.path, "reads_actions": bool(wm_cfg.model.action_chunk)}
    if split and Path(wm_cfg.data.path).is_dir():
        ds = LeRobotDataset(wm_cfg.data.path)
        eps = [ds.episodes[e] for e in split["train"]]
        pool.update(episodes=len(eps), frames=sum(e.length for e in eps),
                    episodes_per_task=dict(sorted(Counter(_task_of(e) for e in eps).items())))
    arms = {v.name: _sees(cfg, v) for v in cfg.variants}
    return {"labelled": {"path": str(data), "tasks": tasks, "per_demos": per_demos, "reads_actions": True},
            "video": pool, "arms": arms}
