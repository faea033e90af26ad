"""Crash-safe H.264 recording of the annotated video, and a JSONL log of the results.

The video is written with PyAV (FFmpeg's libx264) as *fragmented* MP4: an empty index up
front, then one fragment (``moof`` + ``mdat``) per second, each starting on a keyframe. Every
fragment reaches the operating system as soon as it is complete, so the file at its own path
is playable at any moment: a ``kill -9`` (or a full disk) loses at most the fragment being
filled, about ``fragment_seconds``, and no recover step is needed.

Stopping costs the same whatever the length: nothing is copied. Between the empty index and
the first fragment the recorder leaves a small ``free`` box (``INDEX_BYTES``); at a clean
close it becomes a segment index (``sidx``) of the fragments' offsets and durations, written
in place and switched on by one 8-byte write of its header. Players that read the file from
the start (FFmpeg's demuxer, which Chromium uses for MP4) then know the whole length and
jump straight to the fragment they seek to; without it they see the first fragment's length
only (Chromium: 1-2 s, no seeking). Long recordings group several fragments into one index
entry, so the box never runs out: a seek lands within ``ceil(fragments / INDEX_ENTRIES)``
fragments of its target and decodes forward from there.

Timing: by default frame ``k`` lasts ``1 / fps`` (``annotate`` of a file: the input's frame
count, size and rate). With ``real_time=True`` each frame carries its capture time instead,
so a live recording plays at the speed it happened even when frames were skipped.

The log gets one ``json.dumps`` line per frame, with ``video_frame`` and ``video_s`` added so
a line can be matched to its frame. It describes this video only: it is started afresh with
the video (as the video file is), and a frame's line is written once the fragment holding the
frame is in the file, so after a crash every line names a frame the video has. Fsynced at
close. ``read_jsonl`` reads it back, tolerating the torn last line a crash can leave.

Recordings made before this format (a ``<stem>.parts`` folder of 1-second MPEG-4 segments
and the ``recording.json`` the recorder wrote beside them, left by a killed process) are
turned into a video by ``recover``, which re-encodes them; it touches no other folder.
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import json
import logging
import os
import re
import struct
import time
from fractions import Fraction
from pathlib import Path
from typing import IO, TYPE_CHECKING

import cv2
import numpy as np

from waste_vision.errors import UserError

if TYPE_CHECKING:  # PyAV is imported when a recording starts, not with the engine
    from av.container import OutputContainer
    from av.video.stream import VideoStream

log = logging.getLogger(__name__)

# Chosen by measurement (benchmarks/record_cost.py; figures in docs/live-recording.md):
# superfast with zerolatency (no lookahead, no B-frames, sliced threads: a packet comes out
# for every frame put in, so nothing waits in the encoder when the process dies) keeps High
# profile and costs about 10 ms of CPU per 720p frame (mp4v: 6 ms); two slice threads gave
# annotate 4-30% more FPS than one in the same runs, for ~1 ms more CPU a frame.
ENCODERS = ("libx264", "libopenh264")  # the first one this FFmpeg build has is used
PRESET = "superfast"
ENCODER_THREADS = 2
CRF = 23
TIMESCALE = 90_000  # ticks per second of the video's timestamps
# skip_trailer: no mfra at the end (FFmpeg reads it only when asked; the sidx does its job)
MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof+skip_trailer"
# The space left for the segment index: 12 bytes an entry, so 2,726 entries; a longer
# recording puts several fragments in an entry (a 2-hour one 3, a day's 32).
INDEX_BYTES = 32 * 1024
SIDX_HEADER = 40  # a version-1 sidx box up to its first entry
INDEX_ENTRIES = (INDEX_BYTES - SIDX_HEADER - 8) // 12  # 8: the free box after it, if any
# cv2's RGB->I420 is BT.601 limited range: say so in the stream, or browsers assume BT.709
# for HD sizes and shift the colours.
X264_COLOUR = "colorprim=smpte170m:transfer=smpte170m:colormatrix=smpte170m:range=tv"

LEGACY_META = "recording.json"  # in an old .parts folder: the target's name, fps and size


class RecordingError(UserError):
    """Recording cannot go on (or cannot start); the message is one line and names the path."""


def _fsync(path_or_fd) -> None:
    """fsync, ignoring files that cannot be synced (pipes, devices): they hold no recording."""
    try:
        if isinstance(path_or_fd, int):
            os.fsync(path_or_fd)
        else:
            fd = os.open(path_or_fd, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EROFS):
            raise


def why(exc: BaseException) -> str:
    """The real cause in a few words: "disk full" only for ENOSPC."""
    code = getattr(exc, "errno", None)
    if code == errno.ENOSPC:
        return "disk full (no space left on device)"
    if code == errno.EDQUOT:
        return "disk quota exceeded"
    if code == errno.EFBIG:
        return "file too large (a file-size limit or the file system's maximum)"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def h264_encoder() -> str:
    """The name of the H.264 encoder PyAV's FFmpeg has; RecordingError when there is none."""
    try:
        import av
    except ImportError:
        raise RecordingError(
            "recording needs PyAV, which is not installed: pip install av"
        ) from None
    for name in ENCODERS:
        if name in av.codecs_available:
            return name
    raise RecordingError(
        f"this PyAV build (FFmpeg {av.library_versions.get('libavcodec')}) "
        f"has no H.264 encoder ({', '.join(ENCODERS)}); install the PyPI "
        "wheel: pip install --force-reinstall av"
    )


def check_output(path: Path) -> Path:
    """Refuse, before any work, an output that cannot be a video file; one-line errors."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise RecordingError(
            f"cannot record {path}: it is a folder; give a file name, e.g. {path / 'recording.mp4'}"
        )
    parent = path.parent
    if not parent.is_dir():
        what = "is a file, not a folder" if parent.exists() else "does not exist"
        raise RecordingError(
            f"cannot write {path}: folder {parent} {what}; create it or choose another output path"
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise RecordingError(
            f"cannot write {path}: folder {parent} is not writable; choose another output path"
        )
    if path.exists() and not os.access(path, os.W_OK):
        raise RecordingError(f"cannot write {path}: the file exists and is read-only")
    return path


class Recorder:
    """Writes RGB frames (and optional records) to ``path``; use as a context manager.

    yuv420p needs even sizes, so an odd width or height loses its last column or row; frames
    of another size are resized. ``close()`` returns the file (None if no frame came).
    """

    def __init__(
        self,
        path: Path,
        fps: float,
        size: tuple[int, int],
        *,
        fragment_seconds: float = 1.0,
        jsonl_path: Path | None = None,
        real_time: bool = False,
        segment_seconds: float | None = None,
    ):
        self.path = Path(path)
        self.fps = float(fps)
        w, h = (int(v) for v in size)
        if w < 2 or h < 2 or not self.fps > 0:
            raise RecordingError(
                f"cannot record {self.path}: size {w}x{h} at {fps} fps "
                "is not a video (need at least 2x2 and fps > 0)"
            )
        if segment_seconds is not None:  # the name before fragments replaced segments
            fragment_seconds = segment_seconds
        self._requested = (w, h)
        self.size = (w - w % 2, h - h % 2)
        self.jsonl_path = Path(jsonl_path) if jsonl_path is not None else None
        self.real_time = real_time
        self.fragment_seconds = float(fragment_seconds)
        self.frames_written = 0
        self.seconds_written = 0.0  # timestamp of the last frame written
        self._first_t: float | None = None
        self._last_pts = -1
        self._next_key = 0.0
        self._failed: str | None = None
        self._closed = False
        self._file: IO[bytes] | None = None
        self._container: OutputContainer | None = None
        self._stream: VideoStream | None = None
        self._log: IO[str] | None = None
        self._out: _FragmentWriter | None = None
        self._pending: list[str] = []  # log lines of frames not yet in the file, in order
        self._logged = 0  # log lines written
        self._good_size = 0  # bytes of the file that hold whole fragments
        self._video_failed = False  # the video (not only the log) could not be written
        check_output(self.path)
        encoder = h264_encoder()
        import av

        try:
            self._file = open(self.path, "wb", buffering=0)  # noqa: SIM115 (closed in close())
        except OSError as exc:
            raise RecordingError(f"cannot record {self.path} ({why(exc)})") from None
        try:
            self._out = out = _FragmentWriter(self._file)
            self._container = container = av.open(
                out, "w", format="mp4", options={"movflags": MOVFLAGS, "flush_packets": "1"}
            )
            rate = Fraction(self.fps).limit_denominator(10_000)
            stream = container.add_stream(encoder, rate=rate)
            if not isinstance(stream, av.VideoStream):
                raise TypeError(f"{encoder} is not a video encoder")
            stream.width, stream.height = self.size
            stream.pix_fmt = "yuv420p"
            stream.codec_context.time_base = Fraction(1, TIMESCALE)
            # keyframes are forced once per fragment_seconds of video time (write()); this
            # is only the longest gap the encoder may leave on its own
            stream.codec_context.gop_size = max(1, round(2 * self.fps * self.fragment_seconds))
            stream.codec_context.thread_count = ENCODER_THREADS
            if encoder == "libx264":
                # scenecut off: keyframes (and so fragments) exactly once a second
                stream.options = {
                    "preset": PRESET,
                    "tune": "zerolatency",
                    "crf": str(CRF),
                    "x264-params": f"scenecut=0:{X264_COLOUR}",
                }
            self._stream = stream
            container.start_encoding()  # header now: a failure shows before frame 1
            self._good_size = out.pos
        except Exception as exc:  # FFmpegError, or OSError from writing the header
            self._abandon()
            raise RecordingError(
                f"cannot record {self.path}: the H.264 encoder does not start ({why(exc)})"
            ) from None
        if self.jsonl_path is not None:
            try:
                self._log = _open_log(self.jsonl_path)
            except OSError as exc:
                self._abandon()
                raise RecordingError(
                    f"cannot open the log {self.jsonl_path} ({why(exc)})"
                ) from None

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def failed(self) -> str | None:
        return self._failed

    def write(
        self, frame_rgb: np.ndarray, record: dict | None = None, timestamp: float | None = None
    ) -> None:
        """Append one frame (and its log line). ``timestamp`` (seconds, any origin) is used
        with ``real_time``; otherwise frame k is at k / fps. Raises RecordingError once
        writing fails, and from then on."""
        if self._closed:
            raise RecordingError(f"the recording {self.path} is closed")
        if self._failed:
            raise RecordingError(self._failed)
        try:
            self._write(frame_rgb, record, timestamp)
        except RecordingError as exc:
            self._failed = str(exc)
        except Exception as exc:  # OSError from the file, FFmpegError, anything: one line
            self._failed = f"cannot record {self.path}: {why(exc)}"
            self._video_failed = True
        if self._failed:
            raise RecordingError(self._failed)

    def _write(self, frame_rgb: np.ndarray, record: dict | None, timestamp: float | None) -> None:
        import av

        container, stream, out = self._container, self._stream, self._out
        if container is None or stream is None or out is None:  # (only after __init__ failed)
            raise RecordingError(f"the recording {self.path} is not open")

        if self.real_time:
            now = time.monotonic() if timestamp is None else float(timestamp)
            if self._first_t is None:
                self._first_t = now
            pts = round((now - self._first_t) * TIMESCALE)
        else:
            pts = round(self.frames_written * TIMESCALE / self.fps)
        pts = max(pts, self._last_pts + 1)  # strictly increasing, whatever the clock did
        seconds = pts / TIMESCALE
        frame = np.asarray(frame_rgb)
        if (frame.shape[1], frame.shape[0]) != self._requested:
            frame = cv2.resize(frame, self._requested, interpolation=cv2.INTER_AREA)
        frame = np.ascontiguousarray(frame[: self.size[1], : self.size[0]])
        # OpenCV's conversion is ~20x faster than swscale's here (0.8 vs 18 ms at 720p)
        yuv = np.asarray(cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420), dtype=np.uint8)
        video_frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        video_frame.pts = pts
        video_frame.time_base = Fraction(1, TIMESCALE)
        if seconds >= self._next_key:  # a keyframe starts each fragment
            video_frame.pict_type = av.video.frame.PictureType.I
            self._next_key = (seconds // self.fragment_seconds + 1) * self.fragment_seconds
        for packet in stream.encode(video_frame):
            container.mux(packet)
        # every mux ends on a box boundary (flush_packets): a failure later is cut back
        # to here, so a full disk never leaves a torn fragment at the end of the file
        self._good_size = out.pos
        self._last_pts = pts
        self.frames_written += 1
        self.seconds_written = seconds
        if self._log is not None:
            self._pending.append(
                json.dumps(
                    {
                        "video_frame": self.frames_written - 1,
                        "video_s": round(seconds, 6),
                        **(record or {}),
                    },
                    default=_plain,
                )
            )
            self._write_log(out.frames_in_file)

    def _write_log(self, frames: int) -> None:
        """Write the pending lines of the first ``frames`` frames: those the file holds."""
        if self._log is None or self._logged >= frames:
            return
        count = min(frames - self._logged, len(self._pending))
        lines, self._pending = self._pending[:count], self._pending[count:]
        self._logged += count
        with self._log_errors():
            self._log.write("".join(line + "\n" for line in lines))

    @contextlib.contextmanager
    def _log_errors(self):
        try:
            yield
        except OSError as exc:
            raise RecordingError(f"cannot write the log {self.jsonl_path} ({why(exc)})") from None

    def close(self) -> Path | None:
        """Flush the encoder, finish the file and the log (also after an error)."""
        if self._closed:
            return self.path if self.frames_written and self.path.exists() else None
        self._closed = True
        errors = []
        if self._container is not None:
            try:
                if not self._video_failed:
                    stream, out = self._stream, self._out
                    if stream is None or out is None:  # (only after __init__ failed)
                        raise RecordingError(f"the recording {self.path} was never opened")
                    for packet in stream.encode():
                        self._container.mux(packet)
                    self._good_size = out.pos
            except Exception as exc:
                self._video_failed = True
                errors.append(f"cannot finish {self.path}: {why(exc)}")
            try:
                self._container.close()  # writes the last fragment
            except Exception as exc:
                if not self._video_failed:
                    self._video_failed = True
                    errors.append(f"cannot finish {self.path}: {why(exc)}")
        if self._file is not None:
            try:
                if self._video_failed:
                    os.ftruncate(self._file.fileno(), self._good_size)
                else:
                    self._write_index()
            except OSError as exc:
                errors.append(f"cannot finish {self.path}: {why(exc)}")
            finally:
                with contextlib.suppress(OSError):
                    self._file.close()
        if self._log is not None:
            try:
                if not self._video_failed:  # every frame is in the file
                    self._write_log(self.frames_written)
                else:  # whole fragments only: the file was cut back to them
                    self._write_log(self._out.frames_before(self._good_size) if self._out else 0)
                with self._log_errors():
                    self._log.flush()
                    _fsync(self._log.fileno())
            except RecordingError as exc:
                errors.append(str(exc))
            finally:
                with contextlib.suppress(OSError):
                    self._log.close()
        if self.frames_written == 0:
            with contextlib.suppress(OSError):
                self.path.unlink()
            return None
        if errors and not self._failed:
            self._failed = errors[0]
            raise RecordingError(errors[0])
        return self.path

    def _write_index(self) -> None:
        """Turn the free box before the first fragment into the segment index, in place:
        its body first, synced, then its 8-byte header, so a crash in between leaves the
        free box (ignored by players) and never half an index."""
        if self._file is None or self._out is None:
            return
        fd = self._file.fileno()
        box, at = self._out.index(), self._out.index_at
        if box is not None and at is not None:  # (index() is None without index_at)
            os.pwrite(fd, box[8:], at + 8)
            _fsync(fd)
            os.pwrite(fd, box[:8], at)
        _fsync(fd)

    def _abandon(self) -> None:
        with contextlib.suppress(Exception):
            if self._container is not None:
                self._container.close()
        for f in (self._log, self._file):
            with contextlib.suppress(Exception):
                if f is not None:
                    f.close()
        if self._file is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
        self._closed = True


class _FragmentWriter:
    """The file object the muxer writes to: passes every byte straight to the file, and
    follows the top-level boxes as they go by. Before the first fragment it inserts the
    ``free`` box that becomes the index at close; for each fragment it notes where it
    starts and ends, its decode time, duration and frame count. It has no ``seek``, so
    FFmpeg treats the output as a stream and never goes back over what it wrote (its own
    idea of offsets is off by the inserted box, which it never writes down)."""

    def __init__(self, raw):
        self.raw = raw
        self.pos = 0  # bytes in the file
        self.index_at: int | None = None  # offset of the free box kept for the index
        self.timescale = TIMESCALE
        self.track_id = 1
        self.default_duration = 0
        # the whole fragments (their data all in the file), as running totals so that close
        # costs the same however many there are: where each starts and ends, and the
        # duration and frames of all fragments before it
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.durations = [0]
        self.frames = [0]
        self.first_time = 0  # decode time of the first fragment
        self._head = bytearray()  # the header of the box now starting, while incomplete
        self._left = 0  # bytes of the current box still to come
        self._type = b""
        self._body: bytearray | None = None  # moov and moof bodies are kept and parsed
        self._moof: list[int] | None = None  # [start, time, duration, frames] of the fragment
        # whose mdat comes next

    @property
    def frames_in_file(self) -> int:
        return self.frames[-1]

    def frames_before(self, offset: int) -> int:
        """Frames of the whole fragments that end at or before ``offset``."""
        return self.frames[bisect.bisect_right(self.ends, offset)]

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        while view:
            if self._left == 0:
                view = self._start_box(view)
                continue
            n = min(self._left, len(view))
            self._put(view[:n])
            if self._body is not None:
                self._body += view[:n]
            self._left -= n
            view = view[n:]
            if self._left == 0:
                self._end_box()
        return len(data)

    def _put(self, data) -> None:
        while data:
            n = self.raw.write(data)
            if n is None:  # a raw file that wrote nothing yet
                n = 0
            self.pos += n
            data = data[n:]

    def _start_box(self, view):
        need = 8 - len(self._head)
        if len(self._head) >= 8 and struct.unpack(">I", self._head[:4])[0] == 1:
            need = 16 - len(self._head)  # a 64-bit size follows the type
        take = view[:need]
        self._head += take
        view = view[len(take) :]
        if len(self._head) < 8:
            return view
        size, kind = struct.unpack(">I4s", self._head[:8])
        if size == 1 and len(self._head) < 16:
            return view
        if size == 1:
            size = struct.unpack(">Q", self._head[8:16])[0]
        head, self._head = bytes(self._head), bytearray()
        if kind == b"moof" and self.index_at is None:
            self.index_at = self.pos
            self._put(struct.pack(">I4s", INDEX_BYTES, b"free") + bytes(INDEX_BYTES - 8))
        if kind == b"moof":
            self._moof = [self.pos, 0, 0, 0]
        self._put(head)
        self._type = kind
        self._body = bytearray() if kind in (b"moov", b"moof") else None
        self._left = size - len(head) if size else 1 << 62  # size 0: up to the end
        if self._left == 0:
            self._end_box()
        return view

    def _end_box(self) -> None:
        body, self._body = self._body, None
        # (only moov and moof bodies are kept: ``body`` is None for every other box)
        if self._type == b"moov" and body is not None:
            self._read_moov(bytes(body))
        elif self._type == b"moof" and self._moof is not None and body is not None:
            self._moof[1:4] = self._read_moof(bytes(body))
        elif self._type == b"mdat" and self._moof is not None:
            start, time_, duration, frames = self._moof
            if not self.starts:
                self.first_time = time_
            self.starts.append(start)
            self.ends.append(self.pos)
            self.durations.append(self.durations[-1] + duration)
            self.frames.append(self.frames[-1] + frames)
            self._moof = None

    def _read_moov(self, body: bytes) -> None:
        for kind, data in _children(body):
            if kind == b"trak":
                for k2, d2 in _children(data):
                    if k2 == b"tkhd":
                        self.track_id = struct.unpack(">I", d2[12:16] if d2[0] == 0 else d2[20:24])[
                            0
                        ]
                    elif k2 == b"mdia":
                        for k3, d3 in _children(d2):
                            if k3 == b"mdhd":
                                self.timescale = struct.unpack(
                                    ">I", d3[12:16] if d3[0] == 0 else d3[20:24]
                                )[0]
            elif kind == b"mvex":
                for k2, d2 in _children(data):
                    if k2 == b"trex":  # version/flags, track, description, duration
                        self.default_duration = struct.unpack(">I", d2[12:16])[0]

    def _read_moof(self, body: bytes) -> tuple[int, int, int]:
        """(decode time, duration, frames) of a fragment, from its tfdt and trun."""
        start = duration = frames = 0
        for kind, traf in _children(body):
            if kind != b"traf":
                continue
            default = self.default_duration
            for k2, data in _children(traf):
                flags = int.from_bytes(data[1:4], "big")
                if k2 == b"tfhd" and flags & 0x08:
                    at = 8 + (8 if flags & 0x01 else 0) + (4 if flags & 0x02 else 0)
                    default = struct.unpack(">I", data[at : at + 4])[0]
                elif k2 == b"tfdt":
                    start = struct.unpack(
                        ">Q" if data[0] else ">I", data[4:12] if data[0] else data[4:8]
                    )[0]
                elif k2 == b"trun":
                    count = struct.unpack(">I", data[4:8])[0]
                    at = 8 + (4 if flags & 0x01 else 0) + (4 if flags & 0x04 else 0)
                    step = 4 * (flags & 0xF00).bit_count()
                    for i in range(count):
                        duration += (
                            struct.unpack(">I", data[at + i * step : at + i * step + 4])[0]
                            if flags & 0x100
                            else default
                        )
                    frames += count
        return start, duration, frames

    def index(self) -> bytes | None:
        """The sidx box that replaces the free one, padded to its size with a free box;
        None when there is nothing to index."""
        count = len(self.starts)
        if self.index_at is None or not count:
            return None
        per = -(-count // INDEX_ENTRIES)  # fragments an entry
        entries = []
        for k in range(0, count, per):
            end = min(k + per, count)
            size = self.ends[end - 1] - self.starts[k]
            if size >= 1 << 31:
                return None
            entries.append(
                struct.pack(">III", size, self.durations[end] - self.durations[k], 0x90000000)
            )  # starts with a SAP of type 1 (IDR)
        sidx_size = SIDX_HEADER + 12 * len(entries)
        anchor = self.index_at + sidx_size
        box = struct.pack(
            ">I4sB3sIIQQHH",
            sidx_size,
            b"sidx",
            1,
            b"\0\0\0",
            self.track_id,
            self.timescale,
            self.first_time,
            self.starts[0] - anchor,
            0,
            len(entries),
        ) + b"".join(entries)
        rest = INDEX_BYTES - len(box)
        if rest:
            box += struct.pack(">I4s", rest, b"free") + bytes(rest - 8)
        return box


def _children(data: bytes):
    """(type, body) of the boxes in ``data`` (a box's body); full boxes keep their
    version and flags at the body's start."""
    at = 0
    while at + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        head = 8
        if size == 1:
            size, head = struct.unpack(">Q", data[at + 8 : at + 16])[0], 16
        elif size == 0:
            size = len(data) - at
        if size < head:
            return
        yield kind, data[at + head : at + size]
        at += size


def probe(path: Path) -> dict:
    """What a player sees in a video: codec, profile, size, pixel format, frames, seconds."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        frames, last = 0, None
        for frame in container.decode(stream):
            frames += 1
            last = frame
        duration = (
            float(last.pts * last.time_base)
            if last is not None and last.pts is not None and last.time_base is not None
            else 0.0
        )
        return {
            "codec": ctx.name,
            "profile": ctx.profile,
            "width": ctx.width,
            "height": ctx.height,
            "pix_fmt": ctx.pix_fmt,
            "frames": frames,
            "last_frame_s": round(duration, 6),
            "fps": float(stream.average_rate) if stream.average_rate else None,
        }


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


# --- recordings made before fragmented MP4 ------------------------------------------------

PARTS_SUFFIX = ".parts"
SEGMENT_DIGITS = 4  # the old recorder numbered segments part0000, part0001, ...


class _Legacy:
    """An old ``<stem>.parts`` folder, recognised only by what the old recorder wrote: its
    ``recording.json`` ({"target": "<stem><suffix>", "fps": > 0, "size": [w, h]}) naming a
    target that matches the folder, beside segments ``<stem>.partNNNN<suffix>``. Anything
    else in the folder is someone else's and is never touched."""

    def __init__(self, parts: Path):
        self.parts = parts
        if not parts.name.endswith(PARTS_SUFFIX) or parts.is_symlink():
            raise self._foreign("its name does not end in .parts")
        meta_path = parts / LEGACY_META
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise self._foreign(f"it holds no readable {LEGACY_META}") from None
        target = meta.get("target") if isinstance(meta, dict) else None
        fps, size = (meta.get("fps"), meta.get("size")) if isinstance(meta, dict) else (0, 0)
        stem = parts.name[: -len(PARTS_SUFFIX)]
        if (
            not isinstance(target, str)
            or Path(target).name != target
            or Path(target).stem != stem
            or not isinstance(fps, (int, float))
            or isinstance(fps, bool)
            or not fps > 0
            or not (
                isinstance(size, list)
                and len(size) == 2
                and all(isinstance(v, int) and v >= 2 for v in size)
            )
        ):
            raise self._foreign(f"its {LEGACY_META} is not one the recorder wrote")
        self.meta_path = meta_path
        self.fps, self.size = float(fps), (size[0], size[1])
        self.target = parts.with_name(target)
        suffix = Path(target).suffix
        self.join = parts / f"joining{suffix}"  # the old recover's temporary file (and ours)
        pattern = re.compile(
            re.escape(stem) + rf"\.part(\d{{{SEGMENT_DIGITS},}})" + re.escape(suffix)
        )
        found = []
        for p in parts.iterdir():
            m = pattern.fullmatch(p.name)
            if m and p.is_file() and not p.is_symlink():
                found.append((int(m.group(1)), p))
        self.segments = [p for _, p in sorted(found)]

    def _foreign(self, why_not: str) -> RecordingError:
        return RecordingError(
            f"not recovering {self.parts}: {why_not}, so it is not a "
            "recording's .parts folder; nothing was touched (recordings "
            "made now are playable at their own path)"
        )

    def remove_own_files(self) -> None:
        """Delete exactly what the old recorder wrote, then the folder if that emptied it."""
        for p in [*self.segments, self.meta_path]:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        try:
            self.parts.rmdir()
        except OSError:  # other files are in it: they stay, and so does the folder
            log.info("kept %s: it holds files the recorder did not write", self.parts)


def _place(tmp: Path, target: Path) -> None:
    """Move ``tmp`` to ``target`` without ever replacing a file there (FileExistsError)."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise
    except OSError:  # no hard links here (FAT, some network shares): claim the name first
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        os.replace(tmp, target)
        return
    tmp.unlink()


def recover(parts_dir_or_target: Path) -> Path:
    """Turn the ``.parts`` folder an older version left (a stopped or killed recording of
    1-second segments) into its video file, re-encoded as H.264; returns the file.

    Recordings made now need no recovery: the file at its own path is always playable.
    Only a folder the old recorder wrote is accepted (``_Legacy``); anything else, or a
    target that exists already, is refused before anything is touched. The segment being
    written when the old process died has no index and is skipped. After the video is
    written, the segments and ``recording.json`` are deleted, and the folder only if it is
    then empty.
    """
    given = Path(parts_dir_or_target).expanduser()
    parts = given if given.is_dir() else given.with_name(given.stem + PARTS_SUFFIX)
    if not parts.is_dir():
        raise RecordingError(
            f"nothing to recover: {parts} is not a folder; recordings made "
            "by this version are playable at their own path as they are"
        )
    legacy = _Legacy(parts)
    target, tmp = legacy.target, legacy.join
    if target.exists() or target.is_symlink():
        raise RecordingError(
            f"not recovering {parts}: {target} exists already; move it "
            "away first (nothing was touched)"
        )
    if not legacy.segments:
        raise RecordingError(
            f"nothing to recover in {parts}: it holds no segment; delete "
            "the folder yourself if you do not need it (nothing was touched)"
        )
    recorder = None
    try:
        for segment in legacy.segments:
            cap = cv2.VideoCapture(str(segment))
            while cap.isOpened():
                ok, bgr = cap.read()
                if not ok:
                    break
                if recorder is None:
                    recorder = Recorder(tmp, legacy.fps, legacy.size)
                recorder.write(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            cap.release()
        if recorder is None:
            raise RecordingError(
                f"nothing to recover in {parts}: no segment is complete "
                "(the recording stopped within its first segment); delete "
                "the folder yourself if you do not need it"
            )
        recorder.close()
        _place(tmp, target)
    except RecordingError:
        if recorder is not None:
            with contextlib.suppress(RecordingError):
                recorder.close()
            tmp.unlink(missing_ok=True)
            raise RecordingError(
                f"cannot write {target} ({recorder.failed or 'see above'}); "
                f"the segments stay in {parts}"
            ) from None
        raise
    except FileExistsError:
        tmp.unlink(missing_ok=True)
        raise RecordingError(
            f"not recovering {parts}: {target} appeared meanwhile; move it "
            "away and run recover again (the segments stay)"
        ) from None
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise RecordingError(
            f"cannot write {target} ({why(exc)}); the segments stay in {parts}"
        ) from None
    legacy.remove_own_files()
    return target
