"""Does `encode_video` give the same file for the same frames? Distinct files over N encodes, by frame size.

    .venv/bin/python benchmarks/encode_repeatability.py --dataset data/mw5_c2_128_64 [--episode 0] [--n 60] [--x264_params ";mbtree=0"]

One episode of a dataset is decoded, resized to each size (`wam.data.frames.resize_frames`) and encoded
N times through `wam.data.video.encode_video` for each `--x264_params` set, decoding the file after each
encode (a process that has decoded video is where libx264 varied most at 32 px). Prints the number of
distinct files, the largest pixel difference between them, the file's bytes, its PSNR against the frames
and the median encode time (one process, one set after the other: on a busy machine, compare ratios); appended to
benchmarks/results/encode_repeatability.md.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from pathlib import Path

import numpy as np

from results_file import append, header
from wam.data.frames import resize_frames
from wam.data.lerobot_format import LeRobotDataset
from wam.data.video import VideoCodec, decode_video, encode_video


def distinct_encodes(frames: np.ndarray, n: int, folder: Path, codec: VideoCodec) -> tuple[int, int, int, float, float]:
    """(distinct files, max pixel difference between them, bytes of the first, its PSNR in dB against
    `frames`, median ms an encode) over `n` encodes of `frames`."""
    decoded: dict[str, np.ndarray] = {}
    path = folder / "v.mp4"
    size, ms = 0, []
    for _ in range(n):
        start = time.perf_counter()
        encode_video(frames, path, 10, codec)
        ms.append(1000 * (time.perf_counter() - start))
        size = size or path.stat().st_size
        decoded.setdefault(hashlib.sha1(path.read_bytes()).hexdigest(), decode_video(path).astype(int))
    first, *rest = decoded.values()
    mse = float(((first - frames.astype(int)) ** 2).mean())
    psnr = 10 * np.log10(255**2 / max(mse, 1e-12))
    return len(decoded), max((int(np.abs(x - first).max()) for x in rest), default=0), size, psnr, float(np.median(ms))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--episode", type=int, default=0)
    parser.add_argument("--n", type=int, default=60)
    parser.add_argument("--sizes", default="32,64,96,128")
    parser.add_argument("--x264_params", default="", help="comma-free x264-params sets to compare, split by ';'"
                        " ('' is libx264 with none), e.g. ';mbtree=0;rc-lookahead=0'")
    args = parser.parse_args()
    ds = LeRobotDataset(args.dataset)
    source = ds.decode_frames(ds.video_keys[0], args.episode)  # (T, H, W, 3) uint8
    lines = header("encode_repeatability.py") + [
        f"episode {args.episode} of {args.dataset} ({len(source)} frames), {args.n} encodes a size", "",
        "| size | x264-params | distinct files | max pixel difference between them | bytes | PSNR dB | ms an encode |",
        "|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            for params in args.x264_params.split(";"):
                files, diff, size_b, psnr, ms = distinct_encodes(
                    resize_frames(source, size), args.n, Path(tmp), VideoCodec(x264_params=params))
                lines.append(f"| {size} | {params or '(none)'} | {files} | {diff} | {size_b} | {psnr:.2f} | {ms:.0f} |")
                print(lines[-1], flush=True)
    append("encode_repeatability", "Same frames, same file? libx264 through encode_video", lines)


if __name__ == "__main__":
    main()
