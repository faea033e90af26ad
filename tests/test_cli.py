"""The command line's contract: outputs never overwrite inputs or each other, existing
outputs need --overwrite, internal errors exit 3 with one line (traceback in the log file),
-v/-q anywhere, --version, evaluate --update-manifest, and stream passwords never shown."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from importlib.metadata import version

import cv2
import pytest

from tests.conftest import ROOT
from waste_vision.commands import cli
from waste_vision.commands.cli import INTERNAL_ERROR, build_parser, main
from waste_vision.engine.recorder import read_jsonl
from waste_vision.errors import UserError

SLIDESHOW = ROOT / "tests" / "fixtures" / "slideshow.mp4"
SECRET_URL = "rtsp://user:secret@127.0.0.1:9/x"  # port 9 (discard): refused at once


@pytest.fixture(autouse=True)
def log_dir(tmp_path, monkeypatch):
    path = tmp_path / "logs"
    monkeypatch.setenv("WASTE_VISION_LOG_DIR", str(path))
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """12 small frames of the slideshow fixture, as their own file."""
    path = tmp_path_factory.mktemp("clip") / "clip.avi"
    cap = cv2.VideoCapture(str(SLIDESHOW))
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 96))
    for _ in range(12):
        ok, frame = cap.read()
        assert ok
        out.write(cv2.resize(frame, (160, 96)))
    out.release()
    cap.release()
    return path


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def no_work(monkeypatch):
    """Fails the test if annotate opens its source or builds the classifier: a refused
    call is refused before anything is read, or written."""
    from waste_vision.commands import annotate

    def refuse(*args, **kwargs):
        raise AssertionError("the call was not refused before the work began")

    monkeypatch.setattr(annotate, "open_source", refuse)
    monkeypatch.setattr(annotate, "build_frame_stage", refuse)


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    return err


# -- A: an output that is an input, or two outputs that are one file ------------------------


def _input_cases(t, src):
    (t / "link.avi").symlink_to(src)
    os.link(src, t / "hard.avi")
    return {
        "-o is the input": ["-o", src],
        "-o is ./input": ["-o", os.path.relpath(src)],
        "-o is a symlink to the input": ["-o", t / "link.avi"],
        "-o is a hard link to the input": ["-o", t / "hard.avi"],
        "--jsonl is the input": ["-o", t / "o.mp4", "--jsonl", src],
        "--summary is the input": ["-o", t / "o.mp4", "--summary", src],
        "--summary is the input's hard link": ["-o", t / "o.mp4", "--summary", t / "hard.avi"],
    }


@pytest.mark.parametrize("overwrite", [False, True])
@pytest.mark.parametrize(
    "case",
    [
        "-o is the input",
        "-o is ./input",
        "-o is a symlink to the input",
        "-o is a hard link to the input",
        "--jsonl is the input",
        "--summary is the input",
        "--summary is the input's hard link",
    ],
)
def test_annotate_refuses_an_output_that_is_its_input(
    clip, tmp_path, capsys, no_work, monkeypatch, case, overwrite
):
    """Even with --overwrite: the input is never written to."""
    src = tmp_path / "in.avi"
    src.write_bytes(clip.read_bytes())
    before = digest(src)
    monkeypatch.chdir(tmp_path)
    args = _input_cases(tmp_path, src)[case]
    code = main(["annotate", str(src), *map(str, args)] + (["--overwrite"] if overwrite else []))
    err = one_line_error(capsys)
    assert code == 2 and "is the input" in err and "another name" in err
    assert digest(src) == before
    assert not (tmp_path / "o.mp4").exists()


def test_annotate_refuses_the_empty_scene_photo_as_output(tmp_path, capsys, no_work):
    photo = tmp_path / "empty.jpg"
    photo.write_bytes((ROOT / "assets" / "samples").glob("*.jpg").__next__().read_bytes())
    before = digest(photo)
    code = main(
        [
            "annotate",
            str(SLIDESHOW),
            "-o",
            str(tmp_path / "o.mp4"),
            "--summary",
            str(photo),
            "--empty-scene",
            str(photo),
            "--overwrite",
        ]
    )
    err = one_line_error(capsys)
    assert code == 2 and "--empty-scene photo" in err and digest(photo) == before


@pytest.mark.parametrize(
    "names", [("-o", "--jsonl"), ("-o", "--summary"), ("--jsonl", "--summary")]
)
@pytest.mark.parametrize("spelling", ["same", "dot", "symlink"])
def test_annotate_refuses_two_outputs_that_are_one_file(
    tmp_path, capsys, no_work, monkeypatch, names, spelling
):
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "same.out"
    other = {"same": target, "dot": "./same.out", "symlink": tmp_path / "alias.out"}[spelling]
    if spelling == "symlink":
        (tmp_path / "alias.out").symlink_to(target)  # dangling: same.out does not exist yet
    given = {"-o": tmp_path / "o.mp4", "--jsonl": None, "--summary": None}
    given[names[0]], given[names[1]] = target, other
    args = [a for name, path in given.items() if path is not None for a in (name, str(path))]
    code = main(["annotate", str(SLIDESHOW), *args])
    err = one_line_error(capsys)
    assert code == 2 and "are the same file" in err
    assert names[0] in err and names[1] in err
    assert not target.exists() and not (tmp_path / "o.mp4").exists()


def test_bench_refuses_json_that_is_the_clip(clip, tmp_path, capsys, monkeypatch):
    from waste_vision.commands import bench

    def refuse(*args, **kwargs):
        raise AssertionError("bench ran before refusing --json")

    monkeypatch.setattr(bench, "bench_annotate", refuse)
    src = tmp_path / "clip.avi"
    src.write_bytes(clip.read_bytes())
    before = digest(src)
    (tmp_path / "hard.avi").hardlink_to(src)
    for target in (src, tmp_path / "hard.avi"):
        code = main(["bench", "--clip", str(src), "--json", str(target)])
        err = one_line_error(capsys)
        assert code == 2 and "--json" in err and "--clip video" in err
    assert digest(src) == before


def test_bench_refuses_json_over_the_models_manifest(tmp_path, capsys, monkeypatch):
    import shutil

    from waste_vision.commands import bench

    monkeypatch.setattr(bench, "bench_annotate", lambda *a, **k: pytest.fail("bench ran"))
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(ROOT / "models" / "cascade.json", models / "cascade.json")
    before = digest(models / "cascade.json")
    code = main(
        [
            "bench",
            "--models",
            str(models),
            "--clip",
            str(SLIDESHOW),
            "--json",
            str(models / "cascade.json"),
        ]
    )
    err = one_line_error(capsys)
    assert code == 2 and "manifest" in err and digest(models / "cascade.json") == before


# -- B: a second run to the same outputs ----------------------------------------------------


def _annotate(clip, out, log, summary, *extra):
    return main(
        [
            "annotate",
            str(clip),
            "-o",
            str(out),
            "--jsonl",
            str(log),
            "--summary",
            str(summary),
            "--find",
            "frame",
            "--max-frames",
            "5",
            "-q",
            *extra,
        ]
    )


def test_rerun_is_refused_unless_overwrite_then_all_outputs_are_replaced(clip, tmp_path, capsys):
    out, log, summary = tmp_path / "o.mp4", tmp_path / "o.jsonl", tmp_path / "o.json"
    assert _annotate(clip, out, log, summary) == 0
    first = capsys.readouterr()
    assert "annotated" not in first.err  # -q: no progress line
    before = {p: digest(p) for p in (out, log, summary)}
    # each output alone, when it exists, refuses the run
    for existing in (out, log, summary):
        others = [p for p in (out, log, summary) if p != existing]
        moved = {p: p.rename(p.with_name("keep-" + p.name)) for p in others}
        code = _annotate(clip, out, log, summary)
        err = one_line_error(capsys)
        assert code == 2 and str(existing) in err and "add --overwrite to replace it" in err
        for p, kept in moved.items():
            assert not p.exists()
            kept.rename(p)
    assert {p: digest(p) for p in (out, log, summary)} == before
    # --overwrite: all three replaced together, the log emptied, not appended to
    summary.write_text('{"an older": "summary"}\n')
    assert _annotate(clip, out, log, summary, "--max-frames", "4", "--overwrite") == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    lines = read_jsonl(log)
    assert [line["index"] for line in lines] == [0, 1, 2, 3]
    assert [line["video_frame"] for line in lines] == [0, 1, 2, 3]
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 4
    cap.release()
    assert json.loads(summary.read_text()) == printed and "tally" in printed


# -- C: internal errors, -v/-q, --version ---------------------------------------------------


def _raise(message):
    def command(args):
        raise RuntimeError(message)

    return command


def test_internal_error_is_one_line_exit_3_and_traceback_in_the_log(monkeypatch, capsys, log_dir):
    monkeypatch.setattr(cli, "_cmd_cameras", _raise("the bug " + SECRET_URL))
    assert main(["cameras"]) == INTERNAL_ERROR == 3
    captured = capsys.readouterr()
    err = captured.err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    log = log_dir / "waste-vision.log"
    assert err.startswith("waste-vision: internal error: RuntimeError: the bug")
    assert f"details in {log}" in err and "please report it" in err
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "RuntimeError: the bug" in text
    assert ", in command" in text  # the frame that raised
    assert "secret" not in err + captured.out + text


def test_internal_error_without_a_writable_log_folder_still_one_line(monkeypatch, capsys, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("WASTE_VISION_LOG_DIR", str(blocker / "logs"))
    monkeypatch.setattr(cli, "_cmd_cameras", _raise("boom"))
    assert main(["cameras"]) == 3
    err = one_line_error(capsys)
    assert "RuntimeError: boom" in err and "-vv" in err


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"waste-vision {version('waste-vision')}"


@pytest.mark.parametrize(
    "argv, verbose, quiet",
    [
        (["cameras"], 0, 0),
        (["-v", "cameras"], 1, 0),
        (["cameras", "-vv"], 2, 0),
        (["-v", "cameras", "--verbose"], 2, 0),
        (["-q", "cameras"], 0, 1),
        (["cameras", "--quiet"], 0, 1),
    ],
)
def test_verbose_and_quiet_before_or_after_the_sub_command(
    monkeypatch, capsys, argv, verbose, quiet
):
    """Each command sees the counts, and the terminal's loudness follows them."""
    from waste_vision.logs import get_logger

    seen = {}

    def command(args):
        seen.update(verbose=args.verbose, quiet=args.quiet)
        get_logger("test").info("an info line")
        get_logger("test").warning("a warning line")
        return 0

    monkeypatch.setattr(cli, "_cmd_cameras", command)
    assert main(argv) == 0
    assert seen == {"verbose": verbose, "quiet": quiet}
    err = capsys.readouterr().err
    assert ("an info line" in err) == (verbose > 0)
    assert ("a warning line" in err) == (quiet == 0)


def test_verbose_and_quiet_on_nested_and_every_sub_command():
    parser = build_parser()
    for argv in (
        ["data", "split", "a", "b", "-q"],
        ["annotate", "x", "-o", "y", "-v"],
        ["classify", "-q", "x"],
        ["evaluate", "--stage", "material", "--data", "d", "-v"],
        ["app", "-q"],
        ["bench", "-q"],
        ["train", "--stage", "material", "--data", "d", "--out", "o", "-v"],
    ):
        args = parser.parse_args(argv)
        assert getattr(args, "sub_quiet", 0) + getattr(args, "sub_verbose", 0) == 1, argv


# -- D: evaluate --update-manifest --------------------------------------------------------


def test_evaluate_writes_the_manifest_only_when_asked():
    parser = build_parser()
    base = ["evaluate", "--stage", "material", "--data", "d"]
    assert parser.parse_args(base).update_manifest is False
    assert parser.parse_args([*base, "--update-manifest"]).update_manifest is True


# -- F: stream passwords ------------------------------------------------------------------


def _refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_stream_password_never_shown(tmp_path, capsys, log_dir):
    url = SECRET_URL.replace(":9/", f":{_refused_port()}/")
    code = main(["annotate", url, "-o", str(tmp_path / "o.mp4"), "--open-timeout", "2", "-vv"])
    captured = capsys.readouterr()
    assert code == 2 and "127.0.0.1" in captured.err
    code = main(["classify", url])
    classified = capsys.readouterr()
    assert code == 1 and "a URL" in classified.err
    everything = (
        captured.out
        + captured.err
        + classified.out
        + classified.err
        + (log_dir / "waste-vision.log").read_text()
    )
    assert "user:***@" in everything and "secret" not in everything


# -- the events, MQTT and metrics options: one FleetOptions, built once from the arguments --


def test_fleet_options_from_annotate_and_app_arguments(tmp_path, monkeypatch):
    from pathlib import Path

    from waste_vision.engine.fleet import FleetOptions

    monkeypatch.setenv("HOME", str(tmp_path))
    db = tmp_path / "e.sqlite"
    args = build_parser().parse_args(
        ["annotate", "in.mp4", "-o", "o.mp4", "--events", str(db), "--site", "k1"]
        + ["--events-keep-days", "7", "--metrics-port", "9108", "--save-crops", "crops"]
    )
    options = FleetOptions.from_args(args)
    assert options == FleetOptions(
        events=db,
        save_crops=Path("crops"),
        site="k1",
        events_keep_days=7.0,
        metrics_port=9108,
    )
    assert options.check() is None  # no --mqtt: nothing to check
    app = FleetOptions.from_args(build_parser().parse_args(["app", "--no-events"]))
    assert app == FleetOptions()
    with pytest.raises(UserError, match="--no-events with --events or --save-crops"):
        FleetOptions.from_args(
            build_parser().parse_args(["app", "--no-events", "--events", str(db)])
        )
    with pytest.raises(UserError, match="--mqtt sends the events database's rows"):
        FleetOptions(mqtt="mqtt://h/wv").check()


def test_mqtt_without_events_is_one_line_exit_2(tmp_path, capsys, no_work):
    out = tmp_path / "o.mp4"
    code = main(["annotate", "in.mp4", "-o", str(out), "--no-events", "--mqtt", "mqtt://h/wv"])
    assert code == 2
    assert "--mqtt sends the events database's rows" in one_line_error(capsys)
