"""`wam eval`: closed-loop rollouts of a trained policy in Meta-World, in parallel worker processes.

    wam eval --policy=runs/repr --episodes=10 --workers=2

Scenes are seeded from `seed` (10,000 by default; `wam collect` uses 0 upwards, so evaluation scenes are never
training scenes). Each worker loads the policy once and runs whole episodes; the main process gathers success per
task and overall with 95% Wilson intervals, episode lengths, ms per action chunk and the achieved control rate, and
writes `eval_info.json`. The first `videos` episodes are saved as `eval_episode_{i}.mp4`, and, where the paradigm
imagines while acting, as `pred_episode_{i}.mp4`: the real frame | the frame imagined for that step (held until the
next one). Tasks outside the policy's training tasks (those learned from video alone included) are refused unless
`allow_unseen` is set. `paraphrase=k` gives the policy the task's held-out paraphrase k (wam.data.tasks.PARAPHRASES,
never trained on) instead of its training instruction. A worker that crashes is replaced and its episode is re-run
alone; if it crashes again it is counted as failed, with the reason recorded: never dropped, and never blamed for a
neighbour's crash.

Reproducible: episode k of a task is scene `seed + k`, and the policy draws its noise from `episode_generator(seed,
task, k)` (wam.runs.seeding), so an episode does not depend on the worker that ran it: the same command gives the
same eval_info.json and videos, with any number of workers. Only the timings differ (`seconds`, `chunk_ms` per
episode, `ms_per_chunk`, `control_hz` overall); `action_digest` and `frame_digest` (per episode, hashes of every
action taken and every frame seen) show two rollouts are the same. The output folder is locked while the evaluation
runs (wam.runs.lock).

`remote=HOST:PORT` runs the same episodes through a `wam serve` server (wam.serve.client; `--policy` is then not
needed): with the default synchronous control the actions are the local ones, as every episode's noise comes
from `episode_generator(seed, task, k)` on either side. `threshold > 0` switches to chunked control (request the
next chunk when that many actions remain, joined by `merge`: latest | blend | rtc; `delay` steps of simulated
latency, `asynchronous` for real threads). Each episode records a digest of its actions and the mean action
jump at chunk boundaries vs inside chunks; with a value frame (policy.latent_frame.value_frame), the value
predicted for each chunk (`chunk_values`); `value_candidates=N` acts best-of-N by it (wam.paradigms.latent_frame).
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing as mp
import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import tqdm

from wam.data.lerobot_format import LeRobotDataset
from wam.data.tasks import PARAPHRASES, instruction, paraphrases, resolve_tasks
from wam.data.video import encode_video
from wam.errors import ConfigError, WamError
from wam.runs.device import check_device
from wam.runs.lock import folder_lock
from wam.runs.precision import check_precision
from wam.runs.threads import apply_worker_env

if TYPE_CHECKING:
    from wam.policy import WamPolicy
    from wam.train import TrainConfig

EVAL_SEED = 10_000
CRASH_SEED_ENV = "WAM_EVAL_CRASH_SEED"  # a worker given this scene seed dies (tests of the crash path)


@dataclass
class EvalConfig:
    policy: str = ""  # a `wam train` run folder or checkpoint
    tasks: str = ""  # default: the tasks of the policy's training data
    episodes: int = 10  # per task
    seed: int = EVAL_SEED
    workers: int = 2
    max_steps: int = 300
    videos: int = 2  # episodes saved as mp4
    allow_unseen: bool = False  # evaluate tasks the policy was not trained on (zero-shot)
    paraphrase: int = -1  # -1: the training instruction; k >= 0: the task's held-out paraphrase k
    n_action_steps: int = 0  # actions executed per chunk; 0 = as trained (policy.n_action_steps)
    ensemble: float = -1.0  # temporal-ensembling decay; -1 = as trained (policy.ensemble), 0 = off
    out: str = ""  # default: <policy>/eval (remote: eval_remote)
    device: str = "auto"  # where the workers' policies run: auto | cpu | cuda | cuda:N | mps
    precision: str = "auto"  # auto | fp32 | bf16 | fp16 (acting; auto measures, see wam.runs.precision)
    remote: str = ""  # HOST:PORT of a `wam serve` server: act through it instead of loading the policy
    token: str = ""  # the server's shared token, if it has one
    threshold: int = 0  # remote chunked control: request the next chunk when this many actions remain (0 = sync)
    merge: str = "latest"  # how overlapping chunks are joined: latest | blend | rtc
    delay: int = 0  # simulated latency in control steps before a requested chunk lands (deterministic)
    asynchronous: bool = False  # request chunks from a background thread (real latency; not deterministic)
    sample_steps: int = 0  # flow sampling steps of a local policy (0 = its own; remote: `wam serve --sample_steps`)
    value_candidates: int = 0  # best-of-N by the value frame (policy.latent_frame.value_candidates); 0 = as trained

    def check(self) -> None:
        check_device(self.device)
        check_precision(self.precision, "--precision")
        if not self.policy and not self.remote:
            raise ConfigError("--policy is required (a `wam train` run folder), or --remote=HOST:PORT")
        if self.remote and (":" not in self.remote or not self.remote.rsplit(":", 1)[1].isdigit()):
            raise ConfigError(f"--remote must be HOST:PORT, got {self.remote!r}")
        if self.sample_steps < 0 or (self.sample_steps and self.remote):
            raise ConfigError("--sample_steps must be >= 0, and set on the server (wam serve --sample_steps) with --remote")
        if (self.threshold or self.merge != "latest" or self.delay or self.asynchronous) and not self.remote:
            raise ConfigError("--threshold, --merge, --delay and --asynchronous need --remote (the client's control)")
        if self.episodes < 1 or self.workers < 1 or self.max_steps < 1:
            raise ConfigError("--episodes, --workers and --max_steps must be >= 1")
        if self.n_action_steps < 0 or not (self.ensemble == -1 or self.ensemble >= 0):
            raise ConfigError(f"--n_action_steps must be >= 0 (0: as trained) and --ensemble -1 (as trained), 0 (off) "
                              f"or a decay > 0; got {self.n_action_steps}, {self.ensemble}")
        count = min(len(p) for p in PARAPHRASES.values())
        if not -1 <= self.paraphrase < count:
            raise ConfigError(f"--paraphrase must be -1 (the training instruction) or 0..{count - 1} "
                              f"(a held-out paraphrase), got {self.paraphrase}")


def task_instruction(task: str, paraphrase: int = -1) -> str:
    """What the policy is told for `task`: its training instruction, or held-out paraphrase k."""
    return instruction(task) if paraphrase < 0 else paraphrases(task)[paraphrase]


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a success rate."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # it holds p; rounding once put 0/11's lower end 1e-17 above 0 (a negative error bar: the study report crashed)
    return (min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half)))


# -- worker side ------------------------------------------------------------------------------
_WORKER: dict = {}


def load_for_eval(cfg: EvalConfig) -> tuple[WamPolicy, TrainConfig]:
    """The policy on `cfg.device` in `cfg.precision`, executing chunks as `cfg` says (`n_action_steps`,
    `ensemble`, `sample_steps`) or as it was trained (a `wam plan` folder: as planned)."""
    from wam.paradigms.latent_frame import set_value_candidates
    from wam.planning import load_runnable

    policy, train_cfg = load_runnable(cfg.policy, device=cfg.device, precision=cfg.precision)
    steps = cfg.n_action_steps or train_cfg.policy.n_action_steps or None
    decay = train_cfg.policy.ensemble if cfg.ensemble < 0 else cfg.ensemble
    try:
        policy.set_execution(steps, decay or None)
    except WamError as err:
        raise ConfigError(f"--n_action_steps/--ensemble: {err}") from None
    if cfg.sample_steps:
        policy.paradigm.cfg.sample_steps = cfg.sample_steps
    if cfg.value_candidates:  # best-of-N by the value frame, refused for a policy without one
        set_value_candidates(policy.paradigm.cfg, cfg.value_candidates, "--value_candidates")
    return policy, train_cfg


def _worker_init(cfg: EvalConfig, threads: int = 1) -> None:
    apply_worker_env(threads)  # before torch and the renderer start their threads

    from wam.envs.rendering import configure_gl_backend

    configure_gl_backend()
    if cfg.remote:
        _WORKER["policy"], _WORKER["cfg"] = remote_policy(**_remote_spec(cfg))
    else:
        _WORKER["policy"], _WORKER["cfg"] = load_for_eval(cfg)


def remote_policy(address: str, token: str = "", **control) -> tuple:
    """A PolicyClient and the parts of a run config an episode reads (frame size, future offsets)."""
    from wam.serve.client import PolicyClient

    client = PolicyClient(address, token, **control)
    info = client.info
    size = info["features"][client.image_key]["shape"][1]
    cfg = SimpleNamespace(data=SimpleNamespace(source_size=size, image_size=size),
                          policy=SimpleNamespace(future=tuple(info["future"])))
    return client, cfg


def _remote_spec(cfg: EvalConfig) -> dict | None:
    if not cfg.remote:
        return None
    return {"address": cfg.remote, "token": cfg.token, "threshold": cfg.threshold, "merge": cfg.merge,
            "delay": cfg.delay, "asynchronous": cfg.asynchronous}


def run_episode(task: str, seed: int, max_steps: int, keep_frames: bool, text: str | None = None,
                episode: int = 0, eval_seed: int = EVAL_SEED) -> dict:
    """One closed-loop episode in scene `seed` of this worker's env (rebuilt when the task changes), the
    policy told `text` (default: the task's training instruction), its noise from
    `episode_generator(eval_seed, task, episode)`."""
    from wam.envs.metaworld import MetaWorldEnv, state_layout_of

    if os.environ.get(CRASH_SEED_ENV) == str(seed):  # fault injection: the crash path is tested for real
        os._exit(3)

    policy, cfg = _WORKER["policy"], _WORKER["cfg"]
    camera = policy.image_key.split(".")[-1]
    env = _WORKER.get("env")
    if env is None or env.task != task:
        if env is not None:
            env.close()
        env = _WORKER["env"] = MetaWorldEnv(task, camera=camera, image_size=cfg.data.source_size or cfg.data.image_size,
                                            max_steps=max_steps, state=state_layout_of(policy.state_dim, policy.state_names),
                                            views=tuple(k.split(".")[-1] for k in getattr(policy, "view_keys", ())))
    obs, _ = env.reset(seed=seed)
    policy.reset(seed=eval_seed, task=task, episode=episode)  # its noise: episode_generator(eval_seed, task, episode),
    # the same in any worker and through a `wam serve` server
    policy.record_imagination = keep_frames
    frames, chunk_ms, success, steps, start = [], [], False, 0, time.perf_counter()
    plans: list[tuple[int, np.ndarray]] = []  # (step, imagined frames (Tf, h, w, 3))
    actions, sources = [], []  # executed actions and the chunk each came from
    values = []  # the value each chunk's value frame predicted (policy.latent_frame.value_frame)
    done, text = False, text or instruction(task)
    seen = hashlib.sha1()
    while not done:
        planning = not policy._queue  # a new chunk is predicted on this step
        t0 = time.perf_counter()
        seen.update(np.ascontiguousarray(obs[policy.image_key]).tobytes())
        action = policy.select_action({**obs, "task": text})
        actions.append(np.asarray(action, np.float32))
        sources.append(len(chunk_ms) + planning)
        if planning:
            chunk_ms.append(1000 * (time.perf_counter() - t0))
            if policy.imagined is not None:
                plans.append((steps, policy.imagined))
            if getattr(policy, "last_value", None) is not None:  # local or served (`wam serve` sends it)
                values.append(policy.last_value)
        if keep_frames:
            frames.append(obs[policy.image_key])
        obs, _, terminated, truncated, info = env.step(action)
        success, steps, done = bool(info["success"]), steps + 1, terminated or truncated
    real = np.stack(frames) if keep_frames else None
    pred = side_by_side(real, plans, cfg.policy.future) if keep_frames and plans else None
    return {"task": task, "seed": seed, "episode": episode, "success": success, "length": steps,
            "frame_digest": seen.hexdigest()[:16], "chunk_ms": chunk_ms, "seconds": time.perf_counter() - start,
            "frames": real, "pred_frames": pred, **({"chunk_values": values} if values else {}),
            **action_record(actions, getattr(getattr(policy, "control", None), "sources", None) or sources)}


def action_record(actions: list[np.ndarray], sources: list[int]) -> dict:
    """A digest of the executed actions (equal digests = equal actions) and the chunk-boundary jumps."""
    from wam.serve.chunking import boundary_jumps

    stacked = np.stack(actions).astype(np.float32) if actions else np.zeros((0,), np.float32)
    at, inside = boundary_jumps(stacked, sources[-len(actions):] if actions else [])
    finite = lambda v: v if math.isfinite(v) else None  # noqa: E731 - strict JSON has no NaN
    return {"action_digest": hashlib.sha256(stacked.tobytes()).hexdigest()[:16],
            "jump_boundary": finite(at), "jump_inside": finite(inside)}


def side_by_side(real: np.ndarray, plans: list[tuple[int, np.ndarray]], offsets) -> np.ndarray:
    """(T, h, 2w + 2, 3): the real frame | the frame imagined for that step by the plan aimed at it
    (held until the next), black before the first. Real frames are resized to the imagined size."""
    from wam.data.frames import resize_frames

    h = plans[0][1].shape[1]
    real = resize_frames(real, h) if real.shape[1] != h else real
    aimed = {t + k: frames[j] for t, frames in plans for j, k in enumerate(offsets)}  # later plans win
    shown, out = np.zeros_like(real[0]), []
    for s in range(len(real)):
        shown = aimed.get(s, shown)
        out.append(np.concatenate([real[s], np.full((h, 2, 3), 255, np.uint8), shown], axis=1))
    return np.stack(out)


# -- main process -----------------------------------------------------------------------------
def _policy_tasks(policy_path: str) -> list[str]:
    """The Meta-World tasks a policy was trained on (its run's tasks.json, else its dataset's); tasks
    learned from video alone (`data.video_only_tasks`) count: they are trained tasks."""
    from wam.checkpoint import read_config, resolve_checkpoint
    from wam.planning import is_plan_folder
    from wam.train import TrainConfig, trained_tasks

    folder = Path(policy_path) if is_plan_folder(policy_path) else resolve_checkpoint(policy_path)
    for where in (folder, *folder.parents[:2]):
        if (where / "tasks.json").exists():
            return json.loads((where / "tasks.json").read_text())["env_tasks"]
    cfg = read_config(TrainConfig, folder)
    return trained_tasks(LeRobotDataset(cfg.data.path), cfg.data.tasks)


def _tasks_to_run(cfg: EvalConfig) -> list[str]:
    trained = _policy_tasks(cfg.policy)
    if not cfg.tasks:
        return trained
    tasks = resolve_tasks(cfg.tasks)
    unseen = [t for t in tasks if t not in trained]
    if unseen and not cfg.allow_unseen:
        raise ConfigError(f"the policy was not trained on {', '.join(unseen)} (it knows {', '.join(trained)}); "
                          f"pass --allow_unseen=true to evaluate them zero-shot")
    return tasks


def evaluate(cfg: EvalConfig, progress: bool = True) -> dict:
    """Run the evaluation; returns (and writes) eval_info."""
    cfg.check()
    if cfg.remote:
        client, _ = remote_policy(**_remote_spec(cfg))  # fail here, with the reason, rather than in every worker
        client.close()
        tasks = resolve_tasks(cfg.tasks) if cfg.tasks else client.info["tasks"]
        if not tasks:
            raise ConfigError(f"the server at {cfg.remote} does not know its policy's tasks: pass --tasks")
    else:
        load_for_eval(cfg)  # fail here, with the reason, rather than in every worker
        tasks = _tasks_to_run(cfg)
    out = Path(cfg.out or (Path(cfg.policy) / "eval" if cfg.policy else "eval_remote"))
    with folder_lock(out):
        return _evaluate(cfg, tasks, out, progress)


def _evaluate(cfg: EvalConfig, tasks: list[str], out: Path, progress: bool) -> dict:
    texts = {t: task_instruction(t, cfg.paraphrase) for t in tasks}
    jobs = [(t, k) for t in tasks for k in range(cfg.episodes)]  # (task, episode): scene seed + k
    results: dict[int, dict] = {}  # by job index: the same order whatever finishes first
    pending, suspects = list(enumerate(jobs)), []
    bar = tqdm(total=len(jobs), desc="eval", disable=not progress)
    ctx = mp.get_context("spawn")
    while pending or suspects:
        # One pool a pass. A crash breaks the whole pool, so every episode in flight becomes a suspect
        # and is re-run alone in its own one-worker pool: only an episode whose worker dies when it
        # runs alone is counted failed; innocent neighbours are never blamed.
        if suspects:
            batch, alone = [suspects.pop(0)], True
        else:
            batch, pending, alone = pending, [], False
        # one thread a worker, whatever their number: a thread count changes float reduction order (and
        # auto's precision measurement), and a rollout must not depend on --workers; more workers use more cores
        pool = ProcessPoolExecutor(1 if alone else cfg.workers, mp_context=ctx, initializer=_worker_init,
                                   initargs=(cfg, 1))
        running = {pool.submit(run_episode, t, cfg.seed + k, cfg.max_steps, i < cfg.videos, texts[t], k, cfg.seed):
                   (i, t, cfg.seed + k) for i, (t, k) in batch}
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            victims = []
            for fut in finished:
                i, task, seed = running.pop(fut)
                if isinstance(fut.exception(), BrokenProcessPool):
                    victims.append((i, task, seed))
                    continue
                _record(fut.result(), i, out, results)
                bar.update(1)
            if victims:
                victims += list(running.values())
                running.clear()
                if alone:
                    i, task, seed = victims[0]
                    results[i] = {"task": task, "seed": seed, "episode": seed - cfg.seed, "success": False,
                                  "length": 0, "chunk_ms": [], "seconds": 0.0,
                                  "error": "its worker crashed, also when run alone; counted as failed"}
                    bar.update(1)
                else:
                    suspects += [(i, (task, seed - cfg.seed)) for i, task, seed in victims]
        pool.shutdown(cancel_futures=True)
    bar.close()
    info = summarise([results[i] for i in sorted(results)], tasks, cfg)
    info["instructions"] = texts  # what the policy was told, per task
    (out / "eval_info.json").write_text(json.dumps(info, indent=2))
    return info


def _record(result: dict, i: int, out: Path, results: dict[int, dict]) -> None:
    """Keep an episode's result; write its videos (real, and real | imagined) when it kept frames."""
    frames, pred = result.pop("frames"), result.pop("pred_frames", None)
    if frames is not None:
        encode_video(frames, out / f"eval_episode_{i}.mp4", 80)
    if pred is not None:
        encode_video(pred, out / f"pred_episode_{i}.mp4", 80)
    results[i] = result


def summarise(results: list[dict], tasks: list[str], cfg: EvalConfig) -> dict:
    per_task = {}
    for task in tasks:
        rs = [r for r in results if r["task"] == task]
        wins = sum(r["success"] for r in rs)
        per_task[task] = {"episodes": len(rs), "successes": wins, "success": wins / max(len(rs), 1),
                          "ci95": wilson(wins, len(rs)), "mean_length": float(np.mean([r["length"] for r in rs])),
                          "failed_by_crash": sum("error" in r for r in rs)}
    wins, n = sum(r["success"] for r in results), len(results)
    chunk_ms = [m for r in results for m in r["chunk_ms"]]
    steps, seconds = sum(r["length"] for r in results), sum(r["seconds"] for r in results)
    jumps = {k: [r[k] for r in results if r.get(k) is not None] for k in ("jump_boundary", "jump_inside")}
    return {"config": {**asdict(cfg), "token": "***" if cfg.token else ""}, "per_task": per_task,
            "overall": {"episodes": n, "successes": wins, "success": wins / max(n, 1), "ci95": wilson(wins, n),
                        "ms_per_chunk": float(np.mean(chunk_ms)) if chunk_ms else None,
                        "control_hz": steps / seconds if seconds else None,
                        **{k: float(np.mean(v)) if v else None for k, v in jumps.items()}},
            "episodes": results}


def summary_table(info: dict) -> str:
    lines = ["| task | success | 95% CI | episodes | mean length |", "|---|---|---|---|---|"]
    for task, r in info["per_task"].items():
        lines.append(f"| {task} | {r['success']:.2f} | [{r['ci95'][0]:.2f}, {r['ci95'][1]:.2f}] | {r['episodes']} | "
                     f"{r['mean_length']:.0f} |")
    o = info["overall"]
    lines.append(f"| **overall** | **{o['success']:.2f}** | [{o['ci95'][0]:.2f}, {o['ci95'][1]:.2f}] | {o['episodes']} | |")
    if o["ms_per_chunk"] is not None:
        lines.append(f"\n{o['ms_per_chunk']:.0f} ms per action chunk, {o['control_hz']:.1f} control steps/s per worker")
    return "\n".join(lines)
