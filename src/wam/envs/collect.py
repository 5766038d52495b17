"""`wam collect`: scripted-expert demonstrations from Meta-World into a LeRobot v3.0 dataset.

For each task, scenes are seeded `seed, seed+1, ...`; the expert runs until the task succeeds (or
the step cap), only successful episodes are kept, and seeds are tried until `episodes`
demonstrations per task exist: the demos of a task are always its first `episodes` successful
seeds, whatever the number of workers or the timing. Worker processes (one env each, rebuilt when
their task changes) roll out and encode video; the main process commits episodes one by one
through the crash-safe `LeRobotWriter`.

Killed at any moment, the folder holds a dataset that opens with every completed episode; run the
same command again and it resumes: committed demos are read back from meta/episodes (their task
and seed), failed attempts from meta/wam_attempts.jsonl, and only what is missing is run.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from wam.data.check import require_clean
from wam.data.lerobot_format import LeRobotDataset
from wam.data.tasks import instruction, resolve_tasks
from wam.data.video import VideoCodec
from wam.data.writer import LeRobotWriter
from wam.errors import ConfigError, WamError
from wam.runs.threads import apply_worker_env, share
from wam.runs.lock import holding_lock
from wam.runs.folders import output_dir

FPS = 80  # Meta-World: 5 MuJoCo steps of 2.5 ms per control step
ATTEMPTS_FILE = "meta/wam_attempts.jsonl"
CONFIG_FILE = "meta/wam_collect.json"


@dataclass
class CollectConfig:
    """What `wam collect` gathers (every field is a `--flag`)."""

    tasks: str = "mw5"  # a suite (mt10, mt50, avdc11, mw5, easy, ...) or a comma list of tasks
    episodes: int = 20  # successful demonstrations per task
    out: str = "data/mw5"
    camera: str = "corner2"
    views: str = ""  # more cameras filmed beside `camera` (comma list, e.g. corner): a video feature each
    image_size: int = 96
    # observation.state: proprio (hand xyz, gripper) | object / goal (+ its xyz) | privileged (+ object, goal xyz)
    state: str = "proprio"
    workers: int = 2
    seed: int = 0  # scenes are seeded seed, seed+1, ... (keep evaluation seeds disjoint)
    max_attempts: int = 0  # per task; 0 = 2 * episodes + 10
    max_steps: int = 500
    crf: int = 18  # video quality (lower is better, bigger)
    data_check: str = "cheap"  # verify a dataset being resumed (`wam data check`): off | cheap | full

    def check(self) -> None:
        if self.episodes < 1:
            raise ConfigError(f"--episodes must be >= 1, got {self.episodes}")
        if self.workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {self.workers}")
        if self.image_size % 2 or not 16 <= self.image_size <= 512:
            raise ConfigError(f"--image_size must be even and in [16, 512], got {self.image_size}")
        resolve_tasks(self.tasks)
        from wam.envs.metaworld import CAMERAS, STATE_LAYOUTS

        for flag, cam in [("camera", self.camera)] + [("views", v) for v in self.view_list()]:
            if cam not in CAMERAS:
                raise ConfigError(f"--{flag} {cam!r} is not a Meta-World camera; choose one of {', '.join(CAMERAS)}")
        if len(set(self.cameras())) != len(self.cameras()):
            raise ConfigError(f"--views={self.views} repeats a camera (--camera={self.camera} is filmed already)")
        if self.state not in STATE_LAYOUTS:
            raise ConfigError(f"--state {self.state!r} is not a state layout; choose one of {', '.join(STATE_LAYOUTS)}")

    def view_list(self) -> list[str]:
        return [v.strip() for v in self.views.split(",") if v.strip()]

    def cameras(self) -> tuple[str, ...]:
        """Every filmed camera, the main one first (the dataset's first video feature)."""
        return (self.camera, *self.view_list())


def dataset_features(camera: str, image_size: int, state: str = "proprio",
                     views: tuple[str, ...] = ()) -> dict[str, dict]:
    """The dataset schema; `MetaWorldEnv` observations use the same keys and shapes."""
    from wam.envs.metaworld import state_names

    names = state_names(state)
    return {
        **{f"observation.images.{cam}": {"dtype": "video", "shape": [image_size, image_size, 3],
                                         "names": ["height", "width", "channels"]} for cam in (camera, *views)},
        "observation.state": {"dtype": "float32", "shape": [len(names)], "names": names},
        "observation.environment_state": {"dtype": "float32", "shape": [39], "names": None},
        "action": {"dtype": "float32", "shape": [4], "names": ["dx", "dy", "dz", "gripper"]},
        "next.reward": {"dtype": "float32", "shape": [1], "names": None},
        "next.success": {"dtype": "bool", "shape": [1], "names": None},
        "next.done": {"dtype": "bool", "shape": [1], "names": None},
    }


# -- worker side ------------------------------------------------------------------------------
_ENV = None


def _worker_env(task: str, cameras: tuple[str, ...], image_size: int, max_steps: int, state: str):
    """This worker's env, rebuilt (after freeing the old GL context) when the task changes."""
    global _ENV
    from wam.envs.metaworld import MetaWorldEnv

    if _ENV is None or (_ENV.task, (_ENV.camera, *_ENV.views), _ENV.state_layout) != (task, cameras, state):
        if _ENV is not None:
            _ENV.close()
        _ENV = MetaWorldEnv(task, camera=cameras[0], image_size=image_size, max_steps=max_steps, state=state,
                            views=cameras[1:])
    return _ENV


def run_expert_episode(task: str, seed: int, cameras: tuple[str, ...], image_size: int, max_steps: int,
                       staging: str, crf: int, state: str = "proprio") -> dict:
    """Roll out the scripted expert for one seeded scene (filmed by `cameras`, the main one first); encode the
    videos if it succeeded."""
    from wam.data.stats import image_stats
    from wam.data.video import encode_video

    start = time.perf_counter()
    env = _worker_env(task, tuple(cameras), image_size, max_steps, state)
    obs, _ = env.reset(seed=seed)
    keys = ("observation.state", "observation.environment_state")
    rec: dict[str, list] = {k: [] for k in (*keys, *env.image_keys, "action", "next.reward", "next.success", "next.done")}
    done = success = False
    while not done:
        action = env.expert_action(obs)
        for k in (*keys, *env.image_keys):
            rec[k].append(obs[k])
        obs, reward, terminated, truncated, info = env.step(action)
        success, done = bool(info["success"]), terminated or truncated
        rec["action"].append(action)
        rec["next.reward"].append(np.float32(reward))
        rec["next.success"].append(success)
        rec["next.done"].append(done)
    result = {"task": task, "seed": seed, "success": success, "steps": len(rec["action"])}
    if success:
        videos, stats = {}, {}
        for key in env.image_keys:
            frames = np.stack(rec.pop(key))  # (T, H, W, 3) uint8
            videos[key] = Path(staging) / f"{task}_{seed}_{key.split('.')[-1]}.mp4"
            encode_video(frames, videos[key], FPS, VideoCodec(crf=crf))
            stats[key] = image_stats(frames)
        result.update(videos=videos, video_stats=stats, data={k: np.asarray(v) for k, v in rec.items()})
    result["seconds"] = time.perf_counter() - start
    return result


def _worker_init(threads: int = 1) -> None:
    import warnings

    from wam.envs.rendering import configure_gl_backend

    warnings.filterwarnings("ignore", message="Constant.*may be too high")  # metaworld's experts
    apply_worker_env(threads)  # this worker's share of the cores, renderer threads included
    configure_gl_backend()


# -- main process -----------------------------------------------------------------------------
@dataclass
class TaskProgress:
    """Seeds tried for one task: the attempted seeds always form a prefix of seed, seed+1, ..."""

    task: str
    successes: set[int] = field(default_factory=set)
    failures: set[int] = field(default_factory=set)
    in_flight: set[int] = field(default_factory=set)
    steps: list[int] = field(default_factory=list)

    def next_seeds(self, first: int, wanted: int, max_attempts: int) -> list[int]:
        """Seeds to start now so that successes + in flight reach `wanted`, within the budget."""
        out, seed = [], first
        tried = self.successes | self.failures | self.in_flight
        while len(self.successes) + len(self.in_flight) + len(out) < wanted:
            while seed in tried:
                seed += 1
            if len(tried) + len(out) >= max_attempts:
                break
            out.append(seed)
            seed += 1
        return out


@dataclass
class CollectReport:
    """What a collect run did, per task and overall."""

    per_task: dict[str, dict] = field(default_factory=dict)
    frames: int = 0  # frames committed by this run
    seconds: float = 0.0
    workers: int = 1

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    def table(self) -> str:
        lines = [f"{'task':32s} {'demos':>5s} {'tried':>5s} {'expert success':>14s} {'mean len':>8s}"]
        for task, r in self.per_task.items():
            rate = r["successes"] / r["attempts"] if r["attempts"] else float("nan")
            lines.append(f"{task:32s} {r['successes']:5d} {r['attempts']:5d} {rate:14.2f} {r['mean_length']:8.1f}")
        lines.append(f"{self.frames} new frames in {self.seconds:.1f}s = {self.fps:.0f} frames/s "
                     f"with {self.workers} worker(s)")
        return "\n".join(lines)


def _load_progress(root: Path, tasks: list[str]) -> dict[str, TaskProgress]:
    progress = {t: TaskProgress(t) for t in tasks}
    if (root / "meta/info.json").exists():
        for ep in LeRobotDataset(root).episodes:
            task = ep.extras.get("env_task")
            if task in progress:
                progress[task].successes.add(int(ep.extras["seed"]))
                progress[task].steps.append(ep.length)
    attempts = root / ATTEMPTS_FILE
    if attempts.exists():
        for line in attempts.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a kill
            if rec["task"] in progress and not rec["success"]:
                progress[rec["task"]].failures.add(int(rec["seed"]))
    return progress


def _check_resume(root: Path, cfg: CollectConfig) -> None:
    path = root / CONFIG_FILE
    same, default = ("camera", "views", "image_size", "state", "seed", "max_steps", "crf"), CollectConfig()
    if path.exists():
        old = json.loads(path.read_text())
        old = {k: old.get(k, getattr(default, k)) for k in same}  # a field added later: its default then
        diff = [f"{k}: {old[k]} -> {getattr(cfg, k)}" for k in same if old[k] != getattr(cfg, k)]
        if diff:
            raise ConfigError(f"{root} was collected with other settings ({'; '.join(diff)}); "
                              "use another --out or the same settings to resume")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(cfg), indent=2))


def _append_attempt(root: Path, result: dict) -> None:
    with open(root / ATTEMPTS_FILE, "a") as f:
        rec = {k: result[k] for k in ("task", "seed", "success", "steps", "seconds")}
        f.write(json.dumps(rec) + "\n")
        f.flush()
        os.fsync(f.fileno())


@holding_lock(lambda cfg: cfg.out)
def collect(cfg: CollectConfig, progress_bar: bool = True) -> CollectReport:
    """Run the collection described by `cfg` (resuming whatever is already in `cfg.out`)."""
    cfg.check()
    tasks = resolve_tasks(cfg.tasks)
    root = output_dir(cfg.out)
    if (root / "meta/info.json").exists():  # resuming: refuse to append to a damaged dataset
        require_clean(LeRobotDataset(root), cfg.data_check, flag="--data_check")
    _check_resume(root, cfg)
    writer = LeRobotWriter(root, FPS, dataset_features(cfg.camera, cfg.image_size, cfg.state, tuple(cfg.view_list())), codec=VideoCodec(crf=cfg.crf))
    progress = _load_progress(root, tasks)
    staging = root / ".staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    budget = cfg.max_attempts or 2 * cfg.episodes + 10
    report = CollectReport(workers=cfg.workers)
    done_before = sum(min(len(p.successes), cfg.episodes) for p in progress.values())
    bar = tqdm(total=cfg.episodes * len(tasks), initial=done_before, desc="demos", disable=not progress_bar)
    start = time.perf_counter()
    try:
        _run_pool(cfg, tasks, progress, budget, writer, staging, report, bar)
    finally:
        bar.close()
        shutil.rmtree(staging, ignore_errors=True)
    report.seconds = time.perf_counter() - start
    for t, p in progress.items():
        report.per_task[t] = {"successes": len(p.successes), "attempts": len(p.successes) + len(p.failures),
                              "mean_length": float(np.mean(p.steps)) if p.steps else float("nan")}
    short = [t for t, p in progress.items() if len(p.successes) < cfg.episodes]
    if short:
        print(f"warning: fewer than {cfg.episodes} demos after {budget} attempts for: {', '.join(short)}")
    return report


def _run_pool(cfg, tasks, progress, budget, writer, staging, report, bar) -> None:
    """Keep the workers busy task by task; commit each success as soon as it arrives.

    A worker that dies (a crash in MuJoCo or the GL driver) breaks the whole pool: the episodes in
    flight are started again in a new pool, and one caught in 3 crashes counts as a failed attempt.
    """
    crashes: dict[tuple[str, int], int] = {}
    ctx = mp.get_context("spawn")
    new_pool = lambda: ProcessPoolExecutor(cfg.workers, mp_context=ctx, initializer=_worker_init,  # noqa: E731
                                           initargs=(share(cfg.workers),))
    pool = new_pool()
    running: dict[Future, tuple[str, int]] = {}
    try:
        while True:
            for task in tasks:  # fill free slots, earliest unfinished task first
                p = progress[task]
                for seed in p.next_seeds(cfg.seed, cfg.episodes, budget)[: cfg.workers - len(running)]:
                    p.in_flight.add(seed)
                    args = (task, seed, cfg.cameras(), cfg.image_size, cfg.max_steps, str(staging), cfg.crf, cfg.state)
                    running[pool.submit(run_expert_episode, *args)] = (task, seed)
            if not running:
                return
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            broken = [running.pop(f) for f in finished if isinstance(f.exception(), BrokenProcessPool)]
            for fut in finished:
                if fut in running:  # finished normally (or raised: a real error, re-raised here)
                    task, seed = running.pop(fut)
                    progress[task].in_flight.discard(seed)
                    _record(cfg, writer, progress, fut.result(), report, bar)
            if broken:
                broken += list(running.values())
                running.clear()
                pool.shutdown(wait=False, cancel_futures=True)
                pool = new_pool()
                for task, seed in broken:
                    progress[task].in_flight.discard(seed)
                    crashes[(task, seed)] = crashes.get((task, seed), 0) + 1
                    if crashes[(task, seed)] >= 3:
                        print(f"warning: {task} seed {seed} was running in 3 worker crashes; counted as failed")
                        _record(cfg, writer, progress, {"task": task, "seed": seed, "success": False,
                                                        "steps": 0, "seconds": 0.0}, report, bar)
    finally:
        pool.shutdown(cancel_futures=True)


def _record(cfg, writer, progress, result, report, bar) -> None:
    p = progress[result["task"]]
    if result["success"] and len(p.successes) < cfg.episodes:
        data = result["data"]
        writer.add_episode(instruction(result["task"]), data, result["videos"], video_stats=result["video_stats"],
                           extras={"env_task": result["task"], "seed": result["seed"]})
        p.successes.add(result["seed"])
        p.steps.append(result["steps"])
        report.frames += result["steps"]
        bar.update(1)
        bar.set_postfix(task=result["task"], fps=f"{report.frames / max(bar.format_dict['elapsed'], 1e-9):.0f}")
    elif not result["success"]:
        p.failures.add(result["seed"])
    _append_attempt(Path(cfg.out), result)


def collect_or_explain(cfg: CollectConfig) -> CollectReport:
    """`collect`, with failures of the renderer or simulator explained for the command line."""
    try:
        return collect(cfg)
    except (WamError, KeyboardInterrupt):
        raise
    except BrokenProcessPool as exc:
        raise WamError(f"a collect worker died repeatedly ({exc}); check MUJOCO_GL and the GL libraries") from None
