"""The shared pipeline: live (worker thread, freshest frames) and headless (every frame)."""

from __future__ import annotations

import json
import threading
import time

import pytest

from tests.conftest import ROOT
from waste_vision.commands.cli import main
from waste_vision.engine.annotators import Overlay
from waste_vision.engine.frames import Mode
from waste_vision.engine.pipeline import FrameClassifier, Pipeline, RateMeter
from waste_vision.engine.sources import Buffering, FileSource
from waste_vision.model.cascade import Cascade

DEMO = ROOT / "tests" / "fixtures" / "slideshow.mp4"  # 12 s of photos, 360 frames


class SlowClassifier(FrameClassifier):
    """The real classifier made slower than the source, as on a busy laptop."""

    def __call__(self, frame, config=None):
        time.sleep(0.05)
        return super().__call__(frame, config)


def test_live_pipeline_keeps_up_with_fresh_frames(models_dir):
    cascade = Cascade(models_dir, backend="litert")
    source = FileSource(DEMO, buffering=Buffering.LATEST, paced=True)
    seen: list[int] = []
    enough = threading.Event()

    def on_frame(result):
        seen.append(result.frame.index)
        if len(seen) >= 20:
            enough.set()

    pipeline = Pipeline(source, SlowClassifier(cascade), Overlay.default())
    with source:
        pipeline.start(on_frame)
        assert enough.wait(timeout=30), f"only {len(seen)} frames classified"
        pipeline.stop()
    assert pipeline.error is None
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    # at most 20 a second classified from a 30 FPS source: frames were skipped, so the
    # frame numbers run ahead of the count of frames classified
    assert seen[-1] - seen[0] >= len(seen)
    assert source.dropped > 0  # the slow consumer made the source drop stale frames
    assert max(b - a for a, b in zip(seen, seen[1:], strict=False)) >= 2


def test_headless_pipeline_sees_every_frame_in_order(models_dir):
    cascade = Cascade(models_dir, backend="litert")
    source = FileSource(DEMO, buffering=Buffering.EVERY_FRAME)
    seen = []
    with source:
        Pipeline(source, FrameClassifier(cascade), None).run(lambda r: seen.append(r))
    assert [r.frame.index for r in seen] == list(range(source.frame_count))
    # eight photos, 45 frames each: each counted once, in order
    counted = [label for r in seen for label in r.counted]
    assert counted == [
        "glass",
        "organic",
        "cardboard",
        "metal",
        "organic",
        "paper",
        "plastic",
        "organic",
    ]
    labels = {r.regions[0].result.label for r in seen}
    assert labels - {"uncertain"} == set(counted)


def test_rate_meter():
    meter = RateMeter(window=10)
    for i in range(20):
        meter.tick(i / 30)
    assert abs(meter.rate - 30) < 1e-6


@pytest.mark.slow  # a minute of annotate passes
def test_bench_runs_and_reports(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert (
        main(
            [
                "bench",
                "--runs",
                "5",
                "--live-seconds",
                "1",
                "--original-frames",
                "3",
                "--max-frames",
                "90",
                "--clip",
                str(DEMO),
                "--json",
                str(out),
            ]
        )
        == 0
    )
    r = json.loads(out.read_text())
    assert r["annotate"]["frames"] == 90
    assert r["original_loop"]["frames"] == 3
    assert set(r["stages"]["litert"]) == {"organic-recyclable", "material", "fused", "fused int8"}
    assert r["annotate_int8"]["frames"] == 90
    assert r["annotate_vs_original"] > 1 and r["annotate_int8_vs_original"] > 1
    printed = capsys.readouterr().out
    assert "original loop" in printed and "annotate --int8" in printed
    regions = r["regions"]
    assert {"two_zones", "two_tracked", "items"} <= set(regions)
    assert all(regions[k]["frames"] == 90 for k in ("two_zones", "two_tracked", "items"))
    # by default unchanged regions keep their result; the every-frame pass classifies all
    # (a slideshow: each photo lies still for a second, and each new one is classified)
    assert all(0 < regions[k]["crops_reused"] < 1 for k in ("no_region", "two_zones"))
    every = r["regions_every_frame"]
    assert every["two_zones"]["frames"] == 90 and "crops_reused" not in every["two_zones"]
    assert every["two_zones_vs_no_region"] > 0
    assert r["live_two_tracked_every_frame"]["classified_fps"] > 0
    assert "every frame classified" in printed
    assert r["live_items_explain"]["classified_fps"] > 0


# --- issue 22 ------------------------------------------------------------------------------


def test_a_zone_over_bare_table_is_empty_and_counts_nothing(models_dir):
    """A zone is classified only where something differs from the learnt empty table: over
    bare table (the demo clip's first 2 s) it says ``empty`` and counts nothing (it read
    "cardboard 0.89" and counted one); once an item slides into it, it is classified."""
    from waste_vision.engine.frames import EMPTY
    from waste_vision.engine.pipeline import PipelineConfig
    from waste_vision.engine.regions import ZoneSpec

    # the middle of the table, where the first item lies
    config = PipelineConfig(mode=Mode.ITEMS, zones=(ZoneSpec((440, 160, 400, 400)),))
    classifier = FrameClassifier(Cascade(models_dir, backend="litert"), config=config)
    bare, busy = [], []
    with FileSource(ROOT / "assets" / "demo.mp4", buffering=Buffering.EVERY_FRAME) as source:
        while (frame := source.read(5.0)) is not None and frame.index < 150:
            result = classifier(frame)
            if 15 <= frame.index < 60:  # learnt, bare table (the first item enters at 2 s)
                bare.append(result)
            elif 90 <= frame.index < 150:  # the organic item lies in the zone (3-5 s)
                busy.append(result)
    assert bare and all(r.verdict == EMPTY and not r.counted for r in bare)
    assert sum(r.verdict == "organic" for r in busy) >= 0.9 * len(busy)
    assert dict(classifier.counts) == {"organic": 1}


def test_an_image_folder_is_classified_photo_by_photo_in_item_mode(models_dir):
    """The default item-finding mode used to call every photo of a folder ``empty`` (a
    slideshow never leaves "learning"): each photo is now classified whole, on its own."""
    from waste_vision.engine.sources import ImageFolderSource
    from waste_vision.images import read_rgb

    cascade = Cascade(models_dir, backend="litert")
    samples = ROOT / "assets" / "samples"
    source = ImageFolderSource(samples)
    seen = []
    with source:
        Pipeline(source, FrameClassifier(cascade, mode="items"), Overlay.default()).run(seen.append)
    assert len(seen) == len(source.paths) == 12
    expected = [cascade.classify_many([read_rgb(p)])[0].label for p in source.paths]
    assert [r.verdict for r in seen] == expected
    assert "empty" not in expected and all(not r.learning for r in seen)
    counted = [label for r in seen for label in r.counted]
    assert counted == [e for e in expected if e != "uncertain"]  # each photo once


def test_the_pipeline_stays_bounded_through_many_items(models_dir):
    """Issue 22 (item 6): items passing for a long time (a fast synthetic clock) leave the
    classifier's per-item and per-run collections bounded."""
    import numpy as np

    from waste_vision.engine.frames import Frame
    from waste_vision.engine.items import ItemTracker

    rng = np.random.default_rng(0)
    table = np.clip(rng.normal(150, 4, (90, 160, 3)), 0, 255).astype(np.uint8)
    classifier = FrameClassifier(
        Cascade(models_dir, backend="litert"), mode="items", tracker=ItemTracker(keep=20)
    )
    t, index = 0.0, 0

    def feed(image):
        nonlocal t, index
        noisy = np.clip(image + rng.normal(0, 2, image.shape), 0, 255).astype(np.uint8)
        classifier(Frame(index, t, noisy, 5.0, t))
        t, index = t + 0.2, index + 1

    for _ in range(20):
        feed(table)
    for n in range(120):
        item = table.copy()
        x = 10 + 30 * (n % 4)
        item[20:60, x : x + 30] = (40 * (n % 5), 200, 255 - 40 * (n % 5))
        for _ in range(5):
            feed(item)
        for _ in range(4):
            feed(table)
        tracker = classifier.tracker
        assert len(tracker.finished) <= 20 and len(tracker.present) <= 5
        assert len(classifier.reuse._entries) <= 5
        assert len(classifier._capture_rate._times) <= 30
    assert tracker.counted_total >= 100  # (some may be uncertain)
    assert len(classifier.summary()["items"]) <= 21
    assert classifier.summary()["items_total"] == tracker.counted_total


def test_relearning_over_a_counted_item_neither_counts_it_again_nor_leaves_a_ghost(models_dir):
    """E pressed while the demo clip's first item (organic) lies on the table: it was
    counted already, so when it leaves the healed spot is not counted again, and the bare
    table after it left is ``empty`` (it used to stay an item for ever)."""
    from waste_vision.engine.frames import EMPTY

    classifier = FrameClassifier(Cascade(models_dir, backend="litert"), mode="items")
    after = []
    with FileSource(ROOT / "assets" / "demo.mp4", buffering=Buffering.EVERY_FRAME) as source:
        while (frame := source.read(5.0)) is not None and frame.index < 210:
            if frame.index == 120:  # 4 s: the item lies still in the middle, counted
                assert dict(classifier.counts) == {"organic": 1}
                classifier.scene.relearn()
            result = classifier(frame)
            if frame.index >= 195:  # 6.5 s: it has slid away (the next enters at 7 s)
                after.append(result.verdict)
    assert after and all(v == EMPTY for v in after), after
    assert dict(classifier.counts) == {"organic": 1}
