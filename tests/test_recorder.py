"""Recordings have exactly the frames written, survive kill -9 and report unwritable paths."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from waste_vision import recorder as recorder_module
from waste_vision.recorder import Recorder, RecordingError, read_jsonl, recover

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
    assert not (tmp_path / "clip.parts").exists()
    lines = log.read_text().splitlines()
    assert len(lines) == 45
    records = [json.loads(line) for line in lines]
    assert [r["i"] for r in records] == [r["video_frame"] for r in records] == list(range(45))
    assert records[30]["video_s"] == pytest.approx(2.0) and records[0]["p"] == 0.5


def test_join_copies_segments_losslessly(tmp_path, monkeypatch):
    target = tmp_path / "a.mp4"
    rng = np.random.default_rng(0)
    images = [cv2.GaussianBlur(rng.integers(0, 255, (H, W, 3), np.uint8), (9, 9), 3)
              for _ in range(20)]
    with Recorder(target, 10, (W, H), segment_seconds=0.5) as rec:
        for image in images:
            rec.write(image)
        shutil.copytree(rec.parts_dir, tmp_path / "copy")  # four closed five-frame segments
    segments = [f for seg in sorted((tmp_path / "copy").glob("*.part*"))
                for f in read_video(seg)[0]]
    joined = read_video(target)[0]
    assert len(joined) == len(segments) == 20
    assert all(np.array_equal(a, b) for a, b in zip(joined, segments))

    def unsupported(*args):
        raise recorder_module._Unsupported("forced by the test")

    # the fallback (decode and re-encode) gives the same frame count, fps and size
    monkeypatch.setattr(recorder_module, "_concat_mp4", unsupported)
    with Recorder(tmp_path / "b.mp4", 10, (W, H), segment_seconds=0.5) as rec:
        for image in images:
            rec.write(image)
    frames, fps, size, count = read_video(tmp_path / "b.mp4")
    assert (len(frames), count, size, round(fps, 2)) == (20, 20, (W, H), 10)


CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from waste_vision.recorder import Recorder
    from tests.test_recorder import frame
    out = Path(sys.argv[1])
    rec = Recorder(out / "crash.mp4", {fps}, ({w}, {h}), segment_seconds=1.0,
                   jsonl_path=out / "crash.jsonl")
    start, i = time.monotonic(), 0
    while True:
        rec.write(frame(i), {{"i": i, "pad": "x" * 200}})
        i += 1
        time.sleep(max(0.0, start + i / {fps} - time.monotonic()))
""").format(fps=FPS, w=W, h=H)


def test_kill_9_loses_at_most_two_seconds(tmp_path):
    log = tmp_path / "crash.jsonl"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], env=env,
                             stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and child.poll() is None:
            if log.exists() and log.read_bytes().count(b"\n") >= 3 * FPS + FPS // 2:  # ~3.5 s
                break
            time.sleep(0.05)
        assert child.poll() is None, child.stderr.read().decode()
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stderr.close()
    records = read_jsonl(log)
    assert [r["i"] for r in records] == list(range(len(records)))
    assert len(records) >= 3 * FPS
    out = recover(tmp_path / "crash.parts")
    assert out == tmp_path / "crash.mp4" and not (tmp_path / "crash.parts").exists()
    frames, fps, size, count = read_video(out)
    assert len(frames) == count >= len(records) - 2 * FPS
    assert count % FPS == 0 and size == (W, H) and fps == pytest.approx(FPS, abs=0.01)
    assert_in_order(frames)


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


def test_unwritable_directory_is_a_one_line_error(tmp_path):
    out_dir = tmp_path / "locked"
    out_dir.mkdir()
    out_dir.chmod(0o500)
    try:
        if not os.access(out_dir, os.W_OK):
            with pytest.raises(RecordingError, match=str(out_dir)) as err:
                Recorder(out_dir / "v.mp4", FPS, (W, H))
            assert "\n" not in str(err.value)
    finally:
        out_dir.chmod(0o700)
    # root ignores chmod; a file where the parts folder must go fails the same way
    (out_dir / "v.parts").write_text("")
    with pytest.raises(RecordingError, match=str(out_dir / "v.mp4")) as err:
        Recorder(out_dir / "v.mp4", FPS, (W, H))
    assert "\n" not in str(err.value)


def test_failure_mid_recording_keeps_what_was_written(tmp_path):
    target = tmp_path / "v.mp4"
    rec = Recorder(target, FPS, (W, H))
    (rec.parts_dir / "v.part0001.mp4").mkdir()  # the second segment cannot be created
    for i in range(FPS):
        rec.write(frame(i))
    with pytest.raises(RecordingError, match="v.part0001.mp4") as err:
        rec.write(frame(FPS))
    assert "\n" not in str(err.value)
    with pytest.raises(RecordingError):  # stays failed
        rec.write(frame(FPS + 1))
    assert rec.close() == target
    frames, _, _, count = read_video(target)
    assert len(frames) == count == FPS


def test_log_write_error_is_a_recording_error(tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full to simulate a full disk")
    rec = Recorder(tmp_path / "v.mp4", FPS, (W, H), jsonl_path=Path("/dev/full"))
    with pytest.raises(RecordingError, match="/dev/full"):
        rec.write(frame(0), {"i": 0})
    rec.close()
    assert read_video(tmp_path / "v.mp4")[3] == 1


def test_unfinished_recording_must_be_recovered_first(tmp_path):
    target = tmp_path / "v.mp4"
    rec = Recorder(target, FPS, (W, H))
    for i in range(FPS):
        rec.write(frame(i))
    with pytest.raises(RecordingError, match="recover"):
        Recorder(target, FPS, (W, H))
    assert read_video(recover(target))[3] == FPS


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
    assert not (tmp_path / "empty.parts").exists()
