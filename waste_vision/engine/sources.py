"""Video sources: cameras, streams, video files and image folders behind one interface.

Contract
--------
* Threading. Each source owns one capture thread that only captures: it reads, converts
  OpenCV's BGR to RGB once, stamps a ``Frame`` (``index`` counts every frame produced,
  dropped ones too; ``timestamp`` is ``time.monotonic()`` at capture) and hands it to a
  buffer. Classification runs elsewhere, so a slow model never stalls the camera driver.
* Buffering (``Buffering``):
  - ``LATEST``: one slot; a newer frame replaces an unread one and the replaced frame counts
    in ``dropped``. A slow consumer always gets the freshest frame. Default for cameras,
    streams, and paced files/folders (they are shown live).
  - ``EVERY_FRAME``: a bounded queue; the capture thread waits while it is full, so every
    frame arrives in order and nothing is dropped. Default for files and folders read headless.
* ``paced=True`` (files, folders): the capture thread sleeps to absolute ``time.monotonic()``
  deadlines, so playback runs at the file's FPS (or ``seconds_per_image``) without drift.
* ``read(timeout)`` returns the next frame, or ``None`` on timeout and, for good, once the
  source has ended and every buffered frame was consumed; ``finished`` tells the two apart.
  Frames still buffered when the source ends or is stopped are returned first.
* Statuses (``SourceStatus``): STARTING (``start()`` called) -> RUNNING (frames flow) ->
  RECONNECTING (a live source failed, stalled or froze; retried with exponential backoff)
  -> RUNNING ... -> ENDED (end of a file or slideshow, or ``stop()``) or FAILED (gave up, or
  an error). Each change, and notes such as a skipped image, reaches ``on_status(event)``
  as a ``StatusEvent``. It is called on the capture thread, so keep it quick (post to a
  GUI queue); exceptions it raises are logged and ignored.
* Live failures (``Reconnect``): a failed read, a read that took longer than
  ``stall_timeout`` (judged when it returns; the first frame after opening is exempt), or
  identical frames for ``frozen_timeout`` -> release, wait, reopen (backoff doubling up to
  ``max_delay``). Files instead skip a frame that fails to decode and carry on; a file that
  stops decoding before its header's frame count ENDS with ``truncated_at`` set.
* Errors a user can fix raise ``UserError``: ``open_source`` (and the file/folder classes)
  for a missing path, a folder without images or a file OpenCV cannot open; ``start()`` when
  a camera or stream does not open the first time. Later failures become RECONNECTING.
* ``stop()`` sets an event and joins the thread, never kills it; it is idempotent. A backend
  call that blocks (camera driver, network read) is waited for up to ``JOIN_TIMEOUT_S``;
  streams get an FFmpeg read timeout so that they do return. Sources are single-use.
"""

from __future__ import annotations

import enum
import logging
import os
import threading
import time
import zlib
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from waste_vision.engine.frames import Frame
from waste_vision.errors import UserError
from waste_vision.images import IMAGE_SUFFIXES, ImageReadError, iter_image_files, read_rgb, to_rgb8
from waste_vision.redact import redact_url

# FFmpeg inside OpenCV prints its own lines ("Stream ends prematurely ...") for what our
# status events already say in words; keep them off the terminal.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

log = logging.getLogger(__name__)

STREAM_PREFIXES = ("rtsp://", "http://", "https://")
EVERY_FRAME_QUEUE = 8  # frames buffered ahead of a headless consumer
JOIN_TIMEOUT_S = 10.0
STREAM_OPEN_TIMEOUT_S = 10.0  # a stream that has not answered by then does not open
MAX_DAMAGED_RUN = 10  # failed reads in a row before a file counts as cut short
MAX_PACE_LAG_S = 0.25  # a paced source held up longer than this resumes from now, no burst
THREAD_PREFIX = "waste-vision source: "


class SourceStatus(enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    RECONNECTING = "reconnecting"
    ENDED = "ended"
    FAILED = "failed"


TERMINAL = (SourceStatus.ENDED, SourceStatus.FAILED)


@dataclass(frozen=True)
class StatusEvent:
    status: SourceStatus
    message: str  # one line, names the source
    timestamp: float  # time.monotonic()


class Buffering(enum.Enum):
    LATEST = "latest"
    EVERY_FRAME = "every_frame"


@dataclass(frozen=True)
class Reconnect:
    """When a live source counts as broken, and how patiently to reopen it."""

    initial_delay: float = 0.1  # first wait before reopening; doubles per failed attempt
    max_delay: float = 2.0
    stall_timeout: float | None = 2.0  # a read that took longer than this (None: no check)
    # identical frames for this long (None: no check). A reopened source gets a fresh start,
    # so a feed that is still frozen alternates RUNNING/RECONNECTING and a static scene with
    # no sensor noise still shows, just with those status flips.
    frozen_timeout: float | None = 3.0
    max_attempts: int | None = None  # reopen attempts in a row before FAILED; None: forever


class Capture(Protocol):
    """The part of ``cv2.VideoCapture`` the live logic uses, so tests can simulate a camera."""

    def isOpened(self) -> bool: ...
    def read(self) -> tuple[bool, np.ndarray | None]: ...
    def release(self) -> None: ...
    def get(self, prop: int) -> float: ...


class _FrameBuffer:
    """LATEST: a 1-slot buffer that overwrites. EVERY_FRAME: a bounded queue that blocks."""

    def __init__(self, buffering: Buffering):
        self._overwrite = buffering is Buffering.LATEST
        self._capacity = 1 if self._overwrite else EVERY_FRAME_QUEUE
        self._items: deque[Frame] = deque()
        self._cond = threading.Condition()
        self.closed = False
        self.dropped = 0

    def put(self, frame: Frame) -> bool:
        """Hand over a frame; False once closed (the producer should stop)."""
        with self._cond:
            while not self._overwrite and len(self._items) >= self._capacity and not self.closed:
                self._cond.wait(0.5)  # woken by get() or close(); the bound is a safety net
            if self.closed:
                return False
            if len(self._items) >= self._capacity:
                self._items.popleft()
                self.dropped += 1
            self._items.append(frame)
            self._cond.notify_all()
            return True

    def get(self, timeout: float | None) -> Frame | None:
        with self._cond:
            self._cond.wait_for(lambda: self._items or self.closed, timeout)
            if not self._items:
                return None
            frame = self._items.popleft()
            self._cond.notify_all()  # wake a producer waiting for room
            return frame

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    @property
    def drained(self) -> bool:
        with self._cond:
            return self.closed and not self._items


class _Pacer:
    """Sleeps to absolute deadlines (start + k * interval), so small delays never add up."""

    def __init__(self, interval: float, stop: threading.Event):
        self.interval = interval
        self._stop = stop
        self._next: float | None = None

    def wait(self) -> bool:
        """Wait for the next slot; False when stopped meanwhile."""
        now = time.monotonic()
        if self._next is None:
            self._next = now
        elif self._next > now:
            if self._stop.wait(self._next - now):
                return False
        elif now - self._next > MAX_PACE_LAG_S:
            self._next = now  # held up by a full queue: carry on from here instead of bursting
        self._next += self.interval
        return not self._stop.is_set()


class VideoSource(ABC):
    """A started source produces frames on its own thread; see the module docstring."""

    is_live = False  # frames come on the source's clock whether or not anyone reads them
    is_still = False  # each frame is a photo of its own (Frame.still), not one scene over time

    def __init__(
        self,
        name: str,
        *,
        buffering: Buffering,
        on_status: Callable[[StatusEvent], None] | None = None,
    ):
        self.name = name
        self.buffering = buffering
        self.on_status = on_status
        self.fps: float | None = None
        self.size: tuple[int, int] | None = None  # (w, h) of the latest frame
        self._buffer = _FrameBuffer(buffering)
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._status = SourceStatus.STARTING
        self._produced = 0
        self._cap: Capture | None = None  # the OpenCV handle, for sources that have one

    @property
    def status(self) -> SourceStatus:
        return self._status

    @property
    def dropped(self) -> int:
        return self._buffer.dropped

    @property
    def finished(self) -> bool:
        """True once read() can never return another frame."""
        return self._buffer.drained

    def start(self) -> VideoSource:
        if self._stop_event.is_set():
            raise RuntimeError(f"{self.name}: a stopped source cannot restart; open a new one")
        if self._thread is not None:
            return self
        self._set_status(SourceStatus.STARTING, f"{self.name}: starting")
        try:
            self._open()
        except UserError as exc:
            self._set_status(SourceStatus.FAILED, str(exc))
            self._buffer.close()
            raise
        self._thread = threading.Thread(
            target=self._thread_main, name=THREAD_PREFIX + self.name, daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = JOIN_TIMEOUT_S) -> None:
        """Stop capturing; waits up to ``timeout`` for the capture thread to end."""
        self._stop_event.set()
        self._buffer.close()  # also wakes a capture thread waiting for queue room
        thread = self._thread
        if thread is None:
            self._release()
            if self._status not in TERMINAL:
                self._set_status(SourceStatus.ENDED, f"{self.name}: stopped")
        elif thread is not threading.current_thread():  # stop() from on_status: no self-join
            thread.join(timeout)
            if thread.is_alive():  # a shorter wait is the caller's choice: no warning then
                (log.warning if timeout >= JOIN_TIMEOUT_S else log.info)(
                    "%s: capture thread still blocked in the backend after %.0f s",
                    self.name,
                    timeout,
                )

    def read(self, timeout: float | None = None) -> Frame | None:
        if self._thread is None and not self._buffer.closed:
            raise RuntimeError(f"{self.name}: call start() before read()")
        return self._buffer.get(timeout)

    def __enter__(self) -> VideoSource:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- for subclasses -------------------------------------------------------------------

    def _open(self) -> None:  # noqa: B027 (an optional hook: most sources open in start())
        """Acquire the device in the caller's thread, so start() can raise UserError."""

    def _release(self) -> None:
        """Free the device; runs on the capture thread at its end (or in stop())."""
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    @abstractmethod
    def _capture(self) -> None:
        """The capture loop: emit frames until the end, a give-up, or the stop event."""

    def _emit(self, rgb: np.ndarray, timestamp: float, position_s: float | None = None) -> bool:
        frame = Frame(self._produced, timestamp, rgb, self.fps, position_s, self.is_still)
        self._produced += 1
        self.size = (rgb.shape[1], rgb.shape[0])
        if self._status is not SourceStatus.RUNNING:
            rate = f" at {self.fps:g} fps" if self.fps else ""
            w, h = self.size
            self._set_status(SourceStatus.RUNNING, f"{self.name}: running, {w}x{h}{rate}")
        return self._buffer.put(frame)

    def _set_status(self, status: SourceStatus, message: str) -> None:
        self._status = status
        self._notify(message)

    def _notify(self, message: str) -> None:
        # every message through redact_url: a stream's password never reaches a screen or log
        event = StatusEvent(
            self._status, redact_url(" ".join(str(message).split())), time.monotonic()
        )
        log.info("[%s] %s", event.status.value, event.message)
        if self.on_status is not None:
            try:
                self.on_status(event)
            except Exception:
                log.exception("%s: on_status callback failed", self.name)

    def _thread_main(self) -> None:
        try:
            self._capture()
        except Exception as exc:
            log.exception("%s: capture failed", self.name)
            self._set_status(SourceStatus.FAILED, f"{self.name}: {type(exc).__name__}: {exc}")
        finally:
            self._release()
            if self._status not in TERMINAL:
                self._set_status(SourceStatus.ENDED, f"{self.name}: stopped")
            self._buffer.close()  # after the final status, so finished implies a final status


def _valid_fps(value: float) -> float | None:
    return float(value) if 0 < value < 1000 else None  # also rejects NaN and "unknown" (0, -1)


def _checksum(bgr: np.ndarray) -> int:
    """Cheap fingerprint of a downsampled frame: enough to tell a frozen feed from a live one."""
    return zlib.crc32(np.ascontiguousarray(bgr[::8, ::8]).tobytes())


class LiveCaptureSource(VideoSource):
    """A camera-like feed with reconnects; ``opener`` returns a fresh cv2.VideoCapture-like."""

    is_live = True

    def __init__(
        self,
        opener: Callable[[], Capture],
        *,
        name: str = "live source",
        buffering: Buffering | None = None,
        reconnect: Reconnect | None = Reconnect(),
        on_status: Callable[[StatusEvent], None] | None = None,
        open_error: str | None = None,
    ):
        super().__init__(name, buffering=buffering or Buffering.LATEST, on_status=on_status)
        self._opener = opener
        self.reconnect = reconnect if reconnect is not None else Reconnect(max_attempts=0)
        self._open_error = open_error or f"{name}: did not open"

    def _try_open(self) -> Capture | None:
        try:
            cap = self._opener()
        except Exception as exc:  # cv2.error and friends: just "did not open"
            log.debug("%s: opener raised %s", self.name, redact_url(str(exc)))
            return None
        if cap is not None and cap.isOpened():
            return cap
        if cap is not None:
            cap.release()
        return None

    def _open(self) -> None:
        self._cap = self._try_open()
        if self._cap is None:
            raise UserError(self._open_error)
        self.fps = _valid_fps(self._cap.get(cv2.CAP_PROP_FPS))

    def _capture(self) -> None:
        policy = self.reconnect
        delay, attempts = policy.initial_delay, 0
        while True:
            problem, flowed = self._pump()
            if problem is None:
                return
            if flowed:  # it worked for a while: start the backoff afresh
                delay, attempts = policy.initial_delay, 0
            self._release()
            while self._cap is None:
                if policy.max_attempts is not None and attempts >= policy.max_attempts:
                    why = (
                        f"gave up after {attempts} reconnect attempts"
                        if attempts
                        else "reconnecting is off"
                    )
                    self._set_status(SourceStatus.FAILED, f"{self.name}: {problem}; {why}")
                    return
                attempts += 1
                self._set_status(
                    SourceStatus.RECONNECTING,
                    f"{self.name}: {problem}; reconnecting in {delay:.2f} s (attempt {attempts})",
                )
                if self._stop_event.wait(delay):
                    return
                delay = min(delay * 2, policy.max_delay)
                self._cap = self._try_open()
                if self._cap is None:
                    problem = "did not reopen"

    def _pump(self) -> tuple[str | None, bool]:
        """Frames until a problem (its one-line reason) or stop (None); plus "did any flow"."""
        cap, policy = self._cap, self.reconnect
        if cap is None:
            raise RuntimeError(f"{self.name}: pumped before it was opened")
        flowed = False
        last_read: float | None = None  # no stall check before the first frame: opening takes time
        last_sum, same_since = None, 0.0
        while not self._stop_event.is_set():
            ok, bgr = cap.read()
            now = time.monotonic()
            if not ok or bgr is None:
                return "read failed", flowed
            if (
                policy.stall_timeout is not None
                and last_read is not None
                and now - last_read > policy.stall_timeout
            ):
                return f"no new frame for {now - last_read:.1f} s", flowed
            checksum = _checksum(bgr)
            if checksum != last_sum:
                last_sum, same_since = checksum, now
            elif policy.frozen_timeout is not None and now - same_since > policy.frozen_timeout:
                return f"picture frozen for {now - same_since:.1f} s", flowed
            if not self._emit(to_rgb8(bgr), now):
                return None, flowed
            flowed = True
            last_read = time.monotonic()  # after the hand-over: waiting on a full queue is no stall
        return None, flowed


def parse_camera_size(text: str) -> tuple[int, int]:
    """``"1280x720"`` -> (1280, 720); UserError naming the text otherwise."""
    try:
        w, h = (int(v) for v in text.lower().replace("×", "x").split("x"))
    except ValueError:
        raise UserError(f"camera size {text!r} must be WIDTHxHEIGHT, e.g. 1280x720") from None
    if not (16 <= w <= 8192 and 16 <= h <= 8192):
        raise UserError(f"camera size {text!r} is out of range (16 to 8192 pixels a side)")
    return w, h


class CameraSource(LiveCaptureSource):
    """A local camera by index, asked for a resolution and rate (``size``, ``fps``) instead
    of the driver's default (often 640x480). Drivers grant what they can: ``granted`` is
    what the camera delivers, and the source's name says it (the window's status bar)."""

    def __init__(
        self, index: int, size: tuple[int, int] | None = None, fps: float | None = None, **kwargs
    ):
        self.index = index
        self.asked = (size, fps)
        self.granted: tuple[int, int, float] | None = None  # width, height, fps once open
        super().__init__(
            self._open_camera,
            name=f"camera {index}",
            open_error=(
                f"camera {index} does not open (not connected, or in use by another app); "
                "`waste-vision cameras` lists the ones that do"
            ),
            **kwargs,
        )

    def _open_camera(self):
        cap = cv2.VideoCapture(self.index)
        size, fps = self.asked
        if cap.isOpened():
            if size is not None:
                # most USB cameras deliver large sizes at full rate only as MJPG
                cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*"MJPG"))
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
            if fps is not None:
                cap.set(cv2.CAP_PROP_FPS, fps)
            w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
            rate = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
            self.granted = (w, h, rate)
            if w > 0 and h > 0:
                self.name = f"camera {self.index} ({w}x{h}" + (
                    f" @ {rate:g} fps)" if rate > 0 else ")"
                )
        return cap


class StreamSource(LiveCaptureSource):
    """A network stream (RTSP, HTTP MJPEG, HLS...) read through FFmpeg with bounded waits."""

    def __init__(
        self,
        url: str,
        *,
        reconnect: Reconnect | None = Reconnect(),
        open_timeout: float = STREAM_OPEN_TIMEOUT_S,
        **kwargs,
    ):
        self.url = url
        policy = reconnect if reconnect is not None else Reconnect(max_attempts=0)
        read_ms = int(1000 * (policy.stall_timeout or 30.0))  # FFmpeg's own default is 30 s
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            int(1000 * open_timeout),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            read_ms,
        ]
        name = redact_url(url)  # the name reaches the status bar, logs and thread names
        super().__init__(
            lambda: cv2.VideoCapture(url, cv2.CAP_FFMPEG, params),
            name=name,
            reconnect=policy,
            open_error=f"{name}: the stream does not open (no answer within {open_timeout:g} s, "
            "or not a video stream); check the URL, credentials and network",
            **kwargs,
        )


class FileSource(VideoSource):
    """A video file. Opened here, so open_source raises UserError for an unreadable file."""

    def __init__(
        self,
        path: str | Path,
        *,
        buffering: Buffering | None = None,
        paced: bool = False,
        loop: bool = False,
        on_status: Callable[[StatusEvent], None] | None = None,
    ):
        self.path = Path(path)
        default = Buffering.LATEST if paced else Buffering.EVERY_FRAME
        super().__init__(str(self.path), buffering=buffering or default, on_status=on_status)
        self.paced, self.loop = paced, loop
        self.truncated_at: int | None = None  # file frame where decoding stopped early
        self.damaged_frames = 0  # undecodable frames skipped mid-file
        self._cap = self._open_capture()
        self.fps = _valid_fps(self._cap.get(cv2.CAP_PROP_FPS))
        count = self._cap.get(cv2.CAP_PROP_FRAME_COUNT)  # an image opened as video says -9e18
        self.frame_count: int | None = int(count) if 0 < count < 1e9 else None
        w = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        h = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.size = (w, h) if w > 0 and h > 0 else None

    def _open_capture(self) -> cv2.VideoCapture:
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            cap.release()
            raise UserError(
                f"{self.path}: OpenCV cannot open this video (damaged, cut short or an "
                "unsupported format); re-encode it, e.g. to MP4 (H.264)"
            )
        return cap

    def _capture(self) -> None:
        pacer = _Pacer(1.0 / (self.fps or 30.0), self._stop_event) if self.paced else None
        while True:
            delivered = self._play_once(pacer)
            if delivered is None:
                return
            if delivered == 0:
                self._set_status(SourceStatus.FAILED, f"{self.name}: no frame could be decoded")
                return
            if not self.loop:
                break
            self._release()  # reopening is more reliable than seeking to 0 across backends
            self._cap = self._open_capture()
        if pacer is not None and not pacer.wait():  # show the last frame for its full slot
            return
        if self.truncated_at is not None:
            message = (
                f"{self.name}: decoding stopped at frame {self.truncated_at} of "
                f"{self.frame_count} (file cut short or damaged)"
            )
        else:
            message = f"{self.name}: end of file after {delivered} frames"
        if self.damaged_frames:
            message += f"; skipped {self.damaged_frames} damaged frame(s)"
        self._set_status(SourceStatus.ENDED, message)

    def _play_once(self, pacer: _Pacer | None) -> int | None:
        """One pass through the file; frames delivered, or None when stopped."""
        cap, count = self._cap, self.frame_count
        if cap is None:
            raise RuntimeError(f"{self.name}: played before it was opened")
        good = skipped = bad_run = 0
        while not self._stop_event.is_set():
            ok, bgr = cap.read()
            if not ok or bgr is None:
                # OpenCV fails one read per undecodable frame and then carries on, so retry a few
                # while the header says frames remain; a cut file fails every read from then on.
                bad_run += 1
                if count and good + skipped + bad_run < count and bad_run <= MAX_DAMAGED_RUN:
                    continue
                break
            skipped, bad_run = skipped + bad_run, 0
            position = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            if not position >= 0 and self.fps:
                position = (good + skipped) / self.fps
            if pacer is not None and not pacer.wait():
                return None
            if not self._emit(to_rgb8(bgr), time.monotonic(), position):
                return None
            good += 1
        if self._stop_event.is_set():
            return None
        self.damaged_frames += skipped
        reached = good + skipped
        if count and reached < count - 1 and self.truncated_at is None:  # counts may be off by one
            self.truncated_at = reached
            if self.loop:
                self._notify(f"{self.name}: decoding stops at frame {reached} of {count}; looping")
        return good


class ImageFolderSource(VideoSource):
    """A slideshow of a folder's images (or one image file), in sorted order. Its frames are
    stills (``Frame.still``): each photo is classified on its own, never against the others
    as one scene (there is no empty table to learn in a slideshow)."""

    is_still = True

    def __init__(
        self,
        folder: str | Path,
        *,
        seconds_per_image: float = 2.0,
        paced: bool = False,
        loop: bool = False,
        buffering: Buffering | None = None,
        on_status: Callable[[StatusEvent], None] | None = None,
    ):
        self.folder = Path(folder)
        default = Buffering.LATEST if paced else Buffering.EVERY_FRAME
        super().__init__(str(self.folder), buffering=buffering or default, on_status=on_status)
        self.paths = list(iter_image_files(self.folder))
        if not self.paths:
            kinds = ", ".join(sorted(IMAGE_SUFFIXES))
            raise UserError(
                f"{self.folder}: no images in this folder (looked for {kinds}); "
                "point at a folder of photos or at a video file"
            )
        self.seconds_per_image, self.paced, self.loop = seconds_per_image, paced, loop
        self.fps = 1.0 / seconds_per_image if paced else None
        self.skipped: list[Path] = []  # unreadable images, left out of later loops

    def _capture(self) -> None:
        pacer = _Pacer(self.seconds_per_image, self._stop_event) if self.paced else None
        while True:
            shown = 0
            for path in [p for p in self.paths if p not in self.skipped]:
                if self._stop_event.is_set():
                    return
                try:
                    rgb = read_rgb(path)
                except ImageReadError as exc:
                    self.skipped.append(path)
                    self._notify(f"{path}: skipped, {exc}")
                    continue
                if pacer is not None and not pacer.wait():
                    return
                if not self._emit(rgb, time.monotonic()):
                    return
                shown += 1
            if shown == 0:
                self._set_status(SourceStatus.FAILED, f"{self.name}: no image could be read")
                return
            if not self.loop:
                break
        if pacer is not None and not pacer.wait():  # the last image gets its full time too
            return
        self._set_status(SourceStatus.ENDED, f"{self.name}: slideshow done, {shown} images")


class SourceKind(enum.StrEnum):
    """What a source spec names (equal to the plain strings it replaces)."""

    CAMERA = "camera"  # a camera index: 0, 1, ...
    STREAM = "stream"  # an rtsp:// or http(s):// URL
    PATH = "path"  # a video file, an image or a folder of images


def source_kind(spec: str | int | Path) -> SourceKind:
    """What a source spec names: a camera, a stream or a path (a video file or images)."""
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        return SourceKind.CAMERA
    if isinstance(spec, str) and spec.strip().lower().startswith(STREAM_PREFIXES):
        return SourceKind.STREAM
    return SourceKind.PATH


def is_camera(spec: object) -> bool:
    """``spec`` (as text; None is nothing) is a camera index."""
    return spec is not None and source_kind(str(spec)) == SourceKind.CAMERA


def is_stream(spec: object) -> bool:
    """``spec`` (as text; None is nothing) is a stream URL."""
    return spec is not None and source_kind(str(spec)) == SourceKind.STREAM


def open_source(
    spec: str | int | Path,
    *,
    buffering: Buffering | None = None,
    paced: bool = False,
    loop: bool = False,
    reconnect: Reconnect | None = Reconnect(),
    on_status: Callable[[StatusEvent], None] | None = None,
    seconds_per_image: float = 2.0,
    open_timeout: float = STREAM_OPEN_TIMEOUT_S,
    camera_size: tuple[int, int] | None = None,
    camera_fps: float | None = None,
) -> VideoSource:
    """Pick the source for a camera index, a stream URL, a video file or an image folder.

    Raises UserError for paths (missing, no images, not a video); cameras and streams are only
    opened by start(), which raises UserError if they do not open (a stream: within
    ``open_timeout`` seconds).
    """
    kind = source_kind(spec)
    if kind == SourceKind.CAMERA:
        return CameraSource(
            int(str(spec)),
            camera_size,
            camera_fps,
            buffering=buffering,
            reconnect=reconnect,
            on_status=on_status,
        )
    if kind == SourceKind.STREAM:
        return StreamSource(
            str(spec).strip(),
            open_timeout=open_timeout,
            buffering=buffering,
            reconnect=reconnect,
            on_status=on_status,
        )
    path = Path(str(spec)).expanduser()
    if not path.exists():
        raise UserError(
            f"{path}: no such file or folder; check the path, or give a camera "
            "index (0, 1, ...) or an rtsp:// or http(s):// URL"
        )
    if path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageFolderSource(
            path,
            seconds_per_image=seconds_per_image,
            paced=paced,
            loop=loop,
            buffering=buffering,
            on_status=on_status,
        )
    return FileSource(path, buffering=buffering, paced=paced, loop=loop, on_status=on_status)


def list_cameras(
    max_index: int = 5, *, opener: Callable[[int], Capture] = cv2.VideoCapture
) -> list[int]:
    """Camera indices 0..max_index that open and deliver a frame (an opened index may not)."""
    logging_api = getattr(cv2, "utils", None) and getattr(cv2.utils, "logging", None)
    previous = logging_api.getLogLevel() if logging_api else None
    if logging_api:  # probing absent indices makes OpenCV print a warning for each
        logging_api.setLogLevel(logging_api.LOG_LEVEL_ERROR)
    found = []
    try:
        for index in range(max_index + 1):
            cap = opener(index)
            try:
                if cap.isOpened():
                    ok, image = cap.read()
                    if ok and image is not None:
                        found.append(index)
            finally:
                cap.release()
    finally:
        if logging_api:
            logging_api.setLogLevel(previous)
    return found
