"""What stopping a recording costs, by its length: ``Recorder.close()`` for a short and a
long recording made as fast as the encoder goes (synthetic frames: textured, moving, so the
encoder has work and the file a realistic size), and, for comparison, what the previous
finish cost on the same files (every packet copied into a plain ``+faststart`` MP4).

``python benchmarks/stop_cost.py [--minutes 1 120] [--fps 10] [--size 320x240]
[--json out.json]``. A 2-hour recording at 10 FPS is 72,000 frames: a few minutes of CPU.
Timed with ``time.perf_counter`` around ``close()`` only, after the file is written back to
disk (as the kernel does during a real-time recording); the page cache is warm (the file
was just written), which flatters the old copy, not the new finish.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import cv2
import numpy as np

from waste_vision.engine.recorder import Recorder


def frames(size: tuple[int, int], count: int = 50) -> list[np.ndarray]:
    """A loop of frames: blurred noise panned one column a frame."""
    w, h = size
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(0, 255, (h, w + count, 3), np.uint8), (7, 7), 2)
    return [np.ascontiguousarray(base[:, k : k + w]) for k in range(count)]


def old_finish(path: Path) -> None:
    """The finish this replaces (recorder.py before this benchmark): every packet copied
    into a new plain MP4 with its index first; the copy replaces the file in one rename."""
    import av

    tmp = path.with_name(f".{path.stem}.finishing{path.suffix}")
    with (
        av.open(str(path)) as src,
        av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as dst,
    ):
        stream = src.streams.video[0]
        out = dst.add_stream_from_template(stream)
        for packet in src.demux(stream):
            if packet.dts is None:
                continue
            packet.stream = out
            dst.mux(packet)
    fd = os.open(tmp, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    os.replace(tmp, path)


def seek_near_end(path: Path) -> dict:
    """What a player reading the file from its start sees (FFmpeg's demuxer, as Chromium
    uses): the length, and how long opening it and seeking 10 s before its end take."""
    import av

    start = time.perf_counter()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        length = float(stream.duration * stream.time_base) if stream.duration else None
        target = (length or 0) - 10
        container.seek(round(target / stream.time_base), stream=stream, backward=True)
        got = next(container.decode(stream))
        landed = float(got.pts * got.time_base)
    return {
        "length_s": length,
        "seek_to_s": round(target, 2),
        "landed_s": round(landed, 2),
        "open_and_seek_s": round(time.perf_counter() - start, 3),
    }


def one(folder: Path, minutes: float, fps: float, size: tuple[int, int]) -> dict:
    loop = frames(size)
    path = folder / f"rec-{minutes:g}min.mp4"
    count = round(minutes * 60 * fps)
    start = time.perf_counter()
    rec = Recorder(path, fps, size, jsonl_path=path.with_suffix(".jsonl"))
    for i in range(count):
        rec.write(loop[i % len(loop)], {"i": i})
    recorded = time.perf_counter() - start
    # Recorded in real time, the kernel writes the file back as it goes (dirty pages
    # expire after ~30 s); made this fast, all of it is still in memory. Write it back
    # first so close() is timed as it runs at the end of a real recording.
    start = time.perf_counter()
    for written in (path, path.with_suffix(".jsonl")):
        fd = os.open(written, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    writeback = time.perf_counter() - start
    start = time.perf_counter()
    rec.close()
    close_s = time.perf_counter() - start
    size_bytes = path.stat().st_size
    seek = seek_near_end(path)
    start = time.perf_counter()
    old_finish(path)
    old_s = time.perf_counter() - start
    result = {
        "minutes": minutes,
        "frames": count,
        "bytes": size_bytes,
        "record_s": round(recorded, 1),
        "writeback_s": round(writeback, 2),
        "close_s": round(close_s, 4),
        "old_finish_s": round(old_s, 3),
        **seek,
    }
    print(json.dumps(result), file=sys.stderr, flush=True)
    path.unlink()
    path.with_suffix(".jsonl").unlink()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, nargs="+", default=[1.0, 120.0])
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--size", default="320x240")
    parser.add_argument(
        "--folder", type=Path, default=None, help="where to record (default: a temporary folder)"
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory(dir=args.folder) as tmp:
        runs = [one(Path(tmp), m, args.fps, size) for m in args.minutes]
    result = {"fps": args.fps, "size": args.size, "runs": runs}
    if len(runs) >= 2:
        short, long = runs[0], runs[-1]
        result["close_ratio_long_to_short"] = round(long["close_s"] / short["close_s"], 2)
        result["old_finish_ratio_long_to_short"] = round(
            long["old_finish_s"] / short["old_finish_s"], 2
        )
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
