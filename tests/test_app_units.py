"""The window's plain parts: tally rule, coordinate mapping, latest-wins bridge, region edits
from another thread, stats, and that the app never imports TensorFlow or training code."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from PySide6.QtCore import QPointF
from PySide6.QtWidgets import QApplication

from tests.conftest import ROOT
from waste_vision.app import region_edits
from waste_vision.app.bridge import FrameBridge, fit_size, scale_for_display
from waste_vision.app.stats import SessionStats
from waste_vision.app.video_widget import letterbox, widget_to_frame
from waste_vision.engine.frames import Frame, FrameResult
from waste_vision.engine.regions import ZoneSpec
from waste_vision.engine.tally import Tally

CLASSES = ["organic", "cardboard", "glass", "metal", "paper", "plastic"]


def feed(tally, labels, fps=30.0, t0=0.0):
    counted = []
    for i, label in enumerate(labels):
        hit = tally.update(label, t0 + i / fps)
        if hit:
            counted.append(hit)
    return counted


def test_tally_counts_an_item_once_it_is_stable_and_new():
    tally = Tally(CLASSES)
    # held 1 s: counted once, at 0.5 s; a 3-frame flicker counts nothing
    assert feed(tally, ["plastic"] * 30 + ["glass"] * 3 + ["plastic"] * 30) == ["plastic"]
    # a different stable item counts; the same class straight after does not
    assert feed(tally, ["glass"] * 20 + ["glass"] * 20, t0=10) == ["glass"]
    # an 'uncertain' gap held 0.5 s ends the item: the same class again counts again
    assert feed(tally, ["uncertain"] * 20 + ["glass"] * 20, t0=20) == ["glass"]
    assert feed(tally, ["metal"] * 14, t0=30) == []  # 0.43 s: not stable yet
    assert tally.counts == {"plastic": 1, "glass": 2} and tally.total == 3
    tally.break_item()  # a new source: the next stable verdict is a new item
    assert feed(tally, ["glass"] * 20, t0=40) == ["glass"]


def test_tally_csv_lists_every_class(tmp_path):
    tally = Tally(CLASSES)
    feed(tally, ["paper"] * 20)
    tally.export_csv(tmp_path / "t.csv")
    rows = list(csv.reader((tmp_path / "t.csv").open()))
    assert rows == [["class", "count"]] + [[c, "1" if c == "paper" else "0"] for c in CLASSES]
    tally.reset()
    assert tally.total == 0 and tally.last_counted is None


def test_letterbox_and_mapping_round_trip():
    target = letterbox((1280, 720), (940, 700))  # wide frame in a tall area: bars above/below
    assert (target.width(), target.height()) == (940, pytest.approx(528.75, abs=0.5))
    assert target.x() == 0 and target.y() == pytest.approx((700 - target.height()) / 2, abs=1)
    centre = QPointF(target.x() + target.width() / 2, target.y() + target.height() / 2)
    assert widget_to_frame(centre, target, (1280, 720)) == pytest.approx((640, 360), abs=1)
    assert widget_to_frame(QPointF(-50, -50), target, (1280, 720)) == (0.0, 0.0)  # clamped
    tall = letterbox((480, 640), (800, 400))  # tall frame: bars left/right
    assert tall.height() == 400 and tall.x() == pytest.approx((800 - 300) / 2, abs=1)
    assert fit_size((1280, 720), (640, 640)) == (640, 360)


def test_display_scaling_keeps_the_aspect_and_skips_needless_work():
    image = np.zeros((720, 1280, 3), np.uint8)
    assert scale_for_display(image, None) is image
    assert scale_for_display(image, (1280, 900)) is image
    assert scale_for_display(image, (640, 640)).shape == (360, 640, 3)
    assert scale_for_display(image, (2560, 1440)).shape == (1440, 2560, 3)


def _result(index: int) -> FrameResult:
    return FrameResult(Frame(index, float(index), np.zeros((4, 4, 3), np.uint8)))


def test_bridge_keeps_only_the_newest_frame_until_the_gui_takes_it(qtbot):
    bridge = FrameBridge()
    bridge.run_id = 1
    stats = SessionStats().new_run(None)
    emitted = []
    bridge.frameReady.connect(lambda: emitted.append(1))
    thread = threading.Thread(
        target=lambda: [
            bridge.push(1, _result(i), np.zeros((4, 4, 3), np.uint8), stats) for i in range(5)
        ]
    )
    thread.start()
    thread.join()
    qtbot.waitUntil(lambda: len(emitted) == 1)
    QApplication.processEvents()  # every signal the pushes queued is delivered by now
    assert len(emitted) == 1  # one notification for five frames: no queue builds up
    delivery = bridge.take()
    assert delivery.result.frame.index == 4 and bridge.replaced == 4
    assert bridge.take() is None
    bridge.push(2, _result(9), np.zeros((4, 4, 3), np.uint8), stats)  # an old run's frame
    assert bridge.take() is None
    assert stats.classified.count == 6 and stats.captured == 10


def test_region_edits_make_new_zones_and_hit_zones_where_they_are_now():
    """The GUI's zone edits are plain functions on the frozen zone specs: the old tuple is
    never changed, and a click hits a zone where the pipeline last put it."""
    a = ZoneSpec((10, 10, 50, 50))
    zones = region_edits.added((), (10, 10, 50, 50))
    assert zones == (a,)
    zones = region_edits.added(zones, (100, 20, 50, 50), track=True)
    b = ZoneSpec((100, 20, 50, 50), True)
    assert zones == (a, b)
    assert region_edits.removed_at(zones, (), 120, 30) == (a,)  # the newest under the point
    assert region_edits.removed_at(zones, (), 199, 99) is zones  # nothing there: unchanged
    # b has followed its item to (140, 60): a click there hits it, one where it was drawn not
    placed = ((a, (10, 10, 50, 50)), (b, (140, 60, 50, 50)))
    assert region_edits.removed_at(zones, placed, 150, 70) == (a,)
    assert region_edits.removed_at(zones, placed, 105, 25) is zones
    # zones are matched to where they were placed by spec, not by index: b keeps its place
    # in a placing from before a was drawn (or after a zone before it went), and a zone the
    # pipeline has not placed is where it was drawn
    assert region_edits.removed_at(zones, ((b, (140, 60, 50, 50)),), 150, 70) == (a,)
    assert region_edits.removed_at(zones, ((b, (140, 60, 50, 50)),), 105, 25) is zones
    assert region_edits.removed_at(zones, ((b, (140, 60, 50, 50)),), 20, 20) == (b,)
    toggled = region_edits.toggled_at(zones, placed, 20, 20)  # a double-click on a
    assert toggled == (ZoneSpec((10, 10, 50, 50), True), b)
    assert region_edits.toggled_at(toggled, (), 20, 20) == zones
    assert region_edits.tracking(zones, True) == (ZoneSpec(a.home, True), b)
    assert region_edits.tracking(zones, False) == (a, ZoneSpec(b.home, False))
    assert region_edits.without_last(zones) == (a,) and region_edits.without_last(()) == ()
    assert zones == (a, b)  # never changed in place


def test_removing_a_zone_leaves_the_later_ones_where_they_are_now():
    """After an earlier zone is removed (or a run stopped, so nothing is placed anew), each
    later zone is still hit where the pipeline last put it, not where it was drawn; two
    zones with the same spec take their places in order, as ``RegionSet.sync`` keeps them."""
    a, b = ZoneSpec((0, 0, 20, 20)), ZoneSpec((100, 100, 20, 20), True)
    c = ZoneSpec((200, 100, 20, 20), True)
    placed = ((a, a.home), (b, (130, 130, 20, 20)), (c, (230, 130, 20, 20)))
    zones = region_edits.removed_at((a, b, c), placed, 5, 5)
    assert zones == (b, c)
    # the run has stopped: ``placed`` is still its last frame's, three zones ago
    assert region_edits.zone_at(zones, placed, 135, 135) == 0
    assert region_edits.zone_at(zones, placed, 235, 135) == 1
    assert region_edits.zone_at(zones, placed, 105, 105) is None  # where b was drawn
    twins = ((b, (130, 130, 20, 20)), (b, (160, 160, 20, 20)))
    assert region_edits.where_now((b, b, c), twins) == [
        (130, 130, 20, 20),
        (160, 160, 20, 20),
        c.home,
    ]


def test_a_break_asked_from_the_gui_is_done_on_the_pipeline_thread(qapp):
    """``LiveSession.break_item`` only hands over a configuration (``item_epoch``): the
    pipeline's tally is left alone until its own thread takes the next frame."""
    from waste_vision.app.session import LiveSession
    from waste_vision.engine.pipeline import FrameClassifier
    from waste_vision.model.cascade import CascadeResult, DecisionRule, StageResult

    class Glass:
        rule = DecisionRule()

        def classify_many(self, crops, all_stages=False, profile=True, rule=None):
            return [CascadeResult("glass", 0.9, StageResult("recyclable", 0.9, ()), None)] * len(
                crops
            )

    session = LiveSession(Glass())  # type: ignore[arg-type]
    try:
        session.set_mode("frame")  # type: ignore[arg-type]
        classifier = FrameClassifier(Glass(), config=session.config)  # type: ignore[arg-type]
        session._classifier = classifier  # as a run's, without a source
        image = np.zeros((32, 32, 3), np.uint8)
        counted = [classifier(Frame(i, float(i), image)).counted for i in range(2)]
        assert counted == [(), ("glass",)]
        tally = classifier.tally
        state = (tally._candidate, tally._settled, tally.last_counted)
        session.break_item()
        assert classifier.config is session.config and session.config.item_epoch == 1
        assert (tally._candidate, tally._settled, tally.last_counted) == state  # untouched
        counted = [classifier(Frame(i, float(i), image)).counted for i in range(2, 4)]
        assert counted == [(), ("glass",)]  # a new item
        assert classifier.summary()["tally"] == {"glass": 2}
    finally:
        session.shutdown(5)


def test_stats_json_fields_and_rates():
    stats = SessionStats()
    run = stats.new_run(type("Source", (), {"dropped": 3})())
    for i in range(31):
        run.classified.tick(i / 30)
        run.last_index = i
        if i % 2 == 0:
            stats.painted(run, capture_ts=i / 30, now=i / 30 + 0.02)
    doc = stats.as_json()
    assert list(doc) == [
        "frames_captured",
        "frames_displayed",
        "frames_classified",
        "display_fps",
        "classified_fps",
        "latency_ms_p50",
        "latency_ms_p95",
        "dropped_frames",
    ]
    assert doc["frames_classified"] == 31 and doc["frames_displayed"] == 16
    assert doc["frames_captured"] == 34 and doc["dropped_frames"] == 18
    assert doc["classified_fps"] == pytest.approx(30) and doc["display_fps"] == pytest.approx(15)
    assert doc["latency_ms_p50"] == pytest.approx(20) and doc["latency_ms_p95"] == pytest.approx(20)
    assert SessionStats().as_json()["latency_ms_p50"] is None


def test_the_app_never_imports_tensorflow_or_training_code():
    code = (
        "import sys\n"
        "from waste_vision.app import main, window, kiosk\n"
        "from waste_vision.model.cascade import Cascade\n"
        "from waste_vision.resources import default_models_dir\n"
        "Cascade(default_models_dir(), backend='litert')\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')\n"
        "       or m.startswith('waste_vision.training')]\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def test_the_qt_binding_keeps_its_references_to_none_and_true(qapp):
    """PySide6 6.12.0 on Python 3.11 dropped one reference per call (see pyproject.toml):
    the window then aborts after a few thousand calls. Catch such a binding at once."""
    from PySide6.QtCore import QObject, Signal
    from PySide6.QtWidgets import QLabel

    class Emitter(QObject):
        fired = Signal()

    label, emitter = QLabel(), Emitter()
    emitter.fired.connect(lambda: None)
    before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(500):
        label.setText("x")  # a void call: returns None
        emitter.fired.emit()  # returns True
    after = sys.getrefcount(None), sys.getrefcount(True)
    assert after[0] > before[0] - 100 and after[1] > before[1] - 100, (before, after)


def test_session_stats_stay_bounded_over_many_runs_and_keep_their_totals():
    """A kiosk restarts its source after every failure for weeks: the run history keeps
    the last MAX_RUNS runs whole and folds the rest into totals with the same figures."""

    class Source:
        dropped = 1

    stats = SessionStats()
    n_runs = 5000
    for i in range(n_runs):
        run = stats.new_run(Source())
        t0 = i * 10.0
        for k in range(5):  # 5 frames at 10 FPS, each painted 20 ms after capture
            run.classified.tick(t0 + k * 0.1)
            run.last_index = k
            stats.painted(run, t0 + k * 0.1, t0 + k * 0.1 + 0.02)
    assert len(stats.runs) <= SessionStats.MAX_RUNS and stats.run_count == n_runs
    doc = stats.as_json()
    assert doc["frames_classified"] == doc["frames_displayed"] == 5 * n_runs
    assert doc["frames_captured"] == 6 * n_runs  # 5 classified + 1 dropped each
    assert doc["dropped_frames"] == n_runs
    assert doc["classified_fps"] == doc["display_fps"] == pytest.approx(10.0)
    assert doc["latency_ms_p50"] == pytest.approx(20.0)


def test_app_models_option_names_a_folder_that_is_not_one(tmp_path):
    """``app --models DIR`` uses that folder; one that holds no models is one line, exit 2."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "waste_vision",
            "app",
            "--models",
            str(tmp_path),
            "--exit-after",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(tmp_path) in lines[0], lines
