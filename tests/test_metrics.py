"""``--metrics-port``: Prometheus metrics over real HTTP, from the sink and from a real
``annotate`` run."""

from __future__ import annotations

import socket
import threading
import urllib.request

import cv2
import numpy as np
import pytest

from tests.conftest import ROOT, wait_until
from waste_vision.commands.annotate import annotate_video
from waste_vision.engine.events import EventStore
from waste_vision.engine.fleet import FleetOptions
from waste_vision.engine.frames import Frame, FrameResult, RegionKind, RegionResult
from waste_vision.engine.metrics import MetricsSink
from waste_vision.errors import UserError
from waste_vision.labels import Bin
from waste_vision.model.cascade import CascadeResult, StageResult
from waste_vision.model.manifest import load_manifest

CLIP = ROOT / "assets" / "demo.mp4"


def scrape(port: int) -> dict[str, float]:
    """``name{labels}`` -> value from a real GET of /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_sink_counts_frames_latency_items_and_states():
    sink = MetricsSink(0, addr="127.0.0.1")
    try:
        s1 = StageResult("recyclable", 0.9, (0.1, 0.9))
        result = CascadeResult("glass", 0.8, s1, StageResult("glass", 0.8, ()), Bin.RECYCLABLE)
        region = RegionResult((0, 0, 5, 5), result, RegionKind.ITEM, 1)
        image = np.zeros((8, 8, 3), np.uint8)
        for index in (0, 1, 4):  # frames 2 and 3 were dropped at the source
            counted = ("glass",) if index == 4 else ()
            regions = (region,) if counted else ()
            frame = FrameResult(
                Frame(index, 0.0, image),
                [region],
                latency_ms=30.0,
                counted=counted,
                counted_regions=regions,
            )
            sink.write(frame, image)
        sink.set_camera(True)
        sink.set_recording(True)
        sink.set_model("0123456789ab", "feedface0000")
        sink.watch_queue(lambda: 3)
        m = scrape(sink.port)
        assert m["waste_vision_frames_captured_total"] == 5
        assert m["waste_vision_frames_classified_total"] == 3
        assert m['waste_vision_frame_latency_seconds_bucket{le="0.035"}'] == 3
        assert m['waste_vision_frame_latency_seconds_bucket{le="0.02"}'] == 0
        assert m['waste_vision_items_counted_total{bin="recyclable",label="glass"}'] == 1
        assert m["waste_vision_camera_connected"] == 1
        assert m["waste_vision_recording_active"] == 1
        assert m["waste_vision_events_queued"] == 3
        assert m['waste_vision_model_info{profile="feedface0000",version="0123456789ab"}'] == 1
    finally:
        sink.close()


def test_a_busy_port_is_one_line():
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(UserError, match=f"--metrics-port {port}: cannot serve"):
            MetricsSink(port)


def test_annotate_serves_metrics_while_it_runs(tmp_path):
    """A real run of the counting clip, scraped over HTTP while it classifies."""
    port = free_port()
    stop = threading.Event()
    box: dict = {}

    def run():
        box["report"] = annotate_video(
            CLIP,
            tmp_path / "o.mp4",
            fleet_options=FleetOptions(events=tmp_path / "e.sqlite", metrics_port=port),
            max_frames=330,
            stop=stop,
        )

    organic = 'waste_vision_items_counted_total{bin="organic",label="organic"}'
    seen: dict[str, float] = {}

    def organic_counted() -> bool:
        nonlocal seen
        if not thread.is_alive():
            return True  # ended: the asserts below say what was missed
        try:
            seen = scrape(port)
        except OSError:  # not serving yet
            return False
        return bool(seen.get(organic))

    thread = threading.Thread(target=run)
    thread.start()
    try:
        wait_until(organic_counted, 120, "the organic item's count over HTTP")
    finally:
        thread.join(120)
    assert seen[organic] == 1
    # counted on the frame at its event's position, after every frame before it: a file is
    # read frame by frame, nothing dropped
    (first, _) = EventStore(tmp_path / "e.sqlite").events()
    fps = cv2.VideoCapture(str(CLIP)).get(cv2.CAP_PROP_FPS)
    counted_at = round(first.position_s * fps)
    assert first.label == "organic"
    assert seen["waste_vision_frames_classified_total"] >= counted_at + 1
    assert seen["waste_vision_frames_captured_total"] >= counted_at + 1
    assert seen["waste_vision_recording_active"] == 1
    assert seen["waste_vision_camera_connected"] == 1
    version = [k for k in seen if k.startswith("waste_vision_model_info")]
    assert len(version) == 1
    assert f'version="{load_manifest(ROOT / "models").fingerprint()}"' in version[0]
    assert box["report"].events == 2
    with pytest.raises(OSError):  # the server ends with the run
        scrape(port)
