"""The fragmented-MP4 byte stream between FFmpeg's muxer and the video file, and its index.

FFmpeg writes a fragmented MP4 (``MOVFLAGS``: an empty index up front, then one ``moof`` +
``mdat`` fragment per keyframe) to a file object with no ``seek``, so it never goes back over
what it wrote and every fragment is in the file, playable, as soon as it is complete. That is
what makes a recording crash-safe; but such a file has no segment index, and without one
players that read from the start (FFmpeg's demuxer, which Chromium uses for MP4) know only the
first fragment's length and cannot seek.

``FragmentWriter`` is that file object. It passes every byte straight on, keeps ``INDEX_BYTES``
free (a ``free`` box) before the first fragment, and notes where each fragment starts and ends,
its duration and its frames. From those, ``index()`` builds the ``sidx`` box that can replace
the free one at the end, so finishing costs the same whatever the length: nothing is copied.
Long recordings group several fragments into one index entry, so the box never runs out: a
seek lands within ``ceil(fragments / INDEX_ENTRIES)`` fragments of its target and decodes
forward from there. ``frames_in_file`` and ``frames_before()`` tell the caller which frames
the file holds whole.
"""

from __future__ import annotations

import bisect
import struct

TIMESCALE = 90_000  # ticks per second of the video's timestamps
# The layout FragmentWriter follows: the moov (empty) first, a fragment per keyframe, offsets
# relative to each moof; skip_trailer: no mfra at the end (FFmpeg reads it only when asked,
# and the sidx does its job)
MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof+skip_trailer"
# The space kept for the segment index: 12 bytes an entry, so 2,726 entries (45 minutes of
# 1-second fragments); a longer recording puts several fragments in an entry (a 2-hour one 3,
# a day's 32), so a seek still lands within seconds of its target.
INDEX_BYTES = 32 * 1024
SIDX_HEADER = 40  # a version-1 sidx box up to its first entry
INDEX_ENTRIES = (INDEX_BYTES - SIDX_HEADER - 8) // 12  # 8: the free box after it, if any


class FragmentWriter:
    """The file object the muxer writes to: passes every byte straight to ``raw``, and
    follows the top-level boxes as they go by. Before the first fragment it inserts the
    ``free`` box that ``index()`` fills at the end; for each fragment it notes where it
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
        # the whole fragments (their data all in the file), as running totals so that the
        # index costs the same however many there are: where each starts and ends, and the
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
