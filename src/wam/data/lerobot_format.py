"""Read datasets in the LeRobot v3.0 on-disk format, with pyarrow and PyAV only.

Layout (paths relative to the dataset root):

    meta/info.json                      schema: fps, features, path templates, totals
    meta/stats.json                     normalization statistics per feature
    meta/tasks.parquet                  task (language) <-> task_index
    meta/episodes/chunk-*/file-*.parquet  one row per episode: length, tasks, where its rows and
                                          video frames live, per-episode stats
    data/chunk-*/file-*.parquet         one row per frame (many episodes may share a file)
    videos/<key>/chunk-*/file-*.mp4     frames of a camera (many episodes may share a file)

`LeRobotDataset` opens any such dataset (ours or one made elsewhere), checks it against its own
schema and reports the first problem as a `DatasetError` naming the file and field. The episodes
that count are the first `info.json["total_episodes"]`: the writer updates info.json last, so a
dataset interrupted mid-write still opens with every completed episode.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from wam.data import integrity
from wam.data import stats as stats_lib
from wam.data.files import column_to_numpy, read_json, read_parquet
from wam.data.video import decode_video
from wam.errors import DatasetError

CODEBASE_VERSION = "v3.0"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
EPISODES_DIR = "meta/episodes"
CHUNK_FILE = "chunk-{chunk_index:03d}/file-{file_index:03d}"
DATA_PATH = "data/" + CHUNK_FILE + ".parquet"
VIDEO_PATH = "videos/{video_key}/" + CHUNK_FILE + ".mp4"
EPISODES_PATH = EPISODES_DIR + "/" + CHUNK_FILE + ".parquet"
INDEX_FEATURES = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}
_EPISODE_COLUMNS = ("episode_index", "length", "tasks", "data/chunk_index", "data/file_index")
_VIDEO_COLUMNS = ("chunk_index", "file_index", "from_timestamp", "to_timestamp")


@dataclass
class Episode:
    """Where one episode lives on disk."""

    index: int
    length: int
    tasks: list[str]
    data_chunk: int
    data_file: int
    from_index: int  # global `index` of its first frame
    videos: dict[str, tuple[int, int, float]] = field(default_factory=dict)  # key -> chunk, file, t0
    extras: dict[str, object] = field(default_factory=dict)  # wam's own columns (env_task, seed)
    digests: dict[str, str] = field(default_factory=dict)  # "data" / video key -> SHA-256 of its file


def _whole(value: object, minimum: int = 0) -> bool:
    """An integer (not a bool) >= minimum: what counts, indices and lengths must be."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= minimum


class LeRobotDataset:
    """A LeRobot v3.0 dataset on disk: metadata in memory, data and video read on demand."""

    def __init__(self, root: str | Path, strict: bool = True):
        """`strict=False` (what `wam data check` uses) records checksum mismatches of the metadata in
        `integrity_problems` instead of raising, so that every other problem can be found too."""
        self.root, self.strict = Path(root), strict
        self.integrity_problems: list[str] = []
        if not self.root.is_dir():
            raise DatasetError(f"no dataset at {self.root} (not a directory)")
        self.info = read_json(self.root / INFO_PATH)
        self._check_info()
        self.fps: int = int(self.info["fps"])
        self.features: dict[str, dict] = self.info["features"]
        self.video_keys = [k for k, f in self.features.items() if f["dtype"] == "video"]
        self.sealed = self._unseal()  # None: not written by wam
        self.tasks = self._read_tasks()
        self._rows: list[dict] = []  # committed meta/episodes rows (per-episode statistics)
        self.episodes = self._read_episodes()
        self.stats = self._read_stats()
        self._verified: set[Path] = set()

    # -- metadata -------------------------------------------------------------------------
    def _check_info(self) -> None:
        where, info = self.root / INFO_PATH, self.info
        for key in ("codebase_version", "fps", "features", "total_episodes", "data_path"):
            if key not in info:
                raise DatasetError(f"{where}: required field '{key}' is missing")
        version = str(info["codebase_version"])
        if not version.startswith("v3."):
            raise DatasetError(f"{where}: codebase_version is {version!r}; wam reads LeRobot v3.x datasets")
        fps = info["fps"]
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not fps > 0 or not float(fps).is_integer():
            raise DatasetError(f"{where}: 'fps' must be a positive whole number (frames a second), got {fps!r}")
        if not _whole(info["total_episodes"]):
            raise DatasetError(f"{where}: 'total_episodes' must be a whole number >= 0, got {info['total_episodes']!r}")
        if not isinstance(info["features"], dict):
            raise DatasetError(f"{where}: 'features' must be a mapping of feature name -> dtype and shape")
        for name, feat in info["features"].items():
            if not isinstance(feat, dict) or "dtype" not in feat or "shape" not in feat:
                raise DatasetError(f"{where}: feature '{name}' needs 'dtype' and 'shape'")
            if not isinstance(feat["dtype"], str) or not isinstance(feat["shape"], list) \
                    or not all(_whole(d, 1) for d in feat["shape"]):
                raise DatasetError(f"{where}: feature '{name}' has dtype {feat['dtype']!r} and shape {feat['shape']!r}; "
                                   "expected a dtype name and a list of sizes >= 1")
            if feat["dtype"] == "video" and len(feat["shape"]) != 3:
                raise DatasetError(f"{where}: video feature '{name}' has shape {feat['shape']}, expected [H, W, 3]")
        videos = any(f["dtype"] == "video" for f in info["features"].values())
        if videos and "video_path" not in info:
            raise DatasetError(f"{where}: video features are declared but 'video_path' is missing")
        for key, fields in (("data_path", {}), ("video_path", {"video_key": "k"})):
            if key == "video_path" and not videos:
                continue
            try:
                str.format(info[key], chunk_index=0, file_index=0, **fields)
            except (KeyError, IndexError, ValueError, TypeError, AttributeError):
                raise DatasetError(f"{where}: '{key}' {info[key]!r} is not a path template like {DATA_PATH!r}") from None

    def _unseal(self) -> dict | None:
        try:
            return integrity.unseal(self.info, self.root / INFO_PATH)
        except DatasetError as exc:
            self._seal_broken(str(exc))
            entry = self.info.get(integrity.KEY)
            return entry if isinstance(entry, dict) and isinstance(entry.get("episodes"), dict) else None

    def _seal_broken(self, message: str) -> None:
        if self.strict:
            raise DatasetError(message)
        self.integrity_problems.append(message)

    def _read_tasks(self) -> list[str]:
        path = self.root / TASKS_PATH
        table = read_parquet(path)
        names = [c for c in table.column_names if pa.types.is_string(table.schema.field(c).type)
                 or pa.types.is_large_string(table.schema.field(c).type)]
        if "task_index" not in table.column_names or len(names) != 1 \
                or not pa.types.is_integer(table.schema.field("task_index").type):
            raise DatasetError(f"{path}: expected an integer 'task_index' column and one string column (the task)")
        order = table.column("task_index").to_pylist()
        tasks = table.column(names[0]).to_pylist()
        out: list[str | None] = [None] * len(tasks)
        for i, task in zip(order, tasks):
            if i is None or not 0 <= i < len(tasks) or out[i] is not None or not isinstance(task, str):
                raise DatasetError(f"{path}: task_index {i} ({task!r}) is out of range 0..{len(tasks) - 1}, "
                                   "repeated, or has no task text")
            out[i] = task
        if self.sealed is not None and integrity.digest(out[: self.info.get("total_tasks", len(out))]) != self.sealed["tasks"]:
            self._seal_broken(f"{path}: {integrity.EDITED}")
        return out  # type: ignore[return-value]

    def _read_episodes(self) -> list[Episode]:
        folder = self.root / EPISODES_DIR
        files = sorted(folder.glob("chunk-*/file-*.parquet"))
        total = int(self.info["total_episodes"])
        if not files and total > 0:
            raise DatasetError(f"no episode metadata: {folder}/chunk-*/file-*.parquet is missing")
        rows: dict[int, Episode] = {}
        for path in files:
            for episode in self._episodes_in(path, total):
                if episode.index in rows:
                    raise DatasetError(f"{path}: episode {episode.index} is listed twice in meta/episodes")
                rows[episode.index] = episode
        missing = [i for i in range(total) if i not in rows]
        if missing:
            raise DatasetError(
                f"{folder}: info.json lists {total} episodes but metadata for episode {missing[0]} is missing"
            )
        if self.sealed is not None:
            listed = {f"{EPISODES_DIR}/{p.parent.name}/{p.name}" for p in files}
            absent = sorted(set(self.sealed["episodes"]) - listed)
            if absent:
                self._seal_broken(f"missing file: {self.root / absent[0]}")
        return [rows[i] for i in range(total)]  # later rows belong to an unfinished write

    def _episodes_in(self, path: Path, total: int) -> list[Episode]:
        table = read_parquet(path)
        needed = list(_EPISODE_COLUMNS) + [f"videos/{k}/{c}" for k in self.video_keys for c in _VIDEO_COLUMNS]
        absent = [c for c in needed if c not in table.column_names]
        if absent:
            raise DatasetError(f"{path}: episode metadata column '{absent[0]}' is missing")
        rows = table.to_pylist()
        keep = [_whole(r["episode_index"]) and r["episode_index"] < total for r in rows]
        committed = [r for r, k in zip(rows, keep) if k]
        starts = np.cumsum([0] + [r["length"] if _whole(r["length"]) else 0 for r in rows[:-1]])
        episodes = [self._episode(row, path, int(start)) for row, start, k in zip(rows, starts, keep) if k]
        if self.sealed is not None and committed:
            expected = self.sealed["episodes"].get(f"{EPISODES_DIR}/{path.parent.name}/{path.name}")
            if integrity.digest(committed) != expected:
                self._seal_broken(f"{path}: {integrity.EDITED}")
        self._rows += committed
        return episodes

    def _episode(self, row: dict, path: Path, start: int) -> Episode:
        """One meta/episodes row, its types checked, as an Episode."""
        index = row["episode_index"]
        bad = [c for c in ("length", "data/chunk_index", "data/file_index") if not _whole(row[c], c == "length")]
        bad += [f"videos/{k}/{c}" for k in self.video_keys for c in ("chunk_index", "file_index")
                if not _whole(row[f"videos/{k}/{c}"])]
        bad += [f"videos/{k}/from_timestamp" for k in self.video_keys
                if not isinstance(row[f"videos/{k}/from_timestamp"], (int, float))
                or not 0 <= row[f"videos/{k}/from_timestamp"] < float("inf")]
        if row.get("dataset_from_index") is not None and not _whole(row["dataset_from_index"]):
            bad.append("dataset_from_index")
        tasks = row["tasks"]
        if not isinstance(tasks, list) or not tasks or not all(isinstance(t, str) for t in tasks):
            bad.append("tasks")
        if bad:
            raise DatasetError(f"{path}: episode {index}: column '{bad[0]}' holds {row[bad[0]]!r}, "
                               "not a valid value (the file is corrupt)")
        videos = {k: (row[f"videos/{k}/chunk_index"], row[f"videos/{k}/file_index"],
                      float(row[f"videos/{k}/from_timestamp"])) for k in self.video_keys}
        digests = {name: row[f"{column}/sha256"] for name, column in
                   [("data", "data"), *[(k, f"videos/{k}") for k in self.video_keys]] if row.get(f"{column}/sha256")}
        extras = {c: row[c] for c in ("env_task", "seed") if c in row}
        first = row.get("dataset_from_index")
        return Episode(int(index), int(row["length"]), list(tasks), int(row["data/chunk_index"]),
                       int(row["data/file_index"]), int(start if first is None else first), videos, extras, digests)

    def _read_stats(self) -> dict:
        path = self.root / STATS_PATH
        if self.sealed is not None and self.sealed.get("stats") is not None:
            try:
                raw = read_json(path)
                if integrity.digest(raw) == self.sealed["stats"]:
                    return stats_lib.from_json(raw)
            except DatasetError:
                pass
            # damaged, or written for an episode whose commit was interrupted: merge the committed episodes' own
            features = {k: f for k, f in self.features.items() if k not in INDEX_FEATURES}
            per_episode = [stats_lib.from_episode_row(r, features) for r in self._rows]
            return {k: {s: np.asarray(v, dtype=np.float64) for s, v in
                        stats_lib.aggregate(e[k] for e in per_episode).items()} for k in per_episode[0]}
        if not path.exists():
            return {}
        raw = read_json(path)
        try:
            return stats_lib.from_json(raw)
        except (AttributeError, TypeError, ValueError):
            raise DatasetError(f"{path}: expected feature -> statistic -> values; the file is corrupt") from None

    # -- properties -----------------------------------------------------------------------
    @property
    def num_episodes(self) -> int:
        return len(self.episodes)

    @property
    def num_frames(self) -> int:
        return sum(e.length for e in self.episodes)

    def feature(self, key: str) -> dict:
        """The declared feature `key`, or a DatasetError listing what the dataset has."""
        if key not in self.features:
            raise DatasetError(
                f"{self.root / INFO_PATH}: the dataset has no feature '{key}'; it has {sorted(self.features)}"
            )
        return self.features[key]

    def episode_task(self, episode: int) -> str:
        """The (first) language task of an episode."""
        return self.episodes[episode].tasks[0]

    # -- data ------------------------------------------------------------------------------
    def data_file(self, episode: Episode) -> Path:
        return self.root / self.info["data_path"].format(chunk_index=episode.data_chunk, file_index=episode.data_file)

    def video_file(self, key: str, episode: Episode) -> Path:
        chunk, file, _ = episode.videos[key]
        return self.root / self.info["video_path"].format(video_key=key, chunk_index=chunk, file_index=file)

    def read_columns(self, columns: Sequence[str], episodes: Sequence[int] | None = None) -> dict[str, np.ndarray]:
        """Frame-level columns, concatenated over `episodes` (all by default) in episode order.

        Only the named columns are read from the parquet files (so an action-free reader never
        touches `action`). Each episode must hold exactly `length` rows.
        """
        for c in columns:
            if c in self.video_keys:
                raise DatasetError(f"'{c}' is a video feature: decode it with decode_frames()")
            self.feature(c)
        chosen = [self.episodes[i] for i in (range(self.num_episodes) if episodes is None else episodes)]
        by_file: dict[Path, list[Episode]] = {}
        for ep in chosen:
            by_file.setdefault(self.data_file(ep), []).append(ep)
        pieces: dict[int, dict[str, np.ndarray]] = {}
        for path, eps in by_file.items():
            table = read_parquet(path, sorted(set(columns) | {"episode_index"}))
            ep_col = table.column("episode_index").to_numpy()
            arrays = {c: column_to_numpy(table, c, self.features[c]["shape"], path) for c in columns}
            for ep in eps:
                rows = np.flatnonzero(ep_col == ep.index)
                if len(rows) != ep.length:
                    raise DatasetError(
                        f"{path}: episode {ep.index} has {len(rows)} rows, meta/episodes says {ep.length}"
                    )
                pieces[ep.index] = {c: a[rows] for c, a in arrays.items()}
            self.verify_file(path, eps[0].digests.get("data"))
        return {c: np.concatenate([pieces[ep.index][c] for ep in chosen]) for c in columns}

    def decode_frames(self, key: str, episode: int) -> np.ndarray:
        """All frames of `episode` for video feature `key`: (T, H, W, 3) uint8."""
        if key not in self.video_keys:
            self.feature(key)
            raise DatasetError(f"feature '{key}' is not a video (dtype {self.features[key]['dtype']})")
        ep = self.episodes[episode]
        try:
            frames = decode_video(self.video_file(key, ep), ep.videos[key][2], ep.length, self.fps)
        except DatasetError:  # a file changed since it was written says so, whether or not it still decodes
            self.verify_file(self.video_file(key, ep), ep.digests.get(key))
            raise
        expected = tuple(self.features[key]["shape"])
        if frames.shape[1:] != expected and frames.shape[1:] != expected[1:] + expected[:1]:
            raise DatasetError(
                f"{self.video_file(key, ep)}: frames are {frames.shape[1:]}, info.json declares {list(expected)}"
            )
        self.verify_file(self.video_file(key, ep), ep.digests.get(key))
        return frames

    def verify_file(self, path: Path, sha256: str | None) -> None:
        """Refuse a data or video file whose content is not what the writer recorded (once per file)."""
        if sha256 is None or path in self._verified:
            return
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DatasetError(f"cannot read {path}: {exc}") from None
        integrity.verify(path, data, sha256)
        self._verified.add(path)
