"""Recordings are H.264 in fragmented MP4 with exactly the frames written, are playable at
their own path after kill -9 (at most a second lost), and report failures in one line."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from waste_vision import recorder as recorder_module
from waste_vision.recorder import Recorder, RecordingError, probe, read_jsonl, recover

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
    meta = (cap.get(cv2.CAP_PROP_FPS),
            (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))),
            int(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
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


def test_h264_fragmented_while_recording_and_plain_once_finished(tmp_path):
    """What makes a crash cost at most a second: while recording, one fragment (moof) per
    second, each opening on a keyframe, playable as it is. What a browser needs: H.264 High,
    yuv420p and, once finished, a plain MP4 with its index first (its length known)."""
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
    assert info["profile"] in ("High", "Main")
    assert (info["width"], info["height"], info["fps"]) == (W, H, 10)
    decoded = pyav_frames(target)
    assert [t for t, _ in decoded] == pytest.approx([k / 10 for k in range(35)])
    assert [k for k, (_, key) in enumerate(decoded) if key] == [0, 10, 20, 30]
    data = target.read_bytes()
    assert b"moof" not in data and data.index(b"moov") < data.index(b"mdat")  # faststart
    with av.open(str(target)) as container:
        assert container.duration / 1e6 == pytest.approx(3.5, abs=0.01)
    assert not list(tmp_path.glob(".*"))  # no temporary file left


def test_real_time_frames_keep_their_capture_times(tmp_path):
    """A live recording: frames written when they came, with gaps (a dropped stream)."""
    times = [0.0, 0.04, 0.07, 0.13, 0.5, 0.52, 2.9, 2.95, 3.0, 3.1]
    target, log = tmp_path / "live.mp4", tmp_path / "live.jsonl"
    with Recorder(target, 25, (W, H), real_time=True, jsonl_path=log) as rec:
        for i, t in enumerate(times):
            rec.write(frame(i), {"i": i}, timestamp=1000.0 + t)
    decoded = pyav_frames(target)
    assert [t for t, _ in decoded] == pytest.approx(times, abs=1e-3)
    assert [key for _, key in decoded] == [True, False, False, False, False, False, True,
                                           False, True, False]
    assert [r["video_s"] for r in read_jsonl(log)] == pytest.approx(times, abs=1e-3)
    assert_in_order(read_video(target)[0])


CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from waste_vision.recorder import Recorder
    from tests.test_recorder import frame
    out = Path(sys.argv[1])
    rec = Recorder(out / "crash.mp4", {fps}, ({w}, {h}), jsonl_path=out / "crash.jsonl")
    start, i = time.monotonic(), 0
    while True:
        rec.write(frame(i), {{"i": i, "pad": "x" * 200}})
        i += 1
        time.sleep(max(0.0, start + i / {fps} - time.monotonic()))
""").format(fps=FPS, w=W, h=H)


def test_kill_9_leaves_a_playable_file_that_lost_at_most_one_second(tmp_path):
    """A writer process killed mid-recording: the file at its own path plays, in order,
    and holds every frame handed to the encoder except at most the last second."""
    log, video = tmp_path / "crash.jsonl", tmp_path / "crash.mp4"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], env=env,
                             stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and child.poll() is None:
            if log.exists() and log.read_bytes().count(b"\n") >= 3 * FPS + FPS // 2:  # ~3.5 s
                break
            time.sleep(0.05)  # polling a file another process writes: no event to wait on
        assert child.poll() is None, child.stderr.read().decode()
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stderr.close()
    assert not list(tmp_path.glob("*.parts"))  # nothing to recover
    records = read_jsonl(log)  # every frame the encoder took, in order
    assert [r["i"] for r in records] == list(range(len(records)))
    assert len(records) >= 3 * FPS
    frames, fps, size, _ = read_video(video)  # OpenCV plays it as it is
    assert size == (W, H) and fps == pytest.approx(FPS, abs=0.01)
    assert_in_order(frames)
    lost = len(records) - len(frames)
    assert 0 <= lost <= FPS, f"{lost} frames lost, more than one second"
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


def test_appending_to_a_torn_log_drops_the_torn_line(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text('{"run": 1}\n{"run": 1, "torn')
    with Recorder(tmp_path / "v.mp4", FPS, (W, H), jsonl_path=log) as rec:
        rec.write(frame(0), {"run": 2})
    assert [json.loads(line)["run"] for line in log.read_text().splitlines()] == [1, 2]


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
        self._f = open(path, "wb", buffering=0)
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


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "disk full"),
                                         (errno.EIO, os.strerror(errno.EIO))])
def test_failure_mid_recording_names_the_cause_and_keeps_what_was_written(
        tmp_path, monkeypatch, code, words):
    target = tmp_path / "v.mp4"
    rng = np.random.default_rng(1)
    images = [cv2.GaussianBlur(rng.integers(0, 255, (H, W, 3), np.uint8), (5, 5), 2)
              for _ in range(6 * FPS)]
    with Recorder(tmp_path / "probe.mp4", FPS, (W, H)) as rec:  # how big 2.5 s come out
        for image in images[:int(2.5 * FPS)]:
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
    assert 2 * FPS <= len(frames) < rec.frames_written  # the whole seconds before the failure
    assert len(pyav_frames(target)) == len(frames)


def test_log_write_error_is_a_recording_error(tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full to simulate a full disk")
    rec = Recorder(tmp_path / "v.mp4", FPS, (W, H), jsonl_path=Path("/dev/full"))
    with pytest.raises(RecordingError, match="/dev/full.*disk full"):
        rec.write(frame(0), {"i": 0})
    rec.close()
    assert read_video(tmp_path / "v.mp4")[3] == 1


def write_old_parts(parts: Path, segments: int, per_segment: int) -> None:
    """A .parts folder as the previous version left it after a kill: mp4v segments of a
    second each, its recording.json, and a last segment without an index."""
    parts.mkdir()
    (parts / "recording.json").write_text(json.dumps(
        {"target": "old.mp4", "fps": FPS, "size": [W, H]}))
    for s in range(segments):
        path = parts / f"old.part{s:04d}.mp4"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (W, H))
        for i in range(per_segment):
            writer.write(frame(s * per_segment + i)[:, :, ::-1])
        writer.release()
    torn = parts / f"old.part{segments:04d}.mp4"
    torn.write_bytes((parts / "old.part0000.mp4").read_bytes()[:300])


def test_recover_turns_an_old_parts_folder_into_an_h264_video(tmp_path):
    parts = tmp_path / "old.parts"
    write_old_parts(parts, 3, FPS)
    out = recover(parts)
    assert out == tmp_path / "old.mp4" and not parts.exists()
    frames, fps, size, count = read_video(out)
    assert (len(frames), count, size) == (3 * FPS, 3 * FPS, (W, H))
    assert_in_order(frames)
    assert probe(out)["codec"] == "h264"
    with pytest.raises(RecordingError, match="playable at their own path"):
        recover(tmp_path / "nothing.parts")


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


def test_a_finish_that_cannot_rewrite_keeps_the_fragmented_file(tmp_path, monkeypatch):
    def no_room(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(recorder_module.os, "replace", no_room)
    with Recorder(tmp_path / "v.mp4", FPS, (W, H)) as rec:
        for i in range(20):
            rec.write(frame(i))
    assert b"moof" in (tmp_path / "v.mp4").read_bytes()  # kept as recorded
    assert_in_order(read_video(tmp_path / "v.mp4")[0])
    assert len(pyav_frames(tmp_path / "v.mp4")) == 20
    assert not list(tmp_path.glob(".*"))
