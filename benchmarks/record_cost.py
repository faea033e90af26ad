"""What recording costs: ``annotate`` FPS with the old MPEG-4 Part 2 writer (cv2, mp4v) and
with the H.264 recorder at several presets and thread counts, in one run, interleaved so a
busy machine slows each alike; then the live path (the clip paced at 30 FPS, latest frame
wins) with and without an H.264 recording.

``python benchmarks/record_cost.py [--clip assets/demo.mp4] [--rounds 2] [--live-seconds 10]
[--json out.json]``. The recorder's choice (``waste_vision.engine.recorder.PRESET`` and
``ENCODER_THREADS``) is made from this run's figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import cv2

from waste_vision.commands import annotate as annotate_module
from waste_vision.commands.annotate import annotate_video
from waste_vision.engine import recorder
from waste_vision.engine.annotators import Overlay
from waste_vision.engine.pipeline import FrameClassifier, Pipeline
from waste_vision.engine.sinks import RecordingSink
from waste_vision.engine.sources import Buffering, FileSource
from waste_vision.model.cascade import Cascade
from waste_vision.resources import default_assets_dir, default_models_dir


class Mp4vSink:
    """The previous recorder's encoder (cv2.VideoWriter, mp4v) in a thread, for comparison."""

    def __init__(self, path, fps, size, **_):
        import queue

        self.path, self.error, self.output, self.frames_skipped = Path(path), None, None, 0
        self._writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        self._queue = queue.Queue(maxsize=8)
        self._thread = threading.Thread(target=self._work, daemon=True)
        self._thread.start()

    def _work(self):
        while (item := self._queue.get()) is not None:
            self._writer.write(cv2.cvtColor(item, cv2.COLOR_RGB2BGR))

    def write(self, result, annotated):
        self._queue.put(annotated)

    def close(self):
        self._queue.put(None)
        self._thread.join()
        self._writer.release()
        self.output = self.path
        return self.path


def annotate_fps(clip: Path, variant: str) -> float:
    sink_class = Mp4vSink if variant == "mp4v" else RecordingSink
    if variant != "mp4v":
        preset, threads = variant.split("/")
        recorder.PRESET, recorder.ENCODER_THREADS = preset, int(threads)
    annotate_module.RecordingSink = sink_class
    try:
        with tempfile.TemporaryDirectory() as tmp:
            report = annotate_video(clip, Path(tmp) / "out.mp4")
            assert report.frames > 0 and report.problem is None, report.problem
            return report.fps
    finally:
        annotate_module.RecordingSink = RecordingSink


def live_fps(clip: Path, seconds: float, record: bool) -> dict:
    cascade = Cascade(default_models_dir(), backend="litert", threads=2)
    source = FileSource(clip, buffering=Buffering.LATEST, paced=True, loop=True)
    latencies: list[float] = []
    pipeline = Pipeline(source, FrameClassifier(cascade), Overlay.default())
    with tempfile.TemporaryDirectory() as tmp, source:
        sink = None
        if record:
            sink = RecordingSink(Path(tmp) / "live.mp4", source.fps, source.size, real_time=True)
            pipeline.sinks.append(sink)
        pipeline.start(lambda r: latencies.append((time.monotonic() - r.frame.timestamp) * 1e3))
        time.sleep(2.0)  # warm-up
        start, before = time.monotonic(), len(latencies)
        time.sleep(seconds)
        done = len(latencies) - before
        elapsed = time.monotonic() - start
        pipeline.stop()
        out = {
            "classified_fps": round(done / elapsed, 2),
            "dropped": source.dropped,
            "latency_p95_ms": round(statistics.quantiles(latencies[10:], n=20)[-1], 1),
        }
        if sink is not None:
            sink.close()
            out.update(written=sink.frames_written, skipped=sink.frames_skipped, error=sink.error)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clip", type=Path, default=default_assets_dir() / "demo.mp4")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--variants", default="mp4v,ultrafast/1,superfast/1,superfast/2,veryfast/1")
    parser.add_argument("--live-seconds", type=float, default=10.0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    variants = args.variants.split(",")
    chosen = (recorder.PRESET, recorder.ENCODER_THREADS)
    fps: dict[str, list[float]] = {v: [] for v in variants}
    for r in range(args.rounds):
        for v in variants:
            fps[v].append(annotate_fps(args.clip, v))
            print(f"round {r + 1} {v:14s} {fps[v][-1]:6.1f} FPS", file=sys.stderr, flush=True)
    recorder.PRESET, recorder.ENCODER_THREADS = chosen
    result = {"annotate_fps": {v: round(statistics.median(f), 1) for v, f in fps.items()}}
    if "mp4v" in fps:
        base = statistics.median(fps["mp4v"])
        result["annotate_vs_mp4v"] = {
            v: round(statistics.median(f) / base, 3) for v, f in fps.items()
        }
    if args.live_seconds > 0:
        result["live_without_recording"] = live_fps(args.clip, args.live_seconds, False)
        result["live_with_recording"] = live_fps(args.clip, args.live_seconds, True)
    result["chosen"] = f"{chosen[0]}/{chosen[1]}"
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
