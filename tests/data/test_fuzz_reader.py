"""Fuzzing the dataset reader, and properties of training windows.

Every file of a small dataset (info.json, stats.json, tasks, meta/episodes, data parquet, mp4) is
truncated or has bytes flipped, one damage at a time, from fixed seeds. Reading the whole dataset
(metadata, every column, every frame) must then either give exactly the data of the undamaged dataset
or raise `DatasetError`: never another exception, never different data; and `wam data check --full`
must then report a problem (it never fails itself). The default run tries
`FAST_CASES` damages; `-m slow` runs `SLOW_CASES`. Run this file as a script for the counts:

    PYTHONPATH=src python -m tests.data.test_fuzz_reader [CASES]
"""

from __future__ import annotations

import sys
import tempfile
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import IMAGE_KEY, write_dataset
from wam.data.check import check_dataset
from wam.data.frames import ArrayFrames, episode_starts
from wam.data.lerobot_format import LeRobotDataset
from wam.data.windows import WindowDataset, WindowSpec
from wam.errors import DatasetError

FAST_CASES, SLOW_CASES = 120, 3000
LENGTHS = (6, 9)


def read_everything(root: Path) -> dict:
    """What a user of the reader gets from a dataset: metadata, every column, every frame."""
    ds = LeRobotDataset(root)
    columns = [k for k, f in ds.features.items() if f["dtype"] != "video"]
    return {
        "fps": ds.fps, "features": ds.features, "tasks": ds.tasks,
        "episodes": [{k: v for k, v in asdict(e).items() if k != "digests"} for e in ds.episodes],
        "stats": ds.stats, "columns": ds.read_columns(columns),
        "frames": {(k, e): ds.decode_frames(k, e) for k in ds.video_keys for e in range(ds.num_episodes)},
    }


def same(a, b) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.asarray(a).shape == np.asarray(b).shape and np.array_equal(a, b, equal_nan=True)
    return type(a) is type(b) and a == b


def damage(data: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
    """A truncation, a one-byte flip or a burst of up to 8 flipped bytes, at a random place."""
    kind = rng.choice(["truncate", "flip", "burst"], p=[0.3, 0.5, 0.2])
    if kind == "truncate":
        return kind, data[: int(rng.integers(0, len(data)))]
    out = bytearray(data)
    at, n = int(rng.integers(0, len(data))), 1 if kind == "flip" else int(rng.integers(2, 9))
    for i in range(at, min(at + n, len(data))):
        out[i] ^= int(rng.integers(1, 256))
    return kind, bytes(out)


def fuzz(root: Path, cases: int, seed: int = 0) -> Counter:
    """Damage the files of the dataset at `root` `cases` times (restoring each); count the outcomes."""
    reference = read_everything(root)
    files = sorted(p for p in root.rglob("*") if p.is_file() and ".wam_cache" not in p.parts)
    rng = np.random.default_rng(seed)
    counts: Counter = Counter()
    for i in range(cases):
        path = files[i % len(files)]
        original = path.read_bytes()
        kind, broken = damage(original, rng)
        path.write_bytes(broken)
        try:
            outcome = "same data" if same(read_everything(root), reference) else "WRONG DATA"
        except DatasetError:
            outcome = "clear error"
        except Exception as exc:  # noqa: BLE001: what the test is looking for
            outcome = f"OTHER EXCEPTION {type(exc).__name__}"
        try:  # `wam data check --full` must see whatever the reader refused, and never fail itself
            if outcome == "clear error" and not check_dataset(root, full=True).problems:
                outcome = "CHECK MISSED IT"
        except Exception as exc:  # noqa: BLE001
            outcome = f"OTHER EXCEPTION in check {type(exc).__name__}"
        finally:
            path.write_bytes(original)
        counts[outcome] += 1
        counts[f"{path.suffix} {kind} -> {outcome}"] += 1
        if outcome.isupper() or outcome.startswith("OTHER"):
            counts[f"bug: {path.relative_to(root)} {kind} seed {seed} case {i}"] += 1
    return counts


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fuzz") / "ds"
    write_dataset(root, lengths=LENGTHS)
    return root


def _bugs(counts: Counter) -> list[str]:
    return [k for k in counts if k.startswith("bug:")]


def test_fuzz_reader_gives_the_data_or_a_clear_error(small_dataset):
    counts = fuzz(small_dataset, FAST_CASES)
    assert not _bugs(counts), _bugs(counts)
    assert counts["clear error"] > FAST_CASES // 2  # the damage was real, and seen
    assert sum(counts[k] for k in ("same data", "clear error")) == FAST_CASES


@pytest.mark.slow
def test_fuzz_reader_many_cases(small_dataset):
    counts = fuzz(small_dataset, SLOW_CASES, seed=1)
    assert not _bugs(counts), _bugs(counts)


# -- properties of windows: offsets and padding masks ------------------------------------------------
def _offsets(sign: int, max_size: int = 4):
    return st.lists(st.integers(1, 12), min_size=1 if sign < 0 else 0, max_size=max_size, unique=True).map(
        lambda xs: tuple(sorted(sign * x for x in xs)))


@st.composite
def specs(draw):
    obs = tuple(sorted({0, *draw(_offsets(-1, 3))}))
    future = draw(_offsets(1))
    action = tuple(sorted(set(draw(st.lists(st.integers(-3, 12), max_size=5)))))
    return WindowSpec(obs=obs, future=future, action=action)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=specs(), pick=st.integers(0, 10_000))
def test_windows_clamp_offsets_and_mark_padding(small_dataset, spec, pick):
    ds = LeRobotDataset(small_dataset)
    starts = episode_starts(ds)
    rows = np.arange(starts[-1])
    frames = np.broadcast_to(rows[:, None, None, None].astype(np.uint8), (len(rows), 2, 2, 3))
    if spec.largest_offset() >= max(LENGTHS):
        with pytest.raises(Exception, match="cannot be served"):
            WindowDataset(ds, spec, frames=ArrayFrames(frames, starts))
        return
    windows = WindowDataset(ds, spec, frames=ArrayFrames(frames, starts))
    columns = ds.read_columns(["observation.state", "action"])
    i = pick % len(windows)
    sample = windows[i]
    e, t = sample["episode_index"], sample["frame_index"]
    length = ds.episodes[e].length
    assert starts[e] + t == i  # one sample per frame, in order
    for name, offsets in (("obs", spec.obs), ("future", spec.future), ("action", spec.action)):
        raw = t + np.asarray(offsets, dtype=int)
        clamped = starts[e] + np.clip(raw, 0, length - 1)
        pad = sample.get(f"{name}_is_pad")
        if not offsets:
            assert pad is None or len(pad) == 0
            continue
        assert pad.tolist() == ((raw < 0) | (raw >= length)).tolist()
        if name == "action":
            np.testing.assert_array_equal(sample["action"].numpy(), columns["action"][clamped])
        else:
            np.testing.assert_array_equal(sample[f"{name}.image"][:, 0, 0, 0].numpy(), clamped.astype(np.uint8))
    np.testing.assert_array_equal(sample["obs.state"].numpy(), columns["observation.state"][starts[e] + np.clip(
        t + np.asarray(spec.obs), 0, length - 1)])


if __name__ == "__main__":  # [CASES [SEED]] [--unsealed: without wam's checksums, as a dataset made elsewhere]
    from tests.conftest import unseal

    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    with tempfile.TemporaryDirectory() as tmp:
        write_dataset(Path(tmp) / "ds", lengths=LENGTHS)
        if "--unsealed" in sys.argv:
            unseal(Path(tmp) / "ds")
        n = int(args[0]) if args else FAST_CASES
        result = fuzz(Path(tmp) / "ds", n, seed=int(args[1]) if len(args) > 1 else 0)
        for key, value in sorted(result.items()):
            print(f"{value:6d}  {key}")
