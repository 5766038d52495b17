"""The policy server's wire format: msgpack maps with numpy arrays as typed buffers. Never pickle.

Every message is one msgpack map (a WebSocket binary frame). An array travels as msgpack extension
type 1 holding `[dtype, shape, raw bytes]`; only the dtypes in `DTYPES` are accepted and the byte
count must match the shape, so decoding can never run code or allocate more than the frame holds.

Requests (client -> server); `id` is echoed back, requests of one connection are answered in order:

    {"type": "health", "id": 1}
    {"type": "info",   "id": 2}                              -> model info (features, shapes, chunk, rate)
    {"type": "reset",  "id": 3, "seed": 10000, "task": "reach-v3", "episode": 0}   (all optional)
    {"type": "predict","id": 4, "obs": {"observation.images.corner": (To, H, W, 3) uint8,
                                        "observation.state": (To, Ds) float32},
                       "task": "reach the goal", "prefix": (P, Da) float32 (optional, RTC)}
                                                             -> {"chunk": (Ta, Da) float32,
                                                                 "value": float (with a value frame only)}

Replies: `{"id": .., "ok": true, ..., "server_ms": float}` or `{"id": .., "ok": false, "error": "one line"}`.
`obs` holds the frames and states at the policy's observation offsets (the client keeps the
history, see `wam.policy.history_picks`), oldest first.
"""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np

from wam.errors import WamError

ARRAY_EXT = 1
DTYPES = frozenset({"|u1", "<f4", "<f8", "<i8", "<i4", "|b1"})  # uint8, float32/64, int64/32, bool
DEFAULT_MAX_BYTES = 16 * 2**20  # per message
REQUEST_KEYS = {"health": {"type", "id"}, "info": {"type", "id"},
                "reset": {"type", "id", "seed", "task", "episode"},
                "predict": {"type", "id", "obs", "task", "prefix"}}
REQUIRED = {"predict": {"obs", "task"}}


class ProtocolError(WamError):
    """A message that does not follow the schema (the reply names what is wrong)."""


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        arr = np.ascontiguousarray(obj)
        dtype = arr.dtype.newbyteorder("<") if arr.dtype.byteorder == ">" else arr.dtype
        if dtype.str not in DTYPES:
            raise ProtocolError(f"arrays of dtype {arr.dtype} cannot be sent; use one of {sorted(DTYPES)}")
        return msgpack.ExtType(ARRAY_EXT, msgpack.packb([dtype.str, list(arr.shape), arr.astype(dtype).tobytes()]))
    if isinstance(obj, np.generic):
        return obj.item()
    raise ProtocolError(f"cannot encode a {type(obj).__name__}: send numbers, strings, lists, maps or numpy arrays")


def _ext_hook(code: int, data: bytes) -> np.ndarray:
    if code != ARRAY_EXT:
        raise ProtocolError(f"unknown msgpack extension type {code}")
    try:
        dtype, shape, raw = msgpack.unpackb(data, raw=False)
        shape = tuple(int(s) for s in shape)
    except Exception as exc:  # noqa: BLE001 - any garbage inside the extension is a protocol error
        raise ProtocolError(f"malformed array: {exc}") from None
    if dtype not in DTYPES or any(s < 0 for s in shape):
        raise ProtocolError(f"array of dtype {dtype!r} / shape {shape} not accepted; dtypes: {sorted(DTYPES)}")
    if not isinstance(raw, bytes) or len(raw) != int(np.prod(shape)) * np.dtype(dtype).itemsize:
        raise ProtocolError(f"array data does not match its shape {shape} and dtype {dtype}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


def encode(message: dict) -> bytes:
    return msgpack.packb(message, default=_default, use_bin_type=True)


def decode(data: bytes | str) -> dict:
    """bytes -> a message map; anything else (text frames, garbage, non-maps) is a ProtocolError."""
    if not isinstance(data, bytes):
        raise ProtocolError("messages must be binary msgpack frames, not text")
    try:
        message = msgpack.unpackb(data, raw=False, ext_hook=_ext_hook, strict_map_key=True)
    except ProtocolError:
        raise
    except Exception as exc:  # noqa: BLE001 - msgpack raises many types on garbage
        raise ProtocolError(f"not a msgpack message ({type(exc).__name__}: {exc})") from None
    if not isinstance(message, dict):
        raise ProtocolError(f"a message must be a msgpack map, got {type(message).__name__}")
    return message


def check_request(message: dict) -> str:
    """The request's type, after checking its keys against the schema."""
    kind = message.get("type")
    if kind not in REQUEST_KEYS:
        raise ProtocolError(f"unknown request type {kind!r}; one of {sorted(REQUEST_KEYS)}")
    unknown = set(message) - REQUEST_KEYS[kind]
    if unknown:
        raise ProtocolError(f"unknown key(s) {sorted(unknown)} in a {kind!r} request; allowed: "
                            f"{sorted(REQUEST_KEYS[kind])}")
    missing = REQUIRED.get(kind, set()) - set(message)
    if missing:
        raise ProtocolError(f"a {kind!r} request needs {sorted(missing)}")
    return kind

