"""The launch choice (``app/source_policy.py``), without a window."""

from __future__ import annotations

from waste_vision.app.source_policy import Choice, after_probe, at_launch, is_camera, is_stream


def test_the_source_asked_for_wins_and_plays_at_once_unless_it_is_a_camera():
    assert at_launch("clip.mp4", "other.mp4", exists=lambda p: True) == Choice("open", "clip.mp4")
    assert at_launch("rtsp://cam/live", None) == Choice("open", "rtsp://cam/live")
    # a camera waits for the probe, so the two never open the device at once
    assert at_launch("1", "clip.mp4", exists=lambda p: True) == Choice("wait", "1")


def test_the_last_source_is_used_only_while_it_can_be_reached():
    assert at_launch(None, "clip.mp4", exists=lambda p: True) == Choice("open", "clip.mp4")
    assert at_launch(None, "gone.mp4", exists=lambda p: False) == Choice("wait", None)
    assert at_launch(None, "http://host/s.mjpg", exists=lambda p: False) == Choice(
        "open", "http://host/s.mjpg"
    )  # a stream cannot be checked without opening it
    assert at_launch(None, "0") == Choice("wait", "0")
    assert at_launch(None, None) == Choice("wait", None)


def test_after_the_probe_the_camera_wanted_else_the_first_else_the_demo():
    assert after_probe("2", [0]) == "2"
    assert after_probe(None, [3, 4]) == "3"
    assert after_probe(None, []) is None  # the demo clip


def test_kinds_of_spec():
    assert is_camera("0") and is_camera(" 12 ") and not is_camera("0.mp4")
    assert is_stream("RTSP://x") and is_stream("https://x") and not is_stream("file.mp4")
    assert not is_camera(None) and not is_stream(None)
