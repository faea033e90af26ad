"""Soak: the live pipeline with recording on the looping demo clip for a long time.

Samples RSS, the recorder's queue length and the classified FPS every ``--every`` seconds
and writes ``<out>/soak.csv`` and ``<out>/soak.png``; prints RSS growth (last sample vs the
first sample after warm-up). Usage:
``python benchmarks/soak.py --minutes 10 --out work/soak`` (the README quotes its figures).
A new recording file is started every ``--segment-minutes`` so the disk does not fill.
"""

from __future__ import annotations

import argparse
import csv
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from waste_vision.annotators import Overlay  # noqa: E402
from waste_vision.bench import rss_mb  # noqa: E402
from waste_vision.cascade import Cascade  # noqa: E402
from waste_vision.pipeline import FrameClassifier, Pipeline  # noqa: E402
from waste_vision.resources import default_assets_dir, default_models_dir  # noqa: E402
from waste_vision.sinks import RecordingSink  # noqa: E402
from waste_vision.sources import Buffering, FileSource  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--every", type=float, default=10)
    parser.add_argument("--segment-minutes", type=float, default=5)
    parser.add_argument("--out", type=Path, default=Path("work/soak"))
    args = parser.parse_args()
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
            row = {"t_s": round(now - start, 1), "rss_mb": round(rss_mb(), 1),
                   "record_queue": sink._queue.qsize(),
                   "source_buffer": len(source._buffer._items),
                   "classified_fps": round(fps, 2), "dropped": source.dropped,
                   "recordings": n + 1, "last_close_s": round(closes[-1], 2) if closes else "",
                   "error": pipeline.error or sink.error}
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
    print(f"RSS after warm-up {warm:.0f} MB, at the end {rows[-1]['rss_mb']:.0f} MB "
          f"({growth:+.1f}%), max {max(r['rss_mb'] for r in rows):.0f} MB; "
          f"FPS min {min(r['classified_fps'] for r in rows):.1f}, max record queue "
          f"{max(r['record_queue'] for r in rows)}, max source buffer "
          f"{max(r['source_buffer'] for r in rows)}; {len(closes)} recordings closed in "
          f"{min(closes, default=0):.2f}-{max(closes, default=0):.2f} s")
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
