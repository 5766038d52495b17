"""`wam quickstart`: the whole pipeline in about 15 minutes on 2 CPU cores, nothing to download.

    wam quickstart [--out=runs/quickstart] [--eval.episodes=5 ...any study option]

A small `wam study`: scripted demos of 3 easy Meta-World tasks, a small world model pretrained on
their video without actions, then one WAM (representation-only: trained with the video loss, acts
without imagining, the cheapest at test time) and the action-only baseline fine-tuned with the same
CPU time, both evaluated in closed loop; the report and a 5-line summary at the end. Run it again
to resume; everything is in `--out`.

Time, estimated from rates measured on this 2-core machine (idle, 2 threads) — each stage is one knob below:
  collect   3 tasks x 12 demos x ~64 frames = 2,300 frames at ~80 frames/s            ~  40 s
  tokenizer 400 steps x batch 64 (1,500 steps took ~7.3 min on MT10)                  ~ 120 s
  world     600 steps x 32 / ~110 samples/s (depth 4)                                 ~ 175 s
  rates     2 variants x 8 timed steps, plus data set-up                              ~  25 s
  policies  2 x 120 s (representation ~79 samples/s = 296 steps; action-only ~143 = 536 steps),
            plus ~10 s set-up each                                                     ~ 260 s
  eval      2 policies x 3 tasks x 10 episodes, 5-10 s an episode on 2 workers          150-300 s
  total                                                                                ~ 13-15 min
"""

from __future__ import annotations

from wam.config import apply_overrides
from wam.study import StudyConfig, VariantSpec

# short demos whose target is large on screen (reach's 1-2 px goal marker does not survive the 64 px
# tokenizer: docs/policies.md), learnable in minutes
TASKS = "button-press-topdown-v3,drawer-close-v3,drawer-open-v3"
DEMOS = 10  # training demos per task (12 collected: 2 held out for the validation loss)
IMAGE_SIZE = 64
TOKENIZER_STEPS = 400
WORLD_MODEL_STEPS = 600
POLICY_CPU_SECONDS = 120.0  # per policy: the same CPU time for both
EVAL_EPISODES = 10  # per task
EVAL_MAX_STEPS = 200  # expert demos of these tasks take ~50-90 steps


def quickstart_config(out: str = "runs/quickstart") -> StudyConfig:
    """The quickstart as a study config (every value can still be overridden from the command line)."""
    return apply_overrides(StudyConfig(), {
        "name": "quickstart", "out": out,
        "question": "Does a policy built on a pretrained world model beat the action-only baseline "
                    "with the same demos and CPU time?",
        "data.collect.tasks": TASKS, "data.collect.episodes": DEMOS + 2, "data.collect.image_size": IMAGE_SIZE,
        "data.collect.camera": "corner4", "data.collect.workers": 2,
        "pretrain.data.image_size": IMAGE_SIZE, "pretrain.tokenizer.steps": TOKENIZER_STEPS,
        "pretrain.tokenizer.base_channels": 16, "pretrain.optim.steps": WORLD_MODEL_STEPS,
        "pretrain.optim.lr": 5e-4, "pretrain.optim.warmup": 50, "pretrain.optim.ckpt_every": 200,
        "pretrain.optim.val_every": 200,
        "train.optim.warmup": 30, "train.optim.ckpt_every": 100, "train.optim.val_every": 100,
        "variants": [VariantSpec("representation", "representation", init="pretrained"),
                     VariantSpec("action_only", "action_only", init="scratch")],
        "demos": [DEMOS], "seeds": [0], "budget.cpu_seconds": POLICY_CPU_SECONDS,
        "eval.episodes": EVAL_EPISODES, "eval.max_steps": EVAL_MAX_STEPS, "eval.workers": 2, "eval.videos": 2,
    })


def parse_quickstart(overrides: dict) -> StudyConfig:
    out = overrides.pop("out", "runs/quickstart")
    cfg = apply_overrides(quickstart_config(out), overrides)
    cfg.check()
    return cfg


def five_lines(cfg: StudyConfig, summary: dict, report: str) -> str:
    """Where the study is, what it trained on, each variant's result, what to do next."""
    d, p = cfg.data.collect, cfg.pretrain
    lines = [f"quickstart finished: {cfg.out}  (report: {report})",
             f"data: {len(d.tasks.split(','))} tasks x {cfg.demos[0]} training demos ({d.tasks}), {d.image_size} px; "
             f"world model: {p.optim.steps} steps on video without actions"]
    for c in summary["cells"]:
        ms = f"{c['ms_per_chunk']:.0f} ms a chunk" if c.get("ms_per_chunk") is not None else "-"
        lines.append(f"{c['variant']:>15s} ({c['init']}): success {c['success']:.2f} [{c['ci95'][0]:.2f}, "
                     f"{c['ci95'][1]:.2f}] over {c['episodes']} episodes, {ms}, {c['steps']} steps in "
                     f"{c['train_seconds']:.0f} s")
    lines.append("next: wam study future_helps_acting   (a measured comparison, a few hours; configs/studies/)")
    return "\n".join(lines)


def describe_quickstart() -> str:
    """The size knobs with their quickstart values, for --help."""
    cfg = quickstart_config()
    keys = ("out", "data.collect.tasks", "data.collect.episodes", "pretrain.tokenizer.steps", "pretrain.optim.steps",
            "budget.cpu_seconds", "eval.episodes", "eval.max_steps")
    return "\n".join(f"  --{k}={_get(cfg, k)}" for k in keys)


def _get(node, key: str):
    for part in key.split("."):
        node = getattr(node, part)
    return node
