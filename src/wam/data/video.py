"""Video files through PyAV: encode an episode's frames to mp4, decode them back.

Frames are `(T, H, W, 3) uint8` RGB arrays everywhere in wam. Encoding defaults to H.264
(libx264, yuv420p: plays in every browser and in LeRobot's own reader); `crf` sets quality and `gop`
the keyframe interval (smaller = faster random access, bigger files). Every failure from PyAV or
FFmpeg is turned into a `DatasetError` that names the file.

Reproducibility: libx264's macroblock tree (`mbtree`) does not give the same file twice for the same small
frames: 31 different files from 60 encodes of one Meta-World episode at 32 px, 11 at 48, 4 at 96 (1 at 64
and 128). With `x264-params=mbtree=0`, the default here, every size gave one file, at +13% to +54% bytes and
+0.1 to +0.9 dB PSNR at the same crf (`benchmarks/encode_repeatability.py`, results beside it). Threads
were not the cause (`threads=1`, `lookahead-threads=1`, `sync-lookahead=0` still varied).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wam.errors import DatasetError


@dataclass(frozen=True)
class VideoCodec:
    """How episode videos are encoded (saved in info.json's feature `info`)."""

    codec: str = "libx264"
    pix_fmt: str = "yuv420p"
    crf: int = 18
    gop: int = 16
    x264_params: str = "mbtree=0"  # libx264 `x264-params`; mbtree=0 makes encodes repeat (see above)

    def feature_info(self, fps: int, height: int, width: int) -> dict:
        """The `info` block of a video feature in LeRobot's info.json."""
        name = {"libx264": "h264", "libsvtav1": "av1", "libx265": "hevc"}.get(self.codec, self.codec)
        return {
            "video.height": height,
            "video.width": width,
            "video.codec": name,
            "video.pix_fmt": self.pix_fmt,
            "video.is_depth_map": False,
            "video.fps": fps,
            "video.channels": 3,
            "has_audio": False,
        }


def encode_video(frames: np.ndarray, path: str | Path, fps: int, codec: VideoCodec = VideoCodec()) -> None:
    """Write `frames` (T, H, W, 3) uint8 to an mp4 at `path` (atomically: a temp file, then rename)."""
    import av

    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    t, h, w, _ = frames.shape
    if t == 0:
        raise ValueError("cannot encode a video with no frames")
    if codec.pix_fmt.startswith("yuv420") and (h % 2 or w % 2):
        raise ValueError(f"{codec.pix_fmt} needs an even image size, got {h}x{w}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with av.open(str(tmp), mode="w", format="mp4") as container:
        stream = container.add_stream(codec.codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, codec.pix_fmt
        stream.options = {"crf": str(codec.crf), "g": str(codec.gop)}
        if codec.codec == "libx264":
            stream.options["preset"] = "veryfast"
            if codec.x264_params:
                stream.options["x264-params"] = codec.x264_params
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    os.replace(tmp, path)


def unreadable_video_errors() -> tuple[type[Exception], ...]:
    """What PyAV raises on a damaged file: FFmpeg's errors, and metadata that is not text (found by fuzzing)."""
    import av

    return av.error.FFmpegError, UnicodeDecodeError, EOFError


def decode_video(
    path: str | Path,
    start_s: float = 0.0,
    num_frames: int | None = None,
    fps: float | None = None,
) -> np.ndarray:
    """Decode frames from `start_s` on: `num_frames` of them (all to the end when None).

    Returns (T, H, W, 3) uint8. A frame belongs to the range when its timestamp is at or after
    `start_s` less half a frame period (timestamps in concatenated LeRobot videos are rounded).
    Fewer frames than asked for is an error that names the file: a silently short episode would
    misalign frames and actions.
    """
    import av

    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"video file missing: {path}")
    frames: list[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            rate = fps or float(stream.average_rate or 0) or 30.0
            first = start_s - 0.5 / rate
            if start_s > 0:
                container.seek(int(max(first, 0) / stream.time_base), stream=stream, backward=True)
            for frame in container.decode(stream):
                if frame.time is not None and frame.time < first:
                    continue
                frames.append(frame.to_ndarray(format="rgb24"))
                if num_frames is not None and len(frames) == num_frames:
                    break
    except unreadable_video_errors() as exc:  # corrupt or truncated container
        raise DatasetError(f"cannot decode video {path}: {type(exc).__name__}: {exc}") from None
    except IndexError:
        raise DatasetError(f"no video stream in {path}") from None
    if num_frames is not None and len(frames) < num_frames:
        raise DatasetError(
            f"video {path} holds {len(frames)} frames from t={start_s:.3f}s, expected {num_frames}"
            " (truncated file or wrong timestamps in meta/episodes)"
        )
    if not frames:
        raise DatasetError(f"video {path} has no frames from t={start_s:.3f}s")
    return np.stack(frames)
