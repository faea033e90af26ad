"""Soak: the live pipeline with recording on the looping demo clip for a long time.

Samples RSS, the recorder's queue length and the classified FPS every ``--every`` seconds
and writes ``<out>/soak.csv`` and ``<out>/soak.png``; prints RSS growth (last sample vs the
first sample after warm-up). Usage:
``python benchmarks/soak.py --minutes 10 --out work/soak`` (the README quotes its figures).
A new recording file is started every ``--segment-minutes`` so the disk does not fill.

``--simulate-hours 24`` is the fast-clock soak (issue 22): a day of items passing (one every
4 s: 3 s on the table, 1 s bare) through the same ``Pipeline``/``FrameClassifier``/``Tally``
on synthetic 160x90 frames with synthetic timestamps at 1 FPS, in minutes. The cascade is a
stand-in that cycles labels (the models' memory is fixed; what could grow is the per-item and
per-run bookkeeping). Prints RSS and the collections' lengths at 1 h, 12 h and 24 h simulated.
"""

from __future__ import annotations

import argparse
import csv
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from waste_vision.commands.bench import rss_mb
from waste_vision.engine.annotators import Overlay
from waste_vision.engine.pipeline import FrameClassifier, Pipeline
from waste_vision.engine.sinks import RecordingSink
from waste_vision.engine.sources import Buffering, FileSource
from waste_vision.model.cascade import Cascade
from waste_vision.resources import default_assets_dir, default_models_dir


class _CyclingCascade:
    """Stands in for the cascade in the fast-clock soak: labels cycle, nothing is kept."""

    rule = None

    def __init__(self):
        from waste_vision.model.cascade import CascadeResult, StageResult

        self._results = [
            CascadeResult(label, 0.9, StageResult(label, 0.9, ()), None)
            for label in ("glass", "paper", "metal", "organic", "uncertain")
        ]
        self._n = 0

    def classify_many(self, crops, all_stages=False, profile=True, rule=None):
        self._n += 1
        return [self._results[(self._n // 7) % 5] for _ in crops]


def simulate(hours: float) -> list[dict]:
    """A day of items on a fast clock; returns the samples (RSS and collection lengths)."""
    import numpy as np

    from waste_vision.engine.frames import Frame
    from waste_vision.engine.tally import Tally

    rng = np.random.default_rng(0)
    table = np.clip(rng.normal(150, 4, (90, 160, 3)), 0, 255).astype(np.uint8)
    noise = [rng.normal(0, 2, table.shape).astype(np.int16) for _ in range(8)]
    classifier = FrameClassifier(_CyclingCascade(), mode="items")
    classifier.explainer = None  # (the explainer wraps a real cascade; explain stays off)
    tally = Tally(["glass", "paper", "metal", "organic"])

    class Frames:  # a source of synthetic frames, never finished
        finished = False

    pipeline = Pipeline(Frames(), classifier, None)
    fps, item_s, gap_s = 1, 3, 1
    t, index, n = 0.0, 0, 0
    marks = sorted({min(1.0, hours), hours / 2, hours})
    rows = []
    start = time.monotonic()
    while marks:
        x = 10 + 30 * (n % 4)
        item = table.copy()
        item[25:60, x : x + 25] = (40 * (n % 5), 200, 255 - 40 * (n % 5))
        for image in [item] * (item_s * fps) + [table] * (gap_s * fps):
            frame_image = np.clip(image + noise[index % 8], 0, 255).astype(np.uint8)
            result, _ = pipeline.step(Frame(index, t, frame_image, fps, t))
            tally.add(result.counted)
            t, index = t + 1 / fps, index + 1
        n += 1
        if t >= marks[0] * 3600:
            marks.pop(0)
            tracker = classifier.tracker
            row = {
                "simulated_h": round(t / 3600, 2),
                "items": n,
                "frames": index,
                "rss_mb": round(rss_mb(), 1),
                "counted": sum(tracker.tally.values()),
                "tracker_finished": len(tracker.finished),
                "tracker_present": len(tracker.present),
                "reuse_entries": len(classifier.reuse._entries),
                "tally_labels": len(tally.counts),
                "wall_s": round(time.monotonic() - start),
            }
            rows.append(row)
            print(row, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--simulate-hours",
        type=float,
        default=None,
        help="fast-clock soak of the counting bookkeeping (see above)",
    )
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--every", type=float, default=10)
    parser.add_argument("--segment-minutes", type=float, default=5)
    parser.add_argument("--out", type=Path, default=Path("work/soak"))
    args = parser.parse_args()
    if args.simulate_hours is not None:
        rows = simulate(args.simulate_hours)
        print(
            f"RSS at {rows[0]['simulated_h']} h {rows[0]['rss_mb']} MB, at "
            f"{rows[-1]['simulated_h']} h {rows[-1]['rss_mb']} MB; {rows[-1]['counted']} items "
            f"counted, tracker holds {rows[-1]['tracker_finished']}"
        )
        return
    args.out.mkdir(parents=True, exist_ok=True)
    clip = default_assets_dir() / "demo.mp4"
    source = FileSource(clip, buffering=Buffering.LATEST, paced=True, loop=True)
    pipeline = Pipeline(source, FrameClassifier(Cascade(default_models_dir())), Overlay.default())
    done = [0]
    rows = []
    closes: list[float] = []  # seconds each finished recording took to close and join

    def close_in_background(old: RecordingSink) -> None:
        """As the window does: joining a finished recording never holds up the live loop."""

        def work():
            t0 = time.monotonic()
            old.close()
            closes.append(time.monotonic() - t0)
            old.path.unlink(missing_ok=True)  # keep the disk from filling over an hour

        threading.Thread(target=work, name="soak close", daemon=True).start()

    with source:
        pipeline.start(lambda _r: done.__setitem__(0, done[0] + 1))
        start = last_rotate = last_t = time.monotonic()
        n, last_done = 0, 0
        sink = RecordingSink(args.out / f"soak{n}.mp4", source.fps, source.size)
        pipeline.sinks.append(sink)
        while last_t - start < args.minutes * 60:
            # A fixed schedule, so a late sample cannot make the next interval look slow.
            time.sleep(max(0.0, last_t + args.every - time.monotonic()))
            now = time.monotonic()
            fps = (done[0] - last_done) / (now - last_t)
            last_done, last_t = done[0], now
            row = {
                "t_s": round(now - start, 1),
                "rss_mb": round(rss_mb(), 1),
                "record_queue": sink._queue.qsize(),
                "source_buffer": len(source._buffer._items),
                "classified_fps": round(fps, 2),
                "dropped": source.dropped,
                "recordings": n + 1,
                "last_close_s": round(closes[-1], 2) if closes else "",
                "error": pipeline.error or sink.error,
            }
            rows.append(row)
            print(row, flush=True)
            if now - last_rotate > args.segment_minutes * 60:
                n += 1
                new = RecordingSink(args.out / f"soak{n}.mp4", source.fps, source.size)
                pipeline.sinks[:] = [new]
                close_in_background(sink)
                sink, last_rotate = new, now
        pipeline.stop()
        sink.close()
    with open(args.out / "soak.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    warm = rows[min(2, len(rows) - 1)]["rss_mb"]
    growth = (rows[-1]["rss_mb"] - warm) / warm * 100
    print(
        f"RSS after warm-up {warm:.0f} MB, at the end {rows[-1]['rss_mb']:.0f} MB "
        f"({growth:+.1f}%), max {max(r['rss_mb'] for r in rows):.0f} MB; "
        f"FPS min {min(r['classified_fps'] for r in rows):.1f}, max record queue "
        f"{max(r['record_queue'] for r in rows)}, max source buffer "
        f"{max(r['source_buffer'] for r in rows)}; {len(closes)} recordings closed in "
        f"{min(closes, default=0):.2f}-{max(closes, default=0):.2f} s"
    )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(2, 1, figsize=(7, 5), sharex=True)
    t = [r["t_s"] / 60 for r in rows]
    a.plot(t, [r["rss_mb"] for r in rows])
    a.set_ylabel("RSS (MB)")
    a.set_ylim(0, max(600, max(r["rss_mb"] for r in rows) * 1.1))
    b.plot(t, [r["classified_fps"] for r in rows])
    b.set_ylabel("classified FPS")
    b.set_xlabel("minutes")
    b.set_ylim(0, 40)
    fig.suptitle("Soak: live pipeline + recording on the looping demo clip")
    fig.tight_layout()
    fig.savefig(args.out / "soak.png", dpi=100)


if __name__ == "__main__":
    main()
