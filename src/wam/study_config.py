"""The configuration of `wam study`: a tree of dataclasses like every wam config (YAML via
`--config`, dotted overrides), validated before anything runs, saved as STUDY/study.yaml.

    name: future_helps_acting
    question: Does a policy that predicts the future act better ...?
    data: {collect: {tasks: mw5, episodes: 20, camera: corner4, image_size: 96}}   # or data.path
    # optional: action-free video for pretraining only, collected once (or data.video.path)
    #   data: {video: {collect: {tasks: "mw5,door-open,...", episodes: 64, seed: 1000}}}
    pretrain: {optim: {steps: 2000}, ...}          # a `wam pretrain` config; or pretrain_run: runs/wm
    train: {optim: {ckpt_every: 250}, ...}         # `wam train` settings every cell shares
    variants:                                      # the arms: paradigm, integration, init, overrides
      - {name: joint, paradigm: joint, init: pretrained}
      - {name: joint_no_video, paradigm: joint, init: pretrained, overrides: {policy.video_weight: 0}}
      - {name: action_only, paradigm: action_only, init: scratch}
    demos: [5, 18]                                 # training demos per task
    seeds: [0]
    budget: {cpu_seconds: 600, total_cpu_hours: 8}  # or {steps: 1000}; the total is optional
    parallel: 2                                    # cells side by side (processes)
    eval: {episodes: 10, workers: 2, max_steps: 300, paraphrase: -1}
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path


from wam.config import apply_overrides, flatten_tree, parse_config
from wam.envs.collect import CollectConfig
from wam.errors import ConfigError
from wam.evaluate import EVAL_SEED, EvalConfig
from wam.paradigms import strategy
from wam.pretrain import DataConfig, PretrainConfig, held_out_count
from wam.reference import REFERENCES
from wam.train import TrainConfig

INITS = ("pretrained", "scratch")
DEFAULT_CPU_SECONDS = 300.0  # a cell's training budget when a study sets neither budget.steps nor cpu_seconds
# TrainConfig keys each cell sets (image size and text encoder: the world model's; an outside reference, which
# reads pixels and not the tokenizer's latents, may set its own data.image_size)
SET_BY_STUDY = ("paradigm", "init", "out", "policy.integration", "data.path", "data.episodes_per_task",
                "data.image_size", "text_encoder", "optim.seed", "optim.steps")
STUDIES = Path(__file__).resolve().parents[2] / "configs" / "studies"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass
class VariantSpec:
    """One arm of a study: a `wam train` setting."""

    name: str = ""  # folder-safe; default: the paradigm (+ integration)
    paradigm: str = "representation"
    integration: str = "tokens"
    init: str = "pretrained"  # pretrained: the study's world model; scratch: its tokenizer and shape, fresh weights
    overrides: dict = field(default_factory=dict)  # dotted TrainConfig keys, e.g. {policy.video_weight: 0}
    rate_of: str = ""  # train at this other variant's measured rate (the same computation, e.g. a loss weight 0):
    # its cells then get the same steps, not a second measurement's noise
    steps_of: str = ""  # train as many steps as this other variant's cells (equal steps, not equal CPU: a costlier
    # step then spends more than budget.cpu_seconds); its own rate is still measured, and the plan says what it costs

    @property
    def reads_pixels(self) -> bool:
        """An outside reference: it reads frames at its own size, not the world model's latents."""
        return self.paradigm in REFERENCES

    @classmethod
    def parse(cls, item, index: int) -> VariantSpec:
        """From YAML (a mapping), the CLI (a paradigm name) or a VariantSpec."""
        if isinstance(item, str):
            item = {"paradigm": item, "init": "scratch" if item == "action_only" else "pretrained"}
        if isinstance(item, VariantSpec):
            item = asdict(item)
        if not isinstance(item, dict):
            raise ConfigError(f"variants[{index}]: expected a mapping (name, paradigm, integration, init, "
                              f"overrides), got {item!r}")
        unknown = sorted(set(item) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError(f"variants[{index}]: unknown key(s) {', '.join(unknown)}; a variant has "
                              f"{', '.join(f.name for f in fields(cls))}")
        v = cls(**item)
        v.overrides = flatten_tree(v.overrides or {})
        suffix = "" if v.integration == "tokens" else f"_{v.integration}"
        v.name = v.name or f"{v.paradigm}{suffix}"
        return v

    def check(self) -> None:
        where = f"variant '{self.name}': "
        if not _NAME.fullmatch(self.name) or "__" in self.name:
            raise ConfigError(f"{where}a name is letters, digits, '.', '-', '_' (no '__'): it names folders")
        if self.paradigm in REFERENCES:  # the outside reference: pixels, no world model
            if self.init != "scratch" or self.integration != "tokens":
                raise ConfigError(f"{where}'{self.paradigm}' is the outside reference policy: it trains from "
                                  "scratch on pixels (init: scratch, no integration)")
        else:
            try:
                strategy(self.paradigm, self.integration)
            except ConfigError as exc:
                raise ConfigError(where + str(exc)) from None
        if self.init not in INITS:
            raise ConfigError(f"{where}init must be one of {', '.join(INITS)}, got {self.init!r}")
        taken = [k for k in self.overrides if k in SET_BY_STUDY and not (k == "data.image_size" and self.reads_pixels)]
        if taken:
            raise ConfigError(f"{where}{', '.join(taken)} is set by the study (paradigm, integration, init, demos, "
                              "seed, budget, the world model), not by a variant's overrides (only an outside "
                              f"reference, {', '.join(REFERENCES)}, sets its own data.image_size)")
        try:
            apply_overrides(TrainConfig(), self.overrides).policy.check()
        except ConfigError as exc:
            raise ConfigError(where + str(exc)) from None


@dataclass
class VideoPoolConfig:
    """Action-free video the world model is pretrained on, apart from the labelled demos (video is cheap,
    actions are not): an existing dataset (`path`) or `collect` gathered once into STUDY/video. Only the
    world model (and the tokenizer every latent cell shares) sees it; its actions are never read."""

    path: str = ""  # an existing LeRobot dataset, used as is (then `collect` is not used)
    collect: CollectConfig = field(default_factory=lambda: CollectConfig(
        tasks="", episodes=64, out="", camera="corner4", image_size=96, seed=1000))  # tasks "" = no pool

    @property
    def enabled(self) -> bool:
        return bool(self.path or self.collect.tasks)


@dataclass
class StudyDataConfig:
    path: str = ""  # an existing LeRobot dataset, used as is; empty = collect `collect` into STUDY/data
    collect: CollectConfig = field(default_factory=lambda: CollectConfig(
        tasks="mw5", episodes=20, out="", camera="corner4", image_size=96))  # `out` is ignored
    video: VideoPoolConfig = field(default_factory=VideoPoolConfig)  # none: pretrain on the labelled data's video


@dataclass
class StudyOfflineConfig:
    """`wam eval-offline` on every cell: action MSE on the held-out demos (cheap, no simulator)."""

    enabled: bool = False  # inverse dynamics and hierarchical cells are also scored given the real future
    swap: bool = False  # also the instruction-swap test (another task's instruction on the same windows)


@dataclass
class BudgetConfig:
    """The same training budget for every cell: a number of steps, or CPU seconds (neither set:
    `DEFAULT_CPU_SECONDS`, filled in by `StudyConfig.check`)."""

    steps: int = 0  # optimizer steps per cell, every variant alike (0 = use cpu_seconds)
    cpu_seconds: float = 0.0  # per cell: steps = cpu_seconds x the variant's measured samples/s / batch size
    measure_steps: int = 6  # steps timed per variant (after 2 warm-up steps) to measure samples/s
    # optional cap on the cells' CPU time: cells x (training + evaluation estimate); refused before anything runs
    total_cpu_hours: float = 0.0  # 0 = no cap
    # the evaluation estimate (plan, total_cpu_hours): every episode runs to eval.max_steps at this cost
    # (a 128 px env step took 11.7 ms CPU + a policy's 110-185 ms a chunk over 8 actions; each cell's
    # summary extra.eval_ms_per_step is the measured value to check it against)
    eval_ms_per_step: float = 40.0


def _variants_default() -> list[VariantSpec]:
    return [VariantSpec("representation"), VariantSpec("action_only", "action_only", init="scratch")]


@dataclass
class StudyConfig:
    """A study: one question, the data, the world model, the variants, and the cells' grid and budget."""

    name: str = "study"
    question: str = ""  # the one sentence the study answers
    out: str = ""  # default: runs/studies/<name>
    data: StudyDataConfig = field(default_factory=StudyDataConfig)
    pretrain: PretrainConfig = field(default_factory=lambda: PretrainConfig(data=DataConfig(path=""), out=""))
    pretrain_run: str = ""  # an existing `wam pretrain` run to reuse (then `pretrain` is not used)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(data=DataConfig(path=""), out=""))
    variants: list[VariantSpec] = field(default_factory=_variants_default)
    demos: list[int] = field(default_factory=lambda: [5, 10])  # training demos per task
    seeds: list[int] = field(default_factory=lambda: [0])
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)  # `policy` and `out` are set per cell
    extra_paraphrases: list[int] = field(default_factory=list)  # also evaluate with these (-1 = training instruction)
    offline: StudyOfflineConfig = field(default_factory=StudyOfflineConfig)
    parallel: int = 1  # cells trained and evaluated side by side, one process each (2 on 2 cores)

    def __post_init__(self) -> None:
        self.variants = [VariantSpec.parse(v, i) for i, v in enumerate(self.variants)]

    def check(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ConfigError(f"name must be letters, digits, '.', '-', '_', got {self.name!r}")
        if not self.variants:
            raise ConfigError("variants: a study needs at least one variant")
        for name, n in Counter(v.name for v in self.variants).items():
            if n > 1:
                raise ConfigError(f"variants: the name {name!r} is used {n} times; give each variant its own name")
        for v in self.variants:
            v.check()
        measured = {v.name for v in self.variants if not v.rate_of}
        own = {v.name for v in self.variants if not v.steps_of}  # variants whose steps their own budget sets
        for v in self.variants:
            if v.rate_of and v.rate_of not in measured:
                raise ConfigError(f"variant '{v.name}': rate_of names {v.rate_of!r}, which is not a variant of this "
                                  f"study measured itself (one of: {', '.join(sorted(measured)) or 'none'})")
            if v.steps_of and (v.rate_of or v.steps_of not in own - {v.name}):
                raise ConfigError(f"variant '{v.name}': steps_of names {v.steps_of!r}; it must be another variant of "
                                  f"this study whose steps its budget sets (one of: {', '.join(sorted(own - {v.name})) or 'none'}), "
                                  "and cannot go with rate_of")
        if not self.demos or min(self.demos) < 1:
            raise ConfigError(f"demos must be a non-empty list of training demos per task (each >= 1), got {self.demos}")
        if not self.seeds:
            raise ConfigError("seeds must be a non-empty list, e.g. [0]")
        if self.parallel < 1:
            raise ConfigError(f"parallel must be >= 1 (cells side by side), got {self.parallel}")
        b = self.budget
        if b.steps == 0 and b.cpu_seconds == 0:  # neither given (`budget: {steps: 1000}` alone must not clash)
            b.cpu_seconds = DEFAULT_CPU_SECONDS
        if (b.steps > 0) == (b.cpu_seconds > 0) or b.measure_steps < 1:
            raise ConfigError("budget: set exactly one of budget.steps (the same steps for every cell) or "
                              "budget.cpu_seconds (the same CPU time, turned into steps per variant); "
                              f"got steps={b.steps}, cpu_seconds={b.cpu_seconds}")
        for k in [self.eval.paraphrase, *self.extra_paraphrases]:
            replace(self.eval, policy="-", paraphrase=k).check()
        self.pretrain.model.check()
        self.train.optim.check()
        if b.total_cpu_hours < 0 or b.eval_ms_per_step < 0:
            raise ConfigError(f"budget.total_cpu_hours and budget.eval_ms_per_step must be >= 0, got "
                              f"{b.total_cpu_hours}, {b.eval_ms_per_step}")
        self._check_video_pool()
        self._check_scene_seeds()
        if not self.data.path:
            self.data.collect.check()
            n = self.data.collect.episodes
            n_val = held_out_count(n, self.train.data.val_fraction)
            if max(self.demos) > n - n_val:
                raise ConfigError(f"demos {max(self.demos)} per task, but data.collect.episodes={n} leaves {n - n_val} "
                                  f"training demos a task ({n_val} held out, train.data.val_fraction="
                                  f"{self.train.data.val_fraction}); collect more or ask for fewer")

    def _check_video_pool(self) -> None:
        pool = self.data.video
        if not pool.enabled or self.pretrain_run:  # a reused world model: what it saw is read from its run
            return
        if self.pretrain.data.path:
            raise ConfigError("data.video is the world model's pretraining video, and so is pretrain.data.path: "
                              "set one")
        if self.pretrain.model.action_chunk:
            raise ConfigError("data.video is action-free video; an action-conditioned world model "
                              "(pretrain.model.action_chunk > 0) would read its actions: set it to 0")
        if not pool.path:  # an existing pool is used as is (like data.path), its collect settings ignored
            pool.collect.check()
            if not self.data.path and pool.collect.camera != self.data.collect.camera:
                raise ConfigError(f"data.video.collect.camera={pool.collect.camera} but the labelled demos are "
                                  f"filmed by data.collect.camera={self.data.collect.camera}: use one camera")

    def _check_scene_seeds(self) -> None:
        """Collected scenes (seeds seed .. seed + max attempts) must not be the evaluation's scenes."""
        lo, hi = self.eval.seed, self.eval.seed + self.eval.episodes
        for name, spec in (("data.collect", self.data.collect), ("data.video.collect", self.data.video.collect)):
            used = spec.tasks and not (self.data.path if name == "data.collect" else
                                       self.data.video.path or self.pretrain_run)
            attempts = spec.max_attempts or 2 * spec.episodes + 10
            if used and spec.seed < hi and lo < spec.seed + attempts:
                raise ConfigError(f"{name} may use scene seeds {spec.seed}..{spec.seed + attempts - 1} "
                                  f"({name}.max_attempts), which overlap the evaluation's {lo}..{hi - 1} "
                                  f"(eval.seed={self.eval.seed}, eval.episodes={self.eval.episodes}): the policy "
                                  f"would be evaluated on scenes it trained on; move {name}.seed or eval.seed "
                                  f"(default {EVAL_SEED})")


@dataclass(frozen=True)
class Cell:
    variant: VariantSpec
    demos: int
    seed: int

    @property
    def run(self) -> str:
        return f"cells/{self.variant.name}__d{self.demos}__s{self.seed}"


def plan_cells(cfg: StudyConfig) -> list[Cell]:
    """Every cell, fewest demos first, so that an unfinished study already compares the variants."""
    return [Cell(v, d, s) for d in sorted(cfg.demos) for s in cfg.seeds for v in cfg.variants]


def study_dir(cfg: StudyConfig) -> Path:
    return Path(cfg.out or f"runs/studies/{cfg.name}")


def load_study(spec: str, argv: list[str] = ()) -> StudyConfig:
    """A study from a YAML file or a name in configs/studies/, then dotted overrides."""
    path = Path(spec)
    if not path.is_file():
        named = [d / f"{spec}.yaml" for d in (Path("configs/studies"), STUDIES) if (d / f"{spec}.yaml").is_file()]
        if not named:
            known = sorted(p.stem for p in STUDIES.glob("*.yaml")) if STUDIES.is_dir() else []
            raise ConfigError(f"no study config {spec!r}: give a YAML file or one of {', '.join(known) or '(none)'}")
        path = named[0]
    return parse_config(StudyConfig, ["--config", str(path), *argv])


def check_resume(cfg: StudyConfig, root: Path) -> None:
    """Refuse to continue a study folder whose finished cells were made with other settings."""
    path = root / "study.yaml"
    if not path.exists():
        return
    old = parse_config(StudyConfig, ["--config", str(path)])
    a, b = flatten_tree(asdict(old)), flatten_tree(asdict(cfg))
    # evaluations that can be added to finished cells, and settings that change no cell's result
    free = ("name", "question", "out", "demos", "seeds", "variants", "eval.workers", "eval.videos", "offline.enabled",
            "offline.swap", "extra_paraphrases", "parallel", "budget.total_cpu_hours", "budget.eval_ms_per_step")
    changed = sorted(k for k in set(a) | set(b) if k not in free and a.get(k) != b.get(k))
    before = {v.name: v for v in old.variants}
    changed += [f"variant {v.name}" for v in cfg.variants if v.name in before and before[v.name] != v]
    if changed:
        raise ConfigError(f"{root} holds a study made with other settings ({', '.join(changed)}): its cells would "
                          "not compare; use another --out, or the same settings (adding demos, seeds, variants or "
                          "evaluations is fine)")
