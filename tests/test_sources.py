"""Video sources with real threads: small clips written on the fly and a simulated camera."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import wait_until
from tests.fake_camera import FakeCamera
from waste_vision.engine.sources import (
    EVERY_FRAME_QUEUE,
    THREAD_PREFIX,
    Buffering,
    CameraSource,
    FileSource,
    ImageFolderSource,
    LiveCaptureSource,
    Reconnect,
    SourceStatus,
    StreamSource,
    list_cameras,
    open_source,
)
from waste_vision.errors import UserError

W, H = 160, 120
S = SourceStatus


def write_clip(path: Path, frames: int = 30, fps: float = 30.0, fourcc: str = "MJPG") -> Path:
    """A red clip whose top-left patch gets brighter frame by frame, so order is checkable."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (W, H))
    assert writer.isOpened()
    for i in range(frames):
        bgr = np.zeros((H, W, 3), np.uint8)
        bgr[:] = (0, 0, 255)
        bgr[:32, :32] = 8 * i
        writer.write(bgr)
    writer.release()
    return path


def read_all(source, timeout: float = 2.0, pause: float = 0.0) -> list:
    frames = []
    while not source.finished:
        frame = source.read(timeout)
        if frame is not None:
            frames.append(frame)
            time.sleep(pause)
    return frames


def collapsed(events) -> list[SourceStatus]:
    """Statuses in order with repeats merged: RECONNECTING x3 reads as one RECONNECTING."""
    out = []
    for event in events:
        if not out or out[-1] is not event.status:
            out.append(event.status)
    return out


def source_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX)]


@pytest.fixture
def camera():
    cam = FakeCamera()
    yield cam
    cam.mode = "ok"  # end any stall before the source under test is stopped


def live_source(camera: FakeCamera, events: list, **policy) -> LiveCaptureSource:
    policy = {"initial_delay": 0.02, "max_delay": 0.1, **policy}
    return LiveCaptureSource(
        camera.open, name="fake camera", reconnect=Reconnect(**policy), on_status=events.append
    )


# -- files ----------------------------------------------------------------------------------


def test_file_source_delivers_every_frame_in_order(tmp_path):
    events = []
    source = open_source(write_clip(tmp_path / "clip.avi"), on_status=events.append)
    assert isinstance(source, FileSource) and not source.is_live
    assert source.buffering is Buffering.EVERY_FRAME
    assert (source.frame_count, source.size, source.fps) == (30, (W, H), 30.0)
    with source:
        frames = read_all(source, pause=0.005)  # slower than the decoder: it must wait, not drop
    assert [f.index for f in frames] == list(range(30))
    assert source.dropped == 0 and source.truncated_at is None
    patch = [float(f.image[:32, :32].mean()) for f in frames]
    assert all(b > a for a, b in zip(patch, patch[1:], strict=False))
    rgb = frames[0].image[H - 10, W - 10]
    assert rgb[0] > 200 and rgb[2] < 50, "file frames must be RGB (the clip is red)"
    assert frames[-1].position_s == pytest.approx(29 / 30, abs=0.01)
    assert frames[0].source_fps == 30.0
    assert collapsed(events) == [S.STARTING, S.RUNNING, S.ENDED]
    assert "after 30 frames" in events[-1].message


def test_paced_file_plays_at_its_own_fps(tmp_path):
    source = open_source(write_clip(tmp_path / "clip.avi", frames=30, fps=60.0), paced=True)
    assert source.buffering is Buffering.LATEST
    start = time.monotonic()
    with source:
        frames = read_all(source)
        elapsed = time.monotonic() - start
    assert 0.35 < elapsed < 1.5  # 30 frames at 60 fps = 0.5 s
    assert len(frames) + source.dropped == 30
    gaps = np.diff([f.timestamp for f in frames])
    assert np.median(gaps) == pytest.approx(1 / 60, abs=0.006)


def test_loop_restarts_the_file(tmp_path):
    source = open_source(write_clip(tmp_path / "clip.avi", frames=10), loop=True)
    with source:
        frames = [source.read(2.0) for _ in range(25)]
        assert source.status is S.RUNNING
    assert [f.index for f in frames] == list(range(25))
    assert [f.position_s for f in frames[:3]] == [f.position_s for f in frames[10:13]]
    assert frames[10].position_s == pytest.approx(0.0)
    assert source.status is S.ENDED and not source_threads()


def test_truncated_video(tmp_path):
    """OpenCV's AVI writer puts the frame count in the header, so a cut AVI still opens and
    says 30 frames, then fails every read past the cut. A cut MP4 loses its index (written
    last) and does not open at all."""
    clip = write_clip(tmp_path / "clip.avi")
    data = clip.read_bytes()
    half = len(data) // 2
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[:half])
    # every frame whose JPEG begins before the cut decodes (the one cut short too: libjpeg
    # fills in its missing tail); none after it
    begun = sum(m.start() < half for m in re.finditer(rb"\xff\xd8\xff", data))
    assert 0 < begun < 30
    events = []
    source = open_source(cut, on_status=events.append)
    assert source.frame_count == 30
    with source:
        frames = read_all(source)
    assert [f.index for f in frames] == list(range(begun))
    assert source.truncated_at == len(frames)
    assert source.status is S.ENDED
    assert f"stopped at frame {len(frames)} of 30" in events[-1].message

    mp4 = write_clip(tmp_path / "clip.mp4", fourcc="mp4v")
    mp4_cut = tmp_path / "cut.mp4"
    mp4_cut.write_bytes(mp4.read_bytes()[: mp4.stat().st_size // 2])
    with pytest.raises(UserError, match=re.escape(str(mp4_cut))):
        open_source(mp4_cut)


def test_damaged_frame_mid_file_is_skipped(tmp_path):
    """A frame whose JPEG data is broken makes one read() fail; the frames after it decode."""
    clip = write_clip(tmp_path / "clip.avi")
    data = bytearray(clip.read_bytes())
    jpegs = [m.start() for m in re.finditer(rb"\xff\xd8\xff", bytes(data))]
    assert len(jpegs) == 30
    data[jpegs[15] + 20 : jpegs[15] + 220] = bytes(200)  # frame 15's tables and first scan bytes
    clip.write_bytes(bytes(data))
    events = []
    with open_source(clip, on_status=events.append) as source:
        frames = read_all(source)
    assert len(frames) == 29 and source.damaged_frames == 1 and source.truncated_at is None
    assert [round(f.position_s * 30) for f in frames[14:17]] == [14, 16, 17]
    assert events[-1].status is S.ENDED and "skipped 1 damaged" in events[-1].message


def test_stop_unblocks_a_capture_thread_waiting_on_a_full_queue(tmp_path):
    source = open_source(write_clip(tmp_path / "clip.avi")).start()
    assert wait_until(lambda: source.read(0) is not None, what="a first frame")
    # the queue fills; with 30 frames in the clip, the capture thread then waits for room
    assert wait_until(lambda: len(source._buffer._items) == EVERY_FRAME_QUEUE, what="a full queue")
    assert source._thread.is_alive() and source.status is S.RUNNING
    started = time.monotonic()
    source.stop()
    assert time.monotonic() - started < 1.0
    assert not source_threads() and source.status is S.ENDED


# -- image folders --------------------------------------------------------------------------


def make_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name, bgr in (("a.png", (0, 0, 255)), ("c.png", (0, 255, 0)), ("d.jpg", (255, 0, 0))):
        cv2.imwrite(str(folder / name), np.full((H, W, 3), bgr, np.uint8))
    (folder / "b.jpg").write_bytes(b"not an image")
    return folder


def test_image_folder_slideshow(tmp_path):
    events = []
    source = open_source(make_folder(tmp_path), on_status=events.append)
    assert isinstance(source, ImageFolderSource)
    with source:
        frames = read_all(source)
    colours = [tuple(int(v) for v in f.image[5, 5]) for f in frames]
    assert [np.argmax(c) for c in colours] == [0, 1, 2]  # red, green, blue in RGB, sorted names
    assert [p.name for p in source.skipped] == ["b.jpg"]
    assert any("b.jpg" in e.message and "skipped" in e.message for e in events)
    assert source.status is S.ENDED


def test_paced_slideshow_loops(tmp_path):
    source = open_source(make_folder(tmp_path), paced=True, loop=True, seconds_per_image=0.1)
    start = time.monotonic()
    with source:
        frames = [source.read(1.0) for _ in range(5)]
        elapsed = time.monotonic() - start
    assert [int(np.argmax(f.image[5, 5])) for f in frames] == [0, 1, 2, 0, 1]
    assert 0.3 < elapsed < 1.2  # 5 images, 0.1 s apart
    assert source.fps == pytest.approx(10.0)


# -- open_source ----------------------------------------------------------------------------


def test_open_source_errors_name_the_path(tmp_path):
    missing = tmp_path / "nowhere.mp4"
    with pytest.raises(UserError, match=re.escape(str(missing))):
        open_source(missing)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    with pytest.raises(UserError, match=re.escape(str(empty))):
        open_source(empty)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"hello" * 100)
    with pytest.raises(UserError, match="cannot open this video"):
        open_source(str(junk))


def test_open_source_picks_the_kind(tmp_path):
    photo = tmp_path / "one.png"
    cv2.imwrite(str(photo), np.zeros((H, W, 3), np.uint8))
    single = open_source(photo)
    assert isinstance(single, ImageFolderSource) and single.paths == [photo]
    camera = open_source("0")
    assert isinstance(camera, CameraSource) and camera.index == 0 and camera.is_live
    assert camera.buffering is Buffering.LATEST
    assert isinstance(open_source(2), CameraSource)
    stream = open_source("rtsp://user:secret@10.0.0.5/live")
    assert isinstance(stream, StreamSource) and stream.is_live
    assert "secret" not in stream.name


def test_camera_that_does_not_open_raises_on_start():
    source = CameraSource(97)
    with pytest.raises(UserError, match="camera 97"):
        source.start()
    assert source.status is S.FAILED and source.finished


# -- live sources (simulated camera) --------------------------------------------------------


def test_latest_frame_wins_for_a_slow_consumer(camera):
    source = LiveCaptureSource(camera.open).start()
    frames, ages = [], []
    try:
        for _ in range(8):
            frame = source.read(1.0)
            ages.append(time.monotonic() - frame.timestamp)
            frames.append(frame)
            time.sleep(0.05)  # a slow classifier
        assert source.status is S.RUNNING
    finally:
        source.stop()
    while (frame := source.read(0)) is not None:  # the slot may hold one unread frame
        frames.append(frame)
    indices = [f.index for f in frames]
    assert all(b > a for a, b in zip(indices, indices[1:], strict=False))
    assert (
        sum(b - a > 1 for a, b in zip(indices, indices[1:], strict=False)) >= 5
    )  # it skipped ahead
    assert source.dropped > 0
    assert source.dropped == indices[-1] + 1 - len(frames)  # every unseen frame was dropped
    assert np.median(ages[1:]) < 0.03  # fresh, not 50 ms old
    assert (frames[0].image[5, 5] == (0, 0, 255)).all()  # BGR blue became RGB blue
    assert frames[0].source_fps == 200.0 and source.size == (W, H)


def test_reconnects_after_failures_with_backoff(camera):
    events = []
    source = live_source(camera, events, frozen_timeout=None).start()
    try:
        assert source.read(1.0) is not None
        camera.mode = "unplugged"
        # the backoff doubles until it reaches max_delay: 0.02, 0.04, 0.08, then 0.1
        assert wait_until(
            lambda: any("reconnecting in 0.10 s" in e.message for e in events),
            what="the backoff to reach max_delay",
        )
        recovered = time.monotonic()
        camera.mode = "ok"
        frame = source.read(2.0)
        while frame is not None and frame.timestamp < recovered:
            frame = source.read(2.0)
        assert frame is not None and frame.timestamp - recovered < 2.0
        assert wait_until(lambda: source.status is S.RUNNING)
    finally:
        source.stop()
    assert collapsed(events) == [S.STARTING, S.RUNNING, S.RECONNECTING, S.RUNNING, S.ENDED]
    retries = [e for e in events if e.status is S.RECONNECTING]
    delays = [float(re.search(r"in ([\d.]+) s", e.message).group(1)) for e in retries]
    assert len(retries) >= 4 and delays == [0.02, 0.04, 0.08] + [0.1] * (len(retries) - 3)
    assert [int(re.search(r"attempt (\d+)", e.message).group(1)) for e in retries] == list(
        range(1, len(retries) + 1)
    )
    assert "read failed" in events[2].message and "did not reopen" in events[3].message
    # one open at start, one per attempt (the last one worked); each good one released
    assert camera.opens == 1 + len(retries) and camera.good_opens == 2
    assert camera.releases == camera.good_opens  # nothing left open


def test_stall_triggers_reconnect(camera):
    events = []
    # stall_timeout well above a frame's read (5 ms) plus a scheduling gap of a loaded
    # machine (~200 ms), so only the simulated stall, twice as long, counts as one
    source = live_source(camera, events, stall_timeout=0.3).start()
    try:
        assert source.read(1.0) is not None
        camera.mode = "stall"
        time.sleep(0.6)  # the simulated stall: read() blocks this long, twice stall_timeout
        camera.mode = "ok"
        assert wait_until(
            lambda: S.RECONNECTING in collapsed(events) and source.status is S.RUNNING,
            what="a reconnect after the stall",
        )
    finally:
        source.stop()
    assert collapsed(events) == [S.STARTING, S.RUNNING, S.RECONNECTING, S.RUNNING, S.ENDED]
    (retry,) = [e for e in events if e.status is S.RECONNECTING]  # the first reopen worked
    stalled = float(re.search(r"no new frame for ([\d.]+) s", retry.message).group(1))
    # the whole stall (less the moment between the last frame's hand-over and the stall's
    # start), not cut short at stall_timeout (0.3)
    assert stalled >= 0.5, retry.message
    assert "(attempt 1)" in retry.message and camera.opens == 2


def test_frozen_picture_triggers_reconnect(camera):
    events = []
    # the first retry waits 0.5 s: time enough to unfreeze the camera before it reopens
    source = live_source(camera, events, frozen_timeout=0.2, initial_delay=0.5).start()
    try:
        assert source.read(1.0) is not None
        camera.mode = "freeze"
        assert wait_until(lambda: source.status is S.RECONNECTING, what="a reconnect")
        camera.mode = "ok"
        assert wait_until(lambda: source.status is S.RUNNING, what="running again")
        assert source.read(1.0) is not None
    finally:
        source.stop()
    assert collapsed(events) == [S.STARTING, S.RUNNING, S.RECONNECTING, S.RUNNING, S.ENDED]
    (retry,) = [e for e in events if e.status is S.RECONNECTING]
    frozen = float(re.search(r"picture frozen for ([\d.]+) s", retry.message).group(1))
    assert frozen >= 0.2, retry.message  # never before frozen_timeout
    assert "(attempt 1)" in retry.message and camera.opens == 2


def test_gives_up_after_max_attempts(camera):
    events = []
    source = live_source(camera, events, max_attempts=2).start()
    assert source.read(1.0) is not None
    camera.mode = "unplugged"
    assert wait_until(lambda: source.finished, what="the source to give up")
    source.stop()
    assert collapsed(events) == [S.STARTING, S.RUNNING, S.RECONNECTING, S.FAILED]
    assert [e.status for e in events].count(S.RECONNECTING) == 2
    assert events[-1].message == "fake camera: did not reopen; gave up after 2 reconnect attempts"
    assert source.status is S.FAILED and camera.opens == 3  # the first open and two retries


def test_stop_is_idempotent_and_joins_the_thread(camera):
    events = []
    source = live_source(camera, events)
    source.stop()  # before start: harmless
    assert source.status is S.ENDED

    source = live_source(camera, events).start()
    assert source.start() is source and len(source_threads()) == 1
    assert source.read(1.0) is not None
    source.stop()
    source.stop()
    assert not source_threads()
    assert source.status is S.ENDED and source.finished
    assert [e.status for e in events].count(S.ENDED) == 2  # one per source, none twice
    with pytest.raises(RuntimeError):
        source.start()


def test_list_cameras_keeps_only_cameras_that_deliver():
    opened = []

    class Probe:
        def __init__(self, index):
            self.index, self.released = index, False
            opened.append(self)

        def isOpened(self):
            return self.index in (1, 2)

        def read(self):
            return (True, np.zeros((H, W, 3), np.uint8)) if self.index == 1 else (False, None)

        def release(self):
            self.released = True

    assert list_cameras(3, opener=Probe) == [1]
    assert [p.index for p in opened] == [0, 1, 2, 3]
    assert all(p.released for p in opened)


# -- a real stream: MJPEG over HTTP from a server in the test ---------------------------------


class StatusLog:
    """Collects status events and lets a test wait for one (no fixed sleeps)."""

    def __init__(self):
        self.events: list = []
        self._cond = threading.Condition()

    def __call__(self, event) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def wait_for(self, status: SourceStatus, after: int = 0, timeout: float = 15.0):
        """The first event with ``status`` at index >= ``after``; fails after ``timeout``."""

        def found():
            return next(
                (i for i, e in enumerate(self.events) if i >= after and e.status is status), None
            )

        with self._cond:
            assert self._cond.wait_for(lambda: found() is not None, timeout), (
                f"no {status} after event {after}: {[e.message for e in self.events]}"
            )
            return found()


@pytest.fixture
def mjpeg():
    from tests.mjpeg_server import MJPEGServer, synthetic_frames

    server = MJPEGServer(synthetic_frames(30, (W, H)), fps=30).start()
    yield server
    server.stop()


def test_stream_source_plays_a_real_mjpeg_stream_through_a_server_outage(mjpeg):
    """Frames flow from a real HTTP MJPEG server; the server goes away (every connection
    closed, the port refuses) and comes back on the same URL: the source reports
    RECONNECTING, then RUNNING again, and frames flow again, fresh ones."""
    log = StatusLog()
    source = StreamSource(
        mjpeg.url, reconnect=Reconnect(initial_delay=0.05, max_delay=0.3), on_status=log
    )
    assert source.is_live and source.buffering is Buffering.LATEST
    with source:
        frames = [source.read(5.0) for _ in range(15)]
        assert all(f is not None for f in frames)
        assert frames[0].image.shape == (H, W, 3)
        rgb = frames[0].image[H - 10, W - 10]
        assert rgb[0] > 200 and rgb[2] < 60, "stream frames must be RGB (the clip is red)"
        assert [f.index for f in frames] == sorted(f.index for f in frames)
        running = log.wait_for(S.RUNNING)

        mjpeg.stop()
        lost = log.wait_for(S.RECONNECTING, after=running + 1)
        assert (
            "read failed" in log.events[lost].message or "no new frame" in log.events[lost].message
        )
        sent_before = mjpeg.sent

        mjpeg.start()
        back = log.wait_for(S.RUNNING, after=lost + 1)
        assert log.events[back].timestamp > log.events[lost].timestamp
        frame = source.read(5.0)
        while frame is not None and frame.timestamp < log.events[back].timestamp:
            frame = source.read(5.0)  # anything captured before the outage is stale
        assert frame is not None and mjpeg.sent > sent_before
    assert source.status is S.ENDED and not source_threads()


def test_a_stream_that_does_not_answer_is_refused_within_its_timeout():
    import socket

    from tests.mjpeg_server import free_port

    refused = StreamSource(f"http://127.0.0.1:{free_port()}/none.mjpg", open_timeout=2)
    start = time.monotonic()
    with pytest.raises(UserError, match="does not open"):
        refused.start()
    assert time.monotonic() - start < 3
    with socket.socket() as silent:  # accepts the connection, never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/stream.mjpg"
        source = StreamSource(url, open_timeout=1.5)
        start = time.monotonic()
        with pytest.raises(UserError, match=r"no answer within 1.5 s"):
            source.start()
        assert time.monotonic() - start < 5


def test_a_camera_is_asked_for_its_size_and_rate_and_says_what_it_granted(monkeypatch):
    """The driver's default is often 640x480: the size and rate asked for are set before the
    first frame, and what the camera granted (here it can only do 1280x720 at 25) is what the
    source reports (the window's status bar shows its name)."""
    import cv2

    from waste_vision.engine import sources as sources_module
    from waste_vision.engine.sources import CameraSource, parse_camera_size

    class FakeCamera:
        def __init__(self, index):
            self.index, self.props = (
                index,
                {
                    cv2.CAP_PROP_FRAME_WIDTH: 640,
                    cv2.CAP_PROP_FRAME_HEIGHT: 480,
                    cv2.CAP_PROP_FPS: 30.0,
                },
            )
            self.asked = {}

        def isOpened(self):
            return True

        def set(self, prop, value):
            self.asked[prop] = value
            limits = {
                cv2.CAP_PROP_FRAME_WIDTH: 1280,
                cv2.CAP_PROP_FRAME_HEIGHT: 720,
                cv2.CAP_PROP_FPS: 25.0,
            }
            if prop in limits:
                self.props[prop] = min(value, limits[prop])
            return True

        def get(self, prop):
            return self.props.get(prop, 0)

    made = []
    monkeypatch.setattr(
        sources_module.cv2, "VideoCapture", lambda index: made.append(FakeCamera(index)) or made[-1]
    )
    source = CameraSource(3, parse_camera_size("1920x1080"), 60)
    cap = source._open_camera()
    assert cap.index == 3
    assert cap.asked[cv2.CAP_PROP_FRAME_WIDTH] == 1920 and cap.asked[cv2.CAP_PROP_FPS] == 60
    assert source.granted == (1280, 720, 25.0)
    assert source.name == "camera 3 (1280x720 @ 25 fps)"
    plain = CameraSource(0)
    plain._open_camera()
    assert made[-1].asked == {}  # nothing asked: the driver's default stays
    with pytest.raises(UserError, match="WIDTHxHEIGHT"):
        parse_camera_size("big")


def test_a_refused_stream_never_shows_its_password(caplog):
    """Issue 22: the URL is shown through redact_url everywhere (status, error, log, thread)."""
    import logging

    url = "rtsp://user:secret@127.0.0.1:9/x"
    events = []
    source = StreamSource(url, open_timeout=1, reconnect=None, on_status=events.append)
    with caplog.at_level(logging.DEBUG), pytest.raises(UserError) as refused:
        source.start()
    assert "secret" not in str(refused.value)
    assert "rtsp://user:***@127.0.0.1:9/x" in str(refused.value)  # redact_url's form
    assert [e.status for e in events] == [S.STARTING, S.FAILED] and source.status is S.FAILED
    for event in events:
        assert "secret" not in event.message
    assert "rtsp://user:***@127.0.0.1:9/x" in events[-1].message
    assert "secret" not in caplog.text
    assert "secret" not in source.name


def test_image_folder_frames_are_stills(tmp_path):
    """A slideshow's frames are photos of their own (the pipeline classifies each alone)."""
    for i in range(2):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((H, W, 3), 60 * i, np.uint8))
    with ImageFolderSource(tmp_path) as source:
        frames = [source.read(5.0) for _ in range(2)]
    assert all(f is not None and f.still for f in frames)
    with FileSource(write_clip(tmp_path / "clip.avi", frames=3)) as video:
        assert video.read(5.0).still is False
