"""`wam data check PATH [--full]`: verify a dataset, one line per problem (file, episode, column).

    wam data check data/mw5            # cheap: every file opens, counts, indices, NaN/inf, checksums
    wam data check data/mw5 --full     # and every frame of every episode decodes to the declared shape

What is checked:
- the metadata opens (info.json, tasks, meta/episodes: the reader's own checks), and agrees with itself:
  total_frames, dataset_from_index, each episode's task is in meta/tasks.parquet, video fps = fps;
- every data parquet opens and holds every declared column; each episode has exactly `length` rows,
  frame_index 0..L-1, index from its dataset_from_index on, timestamp = frame_index / fps, and the
  task_index of its task; no NaN or inf in any numeric column (named with the rows);
- every mp4 exists and opens with a video stream of the declared size, frame rate and enough frames;
  `--full` decodes every episode;
- the SHA-256 that wam's writer recorded for each file, and its digests of the metadata
  (`wam.data.integrity`); a dataset written elsewhere has none, which the summary says.

Training runs the cheap check at start (`data.check`), `wam collect` when it resumes one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wam.data.files import column_to_numpy, read_parquet
from wam.data.lerobot_format import Episode, LeRobotDataset
from wam.data.video import unreadable_video_errors
from wam.errors import ConfigError, DatasetError

LEVELS = ("off", "cheap", "full")


@dataclass
class Problem:
    """One thing wrong, where it is."""

    file: str
    message: str
    episode: int | None = None
    column: str | None = None

    def line(self) -> str:
        where = [self.file] + ([f"episode {self.episode}"] if self.episode is not None else [])
        where += [f"column '{self.column}'"] if self.column else []
        return ": ".join([*[w for w in where if w], self.message])


@dataclass
class CheckReport:
    root: Path
    full: bool
    problems: list[Problem] = field(default_factory=list)
    episodes: int = 0
    frames: int = 0
    files: int = 0
    sealed: bool = False

    def lines(self) -> list[str]:
        return [p.line() for p in self.problems]

    def summary(self) -> str:
        sums = "checksums verified" if self.sealed else "no checksums recorded (written elsewhere or by an older wam)"
        frames = ", every frame decoded" if self.full else ""
        return f"{self.episodes} episodes, {self.frames} frames, {self.files} files checked{frames}; {sums}"


def row_ranges(rows: np.ndarray, most: int = 6) -> str:
    """[3, 4, 5, 9] -> '3-5, 9' (at most `most` ranges, then how many rows in all)."""
    rows = np.asarray(rows)
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    spans = [(r[0], r[-1]) for r in np.split(rows, breaks)]
    text = ", ".join(f"{a}-{b}" if a != b else f"{a}" for a, b in spans[:most])
    return text + (f", ... ({len(rows)} rows)" if len(spans) > most else "")


class _Checker:
    def __init__(self, ds: LeRobotDataset, full: bool):
        self.ds, self.full = ds, full
        self.report = CheckReport(ds.root, full, episodes=ds.num_episodes, frames=ds.num_frames,
                                  sealed=ds.sealed is not None)

    def add(self, path: Path | str, message: str, episode: int | None = None, column: str | None = None) -> None:
        name = Path(path).relative_to(self.ds.root).as_posix() if Path(path).is_absolute() else str(path)
        self.report.problems.append(Problem(name, message, episode, column))

    def run(self) -> CheckReport:
        for message in self.ds.integrity_problems:
            self.report.problems.append(Problem("", message.replace(f"{self.ds.root}/", "")))
        self.metadata()
        by_file: dict[Path, list[Episode]] = {}
        for ep in self.ds.episodes:
            by_file.setdefault(self.ds.data_file(ep), []).append(ep)
        for path, eps in by_file.items():
            self.data_file(path, eps)
        for key in self.ds.video_keys:
            self.videos(key)
        self.report.files = len(by_file) + len({self.ds.video_file(k, e) for k in self.ds.video_keys
                                                for e in self.ds.episodes})
        return self.report

    # -- metadata ----------------------------------------------------------------------------
    def metadata(self) -> None:
        ds, info = self.ds, "meta/info.json"
        total = ds.info.get("total_frames")
        if total is not None and total != ds.num_frames:
            self.add(info, f"total_frames is {total}, the episodes hold {ds.num_frames} frames", column="total_frames")
        for key in ds.video_keys:
            declared = ds.features[key].get("info", {}).get("video.fps")
            if declared is not None and declared != ds.fps:
                self.add(info, f"video.fps is {declared}, the dataset's fps is {ds.fps}", column=key)
        start = 0
        for ep in ds.episodes:
            if ep.from_index != start:
                self.add("meta/episodes", f"dataset_from_index is {ep.from_index}, the episodes before it hold {start} "
                         "frames", ep.index, "dataset_from_index")
            start += ep.length
            unknown = [t for t in ep.tasks if t not in ds.tasks]
            if unknown:
                self.add("meta/episodes", f"task {unknown[0]!r} is not in meta/tasks.parquet", ep.index, "tasks")

    # -- frame data ----------------------------------------------------------------------------
    def data_file(self, path: Path, eps: list[Episode]) -> None:
        ds = self.ds
        try:
            table = read_parquet(path)
        except DatasetError as exc:
            for ep in eps:
                self.add(path, "missing" if not path.is_file() else f"cannot be read ({str(exc).split(': ', 2)[-1]})",
                         ep.index)
            return
        columns = [k for k, f in ds.features.items() if f["dtype"] != "video"]
        arrays: dict[str, np.ndarray] = {}
        for name in columns:
            try:
                arrays[name] = column_to_numpy(table, name, ds.features[name]["shape"], path)
            except DatasetError as exc:
                self.add(path, str(exc).split(f"column '{name}' ", 1)[-1], column=name)
        episode_col = arrays.get("episode_index")
        if episode_col is None:
            return
        for ep in eps:
            rows = np.flatnonzero(episode_col == ep.index)
            if len(rows) != ep.length:
                self.add(path, f"{len(rows)} rows, meta/episodes says {ep.length}", ep.index)
            self.episode_rows(path, ep, {k: v[rows] for k, v in arrays.items()}, len(rows) == ep.length)
        try:
            ds.verify_file(path, eps[0].digests.get("data"))
        except DatasetError:
            for ep in eps:
                self.add(path, "content does not match the checksum in meta/episodes (corrupt or overwritten)", ep.index)

    def episode_rows(self, path: Path, ep: Episode, cols: dict[str, np.ndarray], complete: bool) -> None:
        for name, values in cols.items():
            if values.dtype.kind == "f" and len(values):
                bad = ~np.isfinite(values.reshape(len(values), -1)).all(1)
                if bad.any():
                    kinds = "/".join(k for k, hit in (("NaN", np.isnan(values).any()), ("inf", np.isinf(values).any()))
                                     if hit)
                    self.add(path, f"{kinds} in rows {row_ranges(np.flatnonzero(bad))} (frame_index of the episode)",
                             ep.index, name)
        if not complete:
            return
        expected = {"frame_index": np.arange(ep.length), "index": ep.from_index + np.arange(ep.length)}
        if ep.tasks and ep.tasks[0] in self.ds.tasks:
            expected["task_index"] = np.full(ep.length, self.ds.tasks.index(ep.tasks[0]))
        for name, want in expected.items():
            if name in cols and not np.array_equal(cols[name], want):
                first = int(np.flatnonzero(cols[name] != want)[0])
                self.add(path, f"row {first} holds {cols[name][first]}, expected {want[first]}", ep.index, name)
        if "timestamp" in cols and "frame_index" in cols:
            off = np.abs(cols["timestamp"] - cols["frame_index"] / self.ds.fps) > 0.25 / self.ds.fps
            if off.any():
                first = int(np.flatnonzero(off)[0])
                self.add(path, f"row {first}: timestamp {cols['timestamp'][first]:.4f} is not frame_index / fps "
                         f"({self.ds.fps})", ep.index, "timestamp")

    # -- videos --------------------------------------------------------------------------------
    def videos(self, key: str) -> None:
        for ep in self.ds.episodes:
            path = self.ds.video_file(key, ep)
            if not path.is_file():
                self.add(path, "missing", ep.index)
                continue
            try:
                if self.full:
                    self.ds.decode_frames(key, ep.index)  # frame count, shape and checksum
                else:
                    self.open_video(path, key, ep)
                    self.ds.verify_file(path, ep.digests.get(key))
            except DatasetError as exc:
                self.add(path, str(exc).replace(f"{path}: ", "").replace(f" {path}", ""), ep.index)

    def open_video(self, path: Path, key: str, ep: Episode) -> None:
        """Open the container and compare its header with the declared size, rate and length."""
        import av

        h, w, _ = self.ds.features[key]["shape"]
        try:
            with av.open(str(path)) as container:
                if not container.streams.video:
                    raise DatasetError("no video stream")
                stream = container.streams.video[0]
                size, rate, frames = (stream.height, stream.width), stream.average_rate, stream.frames
        except unreadable_video_errors() as exc:
            raise DatasetError(f"cannot be opened as a video ({type(exc).__name__}: {exc})") from None
        if size != (h, w):
            raise DatasetError(f"frames are {size[0]}x{size[1]}, info.json declares {h}x{w}")
        if rate and abs(float(rate) - self.ds.fps) > 0.01:
            raise DatasetError(f"frame rate {float(rate):g}, the dataset's fps is {self.ds.fps}")
        needed = round(ep.videos[key][2] * self.ds.fps) + ep.length
        if frames and frames < needed:
            raise DatasetError(f"holds {frames} frames, the episode needs frames up to {needed}")


def check_dataset(dataset: str | Path | LeRobotDataset, full: bool = False) -> CheckReport:
    """Every problem of a dataset, one `Problem` each (none: the dataset is sound)."""
    if isinstance(dataset, LeRobotDataset):
        return _Checker(dataset, full).run()
    root = Path(dataset)
    try:
        ds = LeRobotDataset(root, strict=False)
    except DatasetError as exc:  # the metadata itself cannot be read: nothing else can be checked
        report = CheckReport(root, full)
        report.problems.append(Problem("", str(exc)))
        return report
    return _Checker(ds, full).run()


def require_clean(dataset: LeRobotDataset, level: str = "cheap", flag: str = "data.check") -> None:
    """Refuse to use a dataset with problems: one line naming the first, and the command that lists all."""
    if level not in LEVELS:
        raise ConfigError(f"{flag} must be one of {', '.join(LEVELS)}, got {level!r}")
    if level == "off":
        return
    report = check_dataset(dataset, full=level == "full")
    if report.problems:
        more = f" (and {len(report.problems) - 1} more)" if len(report.problems) > 1 else ""
        raise DatasetError(f"{dataset.root}: {report.problems[0].line()}{more}; every problem: wam data check "
                           f"{dataset.root}{' --full' if level == 'full' else ''} ({flag}=off skips this check)")

