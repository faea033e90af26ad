"""`waste-vision annotate`: output matches the input, one log line per frame, exit codes."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from tests.conftest import ROOT
from waste_vision.commands.cli import main
from waste_vision.engine.recorder import read_jsonl

DEMO = ROOT / "tests" / "fixtures" / "slideshow.mp4"  # 12 s of photos, 360 frames


def _props(path):
    cap = cv2.VideoCapture(str(path))
    props = (
        int(cap.get(cv2.CAP_PROP_FRAME_COUNT)),
        cap.get(cv2.CAP_PROP_FPS),
        int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
        int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
    )
    cap.release()
    return props


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory):
    """The first 45 frames of the demo clip at an odd size, as its own file."""
    path = tmp_path_factory.mktemp("clip") / "short.avi"
    cap = cv2.VideoCapture(str(DEMO))
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (642, 362))
    for _ in range(45):
        ok, frame = cap.read()
        assert ok
        out.write(cv2.resize(frame, (642, 362)))
    out.release()
    cap.release()
    return path


def test_demo_clip_is_720p(tmp_path):
    frames, fps, w, h = _props(DEMO)
    assert (w, h) == (1280, 720) and fps == 30 and frames >= 300


def test_output_matches_input_and_log_has_every_frame(short_clip, tmp_path, capsys, models_dir):
    out, log = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    assert (
        main(["annotate", str(short_clip), "-o", str(out), "--jsonl", str(log), "--find", "frame"])
        == 0
    )
    assert _props(out) == (45, 25.0, 642, 362)
    lines = read_jsonl(log)
    assert [line["index"] for line in lines] == list(range(45))
    first = lines[0]
    assert set(first) == {
        "video_frame",
        "video_s",
        "index",
        "timestamp",
        "position_s",
        "latency_ms",
        "verdict",
        "mode",
        "regions",
        "counted",
    }
    assert (first["video_frame"], first["video_s"], first["position_s"]) == (0, 0.0, 0.0)
    assert first["mode"] == "frame" and first["latency_ms"] > 0
    assert [line["position_s"] for line in lines] == pytest.approx([i / 25 for i in range(45)])
    (region,) = first["regions"]
    assert region["box"] == [0, 0, 642, 362] and region["kind"] == "frame"
    assert region["item"] is None
    # the first frame's result is the cascade's own on that frame
    from waste_vision.model.cascade import Cascade

    cap = cv2.VideoCapture(str(short_clip))
    ok, bgr = cap.read()
    cap.release()
    assert ok
    expected = Cascade(models_dir, backend="litert").classify(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    assert region["label"] == expected.label == first["verdict"]
    assert region["score"] == pytest.approx(expected.score, abs=0.01)
    assert region["stage1"] == {
        "label": expected.stage1.label,
        "score": pytest.approx(expected.stage1.score, abs=0.01),
    }
    counted = [label for line in lines for label in line["counted"]]
    assert counted == [expected.label]  # one steady photo: one item


def test_items_mode_verdicts_regions_and_summary_on_the_scene_clip(tmp_path, capsys):
    """The default: items found against the empty table; "empty" frames have no region;
    the summary counts each of the clip's seven items once (file and stdout alike)."""
    clip = ROOT / "assets" / "demo.mp4"
    out, log, summary = tmp_path / "s.mp4", tmp_path / "s.jsonl", tmp_path / "sum.json"
    assert (
        main(
            [
                "annotate",
                str(clip),
                "-o",
                str(out),
                "--jsonl",
                str(log),
                "--summary",
                str(summary),
                "--max-frames",
                "330",
            ]
        )
        == 0
    )
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    written = json.loads(summary.read_text())
    assert printed == written and set(written) == {"tally", "items", "items_total"}
    # items holds the last 1,000 counted (bounded memory); items_total counts them all
    assert written["items_total"] == len(written["items"])
    lines = read_jsonl(log)
    assert len(lines) == 330
    truth = [
        json.loads(t) for t in (ROOT / "assets" / "demo_truth.jsonl").read_text().splitlines()[:330]
    ]
    empty = [line for line, t in zip(lines, truth, strict=False) if not t["items"]]
    assert sum(line["verdict"] == "empty" for line in empty) >= 0.97 * len(empty)
    assert all(line["regions"] == [] for line in lines if line["verdict"] == "empty")
    busy = [line for line, t in zip(lines, truth, strict=False) if t["items"]]
    assert sum(line["verdict"] != "empty" for line in busy) >= 0.9 * len(busy)
    assert all(
        r["kind"] == "item" and r["item"] is not None for line in busy for r in line["regions"]
    )
    # the first 11 s hold two items (organic, glass): each counted once
    assert sum(written["tally"].values()) == 2 and len(written["items"]) == 2
    assert sum(len(line["counted"]) for line in lines) == 2


def test_output_carries_the_overlay(short_clip, tmp_path):
    out = tmp_path / "out.mp4"
    assert main(["annotate", str(short_clip), "-o", str(out), "--find", "frame"]) == 0
    a, b = cv2.VideoCapture(str(short_clip)), cv2.VideoCapture(str(out))
    _, plain = a.read()
    _, annotated = b.read()
    diff = np.abs(plain.astype(int) - annotated.astype(int)).sum(axis=2) > 60
    assert diff[:40, :120].mean() > 0.2  # the label tab, top-left
    assert diff[150:250, 250:400].mean() < 0.05  # the middle of the frame is untouched


def test_regions_are_classified_where_something_lies_and_logged(tmp_path):
    """Zones over bare table are empty (issue 22); a zone with an item in it is classified,
    its box clamped to the frame."""
    log = tmp_path / "roi.jsonl"
    scene = ROOT / "assets" / "demo.mp4"  # a table: bare for 2 s, then an item in the middle
    assert (
        main(
            [
                "annotate",
                str(scene),
                "-o",
                str(tmp_path / "roi.mp4"),
                "--jsonl",
                str(log),
                "--max-frames",
                "150",
                "--roi",
                "440,160,1000,1000",
                "--roi",
                "0,0,200,150",
            ]
        )
        == 0
    )
    lines = read_jsonl(log)
    assert len(lines) == 150
    assert all(line["regions"] == [] for line in lines[:60])  # bare table: empty zones
    for line in lines[100:]:  # the item lies in the first zone only
        (region,) = line["regions"]
        x, y, w, h = region["box"]
        assert (x, y) == (440, 160) and x + w <= 1280 and y + h <= 720  # clamped


def test_cut_file_annotates_what_is_readable_and_exits_1(short_clip, tmp_path, capsys):
    cut = tmp_path / "cut.avi"
    data = short_clip.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    out, log = tmp_path / "cut.mp4", tmp_path / "cut.jsonl"
    code = main(["annotate", str(cut), "-o", str(out), "--jsonl", str(log)])
    err = capsys.readouterr().err
    assert code == 1
    assert "stops being readable at frame" in err
    frames = _props(out)[0]
    assert 0 < frames < 45 and len(read_jsonl(log)) == frames


def test_missing_input_and_models_exit_2(tmp_path, capsys):
    assert main(["annotate", str(tmp_path / "nope.mp4"), "-o", str(tmp_path / "o.mp4")]) == 2
    err = capsys.readouterr().err
    assert "nope.mp4" in err and len(err.strip().splitlines()) == 1
    code = main(
        [
            "annotate",
            str(DEMO),
            "-o",
            str(tmp_path / "o.mp4"),
            "--models",
            str(tmp_path / "no-models"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "no-models" in err and len(err.strip().splitlines()) == 1


def probe_frames(path) -> tuple[int, int]:
    """Frames OpenCV and PyAV each decode from a video."""
    cap = cv2.VideoCapture(str(path))
    by_cv2 = 0
    while cap.read()[0]:
        by_cv2 += 1
    cap.release()
    from tests.test_recorder import pyav_frames

    return by_cv2, len(pyav_frames(path))


@pytest.fixture
def no_classification(monkeypatch):
    """Fails the test if annotate gets as far as building the classifier."""
    from waste_vision.commands import annotate as annotate_module

    def refuse(**kwargs):
        raise AssertionError("the bad call was not refused before classification")

    monkeypatch.setattr(annotate_module, "build_frame_stage", refuse)


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda t: t / "missing" / "o.mp4", "does not exist"),
        (lambda t: t, "it is a folder"),
        (lambda t: (t / "f").write_text("") * 0 or t / "f" / "o.mp4", "is a file, not a folder"),
    ],
)
def test_unusable_output_is_refused_before_any_work(
    tmp_path, capsys, no_classification, make, words
):
    out = make(tmp_path)
    start = time.monotonic()
    code = main(["annotate", str(DEMO), "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and time.monotonic() - start < 5
    assert words in err and str(out) in err and len(err.strip().splitlines()) == 1
    assert "disk full" not in err and "Traceback" not in err


def test_region_outside_the_frame_is_refused_naming_the_frame_size(
    tmp_path, capsys, no_classification
):
    out = tmp_path / "o.mp4"
    code = main(["annotate", str(DEMO), "-o", str(out), "--roi", "5000,5000,10,10"])
    err = capsys.readouterr().err
    assert code == 2 and "5000,5000,10,10" in err and "1280x720" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_max_frames_and_duration_cut_a_file_short(short_clip, tmp_path):
    assert (
        main(["annotate", str(short_clip), "-o", str(tmp_path / "a.mp4"), "--max-frames", "7"]) == 0
    )
    assert _props(tmp_path / "a.mp4")[0] == 7
    assert (
        main(["annotate", str(short_clip), "-o", str(tmp_path / "b.mp4"), "--duration", "1.0"]) == 0
    )
    assert _props(tmp_path / "b.mp4")[:2] == (25, 25.0)


def test_output_is_h264_that_browsers_play(short_clip, tmp_path):
    from waste_vision.engine.recorder import probe

    out = tmp_path / "out.mp4"
    assert main(["annotate", str(short_clip), "-o", str(out)]) == 0
    info = probe(out)
    assert (info["codec"], info["pix_fmt"], info["frames"]) == ("h264", "yuv420p", 45)
    from waste_vision.engine.recorder import h264_encoder

    # x264 keeps High profile at its preset; OpenH264 (where FFmpeg has no x264) makes Main
    assert info["profile"] == {"libx264": "High"}.get(h264_encoder(), "Main")
    assert probe_frames(out) == (45, 45)


def test_recording_failure_mid_way_stops_recording_not_classification(
    tmp_path, capsys, monkeypatch
):
    """The disk fills after about a second of video: every frame is still classified, the
    video keeps its playable whole seconds, and the exit code and message say what
    happened (disk full, the file's name)."""
    from tests.test_recorder import failing_open
    from waste_vision.engine import recorder as recorder_module

    monkeypatch.setattr(recorder_module, "open", failing_open(errno.ENOSPC, 450_000), raising=False)
    out, log = tmp_path / "v.mp4", tmp_path / "v.jsonl"
    code = main(["annotate", str(DEMO), "-o", str(out), "--jsonl", str(log)])
    err = capsys.readouterr().err
    assert code == 1
    assert "recording stopped" in err and "disk full" in err and str(out) in err
    assert "annotated 360 frames" in err  # classification went on to the end
    frames, fps, w, h = _props(out)
    assert (fps, w, h) == (30, 1280, 720)
    by_cv2, by_av = probe_frames(out)
    assert 30 <= by_cv2 < 360 and by_cv2 == by_av


DISK_FULL_SCRIPT = r"""
set -u
mount -t tmpfs -o size=2m tmpfs "$DISK"
"$PY" -m waste_vision.commands.cli annotate "$CLIP" -o "$DISK/out.mp4" --jsonl "$DISK/out.jsonl" \
    2> "$OUT/annotate.err"
echo $? > "$OUT/annotate.rc"
cp "$DISK/out.mp4" "$DISK/out.jsonl" "$OUT/" 2>/dev/null
"""


def _disk_full_run(tmp_path):
    """Annotate the demo clip onto a 2 MB disk (a tmpfs in a private mount namespace). Where
    no mount namespace can be made, a per-process file-size limit makes the writes fail
    (EFBIG instead of ENOSPC, and the message says so)."""
    out, disk = tmp_path / "out", tmp_path / "disk"
    out.mkdir()
    disk.mkdir()
    env = {
        **os.environ,
        "DISK": str(disk),
        "OUT": str(out),
        "PY": sys.executable,
        "CLIP": str(DEMO),
        "PYTHONPATH": str(ROOT),
    }
    unshare = shutil.which("unshare")
    for flags in (["-m"], ["-rm"]):
        if (
            unshare
            and subprocess.run(
                [unshare, *flags, "mount", "-t", "tmpfs", "tmpfs", str(disk)], capture_output=True
            ).returncode
            == 0
        ):
            subprocess.run(
                [unshare, *flags, "sh", "-c", DISK_FULL_SCRIPT], env=env, timeout=300, check=True
            )
            return out, "disk full"
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (1_500_000, 1_500_000))

    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "waste_vision.commands.cli",
            "annotate",
            str(DEMO),
            "-o",
            str(out / "out.mp4"),
            "--jsonl",
            str(out / "out.jsonl"),
        ],
        env=env,
        preexec_fn=limit,
        timeout=300,
        capture_output=True,
        text=True,
    )
    (out / "annotate.err").write_text(r.stderr)
    (out / "annotate.rc").write_text(str(r.returncode))
    return out, "file too large"


def test_disk_full_mid_recording_keeps_what_was_written(tmp_path):
    """The disk fills a few seconds in: classification still reaches the last frame, the
    message names the cause and the file, and the file at its own path plays what was
    written (whole seconds), with no recover step."""
    out, reason = _disk_full_run(tmp_path)
    err = (out / "annotate.err").read_text()
    assert (out / "annotate.rc").read_text().strip() == "1", err
    assert "annotated 360 frames" in err  # classification went on to the end
    assert reason in err and "out.mp4" in err and "recover" not in err
    assert "Traceback" not in err and "WARN" not in err
    frames, fps, w, h = _props(out / "out.mp4")
    assert (fps, w, h) == (30, 1280, 720)
    by_cv2, by_av = probe_frames(out / "out.mp4")
    assert 30 <= by_cv2 < 360 and by_av >= by_cv2 - 1
