"""The client's action queue: when chunks are requested, how overlaps are joined, boundary jumps."""

from __future__ import annotations

import time

import numpy as np
import pytest

from wam.errors import ConfigError
from wam.serve.chunking import ChunkedControl, boundary_jumps


class Planner:
    """Chunk k (from 1) is the values 10k, 10k+1, ... (one action dim); records every request."""

    def __init__(self, chunk: int, wait: float = 0.0):
        self.chunk, self.wait, self.calls = chunk, wait, []

    def __call__(self, obs, prefix):
        self.calls.append((obs, None if prefix is None else prefix.copy()))
        time.sleep(self.wait)
        base = 10.0 * len(self.calls)
        out = (base + np.arange(self.chunk, dtype=np.float64))[:, None]
        if prefix is not None:  # as the sampler does: the committed actions are kept
            out[: len(prefix)] = prefix
        return out


def run(ctl: ChunkedControl, steps: int) -> list[float]:
    return [float(ctl.step(t)[0]) for t in range(steps)]


def test_synchronous_execution_is_the_policy_queue():
    planner = Planner(4)
    ctl = ChunkedControl(planner, chunk=4, keep=2)
    assert run(ctl, 5) == [10, 11, 20, 21, 30]
    assert [obs for obs, _ in planner.calls] == [0, 2, 4]  # a request whenever the queue is empty


def test_threshold_requests_early_and_delay_keeps_the_old_chunk_running():
    planner = Planner(4)
    ctl = ChunkedControl(planner, chunk=4, threshold=2, delay=1)
    actions = run(ctl, 6)
    # chunk 1 from step 0; at step 2 (2 left) chunk 2 is requested, lands at step 3 and covers steps 2..5
    assert [obs for obs, _ in planner.calls][:2] == [0, 2]
    assert actions[:4] == [10, 11, 12, 21]
    assert ctl.sources[:4] == [1, 1, 1, 2]


def test_blend_cross_fades_the_overlap():
    planner = Planner(4)
    ctl = ChunkedControl(planner, chunk=4, threshold=2, merge="blend")
    actions = run(ctl, 4)
    # chunk 2 (requested at step 2, landing at once) overlaps chunk 1 at steps 2, 3 with weights 1/3, 2/3
    assert actions[2] == pytest.approx(12 * 2 / 3 + 20 / 3) and actions[3] == pytest.approx(13 / 3 + 21 * 2 / 3)


def test_rtc_sends_the_committed_actions_and_continues_them():
    planner = Planner(4)
    ctl = ChunkedControl(planner, chunk=4, threshold=2, merge="rtc")
    actions = run(ctl, 5)
    assert planner.calls[1][1][:, 0].tolist() == [12, 13]  # the old chunk's remaining actions
    assert actions == [10, 11, 12, 13, 22]  # continued without a jump where the chunks meet


def test_asynchronous_requests_do_not_block_while_actions_remain():
    planner = Planner(8, wait=0.2)
    ctl = ChunkedControl(planner, chunk=8, threshold=6, asynchronous=True, timeout=5)
    start = time.perf_counter()
    first = run(ctl, 3)  # the first chunk must be waited for; the next is requested at step 2 and runs behind
    assert first == [10, 11, 12] and time.perf_counter() - start < 0.39
    assert ctl.pending is not None  # chunk 2 in flight while the robot keeps acting
    ctl.wait()
    assert len(planner.calls) == 2 and planner.calls[1][0] == 2
    run(ctl, 20)  # later chunks land; when the queue runs dry it waits, never fails
    assert max(ctl.sources) >= 3
    ctl.close()


def test_bad_settings():
    for kw in ({"merge": "average"}, {"threshold": 4}, {"keep": 5}, {"delay": -1}):
        with pytest.raises(ConfigError):
            ChunkedControl(Planner(4), chunk=4, **kw)


def test_boundary_jumps():
    actions = np.array([[0.0], [1.0], [5.0], [6.0], [7.0]])
    assert boundary_jumps(actions, [1, 1, 2, 2, 2]) == (4.0, 1.0)
    at, inside = boundary_jumps(actions[:2], [1, 2])
    assert at == 1.0 and np.isnan(inside)
