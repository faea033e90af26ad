"""Sinks that take classified frames off the pipeline: the recorder and the JSONL log.

Encoding runs in the sink's own thread behind a small bounded queue, so the pipeline keeps
classifying while the previous frame is written; the queue blocks when full, so no frame is
ever dropped from a recording. A recording failure (disk full, output unwritable) stops the
recording with a one-line message; classification goes on.
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import numpy as np

from waste_vision.frames import FrameResult
from waste_vision.recorder import Recorder, RecordingError


def frame_record(result: FrameResult) -> dict:
    """One JSONL line: the frame, and per region its box, label and both stages' scores."""
    frame = result.frame
    return {
        "index": frame.index,
        "timestamp": round(frame.timestamp, 6),
        "position_s": None if frame.position_s is None else round(frame.position_s, 6),
        "latency_ms": round(result.latency_ms, 3),
        "regions": [{
            "box": list(r.box),
            "label": r.result.label,
            "score": round(r.result.score, 6),
            "stage1": r.result.stage1.as_dict(),
            "stage2": r.result.stage2.as_dict() if r.result.stage2 else None,
        } for r in result.regions],
    }


class RecordingSink:
    """Writes annotated frames and their JSONL lines through a ``Recorder`` in a thread."""

    _DONE = object()

    def __init__(self, path: Path, fps: float, size: tuple[int, int], *,
                 jsonl_path: Path | None = None, queue_size: int = 8,
                 segment_seconds: float = 1.0):
        self.path = Path(path)
        self._recorder = Recorder(self.path, fps, size, segment_seconds=segment_seconds,
                                  jsonl_path=jsonl_path)
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self.error: str | None = None
        self.output: Path | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="recorder", daemon=True)
        self._thread.start()

    @property
    def frames_written(self) -> int:
        return self._recorder.frames_written

    def write(self, result: FrameResult, annotated: np.ndarray) -> None:
        """Queue a frame; a no-op once the recording failed or was closed."""
        if self.error is None and not self._closed:
            self._queue.put((annotated, frame_record(result)))

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is self._DONE:
                return
            if self.error is not None:
                continue  # drain: the recording has stopped, classification has not
            try:
                self._recorder.write(*item)
            except RecordingError as exc:
                self.error = str(exc)

    def close(self) -> Path | None:
        """Finish writing, join the segments; returns the file (None if nothing was written)."""
        if self._closed:
            return self.output
        self._closed = True
        self._queue.put(self._DONE)
        self._thread.join()
        try:
            self.output = self._recorder.close()
        except RecordingError as exc:
            self.error = self.error or str(exc)
        parts = self._recorder.parts_dir
        if self.output is None and parts.is_dir():  # e.g. no room left to join the segments
            self.error = (f"{self.error or 'the recording could not be joined'}; what was "
                          f"recorded is kept in {parts}: free some space, then run "
                          f"'waste-vision recover {parts}'")
        return self.output
