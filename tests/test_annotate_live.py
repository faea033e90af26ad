"""`waste-vision annotate` on live sources: an MJPEG stream served from this test on
127.0.0.1, recorded for a duration, stopped by a signal, lost mid-run; and the calls that
are refused before any work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT
from tests.mjpeg_server import MJPEGServer, free_port, jpeg_frames
from tests.test_annotate import no_classification, probe_frames  # noqa: F401 (a fixture)
from tests.test_recorder import pyav_frames
from waste_vision.commands.cli import main
from waste_vision.engine.recorder import probe, read_jsonl

DEMO = ROOT / "tests" / "fixtures" / "slideshow.mp4"  # 12 s of photos, 360 frames
STREAM_SIZE = (320, 180)


@pytest.fixture(scope="module")
def clip_frames():
    return jpeg_frames(DEMO, count=90, size=STREAM_SIZE)


@pytest.fixture
def server(clip_frames):
    srv = MJPEGServer(clip_frames, fps=30).start()
    yield srv
    srv.stop()


def annotate(*args) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-m", "waste_vision.commands.cli", "annotate", *map(str, args)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def lines_in(path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def wait_until(predicate, timeout: float, proc: subprocess.Popen) -> None:
    """Poll a condition on files another process writes (there is no event to wait on)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            pytest.fail(f"annotate ended early ({proc.returncode}): {proc.stderr.read()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out; stderr: {proc.communicate()[1]}")
        time.sleep(0.05)


def test_a_stream_recorded_for_a_duration(server, tmp_path):
    out, log = tmp_path / "live.mp4", tmp_path / "live.jsonl"
    proc = annotate(server.url, "-o", out, "--jsonl", log, "--duration", 6)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "recorded" in err and "Traceback" not in err
    info = probe(out)
    assert (info["codec"], info["pix_fmt"]) == ("h264", "yuv420p")
    assert (info["width"], info["height"]) == STREAM_SIZE
    assert info["frames"] >= 150, err
    assert probe_frames(out) == (info["frames"], info["frames"])
    times = [t for t, _ in pyav_frames(out)]
    assert 5.5 <= times[-1] <= 6.1  # real timing: the frames span the 6 s they came in
    records = read_jsonl(log)
    assert len(records) == info["frames"]
    assert [r["video_s"] for r in records] == pytest.approx(times, abs=1e-3)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_a_live_run_within_3_s_with_a_playable_file(server, tmp_path, signum):
    out, log = tmp_path / "live.mp4", tmp_path / "live.jsonl"
    proc = annotate(server.url, "-o", out, "--jsonl", log)  # no limit: runs until stopped
    wait_until(lambda: lines_in(log) >= 45, 120, proc)
    sent = time.monotonic()
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=30)
    took = time.monotonic() - sent
    assert proc.returncode == 0, err
    assert took <= 3.0, f"took {took:.1f} s to stop"
    assert "stopped on request" in err and "Traceback" not in err
    frames = probe(out)["frames"]
    assert frames >= 45 and probe_frames(out) == (frames, frames)
    assert len(read_jsonl(log)) == frames


def test_a_stream_lost_mid_run_keeps_what_came_and_exits_1(server, tmp_path):
    out, log = tmp_path / "lost.mp4", tmp_path / "lost.jsonl"
    proc = annotate(server.url, "-o", out, "--jsonl", log, "--duration", 8)
    wait_until(lambda: lines_in(log) >= 45, 120, proc)
    server.stop()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    problem = [line for line in err.splitlines() if line.startswith("waste-vision:")]
    assert len(problem) == 1 and "stream lost at" in problem[0], err
    assert "Traceback" not in err
    frames = probe(out)["frames"]
    assert frames >= 45 and len(read_jsonl(log)) == frames
    assert probe_frames(out) == (frames, frames)


def refused(capsys, *args) -> str:
    start = time.monotonic()
    code = main(["annotate", *map(str, args)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert time.monotonic() - start < 5
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    return err


def test_a_camera_that_does_not_open_is_refused(tmp_path, capsys, no_classification):
    err = refused(capsys, "7", "-o", tmp_path / "o.mp4")
    assert "camera 7 does not open" in err and "`waste-vision cameras` lists" in err
    assert not (tmp_path / "o.mp4").exists()


def test_a_url_that_does_not_answer_is_refused(tmp_path, capsys, no_classification):
    import socket

    with socket.socket() as silent:  # accepts, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/stream.mjpg"
        err = refused(capsys, url, "-o", tmp_path / "o.mp4", "--open-timeout", 2)
    assert url in err and "does not open" in err and "within 2 s" in err
    err = refused(capsys, f"http://127.0.0.1:{free_port()}/x.mjpg", "-o", tmp_path / "o.mp4")
    assert "does not open" in err


def test_bad_output_and_region_for_a_stream_are_refused(
    server, tmp_path, capsys, no_classification
):
    err = refused(capsys, server.url, "-o", tmp_path)
    assert "it is a folder" in err
    err = refused(capsys, server.url, "-o", tmp_path / "o.mp4", "--roi", "5000,5000,10,10")
    assert "320x180" in err and "5000,5000,10,10" in err
