"""Append episodes to a LeRobot v3.0 dataset, safely against a kill at any moment.

Each episode is committed in an order that keeps the dataset readable at every instant:

    1. data/chunk-*/file-<e>.parquet       its frames (one file an episode: nothing half-written
    2. videos/<key>/chunk-*/file-<e>.mp4   is ever shared with a finished episode)
    3. meta/tasks.parquet                  when the episode brings a new task
    4. meta/episodes/chunk-*/file-*.parquet  its row (files of `EPISODES_PER_FILE` rows)
    5. meta/stats.json                     merged from the per-episode statistics
    6. meta/info.json                      `total_episodes` += 1: the commit point

Every file is written to a temporary name and renamed into place. A reader trusts only the first
`total_episodes` episodes, so a kill between steps loses at most the episode being written;
reopening the writer removes its leftovers and appends after the last committed episode.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa

from wam.data import integrity
from wam.data import stats as stats_lib
from wam.data.files import read_parquet, write_json_atomic, write_parquet_atomic
from wam.data.lerobot_format import (
    CODEBASE_VERSION, DATA_PATH, EPISODES_PATH, INDEX_FEATURES, INFO_PATH, STATS_PATH, TASKS_PATH,
    VIDEO_PATH, LeRobotDataset,
)
from wam.data.video import VideoCodec, encode_video
from wam.errors import DatasetError

CHUNKS_SIZE = 1000
EPISODES_PER_FILE = 100


def _arrow_column(values: np.ndarray, shape: list[int]) -> pa.Array:
    """(T, *shape) values as a scalar column, or a fixed-size list column for vectors."""
    if list(shape) == [1]:
        return pa.array(values.reshape(len(values)))
    flat = pa.array(values.reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, int(np.prod(shape)))


def _tasks_table(tasks: list[str]) -> pa.Table:
    """tasks.parquet as pandas/LeRobot write it: the task string is the index, `task_index` a column."""
    pandas_meta = {
        "index_columns": ["task"], "column_indexes": [], "creator": {"library": "wam"},
        "columns": [
            {"name": "task_index", "field_name": "task_index", "pandas_type": "int64",
             "numpy_type": "int64", "metadata": None},
            {"name": "task", "field_name": "task", "pandas_type": "unicode", "numpy_type": "object",
             "metadata": None},
        ],
    }
    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), "task": pa.array(tasks, pa.string())})
    return table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})


class LeRobotWriter:
    """Creates a dataset, or reopens one to append after its last committed episode."""

    def __init__(self, root: str | Path, fps: int, features: Mapping[str, dict],
                 robot_type: str = "sawyer", codec: VideoCodec = VideoCodec()):
        self.root = Path(root)
        self.codec = codec
        self.features = {**{k: dict(v) for k, v in features.items()}, **INDEX_FEATURES}
        for key, feat in self.features.items():
            if feat["dtype"] == "video":
                h, w, _ = feat["shape"]
                feat["info"] = codec.feature_info(fps, h, w)
        self.video_keys = [k for k, f in self.features.items() if f["dtype"] == "video"]
        self.info = {
            "codebase_version": CODEBASE_VERSION, "robot_type": robot_type,
            "total_episodes": 0, "total_frames": 0, "total_tasks": 0,
            "chunks_size": CHUNKS_SIZE, "data_files_size_in_mb": 100, "video_files_size_in_mb": 500,
            "fps": fps, "splits": {"train": "0:0"}, "data_path": DATA_PATH,
            "video_path": VIDEO_PATH if self.video_keys else None, "features": self.features,
        }
        self.tasks: list[str] = []
        self.rows: list[dict] = []  # meta/episodes rows of the committed episodes
        self.episode_stats: list[dict[str, dict[str, np.ndarray]]] = []
        self.meta_digests: dict[str, str] = {}  # meta/episodes file -> digest of its rows (wam_integrity)
        if (self.root / INFO_PATH).exists():
            self._reopen()
        else:
            self.root.mkdir(parents=True, exist_ok=True)
            write_parquet_atomic(_tasks_table([]), self.root / TASKS_PATH)
            self.info = integrity.seal(self.info, {}, [], None)
            write_json_atomic(self.info, self.root / INFO_PATH)

    # -- reopening ---------------------------------------------------------------------------
    def _reopen(self) -> None:
        existing = LeRobotDataset(self.root)
        mine = {k: {f: v for f, v in d.items() if f != "info"} for k, d in self.features.items()}
        theirs = {k: {f: (list(v) if f == "shape" else v) for f, v in d.items() if f != "info"}
                  for k, d in existing.features.items()}
        if mine != theirs or existing.fps != self.info["fps"]:
            raise DatasetError(
                f"{self.root} already holds a dataset with other features or fps "
                f"({sorted(theirs)} at {existing.fps} fps); write to a new folder or delete it"
            )
        self.info = existing.info
        self.tasks = list(existing.tasks)
        n = existing.num_episodes
        for path in sorted((self.root / "meta/episodes").glob("chunk-*/file-*.parquet")):
            kept = [r for r in read_parquet(path).to_pylist() if r["episode_index"] < n]
            self.rows += kept
            if kept:
                self.meta_digests[path.relative_to(self.root).as_posix()] = integrity.digest(kept)
        self.rows.sort(key=lambda r: r["episode_index"])
        self.episode_stats = [self._stats_from_row(r) for r in self.rows]
        self._remove_leftovers(n)

    def _stats_from_row(self, row: dict) -> dict[str, dict[str, np.ndarray]]:
        return stats_lib.from_episode_row(row, {k: f for k, f in self.features.items() if k not in INDEX_FEATURES})

    def _remove_leftovers(self, committed: int) -> None:
        """Delete temp files and files of episodes past the last commit; rewrite the last meta file."""
        for tmp in self.root.rglob("*.tmp*"):
            tmp.unlink(missing_ok=True)
        for sub in ["data"] + [f"videos/{k}" for k in self.video_keys]:
            for path in (self.root / sub).glob("chunk-*/file-*.*"):
                chunk, file = int(path.parent.name[6:]), int(path.stem[5:])
                if chunk * CHUNKS_SIZE + file >= committed:
                    path.unlink()
        last_file = (committed - 1) // EPISODES_PER_FILE if committed else -1
        for path in (self.root / "meta/episodes").glob("chunk-*/file-*.parquet"):
            if int(path.parent.name[6:]) * CHUNKS_SIZE + int(path.stem[5:]) > last_file:
                path.unlink()
        if committed:
            self._write_episode_meta(committed)  # drops rows of uncommitted episodes

    # -- appending ---------------------------------------------------------------------------
    @property
    def num_episodes(self) -> int:
        return len(self.rows)

    @property
    def num_frames(self) -> int:
        return sum(r["length"] for r in self.rows)

    @staticmethod
    def _file_location(episode: int) -> dict[str, int]:
        return {"chunk_index": episode // CHUNKS_SIZE, "file_index": episode % CHUNKS_SIZE}

    @staticmethod
    def _meta_location(episode: int) -> dict[str, int]:
        j = episode // EPISODES_PER_FILE
        return {"chunk_index": j // CHUNKS_SIZE, "file_index": j % CHUNKS_SIZE}

    def add_episode(self, task: str, data: Mapping[str, np.ndarray], videos: Mapping[str, np.ndarray | Path],
                    video_stats: Mapping[str, dict] | None = None, extras: Mapping[str, object] | None = None) -> int:
        """Commit one episode and return its index.

        `data` holds every non-video feature as (T, *shape) arrays; `videos` holds each video feature
        as (T, H, W, 3) uint8 frames to encode, or as the path of an mp4 already encoded with this
        writer's codec (moved into place; its `video_stats` must then be given).
        """
        self._check_episode(task, data, videos, video_stats)
        ep, length = self.num_episodes, len(next(iter(data.values())))
        start = self.num_frames
        if task not in self.tasks:
            self.tasks.append(task)
            new_task = True
        else:
            new_task = False
        index = {
            "timestamp": np.arange(length, dtype=np.float32) / self.info["fps"],
            "frame_index": np.arange(length, dtype=np.int64),
            "episode_index": np.full(length, ep, dtype=np.int64),
            "index": np.arange(start, start + length, dtype=np.int64),
            "task_index": np.full(length, self.tasks.index(task), dtype=np.int64),
        }
        columns = {**data, **index}
        table = pa.table({k: _arrow_column(np.asarray(columns[k]), self.features[k]["shape"])
                          for k in self.features if k not in self.video_keys})
        data_path = self.root / DATA_PATH.format(**self._file_location(ep))
        write_parquet_atomic(table, data_path)
        digests = {"data": integrity.sha256_file(data_path)}
        stats = {k: stats_lib.vector_stats(np.asarray(v)) for k, v in data.items()}
        for key, video in videos.items():
            dest = self.root / VIDEO_PATH.format(video_key=key, **self._file_location(ep))
            if isinstance(video, np.ndarray):
                encode_video(video, dest, self.info["fps"], self.codec)
                stats[key] = stats_lib.image_stats(video)
            else:
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(video), dest)
                stats[key] = {s: np.asarray(v) for s, v in video_stats[key].items()}
            digests[f"videos/{key}"] = integrity.sha256_file(dest)
        if new_task:
            write_parquet_atomic(_tasks_table(self.tasks), self.root / TASKS_PATH)
        self.rows.append(self._episode_row(ep, task, length, start, stats, extras or {}, digests))
        self.episode_stats.append(stats)
        self._write_episode_meta(ep + 1)
        self._commit()
        return ep

    def _check_episode(self, task, data, videos, video_stats) -> None:
        if not task:
            raise ValueError("an episode needs a non-empty task")
        expected = {k for k in self.features if k not in INDEX_FEATURES and k not in self.video_keys}
        if set(data) != expected or set(videos) != set(self.video_keys):
            raise ValueError(f"episode features {sorted(data) + sorted(videos)} != declared "
                             f"{sorted(expected | set(self.video_keys))}")
        lengths = {len(v) for v in data.values()} | {len(v) for v in videos.values() if isinstance(v, np.ndarray)}
        if len(lengths) != 1 or 0 in lengths:
            raise ValueError(f"all features of an episode need the same non-zero length, got {lengths}")
        for key, value in data.items():
            if tuple(np.shape(value)[1:]) not in (tuple(self.features[key]["shape"]), ()):
                raise ValueError(f"{key}: shape {np.shape(value)[1:]} != {self.features[key]['shape']}")
        for key, video in videos.items():
            if not isinstance(video, np.ndarray) and not (video_stats and key in video_stats):
                raise ValueError(f"{key}: a pre-encoded video needs its video_stats")

    def _episode_row(self, ep: int, task: str, length: int, start: int, stats: dict, extras: Mapping,
                     digests: Mapping[str, str]) -> dict:
        row: dict[str, object] = {
            "episode_index": ep, "tasks": [task], "length": length,
            **{f"data/{k}": v for k, v in self._file_location(ep).items()}, "data/sha256": digests["data"],
            "dataset_from_index": start, "dataset_to_index": start + length,
        }
        for key in self.video_keys:
            row.update({f"videos/{key}/{k}": v for k, v in self._file_location(ep).items()})
            row[f"videos/{key}/from_timestamp"] = 0.0
            row[f"videos/{key}/to_timestamp"] = length / self.info["fps"]
            row[f"videos/{key}/sha256"] = digests[f"videos/{key}"]
        row.update({f"meta/episodes/{k}": v for k, v in self._meta_location(ep).items()})
        for key, s in stats.items():
            row.update({f"stats/{key}/{name}": np.asarray(v, dtype=np.float64).reshape(-1).tolist()
                        for name, v in s.items()})
        row.update(extras)
        return row

    def _write_episode_meta(self, upto: int) -> None:
        """Rewrite the meta/episodes file that holds episode `upto - 1` (rows up to `upto`)."""
        last = max(upto - 1, 0)
        first = last - last % EPISODES_PER_FILE
        rows = [r for r in self.rows if first <= r["episode_index"] < upto]
        path = self.root / EPISODES_PATH.format(**self._meta_location(last))
        name = path.relative_to(self.root).as_posix()
        if rows:
            table = pa.Table.from_pylist(rows)
            write_parquet_atomic(table, path)
            self.meta_digests[name] = integrity.digest(table.to_pylist())
        else:
            path.unlink(missing_ok=True)
            self.meta_digests.pop(name, None)

    def _commit(self) -> None:
        stats = None
        if self.episode_stats:
            merged = {k: stats_lib.aggregate(s[k] for s in self.episode_stats) for k in self.episode_stats[0]}
            stats = stats_lib.to_json(merged)
            write_json_atomic(stats, self.root / STATS_PATH)
        n = self.num_episodes
        self.info.update(total_episodes=n, total_frames=self.num_frames, total_tasks=len(self.tasks),
                         splits={"train": f"0:{n}"})
        self.info = integrity.seal({k: v for k, v in self.info.items() if k != integrity.KEY}, self.meta_digests,
                                   self.tasks, stats)
        write_json_atomic(self.info, self.root / INFO_PATH)
