"""Recording names never take over a user's file: neither the video's name nor its log's."""

from __future__ import annotations

from waste_vision.app import session


def test_a_name_whose_log_exists_is_skipped(tmp_path, monkeypatch):
    monkeypatch.setattr(session.time, "strftime", lambda fmt: "20261203-101500")
    (tmp_path / "waste-vision-20261203-101500.jsonl").write_text("the user's own log\n")
    (tmp_path / "waste-vision-20261203-101500-2.mp4").write_bytes(b"the user's own video")
    path = session.unique_path(tmp_path, "waste-vision", ".mp4")
    assert path.name == "waste-vision-20261203-101500-3.mp4"
    assert (tmp_path / "waste-vision-20261203-101500.jsonl").read_text() == "the user's own log\n"
