"""Sinks that take classified frames off the pipeline: the recorder and the JSONL log.

Encoding runs in the sink's own thread behind a small bounded queue, so the pipeline keeps
classifying while the previous frame is written. No queue operation waits without a bound:

* ``annotate`` of a file (``real_time=False``): every frame must reach the video, so a full
  queue makes the pipeline wait for the encoder, for as long as the encoder makes progress;
  one that takes no frame for ``stall_timeout`` seconds stops the recording with a message.
  No frame is ever left out of such a recording silently.
* live recordings (``real_time=True``): frames carry their capture time, so a frame that finds
  the queue still full after ``LIVE_PUT_WAIT_S`` is skipped (counted in ``frames_skipped``;
  the video keeps its timing) rather than holding up the live picture.

Any failure in the recording thread (disk full, output removed, an encoder error, a bug)
stops the recording with a one-line message that names the file, in ``error``; what was
written before stays playable (fragmented MP4), and classification goes on.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path

import numpy as np

from waste_vision.engine.frames import FrameResult
from waste_vision.engine.recorder import Recorder, RecordingError, why

log = logging.getLogger(__name__)

STALL_TIMEOUT_S = 15.0  # an encoder that takes no frame for this long counts as stuck
LIVE_PUT_WAIT_S = 0.1  # a live frame waits at most this long for room in the queue


def frame_record(result: FrameResult) -> dict:
    """One JSONL line: the frame's verdict (``empty``, ``uncertain`` or a class), and per
    region (items found, zones drawn, or the whole frame) its box, label and both stages'
    scores; ``counted`` lists the items counted at this frame."""
    frame = result.frame
    return {
        "index": frame.index,
        "timestamp": round(frame.timestamp, 6),
        "position_s": None if frame.position_s is None else round(frame.position_s, 6),
        "latency_ms": round(result.latency_ms, 3),
        "verdict": result.verdict,
        "mode": result.mode,
        "regions": [
            {
                "box": list(r.box),
                "label": r.result.label,
                "score": round(r.result.score, 6),
                "stage1": r.result.stage1.as_dict(),
                "stage2": r.result.stage2.as_dict() if r.result.stage2 else None,
                "kind": r.kind,
                "item": r.item_id,
            }
            for r in result.regions
        ],
        "counted": list(result.counted),
    }


class RecordingSink:
    """Writes annotated frames and their JSONL lines through a ``Recorder`` in a thread."""

    def __init__(
        self,
        path: Path,
        fps: float,
        size: tuple[int, int],
        *,
        jsonl_path: Path | None = None,
        queue_size: int = 8,
        segment_seconds: float = 1.0,
        real_time: bool = False,
        stall_timeout: float = STALL_TIMEOUT_S,
    ):
        self.path = Path(path)
        self.real_time = real_time
        self.stall_timeout = stall_timeout
        self._recorder = Recorder(
            self.path,
            fps,
            size,
            fragment_seconds=segment_seconds,
            jsonl_path=jsonl_path,
            real_time=real_time,
        )
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self.error: str | None = None
        self.output: Path | None = None
        self.frames_skipped = 0  # live frames left out because the encoder was behind
        self._closed = False
        self._closing = threading.Event()
        self._progress = time.monotonic()  # the recording thread's last sign of life
        self._thread = threading.Thread(target=self._work, name="recorder", daemon=True)
        self._thread.start()

    @property
    def frames_written(self) -> int:
        return self._recorder.frames_written

    def write(self, result: FrameResult, annotated: np.ndarray) -> None:
        """Queue a frame; a no-op once the recording failed or was closed. Never waits
        without a bound (see the module docstring)."""
        if self.error is not None or self._closed:
            return
        item = (annotated, result)
        if self.real_time:
            try:
                self._queue.put(item, timeout=LIVE_PUT_WAIT_S)
                return
            except queue.Full:
                self.frames_skipped += 1
                self._check_alive()
                return
        while self.error is None:
            try:
                self._queue.put(item, timeout=0.25)
                return
            except queue.Full:
                self._check_alive()

    def _check_alive(self) -> None:
        """Stop the recording with a message if its thread died or stopped making progress."""
        if self.error is not None:
            return
        if not self._thread.is_alive():
            self.error = f"the recording thread for {self.path} ended unexpectedly"
        elif time.monotonic() - self._progress > self.stall_timeout:
            self.error = (
                f"cannot record {self.path}: the encoder took no frame for "
                f"{self.stall_timeout:g} s (disk or system stalled?); the recording "
                f"stops at frame {self.frames_written}"
            )
        if self.error is not None:
            log.info("%s", self.error)

    def _work(self) -> None:
        try:
            while True:
                try:
                    item = self._queue.get(timeout=0.1)
                except queue.Empty:
                    if self._closing.is_set():
                        return
                    continue
                self._progress = time.monotonic()
                if self.error is not None:
                    continue  # drain: the recording has stopped, classification has not
                annotated, result = item
                try:
                    self._recorder.write(
                        annotated, frame_record(result), timestamp=result.frame.timestamp
                    )
                except RecordingError as exc:
                    self.error = str(exc)
                except Exception as exc:  # e.g. a record that cannot be made: still one line
                    log.debug("recording %s failed", self.path, exc_info=True)
                    self.error = f"cannot record {self.path}: {why(exc)}"
                self._progress = time.monotonic()
        except BaseException as exc:  # never end silently
            self.error = self.error or f"cannot record {self.path}: {why(exc)}"
            raise

    def close(self) -> Path | None:
        """Finish writing what is queued and the file; returns it (None if no frame was
        written). Returns within ``stall_timeout`` of the encoder's last progress."""
        if self._closed:
            return self.output
        self._closed = True
        self._closing.set()
        while self._thread.is_alive():
            self._thread.join(0.1)
            if self._thread.is_alive() and time.monotonic() - self._progress > self.stall_timeout:
                self._check_alive()
                # the thread is stuck inside the encoder: leave the file as it is (every
                # whole fragment in it plays) rather than touch the encoder from here
                self.output = self.path if self.frames_written and self.path.exists() else None
                return self.output
        try:
            self.output = self._recorder.close()
        except RecordingError as exc:
            self.error = self.error or str(exc)
            self.output = self.path if self.frames_written and self.path.exists() else None
        return self.output
