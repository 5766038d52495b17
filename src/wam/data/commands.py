"""`wam data info|check|view|merge`: look at, verify and combine LeRobot v3.0 datasets from the command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wam.data.lerobot_format import LeRobotDataset
from wam.errors import WamError


def data_info(args: argparse.Namespace) -> int:
    from wam.data.view import describe as describe_dataset

    print(describe_dataset(LeRobotDataset(args.path)))
    return 0


def data_check(args: argparse.Namespace) -> int:
    from wam.data.check import check_dataset

    if not Path(args.path).is_dir():
        raise WamError(f"no dataset at {args.path} (not a directory)")  # a wrong argument (2), not a damaged dataset (1)
    report = check_dataset(args.path, full=args.full)
    for line in report.lines():
        print(line)
    if report.problems:
        print(f"error: {args.path}: {len(report.problems)} problem(s), listed above", file=sys.stderr)
        return 1
    print(f"ok: {args.path}: {report.summary()}")
    return 0


def data_merge(args: argparse.Namespace) -> int:
    from wam.data.merge import merge_datasets

    n = merge_datasets(args.sources, args.out)
    print(f"wrote {args.out}: {n} episodes from {len(args.sources)} datasets")
    return 0


def data_view(args: argparse.Namespace) -> int:
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


def add_data_commands(verbs: argparse._SubParsersAction) -> None:
    """The `data` verb and its actions, on the top-level parser's subcommands."""
    data = verbs.add_parser("data", help="inspect a LeRobot v3.0 dataset").add_subparsers(dest="action", required=True)
    info = data.add_parser("info", help="what is in a dataset")
    info.add_argument("path")
    info.set_defaults(run_verb=data_info)
    check = data.add_parser("check", help="verify a dataset: files open, counts and indices agree, no NaN/inf "
                            "(exit 1 on any problem, one line each)")
    check.add_argument("path")
    check.add_argument("--full", action="store_true", help="also decode every frame of every episode (slower)")
    check.set_defaults(run_verb=data_check)
    view = data.add_parser("view", help="a contact sheet (PNG) or video (mp4) of one episode")
    view.add_argument("path")
    view.add_argument("--episode", type=int, default=0)
    view.add_argument("--out", default=None, help="output .png or .mp4 (default: <dataset>_episode<K>.png)")
    view.add_argument("--key", default=None, help="video feature (default: the first)")
    view.set_defaults(run_verb=data_view)
    merge = data.add_parser("merge", help="several datasets of one schema into one (resumable)")
    merge.add_argument("out")
    merge.add_argument("sources", nargs="+")
    merge.set_defaults(run_verb=data_merge)
