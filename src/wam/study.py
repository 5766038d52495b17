"""`wam study CONFIG`: a controlled comparison, end to end and resumable.

    wam study configs/studies/future_helps_acting.yaml [--eval.episodes=5 --out=runs/studies/x]
    wam study future_helps_acting                       (a name in configs/studies/)

Collect once (`data.collect`, skipped when present, or an existing `data.path`), pretrain the world
model once (`pretrain`, skipped when finished, or an existing `pretrain_run`) on the labelled data's
video or on a separate action-free video pool (`data.video`: collected once into STUDY/video, or an
existing `data.video.path`), then one cell per
(demos per task, seed, variant): `wam train` with the shared `train` settings, the variant's
paradigm, init and overrides, on the first `demos` training episodes of each task, then `wam eval`.
Every cell gets the same budget: `budget.steps`, or `budget.cpu_seconds` turned into steps with each
variant's training samples/s, measured once at the start (`rates.json`, and in summary.json).
A `scratch` variant uses the world model's tokenizer and backbone shape with fresh weights, so the
only difference from `pretrained` is the initialisation.

Checked before anything runs (`wam.study_plan.preflight`): the demos against the datasets, scene seeds,
`budget.total_cpu_hours`; `wam study NAME --dry_run` prints the plan and its cost, and runs nothing.

STUDY/ holds study.yaml (the resolved config), data/, video/ and pretrain/ (when made here), rates.json,
cells/<variant>__d<demos>__s<seed>/ (a `wam train` run + cell.json + eval/), summary.json (rewritten
after every cell) and the report (`wam.report.write_report`). A trained cell never trains again and a
written evaluation never re-runs; an interrupted cell resumes from its checkpoints, and evaluations
added to the config later (`extra_paraphrases`, `offline`) run on finished cells: run the same command
again. `offline.enabled` adds `wam eval-offline` per cell (given the real future where the paradigm
acts from one; `offline.swap`: the instruction-swap test); its numbers go to summary.json's `extra`.
"""

from __future__ import annotations

import copy
import json
import multiprocessing as mp
import shutil
import statistics
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, replace
from pathlib import Path

from tqdm.auto import tqdm

from wam.checkpoint import read_config, read_state, resolve_checkpoint
from wam.config import apply_overrides, load_config, save_config
from wam.data.lerobot_format import LeRobotDataset
from wam.data.tasks import resolve_tasks
from wam.envs.collect import CollectConfig, collect
from wam.errors import WamError
from wam.evaluate import evaluate
from wam.offline_eval import FUTURE_ACTORS, OfflineEvalConfig, offline_eval
from wam.paradigms import strategy
from wam.pretrain import PretrainConfig, pretrain
from wam.reference import REFERENCES
from wam.runs.lock import holding_lock
from wam.runs.threads import apply_worker_env, share
from wam.study_config import (STUDIES, BudgetConfig, Cell, StudyConfig, StudyDataConfig, VariantSpec, check_resume,
                              load_study, plan_cells, study_dir)
from wam.study_plan import arms_seen, cell_done, cell_steps, check_labelled, plan_lines, preflight
from wam.train import TrainConfig, train_policy
from wam.trainer import RUNTIME_KIND
from wam.runs.train_log import read_log, setup_seconds
from wam.runs.folders import output_dir

__all__ = ["STUDIES", "BudgetConfig", "StudyConfig", "StudyDataConfig", "VariantSpec", "load_study", "dry_run",
           "run_study", "study_dir"]


# -- stages -------------------------------------------------------------------------------------
def ensure_data(cfg: StudyConfig, root: Path, progress: bool) -> Path:
    """The study's dataset: `data.path`, or `data.collect` gathered into STUDY/data (resumed if partial)."""
    if cfg.data.path:
        return Path(cfg.data.path)
    return _collected(replace(cfg.data.collect, out=str(root / "data")), progress)


def ensure_video(cfg: StudyConfig, root: Path, progress: bool) -> Path | None:
    """The action-free video pool: `data.video.path`, `data.video.collect` gathered into STUDY/video, or
    None (no pool, or a reused world model)."""
    pool = cfg.data.video
    if cfg.pretrain_run or not pool.enabled:
        return None
    return Path(pool.path) if pool.path else _collected(replace(pool.collect, out=str(root / "video")), progress)


def _collected(spec: CollectConfig, progress: bool) -> Path:
    """`wam collect` into spec.out, skipped when every task already has its episodes (resumed if partial)."""
    if (Path(spec.out) / "meta/info.json").exists():
        counts = Counter(e.extras.get("env_task") for e in LeRobotDataset(spec.out).episodes)
        if all(counts[t] >= spec.episodes for t in resolve_tasks(spec.tasks)):
            return Path(spec.out)
    print(collect(spec, progress_bar=progress).table())
    return Path(spec.out)


def _steps_done(run: Path) -> int:
    try:
        return int(read_state(resolve_checkpoint(run))["step"])
    except (WamError, OSError):
        return 0


def ensure_world_model(cfg: StudyConfig, root: Path, data: Path, progress: bool, video: Path | None = None) -> Path:
    """The world model: `pretrain_run`, or `pretrain` run (or resumed) into STUDY/pretrain on the video pool
    (`video`), `pretrain.data.path` or the labelled data."""
    if cfg.pretrain_run:
        resolve_checkpoint(cfg.pretrain_run)  # refuses a folder without a checkpoint, by name
        return Path(cfg.pretrain_run)
    pre = copy.deepcopy(cfg.pretrain)
    pre.data.path, pre.out = str(video or pre.data.path or data), str(root / "pretrain")
    if _steps_done(root / "pretrain") < pre.optim.steps:
        pretrain(pre, progress=progress)
    return root / "pretrain"


def cell_config(cfg: StudyConfig, variant: VariantSpec, demos: int, seed: int, steps: int, wm: Path,
                data: Path, out: Path) -> TrainConfig:
    """The `wam train` config of one cell: shared settings, the variant's, the cell's data, seed and steps."""
    wm_cfg = read_config(PretrainConfig, resolve_checkpoint(wm))
    tc = apply_overrides(copy.deepcopy(cfg.train), variant.overrides)
    size = variant.overrides.get("data.image_size", wm_cfg.data.image_size)  # only a reference's may differ
    tc = apply_overrides(tc, {"paradigm": variant.paradigm, "policy.integration": variant.integration,
                              "data.path": str(data), "data.image_size": size,
                              "data.episodes_per_task": demos, "optim.seed": seed, "optim.steps": steps,
                              "text_encoder": wm_cfg.text_encoder, "out": str(out)})
    if variant.init == "pretrained":
        tc.init = str(wm)
    elif variant.paradigm not in REFERENCES:  # what `--init` would set, without the weights
        tc.tokenizer = replace(wm_cfg.tokenizer, path=wm_cfg.tokenizer.path or str(wm / "tokenizer"))
        tc.policy.backbone, tc.policy.patch = copy.deepcopy(wm_cfg.model.backbone), wm_cfg.model.patch
    return tc


def measure_rates(cfg: StudyConfig, root: Path, wm: Path, data: Path) -> dict[str, float]:
    """Training samples/s of each variant (median over `budget.measure_steps` steps), measured once."""
    path, warm = root / "rates.json", 2
    rates = json.loads(path.read_text()) if path.exists() else {}
    for v in sorted(cfg.variants, key=lambda v: bool(v.rate_of)):  # measured ones first, then their copies
        if v.rate_of:
            rates[v.name] = rates[v.rate_of]
            continue
        if v.name in rates:
            continue
        folder = root / "rates" / v.name
        tc = cell_config(cfg, v, min(cfg.demos), 0, warm + cfg.budget.measure_steps, wm, data, folder)
        tc = apply_overrides(tc, {"optim.log_every": 1, "optim.val_every": 10**9, "optim.ckpt_every": 10**9,
                                  **_quick_setup(tc)})
        if _steps_done(folder) < tc.optim.steps:
            train_policy(tc, progress=False)
        rows = read_log(folder / "log.csv")
        rates[v.name] = statistics.median(float(r["samples_per_s"]) for r in rows if int(r["step"]) > warm)
        path.write_text(json.dumps(rates, indent=1))
        shutil.rmtree(folder / "checkpoints", ignore_errors=True)  # only the rate was wanted
        tqdm.write(f"measured {v.name}: {rates[v.name]:.1f} training samples/s")
    return rates


def _quick_setup(tc: TrainConfig) -> dict[str, int]:
    """Overrides that shorten what a cell fits before it trains (the keypoint detector, ~15 CPU-min; the labels'
    inverse dynamics): their outputs are precomputed per frame, so a training step costs the same however well they
    fit, and a rate measurement only needs the steps."""
    quick = {"policy.keypoints.steps": 1} if tc.policy.keypoints.targets else {}
    return quick | ({"labels.steps": 1} if tc.data.actionless_actions == "inverse_dynamics" else {})


def run_cell(cfg: StudyConfig, cell: Cell, root: Path, wm: Path, data: Path, steps: int, progress: bool) -> None:
    """Train (or resume) and evaluate one cell; cell.json keeps its steps and training wall time."""
    folder = root / cell.run
    state_file = folder / "cell.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else {"steps": steps, "train_seconds": 0.0}
    if not state.get("trained"):
        tc = cell_config(cfg, cell.variant, cell.demos, cell.seed, state["steps"], wm, data, folder)
        start = time.perf_counter()
        try:
            train_policy(tc, progress=progress)
            state["trained"] = True
        finally:
            state["train_seconds"] += time.perf_counter() - start
            folder.mkdir(parents=True, exist_ok=True)
            state_file.write_text(json.dumps(state, indent=1))
    for k in cfg.extra_paraphrases:
        if not (folder / f"eval_paraphrase{k}/eval_info.json").exists():
            evaluate(replace(cfg.eval, policy=str(folder), out=str(folder / f"eval_paraphrase{k}"), paraphrase=k,
                             videos=0), progress=progress)
    if cfg.offline.enabled and not (folder / "eval_offline.json").exists():
        real = f"{cell.variant.paradigm}+{cell.variant.integration}" in FUTURE_ACTORS
        offline_eval(OfflineEvalConfig(policy=str(folder), given_future="real" if real else "imagined",
                                       swap=cfg.offline.swap), progress=progress)
    if not (folder / "eval/eval_info.json").exists():
        start = time.perf_counter()  # wall seconds of the main evaluation: calibrates budget.eval_ms_per_step
        evaluate(replace(cfg.eval, policy=str(folder), out=str(folder / "eval")), progress=progress)
        state["eval_seconds"] = time.perf_counter() - start
        state_file.write_text(json.dumps(state, indent=1))


def run_side_by_side(cfg: StudyConfig, todo: list[tuple[int, Cell]], started, finished) -> None:
    """`cfg.parallel` cells at a time, each in its own process with its share of the cores (threads)."""
    context = mp.get_context("spawn")  # a fresh interpreter: thread settings before torch loads
    queue, running = list(todo), {}
    with ProcessPoolExecutor(cfg.parallel, mp_context=context, initializer=apply_worker_env,
                             initargs=(share(cfg.parallel),)) as pool:
        while queue or running:
            while queue and len(running) < cfg.parallel:  # start a cell when a process is free
                i, cell = queue.pop(0)
                args, t0 = started(i, cell)
                running[pool.submit(run_cell, *args, False)] = (i, cell, t0)
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                fut.result()  # a cell's error stops the study, as it would one at a time
                finished(*running.pop(fut))


# -- summary ------------------------------------------------------------------------------------
def cell_summary(cell: Cell, root: Path) -> dict | None:
    """The summary.json entry of a finished cell (None if it has no evaluation yet)."""
    folder = root / cell.run
    if not (folder / "eval/eval_info.json").exists():
        return None
    info = json.loads((folder / "eval/eval_info.json").read_text())
    state = json.loads((folder / "cell.json").read_text())
    tc = load_config(TrainConfig, folder / "config.yaml")
    o, last = info["overall"], (read_log(folder / "log.csv") or [{}])[-1]
    extra = {k: float(last[k]) for k in ("loss", "val_loss", "val_action_loss", "samples_per_s") if last.get(k)}
    extra.update(control_hz=o.get("control_hz"), paraphrase=info["config"].get("paraphrase", -1))
    if (fits := setup_seconds(folder)) is not None:  # the fits before the first step: outside the equal budget
        extra["setup_seconds"] = fits
    steps = sum(int(e.get("length", 0)) for e in info["episodes"])
    if state.get("eval_seconds") and steps:  # measured, beside the plan's budget.eval_ms_per_step
        extra.update(eval_seconds=state["eval_seconds"], eval_ms_per_step=1000 * state["eval_seconds"] / steps)
    for path in sorted(folder.glob("eval_paraphrase*/eval_info.json")):  # extra_paraphrases
        other = json.loads(path.read_text())["overall"]
        extra[f"success_{path.parent.name}"], extra[f"ci95_{path.parent.name}"] = other["success"], other["ci95"]
    extra.update(offline_metrics(folder / "eval_offline.json"))
    video = tc.paradigm not in REFERENCES and strategy(tc.paradigm, tc.policy.integration).video
    return {"variant": cell.variant.name, "paradigm": tc.paradigm, "integration": tc.policy.integration,
            "init": cell.variant.init, "video_weight": float(tc.policy.video_weight) if video else 0.0,
            "demos": cell.demos, "seed": cell.seed, "run": cell.run, "success": o["success"],
            "ci95": list(o["ci95"]), "episodes": o["episodes"],
            "per_task": {t: {"success": r["success"], "ci95": list(r["ci95"]), "episodes": r["episodes"]}
                         for t, r in info["per_task"].items()},
            "ms_per_chunk": o["ms_per_chunk"], "train_seconds": state["train_seconds"], "steps": state["steps"],
            "extra": extra, **({"runtime": runtime} if (runtime := trained_on(folder)) else {})}


def trained_on(folder: Path) -> dict | None:
    """Where and in what arithmetic a run last trained (its runtime.json: device, precision, torch), if recorded,
    with `earlier`: the other kinds its first steps trained in, when it was resumed on another machine."""
    try:
        info = json.loads((folder / "runtime.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict):
        return None
    return {k: info.get(k) for k in RUNTIME_KIND} | ({"earlier": info["earlier"]} if info.get("earlier") else {})


def offline_metrics(path: Path) -> dict:
    """The numbers of a cell's eval_offline.json that a study table shows (none when it was not run)."""
    if not path.exists():
        return {}
    r = json.loads(path.read_text())
    out = {f"offline_mse_{r['given_future']}": r["mse"], f"offline_mse_{r['given_future']}_ci95": r["ci95"]}
    if "imagined_mse" in r:
        out.update(offline_mse_imagined=r["imagined_mse"], offline_mse_imagined_ci95=r["imagined_ci95"],
                   offline_real_minus_imagined=r["real_minus_imagined"],
                   offline_real_minus_imagined_ci95=r["real_minus_imagined_ci95"])
    hidden = [t["mse"] for t in r.get("per_task", {}).values() if t.get("video_only")]
    if hidden:  # tasks trained from video alone, scored against their real demo actions
        out["offline_mse_video_only_tasks"] = float(sum(hidden) / len(hidden))
    if "swap" in r:
        out.update(swap_action_margin=r["swap"]["action_margin"], swap_action_margin_ci95=r["swap"]["action_margin_ci95"])
    return out


def earlier_cells(root: Path, runs: set[str]) -> list[dict]:
    """Finished cells of earlier runs of this study folder outside this run's grid (e.g. `--demos=20` after
    `--demos=5`): kept in the summary, as `check_resume` guarantees they were made with the same settings."""
    path = root / "summary.json"
    old = json.loads(path.read_text()).get("cells", []) if path.exists() else []
    return [c for c in old if c["run"] not in runs and (root / c["run"] / "cell.json").exists()]


def write_summary(cfg: StudyConfig, root: Path, cells: list[Cell], rates: dict[str, float],
                  seen: dict | None = None) -> dict:
    done = [s for s in (cell_summary(c, root) for c in cells) if s is not None]
    earlier = earlier_cells(root, {c.run for c in cells})
    summary = {"study": cfg.name, "question": cfg.question, "cells": done + earlier, "planned_cells": len(cells),
               "planned_cells_done": len(done), "earlier_cells": len(earlier),
               "budget": asdict(cfg.budget), "samples_per_s": rates, "data": seen or {}}
    tmp = root / "summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=1))
    tmp.replace(root / "summary.json")
    return summary


def write_report(root: Path) -> tuple[Path, Path]:
    from wam.report import write_report as report  # imported late: the report is the last stage

    return report(root)


def _hms(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m // 60}h{m % 60:02d}m{s:02d}s" if m >= 60 else f"{m}m{s:02d}s"


def dry_run(cfg: StudyConfig) -> list[str]:
    """The checks of a run and its plan, without running anything (`wam study NAME --dry_run`)."""
    preflight(cfg)
    return plan_lines(cfg)


def run_study(cfg: StudyConfig, progress: bool = True) -> dict:
    """Run (or resume) a study; returns the summary. A config refused by `preflight` leaves nothing behind."""
    preflight(cfg)
    return _run_study(cfg, progress)


@holding_lock(study_dir)
def _run_study(cfg: StudyConfig, progress: bool) -> dict:
    root = study_dir(cfg)
    output_dir(root)
    check_resume(cfg, root)
    save_config(cfg, root / "study.yaml")
    start = time.perf_counter()
    data = ensure_data(cfg, root, progress)
    check_labelled(cfg, data)
    wm = ensure_world_model(cfg, root, data, progress, ensure_video(cfg, root, progress))
    rates = measure_rates(cfg, root, wm, data) if cfg.budget.cpu_seconds else {}
    cells = plan_cells(cfg)
    seen = arms_seen(cfg, wm, data)
    summary = write_summary(cfg, root, cells, rates, seen)
    todo = [(i, c) for i, c in enumerate(cells, 1) if not cell_done(cfg, c, root)]
    bar = tqdm(total=len(cells), initial=len(cells) - len(todo), desc="cells", disable=not progress, dynamic_ncols=True)

    def started(i: int, cell: Cell) -> tuple:
        steps = cell_steps(cfg, cell.variant, rates)
        tqdm.write(f"[{_hms(time.perf_counter() - start)}] cell {i}/{len(cells)} {cell.run}: start, {steps} steps")
        return (cfg, cell, root, wm, data, steps), time.perf_counter()

    def finished(i: int, cell: Cell, t0: float) -> None:
        nonlocal summary
        summary = write_summary(cfg, root, cells, rates, seen)
        s = cell_summary(cell, root)
        tqdm.write(f"[{_hms(time.perf_counter() - start)}] cell {i}/{len(cells)} {cell.run}: done in "
                   f"{_hms(time.perf_counter() - t0)}, success {s['success']:.2f} [{s['ci95'][0]:.2f}, "
                   f"{s['ci95'][1]:.2f}] over {s['episodes']} episodes")
        write_report(root)
        bar.update(1)

    if cfg.parallel > 1 and len(todo) > 1:
        run_side_by_side(cfg, todo, started, finished)
    else:
        for i, cell in todo:
            args, t0 = started(i, cell)
            run_cell(*args, progress)
            finished(i, cell, t0)
    bar.close()
    write_report(root)
    return summary
