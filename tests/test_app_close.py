"""Closing the window never holds the GUI thread: a recording that takes long to finish
shows "Finishing recording…" and the window closes once it is done, with a playable file."""

from __future__ import annotations

import threading
import time

import pytest
from PySide6.QtCore import QSettings

from tests.conftest import ROOT
from tests.test_recorder import pyav_frames
from waste_vision.app.settings import AppSettings
from waste_vision.app.window import MainWindow
from waste_vision.engine.sinks import RecordingSink
from waste_vision.model.cascade import Cascade

DEMO = ROOT / "tests" / "fixtures" / "slideshow.mp4"  # 12 s of photos, 360 frames
GUI_BLOCK_LIMIT_S = 0.1


@pytest.fixture(scope="module")
def cascade(models_dir):
    return Cascade(models_dir, backend="litert", threads=1)


@pytest.fixture
def window(qtbot, cascade, tmp_path):
    settings = AppSettings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    settings.recording_folder = tmp_path / "videos"
    win = MainWindow(cascade, settings, camera_probe=list)
    qtbot.addWidget(win)
    win.show()
    yield win
    win.session.shutdown(10)


def record_a_while(qtbot, win, frames: int = 15) -> str:
    win.open_source(str(DEMO))
    with qtbot.waitSignal(win.session.recordingStarted, timeout=20_000) as started:
        qtbot.waitUntil(lambda: win.act.record.isEnabled(), timeout=20_000)
        qtbot.waitUntil(lambda: win.video.delivery is not None, timeout=20_000)
        win.act.record.trigger()
    qtbot.waitUntil(
        lambda: (
            win.session._run is not None
            and win.session._run.recording is not None
            and win.session._run.recording.frames_written >= frames
        ),
        timeout=20_000,
    )
    return started.args[0]


def test_closing_while_a_recording_finishes_slowly_does_not_block(qtbot, window, monkeypatch):
    release = threading.Event()
    original = RecordingSink.close

    def slow_close(self):  # a slow disk: finishing takes until the test says so
        release.wait(20)
        return original(self)

    monkeypatch.setattr(RecordingSink, "close", slow_close)
    path = record_a_while(qtbot, window)
    start = time.monotonic()
    window.close()
    blocked = time.monotonic() - start
    assert blocked < GUI_BLOCK_LIMIT_S, f"close() held the GUI thread {blocked * 1000:.0f} ms"
    assert window.isVisible()  # still there, saying why
    assert "Finishing recording" in window.statusBar().currentMessage()
    window.close()  # asking again changes nothing while it finishes
    assert window.isVisible()
    release.set()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=20_000)
    assert path in window.session.saved_recordings
    assert len(pyav_frames(path)) >= 15


def test_closing_with_nothing_to_finish_is_immediate(qtbot, window):
    path = record_a_while(qtbot, window, frames=5)
    start = time.monotonic()
    window.close()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=10_000)
    assert time.monotonic() - start < 5
    assert path in window.session.saved_recordings and len(pyav_frames(path)) >= 5


def test_no_thread_signals_the_window_once_its_workers_stopped(qtbot, window):
    """At exit run_app stops the workers before Qt deletes the window: a thread that emitted
    while the window was deleted crashed the process (the kiosk bundle, now and then)."""
    found: list = []
    window.session.camerasFound.connect(found.append)
    window.session.probe_cameras(lambda: [7])  # before: the answer arrives
    qtbot.waitUntil(lambda: found == [[7]], timeout=5_000)

    window.session.shutdown(10)
    window.stop_workers()
    assert not window.session._control._thread.is_alive()
    window.session.probe_cameras(lambda: [8])  # a probe finishing after the workers stopped
    qtbot.waitUntil(
        lambda: not any(t.name == "waste-vision camera probe" for t in threading.enumerate()),
        timeout=5_000,
    )
    qtbot.wait(100)  # a queued signal would have been delivered by now
    assert found == [[7]]
    window.stop_workers()  # twice is harmless (run_app's finally after a closed window)
