"""`wam data merge OUT SRC [SRC ...]`: several datasets of one schema into one (e.g. a video pool made of
separate collections, which `wam pretrain` and `wam study`'s `data.video.path` read as one dataset).

Episodes are appended source by source, in order, with their instruction, frames and columns and
wam's own per-episode fields (env_task, seed); videos are decoded and encoded again with the
writer's codec (one more generation at its quality). Killed at any moment, OUT holds every episode
committed so far; run the same command again and it resumes after them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm

from wam.data.lerobot_format import INDEX_FEATURES, LeRobotDataset
from wam.data.writer import LeRobotWriter
from wam.errors import ConfigError
from wam.runs.lock import folder_lock


def _schema(ds: LeRobotDataset) -> dict[str, dict]:
    """The features a writer is given (no index columns, no codec info)."""
    return {k: {f: v for f, v in feat.items() if f != "info"} for k, feat in ds.features.items()
            if k not in INDEX_FEATURES}


def merge_datasets(sources: Sequence[str | Path], out: str | Path, progress: bool = True) -> int:
    """Append every episode of `sources` to `out` (resumed after the episodes it holds); returns the count."""
    if not sources:
        raise ConfigError("wam data merge: name at least one source dataset")
    if any(Path(s).resolve() == Path(out).resolve() for s in sources):
        raise ConfigError(f"wam data merge: {out} is also a source; write the merge to another folder")
    sets = [LeRobotDataset(s) for s in sources]
    first = sets[0]
    for s, ds in zip(sources[1:], sets[1:]):
        if ds.fps != first.fps or _schema(ds) != _schema(first):
            raise ConfigError(f"wam data merge: {s} does not match {sources[0]} (fps {ds.fps} vs {first.fps}, "
                              f"features {sorted(_schema(ds))} vs {sorted(_schema(first))}): one camera, size and "
                              "schema for all")
    columns = [k for k in _schema(first) if k not in first.video_keys]
    todo = [(ds, ep) for ds in sets for ep in ds.episodes]
    with folder_lock(out):
        writer = LeRobotWriter(out, fps=first.fps, features=_schema(first))
        done = writer.num_episodes
        for ds, ep in tqdm(todo[done:], desc="merge", disable=not progress, dynamic_ncols=True):
            data = ds.read_columns(columns, [ep.index])
            videos = {k: ds.decode_frames(k, ep.index) for k in ds.video_keys}
            writer.add_episode(ep.tasks[0], data, videos, extras=dict(ep.extras))
    return len(todo)
