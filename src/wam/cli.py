"""The `wam` command line: one verb per pipeline stage.

    wam collect [--tasks mw5 --episodes 20 --out data/mw5 --workers 2 ...]
    wam data info PATH
    wam data view PATH --episode K [--out episode.png | episode.mp4]

Options of config-driven verbs are the fields of their config dataclass (`wam collect --help`
lists them with defaults); `--config preset.yaml` loads a preset first. Errors in the input are
reported on one line (exit status 2), never as a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wam.config import describe, parse_config
from wam.errors import WamError


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


def _data_info(args: argparse.Namespace) -> int:
    from wam.data.lerobot_format import LeRobotDataset
    from wam.data.view import describe as describe_dataset

    print(describe_dataset(LeRobotDataset(args.path)))
    return 0


def _data_view(args: argparse.Namespace) -> int:
    from wam.data.lerobot_format import LeRobotDataset
    from wam.data.view import contact_sheet, episode_video

    ds = LeRobotDataset(args.path)
    out = Path(args.out or f"{Path(args.path).name}_episode{args.episode}.png")
    if out.suffix == ".mp4":
        episode_video(ds, args.episode, out, key=args.key)
    elif out.suffix == ".png":
        contact_sheet(ds, args.episode, out, key=args.key)
    else:
        raise WamError(f"--out must end in .png (contact sheet) or .mp4 (video), got {out}")
    print(f"wrote {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wam", description="World-Action Models: data, world models, policies.")
    verbs = parser.add_subparsers(dest="verb", required=True)
    verbs.add_parser("collect", help="scripted-expert demos from Meta-World into a LeRobot v3.0 dataset",
                     add_help=False)
    data = verbs.add_parser("data", help="inspect a LeRobot v3.0 dataset").add_subparsers(dest="action", required=True)
    info = data.add_parser("info", help="what is in a dataset")
    info.add_argument("path")
    info.set_defaults(run=_data_info)
    view = data.add_parser("view", help="a contact sheet (PNG) or video (mp4) of one episode")
    view.add_argument("path")
    view.add_argument("--episode", type=int, default=0)
    view.add_argument("--out", default=None, help="output .png or .mp4 (default: <dataset>_episode<K>.png)")
    view.add_argument("--key", default=None, help="video feature (default: the first)")
    view.set_defaults(run=_data_view)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "collect":
            return _collect(argv[1:])
        args = build_parser().parse_args(argv)
        return args.run(args)
    except WamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: everything completed so far is saved; run the same command again to resume",
              file=sys.stderr)
        return 130
