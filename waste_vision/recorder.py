"""Crash-safe recording of the annotated video and a JSONL log of the results.

An .mp4 is playable only once its index (the ``moov`` box) is written at close, so a killed
process would lose the whole file. The recorder therefore writes short segments
(``<stem>.parts/<stem>.partNNNN.mp4``), each closed after ``segment_seconds`` and so a complete
file; ``close()`` (or ``recover()`` after a crash) joins them into the target by copying the
compressed samples into one new index: no re-encode, no quality loss, quick for long
recordings. Segments in a layout the joiner does not know are decoded and re-encoded instead.
A ``kill -9`` loses only the segment being written (at most ``segment_seconds`` of video).

The log gets one ``json.dumps`` line per frame, with ``video_frame`` and ``video_s`` added so
a line can be matched to its frame; it is fsynced with every segment. ``read_jsonl`` reads it
back, tolerating the torn last line a crash can leave.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import struct
from pathlib import Path

import cv2
import numpy as np

from waste_vision.errors import UserError

FOURCC = "mp4v"
META = "recording.json"  # in the parts folder: what recover() needs to rebuild the target


class RecordingError(UserError):
    """Recording cannot go on (or cannot start); the message is one line and names the path."""


def parts_dir_for(target: Path) -> Path:
    target = Path(target)
    return target.with_name(target.stem + ".parts")


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


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


class Recorder:
    """Writes RGB frames (and optional records) to ``path``; use as a context manager.

    mp4v needs even sizes, so an odd width or height loses its last column or row; frames of
    another size are resized. ``close()`` returns the final file (None if no frame came).
    """

    def __init__(self, path: Path, fps: float, size: tuple[int, int], *,
                 segment_seconds: float = 1.0, jsonl_path: Path | None = None):
        self.path = Path(path)
        self.fps = float(fps)
        w, h = (int(v) for v in size)
        if w < 2 or h < 2 or not self.fps > 0:
            raise RecordingError(f"cannot record {self.path}: size {w}x{h} at {fps} fps "
                                 "is not a video (need at least 2x2 and fps > 0)")
        self._requested = (w, h)
        self.size = (w - w % 2, h - h % 2)
        self.parts_dir = parts_dir_for(self.path)
        self.jsonl_path = Path(jsonl_path) if jsonl_path is not None else None
        self.frames_written = 0
        self._per_segment = max(1, round(segment_seconds * self.fps))
        self._segment, self._in_segment, self._writer = 0, 0, None
        self._log = None
        self._failed: str | None = None
        self._closed = False
        if _segments(self.parts_dir):
            raise RecordingError(f"{self.parts_dir} holds an unfinished recording; recover it "
                                 "first (waste_vision.recorder.recover) or delete it")
        try:
            self.parts_dir.mkdir(parents=True, exist_ok=True)
            meta = {"target": self.path.name, "fps": self.fps, "size": list(self.size)}
            (self.parts_dir / META).write_text(json.dumps(meta))
        except OSError as exc:
            raise RecordingError(f"cannot record {self.path}: cannot create "
                                 f"{self.parts_dir} ({_why(exc)})") from None
        try:
            self._open_segment()  # fails now, not after the first second, if mp4v is missing
            if self.jsonl_path is not None:
                self._log = _open_log(self.jsonl_path)
        except OSError as exc:
            self._abandon()
            raise RecordingError(f"cannot open the log {self.jsonl_path} ({_why(exc)})") from None
        except RecordingError:
            self._abandon()
            raise

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _segment_path(self, index: int) -> Path:
        return self.parts_dir / f"{self.path.stem}.part{index:04d}{self.path.suffix}"

    def _open_segment(self) -> None:
        path = self._segment_path(self._segment)
        self._writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*FOURCC), self.fps,
                                       self.size)
        if not self._writer.isOpened():
            self._writer = None
            raise RecordingError(f"cannot record {self.path}: cv2.VideoWriter cannot write "
                                 f"{FOURCC} video to {path}")

    def _close_segment(self) -> None:
        """Finish the segment and make it (and the log so far) durable; check it is whole."""
        writer, self._writer = self._writer, None
        written, self._in_segment = self._in_segment, 0
        path = self._segment_path(self._segment)
        self._segment += 1
        writer.release()
        if written == 0:
            path.unlink(missing_ok=True)
            return
        _fsync(path)
        if self._log is not None:
            self._sync_log()
        if _sample_count(path) != written:
            raise RecordingError(f"cannot write {path}: the segment came out incomplete "
                                 "(disk full or removed?)")

    def write(self, frame_rgb: np.ndarray, record: dict | None = None) -> None:
        """Append one frame (and its log line). Raises RecordingError once writing fails."""
        if self._closed:
            raise RecordingError(f"the recording {self.path} is closed")
        if self._failed:
            raise RecordingError(self._failed)
        line = json.dumps({"video_frame": self.frames_written,
                           "video_s": round(self.frames_written / self.fps, 6),
                           **(record or {})}, default=_plain) if self._log else None
        frame = np.asarray(frame_rgb)
        if (frame.shape[1], frame.shape[0]) != self._requested:
            frame = cv2.resize(frame, self._requested, interpolation=cv2.INTER_AREA)
        frame = frame[:self.size[1], :self.size[0]]
        try:
            if self._writer is None:
                self._open_segment()
            self._writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            self._in_segment += 1
            self.frames_written += 1
            if line is not None:
                with self._log_errors():
                    self._log.write(line + "\n")
            if self._in_segment >= self._per_segment:
                self._close_segment()
        except OSError as exc:
            self._failed = f"cannot record {self.path}: {_why(exc)}"
        except RecordingError as exc:
            self._failed = str(exc)
        if self._failed:
            raise RecordingError(self._failed)

    @contextlib.contextmanager
    def _log_errors(self):
        try:
            yield
        except OSError as exc:
            raise RecordingError(f"cannot write the log {self.jsonl_path} ({_why(exc)})") from None

    def _sync_log(self) -> None:
        with self._log_errors():
            self._log.flush()
            _fsync(self._log.fileno())

    def close(self) -> Path | None:
        """Finish the last segment and join all segments into ``path`` (even after an error)."""
        if self._closed:
            return self.path if self.path.exists() else None
        self._closed = True
        errors = []
        if self._writer is not None:
            try:
                self._close_segment()
            except (OSError, RecordingError) as exc:
                errors.append(str(exc))
        if self._log is not None:
            try:
                self._sync_log()
            except RecordingError as exc:
                errors.append(str(exc))
            finally:
                with contextlib.suppress(OSError):
                    self._log.close()
        if not _segments(self.parts_dir):
            shutil.rmtree(self.parts_dir, ignore_errors=True)
            return None
        out = recover(self.parts_dir)
        if errors and not self._failed:
            raise RecordingError(errors[0])
        return out

    def _abandon(self) -> None:
        if self._writer is not None:
            self._writer.release()
        shutil.rmtree(self.parts_dir, ignore_errors=True)


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


def _segments(parts_dir: Path) -> list[Path]:
    """Segment files in recording order (numbers may outgrow four digits)."""
    found = []
    for p in Path(parts_dir).glob("*.part*"):
        m = re.search(r"\.part(\d+)\.[^.]+$", p.name)
        if m and p.is_file():
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def recover(parts_dir_or_target: Path) -> Path:
    """Join the segments a recording left (after a crash, or at close) into its target file.

    Accepts the ``.parts`` folder or the target path; returns the target. The segment being
    written when the process died has no index and is skipped. The parts folder is removed.
    """
    given = Path(parts_dir_or_target)
    parts = given if given.is_dir() else parts_dir_for(given)
    try:
        meta = json.loads((parts / META).read_text())
    except (OSError, ValueError):
        if not parts.is_dir():
            raise RecordingError(f"nothing to recover: {parts} does not exist") from None
        meta = {}
    target = parts.with_name(meta.get("target", parts.name.removesuffix(".parts") + ".mp4"))
    segments = _segments(parts)
    tmp = parts / f"joining{target.suffix}"
    try:
        try:
            frames = _concat_mp4(segments, tmp)
        except _Unsupported:
            frames = _reencode(segments, tmp, meta.get("fps"), meta.get("size"))
        if frames == 0:
            shutil.rmtree(parts, ignore_errors=True)
            raise RecordingError(f"nothing to recover in {parts}: no segment was complete "
                                 "(the recording stopped within its first segment); removed it")
        _fsync(tmp)
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise RecordingError(f"cannot write {target} ({_why(exc)}); the segments stay in "
                             f"{parts}") from None
    shutil.rmtree(parts, ignore_errors=True)
    return target


# --- joining: decode + re-encode (any container cv2 reads) -----------------------------------

def _reencode(segments: list[Path], out: Path, fps: float | None, size) -> int:
    writer, frames = None, 0
    for seg in segments:
        cap = cv2.VideoCapture(str(seg))
        while cap.isOpened():
            ok, bgr = cap.read()
            if not ok:
                break
            if writer is None:
                fps = fps or cap.get(cv2.CAP_PROP_FPS) or 15.0
                size = tuple(size or bgr.shape[1::-1])
                writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*FOURCC), fps, size)
                if not writer.isOpened():
                    raise RecordingError(f"cv2.VideoWriter cannot write {FOURCC} video to {out}")
            if bgr.shape[1::-1] != size:
                bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
            writer.write(bgr)
            frames += 1
        cap.release()
    if writer is not None:
        writer.release()
    return frames


# --- joining: copy samples into one new MP4 index (lossless) ---------------------------------

class _Unsupported(Exception):
    """A segment layout the MP4 joiner does not handle; fall back to re-encoding."""


class _Incomplete(Exception):
    """A segment without a whole index: the one being written when the process died."""


_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts"}
_KNOWN_TABLES = {b"stsd", b"stts", b"stss", b"stsc", b"stsz", b"stco", b"co64"}  # no reordering


def _boxes(data: bytes, start: int = 0, end: int | None = None):
    """(type, payload start, end) of each box in data[start:end]."""
    end = len(data) if end is None else end
    while start + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, start)
        head = 8
        if size == 1:
            size, head = struct.unpack_from(">Q", data, start + 8)[0], 16
        elif size == 0:
            size = end - start
        if size < head or start + size > end:
            raise _Incomplete
        yield kind, start + head, start + size
        start += size


def _find(data: bytes, path: list[bytes], start: int = 0, end: int | None = None):
    """(payload start, end) of the first box along ``path``, or None."""
    for kind, s, e in _boxes(data, start, end):
        if kind == path[0]:
            return (s, e) if len(path) == 1 else _find(data, path[1:], s, e)
    return None


def _table(data: bytes, box: tuple[int, int] | None, fmt: str) -> list:
    """Entries of a counted-list full box (stts, stss, stsc, stco, co64, elst)."""
    if box is None:
        return []
    (count,) = struct.unpack_from(">I", data, box[0] + 4)
    size = struct.calcsize(">" + fmt)
    return [struct.unpack_from(">" + fmt, data, box[0] + 8 + i * size) for i in range(count)]


def _read_segment(path: Path, data: bytes) -> dict:
    """The index of a one-track MP4 segment, with every sample's offset and size."""
    try:
        moov = _find(data, [b"moov"])
        if moov is None:
            raise _Incomplete
        traks = [(s, e) for kind, s, e in _boxes(data, *moov) if kind == b"trak"]
        if len(traks) != 1:
            raise _Unsupported(f"{path} has {len(traks)} tracks")
        stbl = _find(data, [b"mdia", b"minf", b"stbl"], *traks[0])
        mdhd = _find(data, [b"mdia", b"mdhd"], *traks[0])
        elst = _find(data, [b"edts", b"elst"], *traks[0])
        box = {kind: (s, e) for kind, s, e in _boxes(data, *stbl)} if stbl else {}
        if mdhd is None or not {b"stsd", b"stsz"} <= set(box) <= _KNOWN_TABLES:
            raise _Unsupported(f"{path} has sample tables the joiner does not rebuild")
        edits = _table(data, elst, "QqI" if elst and data[elst[0]] else "IiI")
        if len(edits) > 1 or any(media_time != 0 for _, media_time, _ in edits):
            raise _Unsupported(f"{path} has an edit list that shifts the media")
        uniform, count = struct.unpack_from(">II", data, box[b"stsz"][0] + 4)
        sizes = ([uniform] * count if uniform else
                 list(struct.unpack_from(f">{count}I", data, box[b"stsz"][0] + 12)))
        chunks = ([c for (c,) in _table(data, box.get(b"stco"), "I")]
                  or [c for (c,) in _table(data, box.get(b"co64"), "Q")])
        stsc = _table(data, box.get(b"stsc"), "III")
        offsets = []
        for i, (first, per_chunk, _) in enumerate(stsc):
            last = stsc[i + 1][0] - 1 if i + 1 < len(stsc) else len(chunks)
            for chunk in range(first - 1, last):
                offset = chunks[chunk]
                for _ in range(per_chunk):
                    if len(offsets) < count:
                        offsets.append(offset)
                        offset += sizes[len(offsets) - 1]
        timescale = struct.unpack_from(">I", data, mdhd[0] + (20 if data[mdhd[0]] else 12))[0]
        stss = box.get(b"stss")
    except (struct.error, IndexError):
        raise _Incomplete from None
    if count == 0 or len(offsets) != count or offsets[-1] + sizes[-1] > len(data):
        raise _Incomplete
    return {"path": path, "moov": data[slice(*moov)], "sizes": sizes, "offsets": offsets,
            "stsd": data[slice(*box[b"stsd"])], "timescale": timescale,
            "stts": _table(data, box.get(b"stts"), "II"),
            "sync": None if stss is None else [n for (n,) in _table(data, stss, "I")],
            "ftyp": data[:struct.unpack_from(">I", data)[0]] if data[4:8] == b"ftyp" else b""}


def _sample_count(path: Path) -> int | None:
    """Frames in a finished segment, or None if it has no readable index."""
    try:
        data = path.read_bytes()
        if data[4:8] == b"ftyp":  # MP4/MOV: the sample count in the index
            stsz = _find(data, [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsz"])
            return struct.unpack_from(">I", data, stsz[0] + 8)[0] if stsz else None
    except (_Incomplete, struct.error, OSError):
        return None
    cap = cv2.VideoCapture(str(path))  # another container (.avi, .mkv): ask the demuxer
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else None
    cap.release()
    return count


def _codec_key(stsd: bytes) -> bytes:
    """The sample description minus the bitrate fields, which differ from segment to segment."""
    try:
        entry = stsd[8:]  # the one sample entry
        key = [entry[4:86]]  # format and the visual fields: size, depth
        for kind, s, e in _boxes(entry, 86):
            if kind == b"esds":
                key.append(b"esds" + _decoder_info(entry, s + 4, e))
            elif kind != b"btrt":
                key.append(kind + entry[s:e])
        return b"".join(key)
    except (IndexError, _Incomplete):
        raise _Unsupported("unreadable sample description") from None


def _decoder_info(data: bytes, start: int, end: int) -> bytes:
    """The MPEG-4 descriptors of an esds box without buffer size and bitrates."""
    out = b""
    while start < end:
        tag, i, length = data[start], start + 1, 0
        while True:
            byte, i = data[i], i + 1
            length = length << 7 | byte & 0x7F
            if not byte & 0x80:
                break
        if tag == 0x03:  # ES descriptor: ES_ID, flags, optional fields, then descriptors
            flags, body = data[i + 2], i + 3
            body += 2 if flags & 0x80 else 0
            body += 1 + data[body] if flags & 0x40 else 0
            body += 2 if flags & 0x20 else 0
            out += _decoder_info(data, body, i + length)
        elif tag == 0x04:  # decoder config: object type, stream type, 11 bytes of rates
            out += data[i:i + 2] + _decoder_info(data, i + 13, i + length)
        else:
            out += bytes([tag]) + data[i:i + length]
        start = i + length
    return out


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def _concat_mp4(segments: list[Path], out: Path) -> int:
    """Write one MP4 holding every complete segment's samples; returns the frame count."""
    if out.suffix.lower() not in (".mp4", ".mov", ".m4v"):
        raise _Unsupported(out.suffix)
    index = []
    for path in segments:
        try:
            seg = _read_segment(path, path.read_bytes())
        except _Incomplete:
            continue  # the segment being written at the crash
        if index and (_codec_key(seg["stsd"]), seg["timescale"], seg["sync"] is None) != (
                _codec_key(index[0]["stsd"]), index[0]["timescale"], index[0]["sync"] is None):
            raise _Unsupported(f"{path} differs in codec settings from {index[0]['path']}")
        index.append(seg)
    if not index:
        return 0
    sizes = [n for seg in index for n in seg["sizes"]]
    stts, sync, done = [], [], 0
    for seg in index:
        for count, delta in seg["stts"]:
            if stts and stts[-1][1] == delta:
                stts[-1][0] += count
            else:
                stts.append([count, delta])
        sync += [done + k for k in seg["sync"] or ()]
        done += len(seg["sizes"])
    ftyp = index[0]["ftyp"]
    tables = {  # payloads of the new sample tables: all samples in one chunk after ftyp
        b"stts": struct.pack(f">II{2 * len(stts)}I", 0, len(stts), *[v for e in stts for v in e]),
        b"stss": struct.pack(f">II{len(sync)}I", 0, len(sync), *sync),
        b"stsc": struct.pack(">IIIII", 0, 1, 1, len(sizes), 1),
        b"stsz": struct.pack(f">III{len(sizes)}I", 0, 0, len(sizes), *sizes),
        b"co64": struct.pack(">IIQ", 0, 1, len(ftyp) + 16),
    }
    moov = _rebuild_moov(index[0]["moov"], tables, sum(c * d for c, d in stts),
                         index[0]["timescale"])
    with open(out, "wb") as f:
        f.write(ftyp)
        f.write(struct.pack(">I4sQ", 1, b"mdat", 16 + sum(sizes)))
        for seg in index:
            data = seg["path"].read_bytes()
            for offset, size in zip(seg["offsets"], seg["sizes"]):
                f.write(data[offset:offset + size])
        f.write(moov)
    return len(sizes)


def _set_duration(payload: bytes, at_v0: int, at_v1: int, value: int) -> bytes:
    at, fmt = (at_v1, ">Q") if payload[0] == 1 else (at_v0, ">I")
    if value >= 1 << (8 * struct.calcsize(fmt)):
        raise _Unsupported("duration too long for a version-0 box")
    return payload[:at] + struct.pack(fmt, value) + payload[at + struct.calcsize(fmt):]


def _rebuild_moov(moov: bytes, tables: dict, media_duration: int, media_scale: int) -> bytes:
    """The first segment's moov with the joined durations and sample tables."""
    mvhd = _find(moov, [b"mvhd"])
    if mvhd is None:
        raise _Unsupported("no movie header")
    movie_scale = struct.unpack_from(">I", moov, mvhd[0] + (20 if moov[mvhd[0]] else 12))[0]
    movie = round(media_duration * movie_scale / media_scale)
    durations = {b"mvhd": (16, 24, movie), b"tkhd": (20, 28, movie),
                 b"mdhd": (16, 24, media_duration)}

    def rebuild(start: int, end: int) -> bytes:
        out = []
        for kind, s, e in _boxes(moov, start, end):
            payload = moov[s:e]
            if kind in _CONTAINERS:
                payload = rebuild(s, e)
            elif kind in (b"stco", b"co64"):
                kind, payload = b"co64", tables[b"co64"]
            elif kind in tables:
                payload = tables[kind]
            elif kind in durations:
                payload = _set_duration(payload, *durations[kind])
            elif kind == b"elst":
                payload = struct.pack(">IIQqI", 1 << 24, 1, movie, 0, 0x10000)
            out.append(_box(kind, payload))
        return b"".join(out)

    return _box(b"moov", rebuild(0, len(moov)))
