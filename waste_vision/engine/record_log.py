"""The JSONL log of a recording: one ``json.dumps`` line per video frame.

Each line carries ``video_frame`` and ``video_s`` so it can be matched to its frame. The log
describes one video only, so it is started afresh with it, and a frame's line is written
only once the video file holds that frame (the caller says how many it holds): after a crash
every line names a frame the video has. ``read_jsonl`` reads a log back, tolerating the torn
last line a crash can leave.

Errors are the caller's to word: this module raises ``OSError`` as it comes.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from pathlib import Path
from typing import IO

import numpy as np


def fsync(fd: int) -> None:
    """fsync, ignoring files that cannot be synced (pipes, devices): they hold no recording."""
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EROFS):
            raise


class RecordLog:
    """The log at ``path``, opened (and so emptied) at once; lines wait in memory until
    ``write_through`` says their frames are in the video."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._file: IO[str] = _open_log(self.path)
        self._pending: list[str] = []  # lines of frames not yet in the video, in order
        self.written = 0  # lines written

    def add(self, video_frame: int, video_s: float, record: dict | None) -> None:
        """Queue the line of one frame (TypeError for a record JSON cannot hold)."""
        self._pending.append(
            json.dumps(
                {"video_frame": video_frame, "video_s": round(video_s, 6), **(record or {})},
                default=_plain,
            )
        )

    def write_through(self, frames: int) -> None:
        """Write the queued lines of the first ``frames`` frames: those the video holds."""
        if self.written >= frames:
            return
        count = min(frames - self.written, len(self._pending))
        lines, self._pending = self._pending[:count], self._pending[count:]
        self.written += count
        self._file.write("".join(line + "\n" for line in lines))

    def sync(self) -> None:
        """Everything written so far onto the disk."""
        self._file.flush()
        fsync(self._file.fileno())

    def close(self) -> None:
        """Close the file; an error here is ignored (``sync`` first to know the log is whole)."""
        with contextlib.suppress(OSError):
            self._file.close()


def _plain(value):
    """numpy scalars and arrays as plain JSON numbers and lists."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _open_log(path: Path) -> IO[str]:
    """Started afresh, as the video is: lines appended to an older run's log would name
    frames of a video that no longer exists (whether an existing output may be replaced at
    all is the caller's decision, made before a Recorder is created)."""
    return open(Path(path), "w", buffering=1, encoding="utf-8")


def read_jsonl(path: Path) -> list:
    """The records of a log; a torn final line (a crash mid-write) is skipped."""
    lines = Path(path).read_text(encoding="utf-8", errors="replace").split("\n")
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError:
            if number == len(lines):  # no newline after it: the process died writing it
                continue
            raise ValueError(f"{path}:{number}: not a JSON line") from None
    return records
