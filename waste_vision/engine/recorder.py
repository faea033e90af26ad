"""Crash-safe H.264 recording of the annotated video, with a JSONL log of the results.

``Recorder`` is the one object the sinks and ``annotate`` use. It encodes RGB frames with
PyAV (FFmpeg's libx264), forces a keyframe once per ``fragment_seconds`` (a second) so that
each such stretch becomes one fragment of a fragmented MP4, written through
``mp4_fragments.FragmentWriter``, and hands a frame's log line to ``record_log.RecordLog``
once the fragment holding the frame is in the file.
The file at its own path is therefore playable at any moment: a ``kill -9`` or a full disk
loses at most the fragment being filled, and the log names no frame the video lacks.

Finishing (``close``) copies nothing, so it costs the same whatever the length: the last
fragment is flushed, the space kept before the first fragment becomes the segment index,
written in place and switched on by one 8-byte write of its header, and the video and the
log are synced. After a failure the file is cut back to its whole fragments instead, and the
log to their frames.

Timing: by default frame ``k`` lasts ``1 / fps`` (``annotate`` of a file: the input's frame
count, size and rate). With ``real_time=True`` each frame carries its capture time instead,
so a live recording plays at the speed it happened even when frames were skipped.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from fractions import Fraction
from pathlib import Path
from typing import IO, TYPE_CHECKING

import cv2
import numpy as np

from waste_vision.engine.mp4_fragments import MOVFLAGS, TIMESCALE, FragmentWriter
from waste_vision.engine.record_log import RecordLog, fsync, read_jsonl
from waste_vision.errors import UserError

if TYPE_CHECKING:  # PyAV is imported when a recording starts, not with the engine
    from av.container import OutputContainer
    from av.video.stream import VideoStream

__all__ = [
    "Recorder",
    "RecordingError",
    "check_output",
    "h264_encoder",
    "probe",
    "read_jsonl",
    "why",
]

# superfast with zerolatency: no lookahead, no B-frames and sliced threads, so a packet comes
# out for every frame put in and nothing waits in the encoder when the process dies; it keeps
# High profile (ultrafast drops to Constrained Baseline, for bigger files). Two slice threads
# let annotate run faster for little more CPU. Figures: benchmarks/record_cost.py and
# docs/live-recording.md.
ENCODERS = ("libx264", "libopenh264")  # the first one this FFmpeg build has is used
PRESET = "superfast"
ENCODER_THREADS = 2
CRF = 23
# cv2's RGB->I420 is BT.601 limited range: say so in the stream, or browsers assume BT.709
# for HD sizes and shift the colours.
X264_COLOUR = "colorprim=smpte170m:transfer=smpte170m:colormatrix=smpte170m:range=tv"


class RecordingError(UserError):
    """Recording cannot go on (or cannot start); the message is one line and names the path."""


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
        self._log: RecordLog | None = None
        self._out: FragmentWriter | None = None
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
            self._out = out = FragmentWriter(self._file)
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
                self._log = RecordLog(self.jsonl_path)
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
        # converted by OpenCV: many times faster than letting PyAV's swscale do it
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
            self._log.add(self.frames_written - 1, seconds, record)
            with self._log_errors():
                self._log.write_through(out.frames_in_file)

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
            if not self._video_failed:  # every frame is in the file
                in_file = self.frames_written
            else:  # whole fragments only: the file was cut back to them
                in_file = self._out.frames_before(self._good_size) if self._out else 0
            try:
                with self._log_errors():
                    self._log.write_through(in_file)
                    self._log.sync()
            except RecordingError as exc:
                errors.append(str(exc))
            finally:
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
            fsync(fd)
            os.pwrite(fd, box[:8], at)
        fsync(fd)

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
