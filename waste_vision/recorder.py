"""Crash-safe H.264 recording of the annotated video, and a JSONL log of the results.

The video is written with PyAV (FFmpeg's libx264) as *fragmented* MP4: an empty index up
front, then one fragment (``moof`` + ``mdat``) per second, each starting on a keyframe. Every
fragment reaches the operating system as soon as it is complete, so the file at its own path
is playable at any moment: a ``kill -9`` (or a full disk) loses at most the fragment being
filled, about ``fragment_seconds``, and no recover step is needed. H.264 in yuv420p plays in
web browsers. At a clean close the packets are copied into a plain MP4 with its index first
(``+faststart``), which replaces the fragmented file in one rename: browsers read a fragmented
file's length from its first fragment only, a plain one's at once.

Timing: by default frame ``k`` lasts ``1 / fps`` (``annotate`` of a file: the input's frame
count, size and rate). With ``real_time=True`` each frame carries its capture time instead,
so a live recording plays at the speed it happened even when frames were skipped.

The log gets one ``json.dumps`` line per frame, with ``video_frame`` and ``video_s`` added so
a line can be matched to its frame; it is line-buffered and fsynced at close. ``read_jsonl``
reads it back, tolerating the torn last line a crash can leave.

Recordings made before this format (a ``<stem>.parts`` folder of 1-second MPEG-4 segments
left by a killed process) are turned into a video by ``recover``, which re-encodes them.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import shutil
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from waste_vision.errors import UserError

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
MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof"
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
        raise RecordingError("recording needs PyAV, which is not installed: "
                             "pip install av") from None
    for name in ENCODERS:
        if name in av.codecs_available:
            return name
    raise RecordingError(f"this PyAV build (FFmpeg {av.library_versions.get('libavcodec')}) "
                         f"has no H.264 encoder ({', '.join(ENCODERS)}); install the PyPI "
                         "wheel: pip install --force-reinstall av")


def check_output(path: Path) -> Path:
    """Refuse, before any work, an output that cannot be a video file; one-line errors."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise RecordingError(f"cannot record {path}: it is a folder; give a file name, e.g. "
                             f"{path / 'recording.mp4'}")
    parent = path.parent
    if not parent.is_dir():
        what = "is a file, not a folder" if parent.exists() else "does not exist"
        raise RecordingError(f"cannot write {path}: folder {parent} {what}; create it or "
                             "choose another output path")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise RecordingError(f"cannot write {path}: folder {parent} is not writable; choose "
                             "another output path")
    if path.exists() and not os.access(path, os.W_OK):
        raise RecordingError(f"cannot write {path}: the file exists and is read-only")
    return path


class Recorder:
    """Writes RGB frames (and optional records) to ``path``; use as a context manager.

    yuv420p needs even sizes, so an odd width or height loses its last column or row; frames
    of another size are resized. ``close()`` returns the file (None if no frame came).
    """

    def __init__(self, path: Path, fps: float, size: tuple[int, int], *,
                 fragment_seconds: float = 1.0, jsonl_path: Path | None = None,
                 real_time: bool = False, segment_seconds: float | None = None):
        self.path = Path(path)
        self.fps = float(fps)
        w, h = (int(v) for v in size)
        if w < 2 or h < 2 or not self.fps > 0:
            raise RecordingError(f"cannot record {self.path}: size {w}x{h} at {fps} fps "
                                 "is not a video (need at least 2x2 and fps > 0)")
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
        self._file = self._container = self._stream = self._log = None
        self._good_size = 0  # bytes of the file that hold whole fragments
        self._video_failed = False  # the video (not only the log) could not be written
        check_output(self.path)
        encoder = h264_encoder()
        import av

        try:
            self._file = open(self.path, "wb", buffering=0)  # PyAV's own buffer flushes
        except OSError as exc:
            raise RecordingError(f"cannot record {self.path} ({why(exc)})") from None
        try:
            self._container = av.open(self._file, "w", format="mp4", options={
                "movflags": MOVFLAGS, "flush_packets": "1"})
            rate = Fraction(self.fps).limit_denominator(10_000)
            stream = self._container.add_stream(encoder, rate=rate)
            stream.width, stream.height = self.size
            stream.pix_fmt = "yuv420p"
            stream.codec_context.time_base = Fraction(1, TIMESCALE)
            # keyframes are forced once per fragment_seconds of video time (write()); this
            # is only the longest gap the encoder may leave on its own
            stream.codec_context.gop_size = max(1, round(2 * self.fps * self.fragment_seconds))
            stream.codec_context.thread_count = ENCODER_THREADS
            if encoder == "libx264":
                # scenecut off: keyframes (and so fragments) exactly once a second
                stream.options = {"preset": PRESET, "tune": "zerolatency", "crf": str(CRF),
                                  "x264-params": f"scenecut=0:{X264_COLOUR}"}
            self._stream = stream
            self._container.start_encoding()  # header now: a failure shows before frame 1
            self._good_size = self._file.tell()
        except Exception as exc:  # FFmpegError, or OSError from writing the header
            self._abandon()
            raise RecordingError(f"cannot record {self.path}: the H.264 encoder does not "
                                 f"start ({why(exc)})") from None
        if self.jsonl_path is not None:
            try:
                self._log = _open_log(self.jsonl_path)
            except OSError as exc:
                self._abandon()
                raise RecordingError(f"cannot open the log {self.jsonl_path} "
                                     f"({why(exc)})") from None

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def failed(self) -> str | None:
        return self._failed

    def write(self, frame_rgb: np.ndarray, record: dict | None = None,
              timestamp: float | None = None) -> None:
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

    def _write(self, frame_rgb, record, timestamp) -> None:
        import av

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
        frame = np.ascontiguousarray(frame[:self.size[1], :self.size[0]])
        # OpenCV's conversion is ~20x faster than swscale's here (0.8 vs 18 ms at 720p)
        video_frame = av.VideoFrame.from_ndarray(cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420),
                                                 format="yuv420p")
        video_frame.pts = pts
        video_frame.time_base = Fraction(1, TIMESCALE)
        if seconds >= self._next_key:  # a keyframe starts each fragment
            video_frame.pict_type = av.video.frame.PictureType.I
            self._next_key = (seconds // self.fragment_seconds + 1) * self.fragment_seconds
        for packet in self._stream.encode(video_frame):
            self._container.mux(packet)
        # every mux ends on a box boundary (flush_packets): a failure later is cut back
        # to here, so a full disk never leaves a torn fragment at the end of the file
        self._good_size = self._file.tell()
        self._last_pts = pts
        self.frames_written += 1
        self.seconds_written = seconds
        if self._log is not None:
            line = json.dumps({"video_frame": self.frames_written - 1,
                               "video_s": round(seconds, 6), **(record or {})}, default=_plain)
            with self._log_errors():
                self._log.write(line + "\n")

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
                    for packet in self._stream.encode():
                        self._container.mux(packet)
                    self._good_size = self._file.tell()
            except Exception as exc:
                self._video_failed = True
                errors.append(f"cannot finish {self.path}: {why(exc)}")
            try:
                self._container.close()  # the trailer: an index of the fragments, for seeking
            except Exception as exc:
                if not self._video_failed:
                    self._video_failed = True
                    errors.append(f"cannot finish {self.path}: {why(exc)}")
        if self._file is not None:
            try:
                if self._video_failed:
                    os.ftruncate(self._file.fileno(), self._good_size)
                else:
                    _fsync(self._file.fileno())
            except OSError as exc:
                errors.append(f"cannot finish {self.path}: {why(exc)}")
            finally:
                with contextlib.suppress(OSError):
                    self._file.close()
        if self._log is not None:
            try:
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
        if not self._video_failed and not errors:
            _finish_for_browsers(self.path)
        if errors and not self._failed:
            self._failed = errors[0]
            raise RecordingError(errors[0])
        return self.path

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


def _finish_for_browsers(path: Path) -> None:
    """Rewrite a finished recording as a plain MP4 with its index first (``+faststart``):
    the packets are copied, not re-encoded. A fragmented file plays everywhere, but browsers
    read only its first fragment's length (Chromium shows a 1-second video and cannot seek);
    a plain one tells its length and seeks at once. The new file replaces the old in one
    rename, so the recording is whole at its path at every moment; if the rewrite fails (no
    room for the copy, say) the fragmented file stays, playable as it is."""
    import av

    tmp = path.with_name(f".{path.stem}.finishing{path.suffix}")
    try:
        with av.open(str(path)) as src, av.open(str(tmp), "w", format="mp4",
                                                options={"movflags": "+faststart"}) as dst:
            stream = src.streams.video[0]
            out = dst.add_stream_from_template(stream)
            for packet in src.demux(stream):
                if packet.dts is None:  # the demuxer's end-of-stream marker
                    continue
                packet.stream = out
                dst.mux(packet)
        _fsync(tmp)
        os.replace(tmp, path)
    except Exception as exc:  # the fragmented recording is kept: nothing is lost
        log.info("kept %s fragmented: rewriting it failed (%s)", path, why(exc))
        with contextlib.suppress(OSError):
            tmp.unlink()


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
        duration = float(last.pts * last.time_base) if last is not None and last.pts is not None \
            else 0.0
        return {"codec": ctx.name, "profile": ctx.profile, "width": ctx.width,
                "height": ctx.height, "pix_fmt": ctx.pix_fmt, "frames": frames,
                "last_frame_s": round(duration, 6),
                "fps": float(stream.average_rate) if stream.average_rate else None}


def _plain(value):
    """numpy scalars and arrays as plain JSON numbers and lists."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _open_log(path: Path):
    """Append, line-buffered, after cutting a torn last line a crash may have left."""
    path = Path(path)
    if path.is_file():
        with open(path, "rb+") as f:
            size = f.seek(0, os.SEEK_END)
            start = max(0, size - (1 << 20))
            f.seek(start)
            tail = f.read()
            if tail and not tail.endswith(b"\n"):
                cut = tail.rfind(b"\n")
                if cut >= 0 or start == 0:
                    f.truncate(start + cut + 1)
                else:  # a torn line over 1 MiB long: end it rather than search further
                    f.write(b"\n")
    return open(path, "a", buffering=1, encoding="utf-8")


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

def _legacy_segments(parts_dir: Path) -> list[Path]:
    """An old .parts folder's segment files in recording order."""
    found = []
    for p in Path(parts_dir).glob("*.part*"):
        m = re.search(r"\.part(\d+)\.[^.]+$", p.name)
        if m and p.is_file():
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def recover(parts_dir_or_target: Path) -> Path:
    """Turn the ``.parts`` folder an older version left (a stopped or killed recording of
    1-second segments) into its video file, re-encoded as H.264; returns the file.

    Recordings made now need no recovery: the file at its own path is always playable.
    The segment being written when the old process died has no index and is skipped; the
    folder is removed once the video is written.
    """
    given = Path(parts_dir_or_target)
    parts = given if given.is_dir() else given.with_name(given.stem + ".parts")
    if not parts.is_dir():
        raise RecordingError(f"nothing to recover: {parts} is not a folder; recordings made "
                             "by this version are playable at their own path as they are")
    try:
        meta = json.loads((parts / LEGACY_META).read_text())
    except (OSError, ValueError):
        meta = {}
    target = parts.with_name(meta.get("target", parts.name.removesuffix(".parts") + ".mp4"))
    tmp = parts / f"joining{target.suffix or '.mp4'}"
    recorder = None
    try:
        for segment in _legacy_segments(parts):
            cap = cv2.VideoCapture(str(segment))
            while cap.isOpened():
                ok, bgr = cap.read()
                if not ok:
                    break
                if recorder is None:
                    fps = meta.get("fps") or cap.get(cv2.CAP_PROP_FPS) or 15.0
                    size = tuple(meta.get("size") or bgr.shape[1::-1])
                    recorder = Recorder(tmp, fps, size)
                recorder.write(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            cap.release()
        if recorder is None:
            shutil.rmtree(parts, ignore_errors=True)
            raise RecordingError(f"nothing to recover in {parts}: no segment was complete "
                                 "(the recording stopped within its first segment); removed it")
        recorder.close()
        os.replace(tmp, target)
    except RecordingError:
        if recorder is not None:
            with contextlib.suppress(RecordingError):
                recorder.close()
            tmp.unlink(missing_ok=True)
            raise RecordingError(f"cannot write {target} ({recorder.failed or 'see above'}); "
                                 f"the segments stay in {parts}") from None
        raise
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise RecordingError(f"cannot write {target} ({why(exc)}); the segments stay in "
                             f"{parts}") from None
    shutil.rmtree(parts, ignore_errors=True)
    return target
