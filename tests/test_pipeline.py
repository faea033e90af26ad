"""The shared pipeline: live (worker thread, freshest frames) and headless (every frame)."""

from __future__ import annotations

import json
import time

from tests.conftest import ROOT
from waste_vision.annotators import Overlay
from waste_vision.cascade import Cascade
from waste_vision.cli import main
from waste_vision.pipeline import FrameClassifier, Pipeline, RateMeter
from waste_vision.sources import Buffering, FileSource

DEMO = ROOT / "tests" / "fixtures" / "slideshow.mp4"  # 12 s of photos, 360 frames


class SlowClassifier(FrameClassifier):
    """The real classifier made slower than the source, as on a busy laptop."""

    def __call__(self, frame):
        time.sleep(0.05)
        return super().__call__(frame)


def test_live_pipeline_keeps_up_with_fresh_frames(models_dir):
    cascade = Cascade(models_dir, backend="litert")
    source = FileSource(DEMO, buffering=Buffering.LATEST, paced=True)
    seen = []
    pipeline = Pipeline(source, SlowClassifier(cascade), Overlay.default())
    with source:
        pipeline.start(lambda r: seen.append(r.frame.index))
        time.sleep(1.5)
        pipeline.stop()
    assert pipeline.error is None
    assert 10 <= len(seen) <= 32  # ~20 classified at 50 ms each, not the source's 45
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    assert source.dropped > 0  # the slow consumer made the source drop stale frames
    assert max(b - a for a, b in zip(seen, seen[1:])) >= 2


def test_headless_pipeline_sees_every_frame_in_order(models_dir):
    cascade = Cascade(models_dir, backend="litert")
    source = FileSource(DEMO, buffering=Buffering.EVERY_FRAME)
    seen = []
    with source:
        Pipeline(source, FrameClassifier(cascade), None).run(lambda r: seen.append(r))
    assert [r.frame.index for r in seen] == list(range(source.frame_count))
    labels = {r.regions[0].result.label for r in seen}
    assert {"glass", "organic"} <= labels


def test_rate_meter():
    meter = RateMeter(window=10)
    for i in range(20):
        meter.tick(i / 30)
    assert abs(meter.rate - 30) < 1e-6


def test_bench_runs_and_reports(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--runs", "5", "--live-seconds", "1", "--original-frames", "3",
                 "--max-frames", "90", "--clip", str(DEMO), "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["annotate"]["frames"] == 90
    assert r["original_loop"]["frames"] == 3
    assert set(r["stages"]["litert"]) == {"organic-recyclable", "material", "fused",
                                          "fused int8"}
    assert r["annotate_int8"]["frames"] == 90
    assert r["annotate_vs_original"] > 1 and r["annotate_int8_vs_original"] > 1
    printed = capsys.readouterr().out
    assert "original loop" in printed and "annotate --int8" in printed
    regions = r["regions"]
    assert {"two_zones", "two_tracked", "items"} <= set(regions)
    assert all(regions[k]["frames"] == 90 for k in ("two_zones", "two_tracked", "items"))
    # by default unchanged regions keep their result; the every-frame pass classifies all
    assert all(0 <= regions[k]["crops_reused"] <= 1 for k in ("no_region", "two_zones"))
    every = r["regions_every_frame"]
    assert every["two_zones"]["frames"] == 90 and "crops_reused" not in every["two_zones"]
    assert every["two_zones_vs_no_region"] > 0
    assert r["live_two_tracked_every_frame"]["classified_fps"] > 0
    assert "every frame classified" in printed
    assert r["live_items_explain"]["classified_fps"] > 0
