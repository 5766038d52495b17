"""Every bad input a user has tried, one row each: the real CLI must answer with ONE line, no traceback.

Each row prepares what it needs (a corrupted copy of a shared tiny dataset or world-model run, a bad
YAML file, ...) and runs `wam.cli.main([...])` in-process (or `python -m wam` in a subprocess where a
pipe matters), then asserts the exit status, exactly one line on stderr (none for a clean run) naming
the file, field or flag (`needles`), and no 'Traceback'. The list only grows: add a row per new case.

The same table runs against any checkout, which gives the issue's before/after table:

    PYTHONPATH=<checkout>/src python -m tests.test_bad_inputs        # prints case | exit | stderr
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import FEATURES, IMAGE_KEY, episode_arrays, moving_square, write_dataset
from wam.data.writer import LeRobotWriter

LATENT = ["--paradigm=joint", "--policy.integration=latent_actions", "--data.image_size=32", "--text_encoder=hash",
          "--optim.steps=2"]
VALUE = ["--paradigm=joint", "--policy.integration=latent_frame", "--policy.latent_frame.value_frame=true"]
TRAIN = ["--paradigm=conv_reference", "--data.image_size=32", "--optim.steps=2", "--optim.batch_size=4",
         "--policy.chunk=3", "--text_encoder=hash", "--optim.precision=fp32"]


# -- the shared material ---------------------------------------------------------------------------
class World:
    """A tiny dataset and a tiny world-model run, built once; rows corrupt copies of them."""

    def __init__(self, root: Path):
        self.root = root
        self.dataset = root / "dataset"
        write_dataset(self.dataset)
        self.run = root / "run"
        _tiny_world_model(self.dataset, self.run)
        self.file = root / "a_file"
        self.file.write_text("not a directory\n")

    def copy(self, what: Path, dest: Path) -> Path:
        shutil.copytree(what, dest, ignore=shutil.ignore_patterns(".wam_cache"))
        return dest


def _tiny_world_model(data: Path, run: Path, **extra) -> None:
    """A world-model checkpoint with random weights (what `imagine` loads), without training one."""
    from tests.test_pretrain import TINY
    from wam.checkpoint import save_checkpoint
    from wam.config import apply_overrides
    from wam.models.world_model import VideoWorldModel
    from wam.nn.tokenizer import FrameAutoencoder
    from wam.pretrain import PretrainConfig

    cfg = apply_overrides(PretrainConfig(), {**TINY, "data.path": str(data), "out": str(run), **extra})
    model = VideoWorldModel(cfg.model, FrameAutoencoder(cfg.tokenizer_config()))
    ema = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    save_checkpoint(run, 1, VideoWorldModel.kind, dict(model.state_dict()), ema, None, {"metrics": {}}, cfg)


def _tiny_tokenizer(d: Path) -> Path:
    from wam.nn.tokenizer import FrameAutoencoder, TokenizerConfig, save_tokenizer

    return save_tokenizer(FrameAutoencoder(TokenizerConfig(image_size=32, downsample=4, base_channels=8)), d / "tok")


def _tiny_proposal(data: Path, run: Path, chunk: int) -> None:
    """A policy checkpoint with random weights (the reference policy: no tokenizer), without training one."""
    from wam.checkpoint import save_checkpoint
    from wam.config import apply_overrides
    from wam.train import KIND, TrainConfig, build_policy

    cfg = apply_overrides(TrainConfig(), {"paradigm": "conv_reference", "data.path": str(data), "out": str(run),
                                          "data.image_size": 32, "policy.chunk": chunk, "text_encoder": "hash"})
    stats = {k: {s: np.zeros(4) for s in ("mean", "std", "min", "max")} for k in ("observation.state", "action")}
    policy = build_policy(cfg, None, stats, IMAGE_KEY, 32)
    save_checkpoint(run, 1, KIND, dict(policy.state_dict()), None, None, {"metrics": {}}, cfg)


def _mismatched_proposal(w: World, d: Path) -> list[str]:
    """`wam plan` with a world model conditioned on 2 actions and a proposal policy of chunk 3."""
    _tiny_world_model(w.dataset, d / "wm", **{"model.action_chunk": 2})
    _tiny_proposal(w.dataset, d / "prop", chunk=3)
    return ["plan", f"--world_model={d / 'wm'}", f"--proposal={d / 'prop'}", f"--out={d / 'p'}"]


def _edit_info(root: Path, **fields) -> Path:
    """info.json edited as a dataset made elsewhere would have it (no checksums of wam's to notice the edit)."""
    path = root / "meta/info.json"
    info = json.loads(path.read_text())
    info.pop("wam_integrity", None)
    for key, value in fields.items():
        if value is None:
            info["features"].pop(key)
        else:
            info[key] = value
    path.write_text(json.dumps(info, indent=2))
    return root


def nan_dataset(root: Path) -> Path:
    """A dataset whose recorder wrote NaN actions in episode 1, rows 3-5 (the files are as written)."""
    writer = LeRobotWriter(root, fps=10, features=FEATURES)
    for e, length in enumerate((20, 25, 30)):
        data = episode_arrays(length, e)
        if e == 1:
            data["action"][3:6, 2] = np.nan
        writer.add_episode("push the puck", data, {IMAGE_KEY: moving_square(length, seed=e)})
    return root


def two_writer_dataset(root: Path) -> Path:
    """Two writers in one folder at once (what two `wam collect` runs did): the second's episode 0 (24
    drawer frames) overwrites the first's files, the first then commits its metadata over it."""
    a = LeRobotWriter(root, fps=10, features=FEATURES)
    b = LeRobotWriter(root, fps=10, features=FEATURES)
    a.add_episode("reach the goal", episode_arrays(12, 0), {IMAGE_KEY: moving_square(12, seed=0)})
    b.add_episode("open the drawer", episode_arrays(24, 1), {IMAGE_KEY: moving_square(24, seed=1)})
    a.add_episode("reach the goal", episode_arrays(12, 2), {IMAGE_KEY: moving_square(12, seed=2)})
    return root


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _ckpt(run: Path) -> Path:
    return run / "checkpoints" / (run / "checkpoints" / "last").read_text().strip()


def _damage(name: str, how: str) -> Callable[[World, Path], list[str]]:
    """A row's set-up: a copy of the run with checkpoint file `name` damaged `how`, then `wam imagine`."""
    def make(w: World, d: Path) -> list[str]:
        run = w.copy(w.run, d / "run")
        path = _ckpt(run) / name
        if how == "missing":
            path.unlink()
        elif how == "zero-byte":
            path.write_bytes(b"")
        elif how == "truncated":
            _truncate(path)
        else:
            path.write_bytes(b'{"corrupt' + bytes(range(256)) * 4)
        return ["imagine", str(run), "--out", str(d / "o.mp4")]
    return make


def _yaml(text: str, verb: str = "pretrain") -> Callable[[World, Path], list[str]]:
    def make(w: World, d: Path) -> list[str]:
        (d / "bad.yaml").write_text(text)
        return [verb, "--config", str(d / "bad.yaml"), f"--data.path={d / 'nothing'}", f"--out={d / 'o'}"]
    return make


def _mismatched_config(w: World, d: Path) -> list[str]:
    run = w.copy(w.run, d / "run")
    path = _ckpt(run) / "config.yaml"
    cfg = yaml.safe_load(path.read_text())
    cfg["model"]["backbone"]["depth"] += 1  # a valid config, but not the one the weights were trained with
    path.write_text(yaml.safe_dump(cfg))
    return ["imagine", str(run), "--out", str(d / "o.mp4")]


def _data(edit: Callable[[Path], object], verb: tuple[str, ...] = ("data", "check")) -> Callable[[World, Path], list[str]]:
    def make(w: World, d: Path) -> list[str]:
        root = w.copy(w.dataset, d / "ds")
        edit(root)
        return [*verb, str(root)] + (["--out", str(d / "v.png")] if verb[-1] == "view" else [])
    return make


# -- the table -------------------------------------------------------------------------------------
@dataclass
class Case:
    name: str
    make: Callable[[World, Path], list[str]]
    code: int
    needles: tuple[str, ...] = ()  # each must appear in the output (the error line, or the check's report)
    pipe: bool = False  # run `python -m wam` with its stdout a pipe already closed (`| head` that quit)
    xfail: str = ""


VIDEO = f"videos/{IMAGE_KEY}/chunk-000"
CASES = [
    # config files and values
    Case("yaml syntax error", _yaml("optim:\n  steps: [1, 2\n"), 2, ("bad.yaml", "line")),
    Case("yaml top level is a list", _yaml("- optim.steps: 3\n"), 2, ("bad.yaml", "mapping")),
    Case("yaml steps: true (was accepted as 1)", _yaml("optim:\n  steps: true\n"), 2, ("optim.steps", "true")),
    Case("yaml list for a string field", _yaml("text_encoder: [a, b]\n"), 2, ("text_encoder",)),
    Case("yaml float for an int field", _yaml("optim:\n  steps: 2.5\n"), 2, ("optim.steps",)),
    # dataset metadata
    Case("info.json fps: \"eighty\"", _data(lambda r: _edit_info(r, fps="eighty"), ("data", "info")), 2,
         ("info.json", "fps")),
    Case("info.json fps: 0", _data(lambda r: _edit_info(r, fps=0), ("data", "info")), 2, ("info.json", "fps")),
    Case("data view without a video feature", _data(lambda r: _edit_info(r, **{IMAGE_KEY: None}), ("data", "view")),
         2, ("video",)),
    Case("data info | head (closed pipe): quiet, 141 as git", lambda w, d: ["data", "info", str(w.dataset)], 141,
         pipe=True),
    # wam data check
    Case("data check: no such folder", lambda w, d: ["data", "check", str(d / "nowhere")], 2, ("nowhere",)),
    Case("data check: clean dataset", lambda w, d: ["data", "check", str(w.dataset), "--full"], 0, ("ok",)),
    Case("data check: truncated parquet", _data(lambda r: _truncate(r / "data/chunk-000/file-001.parquet")), 1,
         ("data/chunk-000/file-001.parquet", "episode 1")),
    Case("data check: truncated mp4", _data(lambda r: _truncate(r / VIDEO / "file-002.mp4")), 1,
         ("file-002.mp4", "episode 2")),
    Case("data check: deleted mp4", _data(lambda r: (r / VIDEO / "file-000.mp4").unlink()), 1,
         ("file-000.mp4", "episode 0", "missing")),
    Case("data check: NaN actions", lambda w, d: ["data", "check", str(nan_dataset(d / "ds"))], 1,
         ("file-001.parquet", "episode 1", "'action'", "NaN", "3-5")),
    Case("data check: two writers in one folder", lambda w, d: ["data", "check", str(two_writer_dataset(d / "ds"))],
         1, ("file-000.parquet", "episode 0", "24 rows")),
    # training on bad data, into bad folders
    Case("train on NaN actions (blamed the lr)", lambda w, d: ["train", *TRAIN, f"--data.path={nan_dataset(d / 'ds')}",
                                                             f"--out={d / 'p'}"], 2,
         ("file-001.parquet", "'action'", "NaN", "3-5")),
    Case("train --out under a file", lambda w, d: ["train", *TRAIN, f"--data.path={w.dataset}", f"--out={w.file}/p"],
         2, ("--out",)),
    Case("train --out unwritable", lambda w, d: ["train", *TRAIN, f"--data.path={w.dataset}", "--out=/sys/wam_x/p"],
         2, ("--out", "/sys/wam_x")),
    # latent actions as LAPA: codes come from `wam pretrain --latent_actions=true`
    Case("train latent_actions from a world model pretrained without codes",
         lambda w, d: ["train", *LATENT, f"--init={w.run}", f"--data.path={w.dataset}", f"--out={d / 'p'}"], 2,
         ("--init", "without latent-action codes", "--latent_actions=true")),
    Case("train latent_actions without --init (was: codes learned in train)",
         lambda w, d: ["train", *LATENT, f"--data.path={w.dataset}", f"--out={d / 'p'}"], 2,
         ("--init", "wam pretrain --latent_actions=true")),
    Case("pretrain --latent_actions with an action-conditioned world model",
         lambda w, d: ["pretrain", "--latent_actions=true", "--model.action_chunk=2", f"--data.path={w.dataset}",
                       f"--out={d / 'wm'}"], 2, ("--latent_actions=true", "model.action_chunk")),
    Case("pretrain --init with another backbone depth than the init world model",
         lambda w, d: ["pretrain", f"--init={w.run}", "--model.action_chunk=2", "--model.backbone.depth=3",
                       "--data.image_size=32", "--text_encoder=hash", f"--data.path={w.dataset}", f"--out={d / 'wm'}"],
         2, ("--init", "model.backbone")),
    Case("collect --out under a file", lambda w, d: ["collect", "--tasks=reach-v3", "--episodes=1", "--workers=1",
                                                     f"--out={w.file}/data"], 2, ("--out",)),
    Case("collect --out unwritable", lambda w, d: ["collect", "--tasks=reach-v3", "--episodes=1", "--workers=1",
                                                   "--out=/sys/wam_x/data"], 2, ("--out", "/sys/wam_x")),
    Case("collect resuming a damaged dataset", lambda w, d: ["collect", "--tasks=reach-v3", "--episodes=1", "--workers=1",
                                                             f"--out={_data(lambda r: _truncate(r / VIDEO / 'file-001.mp4'))(w, d)[-1]}"],
         2, ("file-001.mp4", "episode 1", "--data_check=off")),
    Case("collect --out is a file", lambda w, d: ["collect", "--tasks=reach-v3", "--episodes=1", "--workers=1",
                                                  f"--out={w.file}"], 2, ("--out",)),
    # imagine
    Case("imagine: a .png that is not an image", lambda w, d: (
        (d / "fake.png").write_bytes(b"hello"),
        ["imagine", str(w.run), "--image", str(d / "fake.png"), "--instruction", "push", "--out", str(d / "o.mp4")])[1],
         2, ("fake.png",)),
    Case("imagine --steps -1", lambda w, d: ["imagine", str(w.run), "--steps", "-1", "--out", str(d / "o.mp4")], 2,
         ("--steps",)),
    Case("imagine --steps 0 (was silently 10)", lambda w, d: ["imagine", str(w.run), "--steps", "0",
                                                              "--out", str(d / "o.mp4")], 2, ("--steps",)),
    Case("imagine-eval --steps 0", lambda w, d: ["imagine-eval", str(w.run), "--steps", "0"], 2, ("--steps",)),
    Case("imagine --instruction \"\" (was the episode's)", lambda w, d: ["imagine", str(w.run), "--instruction", "",
                                                                        "--out", str(d / "o.mp4")], 2,
         ("--instruction",)),
    Case("imagine: config.yaml does not match the weights", _mismatched_config, 2, ("config.yaml",)),
    # planning (wam plan)
    Case("plan: a world model pretrained without actions", lambda w, d: ["plan", f"--world_model={w.run}",
                                                                         f"--out={d / 'p'}"], 2,
         ("--world_model", "action_chunk=0")),
    Case("plan --policy.candidates=0", lambda w, d: ["plan", f"--world_model={w.run}", "--policy.candidates=0",
                                                    f"--out={d / 'p'}"], 2,
         ("policy.candidates",)),
    Case("plan: a proposal whose chunk is not the world model's", _mismatched_proposal, 2,
         ("--proposal", "policy.chunk 3 (the world model has 2)")),
    Case("train --paradigm=planning (built by wam plan)", lambda w, d: ["train", "--paradigm=planning"], 2,
         ("wam plan",)),
    # latent_frame's value frame (Cosmos Policy's value): refused before any data is read
    Case("train value_frame without integration=latent_frame", lambda w, d: [
        "train", "--paradigm=joint", "--policy.latent_frame.value_frame=true", f"--out={d / 'p'}"], 2,
         ("policy.latent_frame.value_frame", "policy.integration=latent_frame")),
    Case("train value_candidates=0", lambda w, d: [
        "train", *VALUE, "--policy.latent_frame.value_candidates=0", f"--out={d / 'p'}"], 2,
         ("policy.latent_frame.value_candidates", ">= 1")),
    Case("train value_candidates=3 without the value frame", lambda w, d: [
        "train", *VALUE[:2], "--policy.latent_frame.value_candidates=3", f"--out={d / 'p'}"], 2,
         ("policy.latent_frame.value_candidates=3", "value_frame=true")),
    *[Case(f"train gamma={gamma}", lambda w, d, gamma=gamma: [
        "train", *VALUE, f"--policy.latent_frame.gamma={gamma}", f"--out={d / 'p'}"], 2,
           ("policy.latent_frame.gamma", "(0, 1]")) for gamma in ("0", "1.5", "-0.9")],
    # checkpoint files (verified against their manifest by checkpoint.py)
    *[Case(f"checkpoint: {how} {name}", _damage(name, how), 2, (name,))
      for name in ("model.safetensors", "ema.safetensors") for how in ("corrupt", "truncated", "zero-byte", "missing")],
    Case("checkpoint: corrupt state.json", _damage("state.json", "corrupt"), 2, ("state.json",)),
    Case("checkpoint: missing config.yaml (named --config)", _damage("config.yaml", "missing"), 2,
         ("config.yaml", "missing")),
    Case("data merge: two frame rates", lambda w, d: [
        "data", "merge", str(d / "m"), str(w.dataset), str(_edit_info(w.copy(w.dataset, d / "b"), fps=20))], 2,
         ("does not match", "fps 20 vs 10")),
    # studies: refused before anything is collected or trained
    Case("study: demos 20 a task, an existing dataset holds 2", lambda w, d: [
        "study", "video_pays", f"--data.path={w.dataset}", "--train.data.tasks=", f"--out={d / 's'}"], 2,
         ("demos 20 per task", "holds 2 episodes of task0", "train.data.val_fraction")),
    Case("study: cells outgrow budget.total_cpu_hours", lambda w, d: [
        "study", "video_pays", "--budget.total_cpu_hours=2", f"--out={d / 's'}"], 2,
         ("budget.total_cpu_hours=2", "45 cells x (300 s training + 600 s evaluation", "40500 CPU s")),
    Case("study: the video pool's scenes are the evaluation's", lambda w, d: [
        "study", "video_pays", "--eval.seed=1010", f"--out={d / 's'}"], 2, ("data.video.collect", "eval.seed=1010")),
    Case("study: the video pool filmed by another camera", lambda w, d: [
        "study", "video_pays", "--data.video.collect.camera=corner4", f"--out={d / 's'}"], 2,
         ("data.video.collect.camera=corner4", "data.collect.camera=corner2")),
    Case("study --dry_run: the plan, nothing run", lambda w, d: [
        "study", "video_pays", "--dry_run", f"--out={d / 's'}"], 0, ("45 cells", "40500 CPU s", "side by side")),
    Case("probe: data without the environment state", lambda w, d: [
        "probe", f"--tokenizer={_tiny_tokenizer(d)}", f"--data={w.dataset}"], 2, ("observation.environment_state",)),
    Case("probe --train_episodes=-1", lambda w, d: [
        "probe", f"--tokenizer={_tiny_tokenizer(d)}", f"--data={w.dataset}", "--train_episodes=-1"], 2,
         ("--train_episodes",)),
    Case("probe --targets=elbow", lambda w, d: [
        "probe", f"--tokenizer={_tiny_tokenizer(d)}", f"--data={w.dataset}", "--targets=elbow"], 2, ("--targets", "goal")),
]


# -- running one row -------------------------------------------------------------------------------
@dataclass
class Outcome:
    code: int | None  # None: an exception escaped main()
    stdout: str
    stderr: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]

    def summary(self) -> str:
        """One cell of the before/after table."""
        if "Traceback" in self.stderr:
            last = [line for line in self.err_lines if not line.startswith(" ")][-1]
            return f"traceback ({last[:90]})"
        if self.code is None:
            return "exception"
        lines, out = self.err_lines, self.stdout.strip().splitlines()
        errors = [line for line in lines if line.startswith("error:")] or lines
        text = errors[-1][:160] if errors else (out or [""])[-1][:160]
        more = f", {len(lines)} stderr lines" if len(lines) > 1 else ""
        found = f" <br>stdout: {'<br>'.join(line[:150] for line in out[:6])}" if self.code == 1 else ""
        return f"exit {self.code}{more}: {text}{found}"


def run_case(case: Case, world: World, folder: Path) -> Outcome:
    argv = case.make(world, folder)
    if case.pipe:
        return _run_piped(argv)
    out, err = io.StringIO(), io.StringIO()
    from wam.cli import main

    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse
            code = exc.code if isinstance(exc.code, int) else 2
        except BaseException:  # noqa: BLE001: what a user would have seen
            print(traceback.format_exc(), file=sys.stderr)
            code = None
    return Outcome(code, out.getvalue(), err.getvalue())


def _run_piped(argv: list[str]) -> Outcome:
    import wam

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(wam.__file__).parents[1]),
                                                        os.environ.get("PYTHONPATH", "")])}
    read, write = os.pipe()
    os.close(read)  # the reader has gone before the first line is printed
    try:
        proc = subprocess.run([sys.executable, "-m", "wam", *argv], stdout=write, stderr=subprocess.PIPE,
                              env=env, text=True, timeout=120)
    finally:
        os.close(write)
    return Outcome(proc.returncode, "", proc.stderr)


# -- the tests -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    return World(tmp_path_factory.mktemp("bad_inputs"))


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name, marks=[pytest.mark.xfail(strict=True, reason=c.xfail)]
                                               if c.xfail else []) for c in CASES])
def test_bad_input(case: Case, world: World, tmp_path: Path) -> None:
    result = run_case(case, world, tmp_path)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.code == case.code, result.summary()
    expected_lines = 0 if case.code == 0 or case.pipe else 1
    assert len(result.err_lines) == expected_lines, result.stderr
    text = result.stderr + result.stdout
    for needle in case.needles:
        assert needle in text, f"{needle!r} not in {text!r}"


def before_after_table() -> str:
    """Every row's outcome on the checkout that is imported (`PYTHONPATH=<checkout>/src`)."""
    rows = ["| case | outcome |", "|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        world = World(Path(tmp) / "world")
        for i, case in enumerate(CASES):
            folder = Path(tmp) / f"case{i}"
            folder.mkdir()
            rows.append(f"| {case.name} | {run_case(case, world, folder).summary().replace('|', '/')} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(before_after_table())
