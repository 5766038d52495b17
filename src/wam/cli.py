"""The `wam` command line: one verb per pipeline stage.

    wam collect [--tasks mw5 --episodes 20 --out data/mw5 --workers 2 ...]
    wam data info PATH
    wam data view PATH --episode K [--out episode.png | episode.mp4]
    wam data check PATH [--full]     (every problem on one line: file, episode, column; exit 1 if any)
    wam pretrain [--data.path=data/mw5 --out=runs/wm --optim.steps=3000 ...]
    wam train [--paradigm=representation --init=runs/wm --data.path=... --out=runs/policy ...]
    wam plan --world_model=RUN [--proposal=RUN --policy.candidates=64 --out=runs/plan]   (then: wam eval --policy=runs/plan)
    wam eval --policy=runs/policy [--episodes=10 --workers=2 --paraphrase=-1]
    wam eval --remote=HOST:PORT [--threshold=6 --merge=latest|blend|rtc]   (through a policy server)
    wam serve --policy=runs/policy [--host=127.0.0.1 --port=8765 --token=... --sample_steps=4]
    wam eval-offline --policy=runs/policy [--given_future=imagined|real --swap=false]
    wam study CONFIG.yaml|NAME [--eval.episodes=5 ...]   (a comparison: cells of variant x demos x seed)
    wam quickstart [--out=runs/quickstart]   (the whole pipeline, small, ~15 minutes on 2 cores)
    wam imagine RUN --dataset PATH --episode K [--frame T] [--instruction "..."] [--then "..."] --out clip.mp4
    wam imagine RUN --image start.png --instruction "..." --out clip.gif
    wam imagine-eval RUN --dataset PATH [--starts 3 --steps 10]
    wam probe --tokenizer=RUN --data=PATH [--tasks=reach,push]   (R² of object/goal positions from latents)
    wam report STUDY_DIR              (re-render a study's report.html and report.md)
    wam variants                      (every paradigm x action integration: valid, or why refused)

Options of config-driven verbs are the fields of their config dataclass (`wam collect --help`
lists them with defaults); `--config preset.yaml` loads a preset first. Errors in the input are
reported on one line (exit status 2), never as a traceback (tests/test_bad_inputs.py holds every
case tried); a closed pipe (`wam data info D | head -3`) ends the command quietly with status 141.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from pathlib import Path

from wam.config import describe, parse_config
from wam.data.commands import add_data_commands
from wam.data.lerobot_format import LeRobotDataset
from wam.errors import ConfigError, WamError
from wam.runs.folders import output_file
from wam.runs.threads import quiet_openmp


def _collect(rest: list[str]) -> int:
    from wam.envs.collect import CollectConfig, collect_or_explain

    if rest and rest[0] in ("-h", "--help"):
        print("usage: wam collect [--option=value ...]\n\noptions (defaults shown):\n" + describe(CollectConfig))
        return 0
    cfg = parse_config(CollectConfig, rest)
    report = collect_or_explain(cfg)
    print(report.table())
    print(f"dataset: {cfg.out}   (look at it: wam data info {cfg.out}; wam data view {cfg.out} --episode 0)")
    return 0


def _config_verb(name: str, cls: type, rest: list[str]):
    if rest and rest[0] in ("-h", "--help"):
        print(f"usage: wam {name} [--option=value ...] [--config preset.yaml]\n\noptions (defaults shown):\n"
              + describe(cls))
        return None
    return parse_config(cls, rest)


def _run_training(name: str, cls: type, run, rest: list[str], hint: str = "") -> int:
    """Parse a training verb's config, run it, print the last metrics and where the run is."""
    cfg = _config_verb(name, cls, rest)
    if cfg is None:
        return 0
    metrics = run(cfg)
    print("done: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, float)))
    print(f"run: {cfg.out} (curves: {cfg.out}/curves.png{hint.format(cfg=cfg)})")
    return 0


def _pretrain(rest: list[str]) -> int:
    from wam.pretrain import PretrainConfig, pretrain

    hint = "; try: wam imagine {cfg.out} --dataset {cfg.data.path} --episode 0 --out {cfg.out}/imagined.mp4"
    return _run_training("pretrain", PretrainConfig, pretrain, rest, hint)


def _train(rest: list[str]) -> int:
    from wam.train import TrainConfig, train_policy

    return _run_training("train", TrainConfig, train_policy, rest)


def _plan(rest: list[str]) -> int:
    from wam.planning import PlanRunConfig, make_plan

    cfg = _config_verb("plan", PlanRunConfig, rest)
    if cfg is not None:
        out = make_plan(cfg)
        print(f"planning policy: {cfg.policy.candidates} candidates x {cfg.policy.iterations} round(s) of chunk "
              f"{cfg.policy.chunk}, proposals from {cfg.proposal or 'the dataset action statistics'}; {out}\n"
              f"evaluate it: wam eval --policy={out}")
    return 0


def _run_evaluation(name: str, cls: type, run, text, written, rest: list[str]) -> int:
    """Parse an evaluation verb's config, run it, print its summary (`text(result)`) and the file it wrote."""
    cfg = _config_verb(name, cls, rest)
    if cfg is None:
        return 0
    print(text(run(cfg)))
    print(f"wrote {written(cfg)}")
    return 0


def _eval(rest: list[str]) -> int:
    from wam.evaluate import EvalConfig, evaluate, summary_table

    return _run_evaluation("eval", EvalConfig, evaluate, summary_table,
                           lambda cfg: Path(cfg.out or (Path(cfg.policy) / "eval" if cfg.policy else "eval_remote"))
                           / "eval_info.json", rest)


def _serve(rest: list[str]) -> int:
    from wam.serve.server import ServeConfig, serve_policy

    cfg = _config_verb("serve", ServeConfig, rest)
    if cfg is not None:
        serve_policy(cfg)
    return 0


def _study(rest: list[str]) -> int:
    from wam.study import STUDIES, dry_run, load_study, run_study, study_dir

    if not rest or rest[0] in ("-h", "--help"):
        named = ", ".join(sorted(p.stem for p in STUDIES.glob("*.yaml"))) if STUDIES.is_dir() else "(none)"
        print(f"usage: wam study CONFIG.yaml|NAME [--dry_run] [--option=value ...]\n\nnamed studies "
              f"(configs/studies/): {named}\noptions: the fields of wam.study.StudyConfig, dotted (--eval.episodes=5, "
              "--demos=5,10, --out=...); --dry_run: check it and print its cells and cost, run nothing")
        return 0
    cfg = load_study(rest[0], [a for a in rest[1:] if a != "--dry_run"])
    if "--dry_run" in rest:
        print("\n".join(dry_run(cfg)))
        return 0
    summary = run_study(cfg)
    root = study_dir(cfg)
    earlier = f" (+ {summary['earlier_cells']} finished earlier)" if summary["earlier_cells"] else ""
    print(f"study {cfg.name}: {summary['planned_cells_done']}/{summary['planned_cells']} cells{earlier} in {root}; "
          f"{root}/summary.json, report: {root}/report.html")
    return 0


def _quickstart(rest: list[str]) -> int:
    from wam.config import parse_overrides
    from wam.quickstart import describe_quickstart, five_lines, parse_quickstart
    from wam.study import run_study

    if rest and rest[0] in ("-h", "--help"):
        print("usage: wam quickstart [--out=runs/quickstart] [--option=value ...]\n\n"
              "The whole pipeline on 3 easy tasks in ~15 minutes on 2 cores. Its sizes (any study option works):\n"
              + describe_quickstart())
        return 0
    cfg = parse_quickstart(parse_overrides(rest))
    summary = run_study(cfg)
    print(five_lines(cfg, summary, f"{cfg.out}/report.html"))
    return 0


def _eval_offline(rest: list[str]) -> int:
    from wam.offline_eval import OfflineEvalConfig, offline_eval, run_folder, summary_text

    return _run_evaluation("eval-offline", OfflineEvalConfig, offline_eval, summary_text,
                           lambda cfg: Path(cfg.out) if cfg.out else run_folder(cfg.policy) / "eval_offline.json", rest)


def _probe(rest: list[str]) -> int:
    from wam.probe import ProbeConfig, probe_table, run_probe

    cfg = _config_verb("probe", ProbeConfig, rest)
    if cfg is None:
        return 0
    info = run_probe(cfg)
    print(probe_table(info))
    print(f"wrote {info['written']}")
    return 0


def _precision(args: argparse.Namespace, model):
    """The precision `--precision` names for the model's device (auto: measured), said on one line."""
    from wam.runs.device import module_device
    from wam.runs.precision import choose_precision

    prec = choose_precision(args.precision, module_device(model), flag="--precision")
    print(prec.line())
    return prec


def _check_sampling(args: argparse.Namespace) -> None:
    """Refuse sampling flags that would fail deep inside (or be replaced by a default) with the flag named."""
    if args.steps < 1:
        raise ConfigError(f"--steps must be >= 1 (Euler sampling steps), got {args.steps}")
    for flag in ("instruction", "then"):
        value = getattr(args, flag, None)
        if value is not None and not value.strip():
            raise ConfigError(f"--{flag} is empty: give an instruction"
                              + (", or leave the flag out to use the episode's own" if flag == "instruction" else ""))


def _imagine(args: argparse.Namespace) -> int:
    from wam.imagination import StartPoint, dataset_start, imagine_clip, load_start_image, load_world_model
    from wam.runs.device import resolve_device

    _check_sampling(args)
    if args.image and args.instruction is None:
        raise ConfigError("--instruction is required with --image")
    output_file(args.out)
    model, cfg = load_world_model(args.run, device=resolve_device(args.device))
    if args.image:
        start = StartPoint(load_start_image(args.image, cfg.data.image_size)[None].repeat(len(model.cfg.obs), 0),
                           None, args.instruction)
    else:
        ds = LeRobotDataset(args.dataset or cfg.data.path)
        start = dataset_start(model, cfg, ds, args.episode, args.frame)
    instructions = [start.instruction if args.instruction is None else args.instruction]
    instructions += [args.then] if args.then is not None else []
    with _precision(args, model).autocast():
        out = imagine_clip(model, start, instructions, args.out, steps=args.steps, seed=args.seed,
                           guidance=args.guidance, encoder_kind=cfg.text_encoder)
    print(f"wrote {out}  (instructions: {' | then: '.join(instructions)})")
    return 0


def _imagine_eval(args: argparse.Namespace) -> int:
    from wam.data.files import write_json_atomic
    from wam.imagination import held_out_episodes, imagination_metrics, load_world_model, metrics_table
    from wam.runs.device import resolve_device

    _check_sampling(args)
    if args.starts < 1:
        raise ConfigError(f"--starts must be >= 1, got {args.starts}")
    out = output_file(args.out or Path(args.run) / "imagination_metrics.json")
    model, cfg = load_world_model(args.run, device=resolve_device(args.device))
    ds = LeRobotDataset(args.dataset or cfg.data.path)
    episodes = held_out_episodes(Path(args.run), ds, cfg.data.path)
    with _precision(args, model).autocast():
        metrics = imagination_metrics(model, cfg, ds, episodes, starts=args.starts, steps=args.steps,
                                      seed=args.seed, guidance=args.guidance)
    print(metrics_table(metrics))
    write_json_atomic(metrics, out)
    print(f"wrote {out}")
    return 0


def _variants(args: argparse.Namespace) -> int:
    from wam.paradigms import INVALID, variants

    from wam.reference import REFERENCES

    rows = [("paradigm", "integration", "status", "architecture", "capabilities", "reads", "reason")]
    for v in variants():
        status = "valid" if v.valid else "refused" if (v.paradigm, v.integration) in INVALID else "not implemented"
        rows.append((v.paradigm, v.integration, status, v.architecture or "-", ",".join(v.capabilities) or "-",
                     ",".join(f"policy.{s}" for s in v.settings) or "-", v.reason))
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    print("\n".join(("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[6]).rstrip() for r in rows))
    print("reads: the paradigm's own config section besides the shared shape (policy.backbone, obs, future, chunk, ...)")
    for name, cls in REFERENCES.items():
        print(f"outside the family: {name} (reads {','.join(f'policy.{s}' for s in cls.settings)})")
    print("train one: wam train --paradigm=PARADIGM --policy.integration=INTEGRATION ... (planning: wam plan)")
    return 0


def _report(args: argparse.Namespace) -> int:
    from wam.report import write_report

    html_path, md_path = write_report(Path(args.study))
    print(f"wrote {html_path} and {md_path} (figures and videos in {html_path.parent / 'report_files'})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wam", description="World-Action Models: data, world models, policies.")
    verbs = parser.add_subparsers(dest="verb", required=True)
    verbs.add_parser("collect", help="scripted-expert demos from Meta-World into a LeRobot v3.0 dataset",
                     add_help=False)
    add_data_commands(verbs)
    verbs.add_parser("pretrain", help="train the video world model on action-free video", add_help=False)
    verbs.add_parser("train", help="fine-tune a WAM policy (any paradigm) from a pretrain run or scratch",
                     add_help=False)
    verbs.add_parser("plan", help="a planning policy: an action-conditioned world model scores sampled action "
                     "chunks (sampling-based MPC)", add_help=False)
    verbs.add_parser("eval", help="closed-loop rollouts of a policy in Meta-World", add_help=False)
    verbs.add_parser("serve", help="serve a trained policy over WebSocket (msgpack, never pickle) to a robot "
                     "process", add_help=False)
    verbs.add_parser("eval-offline", help="action error of a policy on held-out demos (real or imagined future)",
                     add_help=False)
    verbs.add_parser("study", help="a controlled comparison from one YAML: collect, pretrain, train x eval "
                     "every cell, summary and report (resumable)", add_help=False)
    verbs.add_parser("quickstart", help="the whole pipeline on 3 easy tasks in ~15 minutes on 2 CPU cores",
                     add_help=False)
    verbs.add_parser("probe", help="does a tokenizer keep what tasks depend on? R² of hand/object/goal "
                     "positions from one frame's latents, masked PSNR", add_help=False)
    imagine = verbs.add_parser("imagine", help="imagine the future from a frame and an instruction")
    imagine.add_argument("run", help="a pretrain run folder or checkpoint")
    imagine.add_argument("--dataset", default=None, help="dataset to take the start frame from (default: the run's)")
    imagine.add_argument("--episode", type=int, default=0)
    imagine.add_argument("--frame", type=int, default=0)
    imagine.add_argument("--image", default=None, help="a start frame as PNG instead of a dataset episode")
    imagine.add_argument("--instruction", default=None, help="default: the episode's own instruction")
    imagine.add_argument("--then", default=None, help="a second instruction, imagined from the last frame")
    imagine.add_argument("--out", default="imagined.mp4", help=".mp4 or .gif")
    imagine.set_defaults(run_verb=_imagine)
    evaluate = verbs.add_parser("imagine-eval", help="PSNR/SSIM vs copy-last-frame and the instruction-swap test")
    evaluate.add_argument("run")
    evaluate.add_argument("--dataset", default=None)
    evaluate.add_argument("--starts", type=int, default=3, help="start frames per held-out episode")
    evaluate.add_argument("--out", default=None, help="metrics JSON (default: RUN/imagination_metrics.json)")
    evaluate.set_defaults(run_verb=_imagine_eval)
    report = verbs.add_parser("report", help="re-render a study's report.html and report.md from its folder")
    report.add_argument("study", help="a study directory (holds summary.json)")
    report.set_defaults(run_verb=_report)
    verbs.add_parser("variants", help="the registry: every paradigm x action integration, valid or why refused"
                     ).set_defaults(run_verb=_variants)
    for sub in (imagine, evaluate):
        sub.add_argument("--steps", type=int, default=10, help="sampling (Euler) steps")
        sub.add_argument("--seed", type=int, default=0)
        sub.add_argument("--guidance", type=float, default=1.0, help="classifier-free guidance scale")
        sub.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps")
        sub.add_argument("--precision", default="auto", help="auto | fp32 | bf16 | fp16 (auto: measured)")
    return parser


FLAG_VERBS = {"collect": _collect, "pretrain": _pretrain, "train": _train, "eval": _eval, "plan": _plan,
              "serve": _serve, "study": _study, "quickstart": _quickstart, "eval-offline": _eval_offline,
              "probe": _probe}


def _run(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    quiet_openmp()  # before torch is imported: waiting OpenMP threads sleep instead of spinning (wam.runs.threads)
    try:
        verb = FLAG_VERBS.get(argv[0]) if argv else None
        if verb is not None:  # dataclass configs with dotted overrides (`--policy.chunk=8`)
            return verb(argv[1:])
        args = build_parser().parse_args(argv)
        return args.run_verb(args)
    except WamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: everything completed so far is saved; run the same command again to resume",
              file=sys.stderr)
        return 130


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's final flush cannot fail on a closed pipe."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        pass


def main(argv: list[str] | None = None) -> int:
    """Run one command; a user error is one line on stderr and exit status 2 (`data check`: 1)."""
    try:
        code = _run(argv)
        sys.stdout.flush()  # a closed pipe (`| head`) shows up here, not at exit
        return code
    except BrokenPipeError:  # the reader quit (`wam data info D | head -3`): stop quietly, as `git log` does
        _quiet_stdout()
        return 141
