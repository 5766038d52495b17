"""`wam serve`: a trained policy behind a WebSocket server that any robot process can query.

    wam serve --policy=runs/repr [--host=127.0.0.1 --port=8765 --token=... --max_mb=16 --sample_steps=4]

Messages are msgpack maps (wam.serve.protocol; never pickle). Plain HTTP `GET /health` answers
"ok" and `GET /info` the model info as JSON; over the WebSocket the same come as `health` / `info`
requests, beside `reset` and `predict`. Only loopback addresses are served without a token: any other
host needs `--token` (clients send `Authorization: Bearer TOKEN`; a mismatch is refused with 401).
Each connection is one session (its own episode generator and the paradigm's test-time state);
its requests are answered in order. One model serves every session: inference runs one request
at a time in a worker thread, so health checks and other clients' messages are never blocked by
the event loop. Every request's server-side latency is logged (logger `wam.serve`).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path

import numpy as np
import torch
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from wam.data.windows import STATE_KEY
from wam.errors import ConfigError, WamError
from wam.policy import WamPolicy
from wam.runs.device import check_device
from wam.runs.precision import check_precision
from wam.runs.seeding import episode_generator
from wam.serve.protocol import DEFAULT_MAX_BYTES, ProtocolError, check_request, decode, encode

LOG = logging.getLogger("wam.serve")
TEST_TIME_STATE = ("_plan",)  # paradigm attributes that live for an episode (hierarchical's cached plan)


@dataclass
class ServeConfig:
    policy: str = ""  # a `wam train` run folder or checkpoint, or a `wam plan` folder
    host: str = "127.0.0.1"
    port: int = 8765
    token: str = ""  # shared secret; required for a non-loopback host
    max_mb: float = DEFAULT_MAX_BYTES / 2**20  # largest message accepted, MiB
    sample_steps: int = 0  # flow sampling steps (0 = the policy's own)
    kv_cache: bool = True  # reuse the clean groups' keys/values across sampling steps
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    precision: str = "auto"  # auto | fp32 | bf16 | fp16 (auto measures, see wam.runs.precision)

    def check(self) -> None:
        check_device(self.device)
        check_precision(self.precision, "--precision")
        if not self.policy:
            raise ConfigError("--policy is required (a `wam train` run folder)")
        if not 0 <= self.port < 65536:
            raise ConfigError(f"--port must be in 0..65535, got {self.port}")
        if self.max_mb <= 0 or self.sample_steps < 0:
            raise ConfigError("--max_mb must be > 0 and --sample_steps >= 0")
        if not self.token and not is_loopback(self.host):
            raise ConfigError(f"--host={self.host} is reachable from other machines: set --token=SECRET "
                              f"(clients send it), or serve on 127.0.0.1")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def model_info(policy: WamPolicy, control_hz: float | None = None, tasks: list[str] = (),
               max_bytes: int = DEFAULT_MAX_BYTES) -> dict:
    """What a client needs: features with shapes, chunk length, control rate, tasks."""
    p, size = policy.paradigm, policy.paradigm.image_size
    to = len(p.cfg.obs)
    source = policy.source_size or size
    return {"paradigm": getattr(p, "name", ""), "integration": getattr(p.cfg, "integration", "tokens"),
            "features": {policy.image_key: {"dtype": "uint8", "shape": [to, source, source, 3]},
                         STATE_KEY: {"dtype": "float32", "shape": [to, policy.normalizer.state_mean.numel()],
                                     "names": list(policy.state_names) or None}},
            "image_sizes": sorted({size, source}), "obs_offsets": list(p.cfg.obs),
            "action": {"dtype": "float32", "shape": [policy.chunk, policy.normalizer.action_min.numel()]},
            "chunk": policy.chunk, "n_action_steps": policy.n_action_steps, "control_hz": control_hz,
            "future": list(getattr(p.cfg, "future", ())), "sample_steps": p.cfg.sample_steps,
            "rtc": _supports_prefix(p), "tasks": list(tasks), "max_bytes": max_bytes}


def _supports_prefix(paradigm) -> bool:
    return bool(getattr(paradigm, "keeps_prefix", False))  # the declared capability (wam.paradigms.base)


def _fps(run_cfg) -> float | None:
    try:
        return float(json.loads((Path(run_cfg.data.path) / "meta/info.json").read_text())["fps"])
    except (OSError, KeyError, ValueError, AttributeError):
        return None


def _tasks(run_path: str) -> list[str]:
    from wam.checkpoint import resolve_checkpoint

    if (Path(run_path) / "tasks.json").exists():  # a run folder, or a `wam plan` folder (no checkpoint)
        return json.loads((Path(run_path) / "tasks.json").read_text())["env_tasks"]
    folder = resolve_checkpoint(run_path)
    for where in (folder, *folder.parents[:2]):
        if (where / "tasks.json").exists():
            return json.loads((where / "tasks.json").read_text())["env_tasks"]
    return []


@dataclass
class Session:
    """One connection's episode state: its noise generator and the paradigm's test-time state."""

    peer: str
    generator: torch.Generator | None = None
    state: dict | None = None  # None: not started (the first request starts it as a reset would)


class PolicyService:
    """The requests' meaning, transport-free: `handle(message, session) -> reply` (thread-safe)."""

    def __init__(self, policy: WamPolicy, info: dict):
        self.policy, self.info = policy.eval(), info
        self._lock = threading.Lock()  # one inference at a time: the model and its test-time state are shared

    def handle(self, message: dict, session: Session) -> dict:
        kind = check_request(message)
        if kind == "health":
            return {"status": "ok"}
        if kind == "info":
            return {"info": self.info}
        if kind == "reset":
            return self._reset(message, session)
        chunk, value = self._predict(message, session)
        return {"chunk": chunk} | ({} if value is None else {"value": value})

    def _reset(self, message: dict, session: Session) -> dict:
        seed, task, episode = message.get("seed"), message.get("task", ""), message.get("episode", 0)
        if not (seed is None or isinstance(seed, int)) or not isinstance(episode, int) or not isinstance(task, str):
            raise ProtocolError(f"a reset takes an integer 'seed' and 'episode' and a string 'task'; got "
                                f"{seed!r}, {episode!r}, {task!r}")
        session.generator = None if seed is None else episode_generator(seed, task, episode)
        with self._lock:
            self._fresh(session)
        return {"status": "reset"}

    def _fresh(self, session: Session) -> None:
        """The paradigm's test-time state at an episode's start, kept for this session (under the lock)."""
        if hasattr(self.policy.paradigm, "reset"):
            self.policy.paradigm.reset()
        session.state = {k: getattr(self.policy.paradigm, k) for k in TEST_TIME_STATE if hasattr(self.policy.paradigm, k)}

    def _predict(self, message: dict, session: Session) -> tuple[np.ndarray, float | None]:
        """The chunk, and the value its value frame predicted (None without one)."""
        obs, task, prefix = message["obs"], message["task"], message.get("prefix")
        features = self.info["features"]
        if not isinstance(obs, dict) or set(obs) != set(features):
            got = sorted(obs) if isinstance(obs, dict) else type(obs).__name__
            raise ProtocolError(f"observation keys {got} do not match the policy's features {sorted(features)}")
        if not isinstance(task, str):
            raise ProtocolError(f"'task' must be a string, got {type(task).__name__}")
        frames, states = obs[self.policy.image_key], obs[STATE_KEY]
        for key, value in obs.items():
            if not isinstance(value, np.ndarray):
                raise ProtocolError(f"'{key}' must be an array, got {type(value).__name__}")
        if prefix is not None and not isinstance(prefix, np.ndarray):
            raise ProtocolError(f"'prefix' must be an array, got {type(prefix).__name__}")
        with self._lock:
            if session.state is None:
                self._fresh(session)
            for k, v in session.state.items():
                setattr(self.policy.paradigm, k, v)
            try:
                chunk = self.policy.predict_from_history(frames, states, task, session.generator, prefix)
                return chunk.astype(np.float32), self.policy.last_value
            finally:
                session.state = {k: getattr(self.policy.paradigm, k) for k in session.state}


class PolicyServer:
    """The WebSocket front of a PolicyService; `start()` serves from a background thread (tests,
    benchmarks), `serve_forever()` from this one (the CLI)."""

    def __init__(self, service: PolicyService, host: str = "127.0.0.1", port: int = 0, token: str = "",
                 max_bytes: int = DEFAULT_MAX_BYTES):
        if not token and not is_loopback(host):
            raise ConfigError(f"host {host} is not a loopback address: a token is required")
        self.service, self.host, self.port, self.token, self.max_bytes = service, host, port, token, max_bytes
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # -- HTTP side: health, info, the token ------------------------------------------------------
    def _process_request(self, connection: ServerConnection, request):
        path = request.path.split("?")[0]
        if path == "/health":
            return connection.respond(HTTPStatus.OK, "ok\n")
        if self.token:
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
                LOG.warning("refused %s: missing or wrong token", connection.remote_address)
                return connection.respond(HTTPStatus.UNAUTHORIZED, "missing or wrong token\n")
        if path == "/info":
            return connection.respond(HTTPStatus.OK, json.dumps(self.service.info) + "\n")
        return None

    # -- WebSocket side ----------------------------------------------------------------------
    async def _handler(self, ws: ServerConnection) -> None:
        session = Session(peer=f"{ws.remote_address[0]}:{ws.remote_address[1]}")
        LOG.info("%s connected", session.peer)
        try:
            async for data in ws:
                start = time.perf_counter()
                reply, kind, rid = await self._answer(data, session)
                reply["server_ms"] = 1000 * (time.perf_counter() - start)
                LOG.info("%s %s id=%s %s %.1f ms", session.peer, kind, rid, "ok" if reply["ok"] else "error",
                         reply["server_ms"])
                await ws.send(encode(reply))
        except ConnectionClosed as exc:
            LOG.info("%s went away (%s)", session.peer, exc.rcvd.code if exc.rcvd else "no close frame")
        LOG.info("%s disconnected", session.peer)

    async def _answer(self, data, session: Session) -> tuple[dict, str, object]:
        rid, kind = None, "?"
        try:
            message = decode(data)
            rid, kind = message.get("id"), str(message.get("type"))
            body = await asyncio.to_thread(self.service.handle, message, session)
            return {"id": rid, "ok": True, **body}, kind, rid
        except WamError as exc:
            LOG.warning("%s %s id=%s refused: %s", session.peer, kind, rid, exc)
            return {"id": rid, "ok": False, "error": str(exc)}, kind, rid
        except Exception as exc:  # noqa: BLE001 - a bug must not take the server down; the client is told
            LOG.exception("%s %s id=%s failed", session.peer, kind, rid)
            return {"id": rid, "ok": False, "error": f"server error: {type(exc).__name__}: {exc}"}, kind, rid

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        try:
            server = await serve(self._handler, self.host, self.port, max_size=self.max_bytes, compression=None,
                                 process_request=self._process_request)
        except OSError as exc:
            raise WamError(f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}"
                           f"{' (the port is in use: pick another --port)' if exc.errno == 98 else ''}") from None
        self.port = server.sockets[0].getsockname()[1]
        LOG.info("listening on ws://%s:%d (GET /health, /info)", self.host, self.port)
        self._ready.set()
        async with server:
            await self._stop.wait()

    def serve_forever(self) -> None:
        asyncio.run(self._main())

    def start(self, timeout: float = 10.0) -> PolicyServer:
        def run() -> None:
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(self._main())
            except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
                self._error = exc
            finally:
                self._ready.set()
                self._loop.close()

        self._thread = threading.Thread(target=run, name="wam-serve", daemon=True)
        self._thread.start()
        self._ready.wait(timeout)
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def load_service(cfg: ServeConfig) -> PolicyService:
    """The trained policy (or `wam plan` planner) of `cfg.policy`, with the serving options applied."""
    from wam.planning import load_runnable

    policy, run_cfg = load_runnable(cfg.policy, device=cfg.device, precision=cfg.precision)
    if cfg.sample_steps:
        policy.paradigm.cfg.sample_steps = cfg.sample_steps
    if hasattr(policy.paradigm.cfg, "kv_cache"):
        policy.paradigm.cfg.kv_cache = cfg.kv_cache
    info = model_info(policy, _fps(run_cfg), _tasks(cfg.policy), int(cfg.max_mb * 2**20))
    return PolicyService(policy, info)


def serve_policy(cfg: ServeConfig) -> None:
    """`wam serve`: load, then serve until interrupted (the token may come from $WAM_SERVE_TOKEN,
    which, unlike a flag, other users of the machine cannot read in the process list)."""
    cfg.token = cfg.token or os.environ.get("WAM_SERVE_TOKEN", "")
    cfg.check()
    service = load_service(cfg)
    server = PolicyServer(service, cfg.host, cfg.port, cfg.token, int(cfg.max_mb * 2**20))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    LOG.info("serving %s (%s paradigm)", cfg.policy, service.info["paradigm"])
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        LOG.info("stopped")
