"""`PolicyClient`: the policy contract (reset, predict_action_chunk, select_action) over a `wam serve` server.

    from wam.client import PolicyClient
    policy = PolicyClient("127.0.0.1:8765")                 # token="..." for a non-loopback server
    policy.reset(seed=10_000, task="reach-v3")              # the episode's noise, seeded as local eval seeds it
    action = policy.select_action({**obs, "task": text})   # (Da,) from the action queue
    chunk = policy.predict_action_chunk({**obs, "task": text})   # (Ta, Da)

The client keeps the observation history (the policy's obs offsets come from the server's model
info) and sends the frames and states at those offsets with each request. `select_action` runs
`wam.serve.chunking.ChunkedControl`: by default exactly `WamPolicy.select_action`'s synchronous
queue (`n_action_steps` of each chunk), or, with `threshold > 0`, asynchronous chunked control with
`merge="latest" | "blend" | "rtc"`. Every server-side refusal arrives as a `RemoteError` (a WamError)
carrying the server's one-line reason; the connection stays usable.
"""

from __future__ import annotations

import os
from collections import deque

import numpy as np
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI
from websockets.sync.client import connect

from wam.errors import WamError
from wam.policy import history_picks
from wam.serve.chunking import ChunkedControl
from wam.serve.protocol import decode, encode

STATE_KEY = "observation.state"


class RemoteError(WamError):
    """The server refused a request (the message is its reason) or could not be reached."""


class PolicyClient:
    """A remote policy with the local one's methods; not thread-safe (one client per control loop)."""

    def __init__(self, address: str, token: str = "", timeout: float = 60.0, threshold: int = 0,
                 merge: str = "latest", asynchronous: bool = False, delay: int = 0, keep: int | None = None):
        self.address, self.timeout = address, timeout
        token = token or os.environ.get("WAM_SERVE_TOKEN", "")
        headers = {"Authorization": f"Bearer {token}"} if token else None
        try:
            self._ws = connect(f"ws://{address}", additional_headers=headers, open_timeout=timeout, proxy=None,
                               compression=None, max_size=None, close_timeout=2).__enter__()  # closed by close()
        except InvalidStatus as exc:
            code = exc.response.status_code
            why = "refused the token (missing or wrong --token)" if code == 401 else f"answered HTTP {code}"
            raise RemoteError(f"the policy server at {address} {why}") from None
        except (OSError, TimeoutError, InvalidURI, ValueError) as exc:
            raise RemoteError(f"no policy server at {address} ({exc})") from None
        self._id = 0
        self.last_value: float | None = None
        self.info = self.call("info")["info"]
        self.image_key = next(k for k in self.info["features"] if k != STATE_KEY)
        self.chunk, self.offsets = self.info["chunk"], tuple(self.info["obs_offsets"])
        self.record_imagination, self.imagined = False, None  # the server sends no imagined frames
        keep = keep or (self.info["n_action_steps"] if threshold == 0 else self.chunk)
        self.control = ChunkedControl(self._predict_window, self.chunk, keep, threshold, merge, delay, asynchronous,
                                      timeout)
        self._history: deque = deque(maxlen=1 - min(self.offsets))

    # -- transport ------------------------------------------------------------------------------
    def call(self, kind: str, **fields) -> dict:
        """One request, its reply (raises RemoteError with the server's reason when refused)."""
        self._id += 1
        data = encode({"type": kind, "id": self._id, **fields})
        limit = getattr(self, "info", {}).get("max_bytes")
        if limit and len(data) > limit:
            raise RemoteError(f"a {kind} message of {len(data)} bytes is over the server's limit of {limit} bytes")
        try:
            self._ws.send(data)
            reply = decode(self._ws.recv(timeout=self.timeout))
        except TimeoutError:
            raise RemoteError(f"the policy server at {self.address} did not answer within {self.timeout:.0f} s") from None
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else None
            why = "the message was over its size limit" if code == 1009 else f"close code {code}"
            raise RemoteError(f"the policy server at {self.address} closed the connection ({why})") from None
        if reply.get("id") != self._id:
            raise RemoteError(f"reply {reply.get('id')} does not answer request {self._id}")
        if not reply.get("ok"):
            raise RemoteError(f"the policy server refused a {kind} request: {reply.get('error')}")
        self.last_server_ms = reply.get("server_ms")
        return reply

    def close(self) -> None:
        self.control.close()
        self._ws.close()

    def __enter__(self) -> PolicyClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the policy contract ------------------------------------------------------------------
    def health(self) -> bool:
        return self.call("health")["status"] == "ok"

    def reset(self, seed: int | None = None, task: str | None = None, episode: int = 0) -> None:
        """A new episode; with `seed`, the server draws its noise from `episode_generator(seed, task, episode)`."""
        self.control.reset()
        self._history.clear()
        fields = {} if seed is None else {"seed": int(seed), "task": task or "", "episode": int(episode)}
        self.call("reset", **fields)

    def _remember(self, obs: dict) -> None:
        missing = {self.image_key, STATE_KEY, "task"} - set(obs)
        if missing:
            raise WamError(f"an observation needs {sorted(missing)}; got {sorted(obs)}")
        self._history.append((np.asarray(obs[self.image_key]), np.asarray(obs[STATE_KEY], np.float32), obs["task"]))

    def _window(self) -> tuple[dict, str]:
        picks = history_picks(self.offsets, len(self._history))
        frames = np.stack([self._history[i][0] for i in picks])  # (To, H, W, 3)
        states = np.stack([self._history[i][1] for i in picks])  # (To, Ds)
        return {self.image_key: frames, STATE_KEY: states}, self._history[-1][2]

    def _predict_window(self, window: tuple[dict, str], prefix: np.ndarray | None) -> np.ndarray:
        obs, task = window
        fields = {"obs": obs, "task": task} | ({} if prefix is None else {"prefix": np.asarray(prefix, np.float32)})
        reply = self.call("predict", **fields)
        self.last_value = reply.get("value")  # the chunk's predicted value, from a policy with a value frame
        return reply["chunk"]

    def predict_action_chunk(self, obs: dict, prefix: np.ndarray | None = None) -> np.ndarray:
        """(Ta, Da) for this observation (it joins the history unless the server refuses it)."""
        return self._with(obs, lambda window: self._predict_window(window, prefix))

    def select_action(self, obs: dict) -> np.ndarray:
        return self._with(obs, self.control.step)

    def _with(self, obs: dict, use):
        self._remember(obs)
        try:
            return use(self._window())
        except Exception:
            self._history.pop()  # a refused observation does not stay in the history
            raise

    @property
    def state_dim(self) -> int:
        """Size of the `observation.state` the served policy takes."""
        return int(self.info["features"][STATE_KEY]["shape"][-1])

    @property
    def state_names(self) -> tuple[str, ...]:
        """Per-dimension names of that state (() when the server does not say)."""
        return tuple(self.info["features"][STATE_KEY].get("names") or ())

    @property
    def _queue(self) -> list:
        """Planned actions not yet executed (`wam eval` reads it to time the chunk requests)."""
        return [s for s in self.control.plan if s >= self.control.t]
