"""The recording sink: faults in its thread end the recording with a message naming the file,
never a hang; the pipeline goes on; frames of a file recording are never dropped silently."""

from __future__ import annotations

import threading
import time

import pytest

from tests.conftest import wait_until
from tests.test_recorder import H, W, frame, read_video
from waste_vision.engine import sinks as sinks_module
from waste_vision.engine.frames import Frame, FrameResult
from waste_vision.engine.recorder import Recorder, RecordingError
from waste_vision.engine.sinks import RecordingSink


def result(i: int, t: float | None = None) -> FrameResult:
    image = frame(i)
    return FrameResult(Frame(i, time.monotonic() if t is None else t, image, 15.0))


def test_every_frame_reaches_a_file_recording(tmp_path):
    sink = RecordingSink(
        tmp_path / "v.mp4", 15, (W, H), jsonl_path=tmp_path / "v.jsonl", queue_size=2
    )
    for i in range(40):
        sink.write(result(i), frame(i))
    assert sink.close() == tmp_path / "v.mp4" and sink.error is None
    assert read_video(tmp_path / "v.mp4")[3] == 40


@pytest.mark.parametrize("fault", [RuntimeError("boom"), ValueError("bad record")])
def test_any_exception_in_the_recording_thread_ends_it_with_a_message(tmp_path, monkeypatch, fault):
    original = Recorder.write
    calls = []

    def failing(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise fault
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Recorder, "write", failing)
    sink = RecordingSink(tmp_path / "v.mp4", 15, (W, H), queue_size=2)
    start = time.monotonic()
    for i in range(200):  # far more than the queue holds: write() must never block for good
        sink.write(result(i), frame(i))
    assert time.monotonic() - start < 10
    assert sink.close() == tmp_path / "v.mp4"
    assert sink.error == f"cannot record {tmp_path / 'v.mp4'}: {type(fault).__name__}: {fault}"
    assert read_video(tmp_path / "v.mp4")[3] == 4  # what was written before stays playable


def test_an_error_while_making_the_log_line_is_caught_too(tmp_path, monkeypatch):
    def broken(result):
        raise KeyError("regions")

    monkeypatch.setattr(sinks_module, "frame_record", broken)
    sink = RecordingSink(tmp_path / "v.mp4", 15, (W, H), jsonl_path=tmp_path / "v.jsonl")
    sink.write(result(0), frame(0))
    sink.close()
    assert sink.error == f"cannot record {tmp_path / 'v.mp4'}: KeyError: 'regions'"


def stuck_recorder(monkeypatch) -> tuple[threading.Event, threading.Event]:
    """Recorder.write blocks (a hung disk or encoder) from the 4th frame on, until the
    returned ``release`` is set; ``stuck`` is set once it blocks."""
    release, stuck = threading.Event(), threading.Event()
    original = Recorder.write

    def write(self, *args, **kwargs):
        if self.frames_written >= 3:
            stuck.set()
            release.wait(30)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Recorder, "write", write)
    return release, stuck


def test_a_stuck_encoder_stops_a_file_recording_with_a_message_not_a_hang(tmp_path, monkeypatch):
    release, stuck = stuck_recorder(monkeypatch)
    sink = RecordingSink(tmp_path / "v.mp4", 15, (W, H), queue_size=2, stall_timeout=0.5)
    try:
        # frames 0-2 at the encoder's pace (it opens lazily, at frame 0: a slow start on a
        # loaded machine must not be read as a stall), then the 4th hangs in the encoder
        for i in range(3):
            sink.write(result(i), frame(i))
            wait_until(lambda n=i + 1: sink.frames_written == n, what=f"frame {i} written")
        sink.write(result(3), frame(3))
        assert stuck.wait(10)
        start = time.monotonic()
        for i in range(4, 20):
            sink.write(result(i), frame(i))
        assert time.monotonic() - start < 5  # bounded: the stall limit, not forever
        # frames 0-2 written, the 4th stuck in the encoder (2 more wait in the queue)
        assert sink.error == (
            f"cannot record {tmp_path / 'v.mp4'}: the encoder took no frame for 0.5 s (disk "
            "or system stalled?); the recording stops at frame 3"
        )
        start = time.monotonic()
        sink.close()
        assert time.monotonic() - start < 3
    finally:
        release.set()


def test_a_live_recording_skips_frames_the_encoder_has_no_time_for(tmp_path, monkeypatch):
    release, stuck = stuck_recorder(monkeypatch)
    sink = RecordingSink(
        tmp_path / "v.mp4", 15, (W, H), queue_size=2, real_time=True, stall_timeout=30
    )
    try:
        for i in range(3):  # at the encoder's pace: none skipped
            sink.write(result(i), frame(i))
            wait_until(lambda n=i + 1: sink.frames_written == n, what=f"frame {i} written")
        sink.write(result(3), frame(3))
        assert stuck.wait(10)  # the 4th frame is in the encoder, which hangs
        start = time.monotonic()
        for i in range(4, 10):
            sink.write(result(i), frame(i))
        # two fit in the queue; each of the other four waited LIVE_PUT_WAIT_S, no longer
        assert time.monotonic() - start < 3  # the live picture is never held up for long
        assert sink.frames_skipped == 4 and sink.error is None
    finally:
        release.set()
    sink.close()
    assert sink.error is None
    assert read_video(tmp_path / "v.mp4")[3] == 10 - 4


def test_writes_after_close_are_ignored(tmp_path):
    sink = RecordingSink(tmp_path / "v.mp4", 15, (W, H))
    sink.write(result(0), frame(0))
    sink.close()
    sink.write(result(1), frame(1))
    assert sink.close() == tmp_path / "v.mp4" and sink.frames_written == 1


def test_a_bad_output_fails_at_once(tmp_path):
    with pytest.raises(RecordingError, match="it is a folder"):
        RecordingSink(tmp_path, 15, (W, H))
