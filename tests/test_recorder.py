"""Recordings are H.264 in fragmented MP4 with exactly the frames written, are playable at
their own path after kill -9 (at most a second lost), are finished in place (an index
written into space kept for it, nothing copied), and report failures in one line."""

from __future__ import annotations

import errno
import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from tests.conftest import wait_until
from waste_vision.engine import mp4_fragments
from waste_vision.engine import recorder as recorder_module
from waste_vision.engine.recorder import (
    Recorder,
    RecordingError,
    h264_encoder,
    probe,
    read_jsonl,
)

ROOT = Path(__file__).resolve().parents[1]
W, H, FPS = 64, 48, 15


def frame(i: int, size=(W, H)) -> np.ndarray:
    """Eight stripes, white where the index has a one bit, so order survives compression."""
    w, h = size
    bits = (i >> (np.arange(w) * 8 // w)) & 1
    return np.broadcast_to((bits * 255).astype(np.uint8)[None, :, None], (h, w, 3)).copy()


def read_video(path: Path) -> tuple[list[np.ndarray], float, tuple[int, int], int]:
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), path
    meta = (
        cap.get(cv2.CAP_PROP_FPS),
        (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))),
        int(cap.get(cv2.CAP_PROP_FRAME_COUNT)),
    )
    frames = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(bgr)
    cap.release()
    return frames, *meta


def pyav_frames(path: Path) -> list[tuple[float, bool]]:
    """(time in s, keyframe) of every frame PyAV decodes, up to the first that does not
    (a fragment torn by a kill mid-write), as a player shows them."""
    out = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        try:
            for packet in container.demux(stream):
                out += [(float(f.pts * f.time_base), f.key_frame) for f in packet.decode()]
        except av.error.InvalidDataError:
            pass
    return out


def top_boxes(data: bytes) -> list[tuple[bytes, int, int]]:
    """(type, offset, size) of a file's top-level MP4 boxes."""
    out, at = [], 0
    while at + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        out.append((kind, at, size))
        at += size or len(data) - at
    return out


def sidx_entries(data: bytes, at: int) -> tuple[int, int, int, list[tuple[int, int]]]:
    """(timescale, earliest time, first moof's offset, [(size, duration)]) of a v1 sidx."""
    timescale, earliest, first = struct.unpack(">IQQ", data[at + 16 : at + 36])
    count = struct.unpack(">H", data[at + 38 : at + 40])[0]
    size = struct.unpack(">I", data[at : at + 4])[0]
    entries = [
        struct.unpack(">II", data[at + 40 + 12 * k : at + 48 + 12 * k]) for k in range(count)
    ]
    return timescale, earliest, at + size + first, entries


def index_of(bgr: np.ndarray) -> int:
    stripes = bgr.reshape(bgr.shape[0], 8, -1, 3).mean(axis=(0, 2, 3))
    return int(sum(1 << k for k, v in enumerate(stripes) if v > 128))


def assert_in_order(frames: list[np.ndarray]) -> None:
    assert [index_of(f) for f in frames] == list(range(len(frames)))


def test_frames_fps_and_size_are_exact(tmp_path):
    target, log = tmp_path / "clip.mp4", tmp_path / "clip.jsonl"
    with Recorder(target, FPS, (W, H), jsonl_path=log) as rec:
        for i in range(45):
            rec.write(frame(i, (W * 2, H) if i == 7 else (W, H)), {"i": i, "p": np.float32(0.5)})
    frames, fps, size, count = read_video(target)
    assert (len(frames), count, size) == (45, 45, (W, H))
    assert fps == pytest.approx(FPS, abs=0.01)
    assert_in_order(frames)
    lines = log.read_text().splitlines()
    assert len(lines) == 45
    records = [json.loads(line) for line in lines]
    assert [r["i"] for r in records] == [r["video_frame"] for r in records] == list(range(45))
    assert records[30]["video_s"] == pytest.approx(2.0) and records[0]["p"] == 0.5


def test_h264_fragmented_while_recording_and_indexed_once_finished(tmp_path):
    """What makes a crash cost at most a second: while recording, one fragment (moof) per
    second, each opening on a keyframe, playable as it is. What a browser needs: H.264 High,
    yuv420p and, once finished, a segment index (sidx) before the first fragment that
    covers the whole file, so the length is known from the start and a seek goes straight
    to its fragment."""
    target = tmp_path / "v.mp4"
    rng = np.random.default_rng(0)
    with Recorder(target, 10, (W, H)) as rec:
        for _ in range(35):
            rec.write(cv2.GaussianBlur(rng.integers(0, 255, (H, W, 3), np.uint8), (9, 9), 3))
        data = target.read_bytes()  # mid-recording: three whole seconds are in the file
        assert data[4:8] == b"ftyp" and data.count(b"moof") == 3
        assert len(pyav_frames(target)) == len(read_video(target)[0]) == 30
    info = probe(target)
    assert (info["codec"], info["pix_fmt"], info["frames"]) == ("h264", "yuv420p", 35)
    if h264_encoder() == "libx264":  # at PRESET it keeps High (recorder.py)
        assert info["profile"] == "High"
    else:  # libopenh264, the fallback
        assert info["profile"] in ("High", "Main")
    assert (info["width"], info["height"], info["fps"]) == (W, H, 10)
    decoded = pyav_frames(target)
    assert [t for t, _ in decoded] == pytest.approx([k / 10 for k in range(35)])
    assert [k for k, (_, key) in enumerate(decoded) if key] == [0, 10, 20, 30]
    data = target.read_bytes()
    boxes = top_boxes(data)
    assert [kind for kind, _, _ in boxes[:5]] == [b"ftyp", b"moov", b"sidx", b"free", b"moof"]
    timescale, earliest, first, entries = sidx_entries(data, boxes[2][1])
    assert first == boxes[4][1] and earliest == 0
    assert first + sum(size for size, _ in entries) == len(data)  # every byte after it
    moofs = [at for kind, at, _ in boxes if kind == b"moof"]
    assert len(entries) == len(moofs) == 4
    assert [d / timescale for _, d in entries] == pytest.approx([1, 1, 1, 0.5])
    with av.open(str(target)) as container:
        assert container.duration / 1e6 == pytest.approx(3.5, abs=0.01)
    assert not list(tmp_path.glob(".*"))  # no temporary file left


def test_close_writes_in_place_and_copies_nothing(tmp_path):
    """Stopping costs the same for an hour as for a minute: close() keeps the file (same
    inode, every byte of every fragment where it was) and writes only the last fragment
    and the index into the space kept for it. The old finish copied the whole file into a
    new one and renamed it over (a new inode, no fragment left)."""
    target = tmp_path / "v.mp4"
    rec = Recorder(target, FPS, (W, H))
    for i in range(5 * FPS + 3):
        rec.write(frame(i))
    before = target.read_bytes()
    inode = target.stat().st_ino
    boxes = top_boxes(before)
    kept = next(at for kind, at, _ in boxes if kind == b"free")
    first = next(at for kind, at, _ in boxes if kind == b"moof")
    assert rec.close() == target
    after = target.read_bytes()
    assert target.stat().st_ino == inode
    assert after[:kept] == before[:kept]  # ftyp and moov as they were
    assert after[first : len(before)] == before[first:]  # the fragments as they were
    boxes_after = top_boxes(after)
    assert boxes_after[2][0] == b"sidx"
    # only the last fragment (3 frames) was appended, right where the file ended
    assert [kind for kind, at, _ in boxes_after if at >= len(before)] == [b"moof", b"mdat"]
    timescale, _, first_after, entries = sidx_entries(after, boxes_after[2][1])
    assert first_after == first and first + sum(size for size, _ in entries) == len(after)
    assert [d / timescale for _, d in entries] == pytest.approx([1] * 5 + [3 / FPS])
    assert not [p for p in tmp_path.iterdir() if p != target]


def test_seeking_uses_the_index(tmp_path):
    """A 40 s recording: the duration is known from the index and a seek lands on the
    keyframe at or before its target, far from the start."""
    target = tmp_path / "v.mp4"
    with Recorder(target, FPS, (W, H)) as rec:
        for i in range(40 * FPS):
            rec.write(frame(i))
    with av.open(str(target)) as container:
        stream = container.streams.video[0]
        assert float(stream.duration * stream.time_base) == pytest.approx(40, abs=0.01)
        container.seek(round(31.4 / stream.time_base), stream=stream, backward=True)
        first = next(container.decode(stream))
        assert float(first.pts * first.time_base) == pytest.approx(31.0)
        assert index_of(first.to_ndarray(format="bgr24")) == 31 * FPS % 256  # 8 stripes


def test_long_recordings_group_fragments_in_the_index(tmp_path, monkeypatch):
    """More fragments than index entries: several fragments share an entry, the entries
    still cover every byte and the whole length, and seeking still works."""
    monkeypatch.setattr(mp4_fragments, "INDEX_ENTRIES", 4)
    target = tmp_path / "v.mp4"
    with Recorder(target, FPS, (W, H)) as rec:
        for i in range(10 * FPS):
            rec.write(frame(i))
    data = target.read_bytes()
    boxes = top_boxes(data)
    timescale, _, first, entries = sidx_entries(data, boxes[2][1])
    assert [d / timescale for _, d in entries] == pytest.approx([3, 3, 3, 1])
    assert first + sum(size for size, _ in entries) == len(data)
    with av.open(str(target)) as container:
        stream = container.streams.video[0]
        container.seek(round(7.5 / stream.time_base), stream=stream, backward=True)
        got = next(container.decode(stream))
        assert float(got.pts * got.time_base) == pytest.approx(7.0)  # the keyframe before 7.5 s
    assert_in_order(read_video(target)[0])


def test_a_close_that_cannot_write_the_index_keeps_a_playable_file(tmp_path, monkeypatch):
    """The index's header is written last, alone: if that fails the space stays a free
    box and the file plays as recorded."""
    real_pwrite, calls = os.pwrite, []

    def pwrite(fd, data, offset):
        calls.append(len(data))
        if len(data) == 8:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(recorder_module.os, "pwrite", pwrite)
    rec = Recorder(tmp_path / "v.mp4", FPS, (W, H))
    for i in range(20):
        rec.write(frame(i))
    with pytest.raises(RecordingError, match="v.mp4"):
        rec.close()
    assert calls[-1] == 8
    data = (tmp_path / "v.mp4").read_bytes()
    assert [kind for kind, _, _ in top_boxes(data)[:3]] == [b"ftyp", b"moov", b"free"]
    assert_in_order(read_video(tmp_path / "v.mp4")[0])
    assert len(pyav_frames(tmp_path / "v.mp4")) == 20


def test_real_time_frames_keep_their_capture_times(tmp_path):
    """A live recording: frames written when they came, with gaps (a dropped stream)."""
    times = [0.0, 0.04, 0.07, 0.13, 0.5, 0.52, 2.9, 2.95, 3.0, 3.1]
    target, log = tmp_path / "live.mp4", tmp_path / "live.jsonl"
    with Recorder(target, 25, (W, H), real_time=True, jsonl_path=log) as rec:
        for i, t in enumerate(times):
            rec.write(frame(i), {"i": i}, timestamp=1000.0 + t)
    decoded = pyav_frames(target)
    assert [t for t, _ in decoded] == pytest.approx(times, abs=1e-3)
    assert [key for _, key in decoded] == [
        True,
        False,
        False,
        False,
        False,
        False,
        True,
        False,
        True,
        False,
    ]
    assert [r["video_s"] for r in read_jsonl(log)] == pytest.approx(times, abs=1e-3)
    assert_in_order(read_video(target)[0])


CHILD = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from waste_vision.engine.recorder import Recorder
    from tests.test_recorder import frame
    out = Path(sys.argv[1])
    rec = Recorder(out / "crash.mp4", {fps}, ({w}, {h}), jsonl_path=out / "crash.jsonl")
    handed = os.open(out / "handed", os.O_WRONLY | os.O_CREAT)
    start, i = time.monotonic(), 0
    while True:
        rec.write(frame(i), {{"i": i, "pad": "x" * 200}})
        i += 1
        os.pwrite(handed, b"%10d" % i, 0)  # frames the recorder took
        time.sleep(max(0.0, start + i / {fps} - time.monotonic()))
""").format(fps=FPS, w=W, h=H)


def test_kill_9_leaves_a_playable_file_that_lost_at_most_one_second(tmp_path):
    """A writer process killed mid-recording: the file at its own path plays, in order,
    and holds every frame handed to the encoder except at most the last second; the log
    names only frames the video holds."""
    log, video = tmp_path / "crash.jsonl", tmp_path / "crash.mp4"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path)], env=env, stderr=subprocess.PIPE
    )
    wanted = 3 * FPS + FPS // 2  # log lines: ~3.5 s recorded

    def logged() -> int:
        return log.read_bytes().count(b"\n") if log.exists() else 0

    try:
        # polling a file another process writes: no event to wait on
        wait_until(lambda: child.poll() is not None or logged() >= wanted, 30, "3.5 s recorded")
        assert child.poll() is None, child.stderr.read().decode()
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stderr.close()
    assert not list(tmp_path.glob("*.parts"))  # nothing to recover
    handed = int((tmp_path / "handed").read_bytes())
    records = read_jsonl(log)
    assert [r["i"] for r in records] == list(range(len(records)))
    assert len(records) >= wanted  # the lines waited for (the kill came after)
    frames, fps, size, _ = read_video(video)  # OpenCV plays it as it is
    assert size == (W, H) and fps == pytest.approx(FPS, abs=0.01)
    assert_in_order(frames)
    lost = handed - len(frames)
    assert 0 <= lost <= FPS + 1, f"{lost} frames lost, more than one second"
    assert 0 <= len(frames) - len(records) <= FPS  # no line for a frame the video lacks
    decoded = pyav_frames(video)  # PyAV too (one frame fewer if the kill tore a fragment)
    assert len(frames) - 1 <= len(decoded) <= len(frames)
    assert decoded[-1][0] == pytest.approx((len(decoded) - 1) / FPS, abs=1e-3)


def test_read_jsonl_skips_only_a_torn_last_line(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text('{"a": 1}\n{"a": 2}\n{"a": 3, "b": [1, 2')
    assert read_jsonl(log) == [{"a": 1}, {"a": 2}]
    log.write_text('{"a": 1}\n{"a": \n{"a": 3}\n')
    with pytest.raises(ValueError, match="log.jsonl:2"):
        read_jsonl(log)


def test_the_log_starts_afresh_with_its_video(tmp_path):
    """A second recording to the same paths replaces the video, so its log is replaced
    too: appended lines would name frames of a video that no longer exists."""
    log = tmp_path / "log.jsonl"
    for run, count in ((1, 30), (2, 3)):
        with Recorder(tmp_path / "v.mp4", FPS, (W, H), jsonl_path=log) as rec:
            for i in range(count):
                rec.write(frame(i), {"run": run})
    records = read_jsonl(log)
    assert [r["run"] for r in records] == [2, 2, 2]
    assert [r["video_frame"] for r in records] == [0, 1, 2]
    assert read_video(tmp_path / "v.mp4")[3] == 3


def test_log_lines_follow_the_fragments_into_the_file(tmp_path):
    """While recording, a frame's line is written once its fragment is in the file."""
    log, video = tmp_path / "v.jsonl", tmp_path / "v.mp4"
    with Recorder(video, FPS, (W, H), jsonl_path=log) as rec:
        for i in range(2 * FPS + 5):
            rec.write(frame(i), {"i": i})
        assert len(read_jsonl(log)) == 2 * FPS == len(read_video(video)[0])
    assert [r["i"] for r in read_jsonl(log)] == list(range(2 * FPS + 5))


def test_outputs_that_cannot_be_written_are_one_line_errors(tmp_path):
    folder = tmp_path / "a-folder.mp4"
    folder.mkdir()
    with pytest.raises(RecordingError, match="it is a folder") as err:
        Recorder(folder, FPS, (W, H))
    with pytest.raises(RecordingError, match="does not exist") as err:
        Recorder(tmp_path / "missing" / "v.mp4", FPS, (W, H))
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(RecordingError, match="is a file, not a folder") as err:
        Recorder(blocker / "v.mp4", FPS, (W, H))
    assert "\n" not in str(err.value) and str(blocker) in str(err.value)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if not os.access(locked, os.W_OK):  # root ignores chmod
            with pytest.raises(RecordingError, match="not writable"):
                Recorder(locked / "v.mp4", FPS, (W, H))
    finally:
        locked.chmod(0o700)


class FailingFile:
    """A file that fails with ``code`` once ``limit`` bytes were written (a full disk)."""

    def __init__(self, path, code: int, limit: int):
        self._f = open(path, "wb", buffering=0)  # noqa: SIM115 (closed by close())
        self.code, self.limit, self.written = code, limit, 0

    def write(self, data):
        if self.written + len(data) > self.limit:
            raise OSError(self.code, os.strerror(self.code))
        self.written += len(data)
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)


def failing_open(code: int, limit: int):
    """An ``open`` for the recorder module whose video file fails (the log opens normally)."""
    import builtins

    def opener(path, mode="r", *args, **kwargs):
        if mode == "wb":
            return FailingFile(path, code, limit)
        return builtins.open(path, mode, *args, **kwargs)

    return opener


@pytest.mark.parametrize(
    "code, words", [(errno.ENOSPC, "disk full"), (errno.EIO, os.strerror(errno.EIO))]
)
def test_failure_mid_recording_names_the_cause_and_keeps_what_was_written(
    tmp_path, monkeypatch, code, words
):
    target = tmp_path / "v.mp4"
    rng = np.random.default_rng(1)
    images = [
        cv2.GaussianBlur(rng.integers(0, 255, (H, W, 3), np.uint8), (5, 5), 2)
        for _ in range(6 * FPS)
    ]
    with Recorder(tmp_path / "probe.mp4", FPS, (W, H)) as rec:  # how big 2.5 s come out
        for image in images[: int(2.5 * FPS)]:
            rec.write(image)
    limit = (tmp_path / "probe.mp4").stat().st_size
    monkeypatch.setattr(recorder_module, "open", failing_open(code, limit), raising=False)
    rec = Recorder(target, FPS, (W, H))
    with pytest.raises(RecordingError) as err:
        for image in images:
            rec.write(image)
    message = str(err.value)
    assert words in message and str(target) in message and "\n" not in message
    if code != errno.ENOSPC:
        assert "disk full" not in message
    with pytest.raises(RecordingError):  # stays failed
        rec.write(images[0])
    assert rec.close() == target
    frames = read_video(target)[0]
    # the disk holds 2.5 s worth: the two whole seconds (fragments) written before the failure
    assert len(frames) == 2 * FPS < rec.frames_written
    assert len(pyav_frames(target)) == len(frames)


def test_log_write_error_is_a_recording_error(tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full to simulate a full disk")
    rec = Recorder(tmp_path / "v.mp4", FPS, (W, H), jsonl_path=Path("/dev/full"))
    with pytest.raises(RecordingError, match="/dev/full.*disk full"):
        for i in range(3 * FPS):  # lines go out a fragment (a second) at a time
            rec.write(frame(i), {"i": i})
    assert rec.frames_written == FPS + 1
    rec.close()
    assert read_video(tmp_path / "v.mp4")[3] == FPS + 1


def test_odd_and_tiny_sizes(tmp_path):
    with Recorder(tmp_path / "odd.mp4", FPS, (31, 17)) as rec:
        rec.write(frame(0, (31, 17)))
        rec.write(frame(1, (100, 100)))
    assert rec.size == (30, 16)
    _, _, size, count = read_video(tmp_path / "odd.mp4")
    assert (size, count) == ((30, 16), 2)
    with pytest.raises(RecordingError, match="1x1"):
        Recorder(tmp_path / "tiny.mp4", FPS, (1, 1))
    assert Recorder(tmp_path / "empty.mp4", FPS, (W, H)).close() is None
    assert not (tmp_path / "empty.mp4").exists()
