"""Chunked control on the robot's side: an action queue fed by chunks, joined where they overlap.

    ctl = ChunkedControl(predict, chunk=16, keep=16, threshold=6, merge="rtc")
    ctl.reset()
    action = ctl.step(obs)          # every control step

`predict(obs, prefix) -> (Ta, Da)` returns a chunk for the observation (`prefix`: the actions
already committed for the chunk's first steps, or None). The queue holds one planned action per
future step. When `threshold` or fewer remain, the next chunk is requested from the current
observation, *before* the queue runs out; it covers steps s .. s + Ta - 1 from the request's step s
and lands `delay` steps later (`asynchronous=True`: whenever the request thread is done; the robot
keeps executing the old chunk meanwhile and only waits if the queue runs dry). Where old and new
chunks overlap they are joined by `merge`:

- `"latest"`: the new chunk replaces the old from the step it lands (a jump at each boundary);
- `"blend"`: a linear cross-fade over the overlap, the new chunk's weight rising from 1/(n+1) to n/(n+1);
- `"rtc"`: real-time chunking: the remaining old actions are sent as `prefix` and the flow sampler
  keeps them fixed while it generates the rest (inpainting), so the new chunk continues the old.

`keep` actions of each chunk are used (`keep < chunk` with `threshold=0` is the synchronous
open-loop execution of `WamPolicy.select_action`). `sources` records which chunk every executed
action came from, and `boundary_jumps` measures mean |a_t - a_{t-1}| at chunk boundaries vs inside.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from wam.errors import ConfigError

MERGES = ("latest", "blend", "rtc")


class ChunkedControl:
    """The action queue (step -> action) and the policy for requesting and joining chunks."""

    def __init__(self, predict: Callable[[object, np.ndarray | None], np.ndarray], chunk: int, keep: int | None = None,
                 threshold: int = 0, merge: str = "latest", delay: int = 0, asynchronous: bool = False,
                 timeout: float = 60.0):
        keep = keep or chunk
        if merge not in MERGES:
            raise ConfigError(f"merge must be one of {MERGES}, got {merge!r}")
        if not 1 <= keep <= chunk or not 0 <= threshold < keep or delay < 0:
            raise ConfigError(f"need 1 <= keep ({keep}) <= chunk ({chunk}), 0 <= threshold ({threshold}) < keep "
                              f"and delay ({delay}) >= 0")
        self.predict, self.chunk, self.keep, self.threshold = predict, chunk, keep, threshold
        self.merge, self.delay, self.timeout = merge, delay, timeout
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="wam-chunk") if asynchronous else None
        self.pending: tuple[int, int, Future | np.ndarray] | None = None  # (made at step, chunk id, result)
        self.reset()

    def reset(self) -> None:
        self.wait()
        self.t = 0
        self.plan: dict[int, tuple[np.ndarray, int]] = {}  # step -> (action, chunk id)
        self.pending: tuple[int, int, Future | np.ndarray] | None = None  # (made at step, chunk id, result)
        self.chunks = 0
        self.actions: list[np.ndarray] = []  # executed, in order
        self.sources: list[int] = []  # chunk id of each executed action

    def wait(self) -> None:
        """Let an in-flight request finish (its result is dropped by `reset`)."""
        if self.pending is not None and isinstance(self.pending[2], Future):
            try:
                self.pending[2].result(self.timeout)
            except Exception:  # noqa: BLE001 - a failed request being dropped is not this call's error
                pass

    def remaining(self) -> int:
        return sum(1 for s in self.plan if s >= self.t)

    def _request(self, obs) -> None:
        committed = [self.plan[s][0] for s in range(self.t, self.t + self.chunk - 1) if s in self.plan]
        prefix = np.stack(committed) if self.merge == "rtc" and committed else None
        self.chunks += 1
        if self._pool is not None:
            self.pending = (self.t, self.chunks, self._pool.submit(self.predict, obs, prefix))
        else:
            self.pending = (self.t, self.chunks, self.predict(obs, prefix))

    def _landed(self) -> bool:
        made, _, result = self.pending
        if isinstance(result, Future):
            if self.remaining() == 0:  # the queue ran dry: the robot waits for the chunk
                result.result(self.timeout)
            return result.done()
        return self.t >= made + self.delay or self.remaining() == 0

    def _join(self) -> None:
        made, cid, result = self.pending
        self.pending = None
        new = np.asarray(result.result(self.timeout) if isinstance(result, Future) else result)  # (Ta, Da)
        steps = [s for s in range(made, made + self.keep) if s >= self.t]
        overlap = [s for s in steps if s in self.plan]
        for s in steps:
            a = new[s - made]
            if s in self.plan and self.merge == "blend":
                w = (overlap.index(s) + 1) / (len(overlap) + 1)
                a = (1 - w) * self.plan[s][0] + w * a
            self.plan[s] = (a, cid)
        for s in [s for s in self.plan if s >= made + self.keep]:
            del self.plan[s]  # an older chunk's tail beyond the new chunk's horizon is dropped

    def step(self, obs) -> np.ndarray:
        """The action for this control step (requests and joins chunks as needed)."""
        if self.pending is None and self.remaining() <= self.threshold:
            self._request(obs)
        if self.pending is not None and self._landed():
            self._join()
        action, cid = self.plan.pop(self.t)
        self.actions.append(action)
        self.sources.append(cid)
        self.t += 1
        return action

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


def boundary_jumps(actions: np.ndarray | list, sources: list[int]) -> tuple[float, float]:
    """(mean |a_t - a_{t-1}| where the chunk changes, mean where it does not); nan when none."""
    a = np.asarray(actions, np.float64)
    if len(a) < 2:
        return float("nan"), float("nan")
    jump = np.abs(np.diff(a, axis=0)).mean(axis=1)  # (T-1,)
    changed = np.asarray(sources[1:]) != np.asarray(sources[:-1])
    at = float(jump[changed].mean()) if changed.any() else float("nan")
    inside = float(jump[~changed].mean()) if (~changed).any() else float("nan")
    return at, inside
