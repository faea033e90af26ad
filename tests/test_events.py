"""The events database: rows read back as written, corrections, retention, crops, the
writer thread off the frame path, annotate's rows against its tally, and kill -9."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, wait_until
from waste_vision.commands.cli import main
from waste_vision.engine.events import (
    CROP_PREFIX,
    Event,
    EventKind,
    EventSink,
    EventStore,
    EventWriter,
    Period,
    frame_events,
    period_ranges,
)
from waste_vision.engine.frames import Frame, FrameResult, RegionKind, RegionResult
from waste_vision.errors import UserError
from waste_vision.labels import Bin
from waste_vision.model.cascade import CascadeResult, StageResult
from waste_vision.model.manifest import load_manifest

CLIP = ROOT / "assets" / "demo.mp4"


def item(t: float, label: str = "glass", bin_: str = "recyclable", site: str = "a", **kw) -> Event:
    return Event(EventKind.ITEM, t, site, "cam0", label, bin_, score=0.9, **kw)


def local(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_rows_read_back_as_written_in_wal_mode(tmp_path):
    store = EventStore(tmp_path / "e.sqlite")
    ids = store.add([item(100.0, box=(1, 2, 3, 4), item_id=7, model_version="abc")])
    store.add([item(101.0, "organic", "organic")])
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    (first, second) = store.events()
    assert first.id == ids[0] and first.box == (1, 2, 3, 4) and first.item_id == 7
    assert first.model_version == "abc" and first.kind is EventKind.ITEM
    assert second.label == "organic" and second.id == first.id + 1
    assert store.count() == 2


def test_a_correction_is_an_event_that_relabels_its_item(tmp_path):
    store = EventStore(tmp_path / "e.sqlite")
    (a,) = store.add([item(local("2026-05-04T10:00"), "glass")])
    store.add([item(local("2026-05-04T11:00"), "metal")])
    fix = store.correction(a, "plastic", "recyclable", at=local("2026-05-06T09:00"))
    (fix_id,) = store.add([fix])
    row = store.get(fix_id)
    assert row is not None and row.kind is EventKind.CORRECTION and row.corrects == a
    newest = store.recent(10)
    assert [e.label for e in newest] == ["metal", "plastic"]  # newest first, corrected
    assert newest[1].corrects == fix_id
    totals = {(t.period, t.label): t.count for t in store.totals(Period.DAY)}
    # the item counts on the day it was counted, under the corrected label
    assert totals == {("2026-05-04", "plastic"): 1, ("2026-05-04", "metal"): 1}
    with pytest.raises(UserError, match="no counted item"):
        store.correction(fix_id, "glass", "recyclable", at=0)


def test_totals_by_hour_day_week_range_and_site(tmp_path):
    store = EventStore(tmp_path / "e.sqlite")
    store.add(
        [
            item(local("2026-05-03T23:59")),  # a Sunday
            item(local("2026-05-04T00:01")),  # Monday
            item(local("2026-05-04T00:40"), "organic", "organic"),
            item(local("2026-05-04T13:10"), site="b"),
            item(local("2026-05-11T08:00")),  # the next Monday
        ]
    )
    day = [(t.period, t.label, t.count) for t in store.totals(Period.DAY)]
    assert day == [
        ("2026-05-03", "glass", 1),
        ("2026-05-04", "glass", 2),
        ("2026-05-04", "organic", 1),
        ("2026-05-11", "glass", 1),
    ]
    week = {(t.period, t.label): t.count for t in store.totals(Period.WEEK)}
    assert week == {
        ("2026-04-27", "glass"): 1,
        ("2026-05-04", "glass"): 2,
        ("2026-05-04", "organic"): 1,
        ("2026-05-11", "glass"): 1,
    }
    hour = store.totals(Period.HOUR, since=local("2026-05-04"), until=local("2026-05-05"))
    assert [(t.period, t.label, t.count) for t in hour] == [
        ("2026-05-04 00:00", "glass", 1),
        ("2026-05-04 00:00", "organic", 1),
        ("2026-05-04 13:00", "glass", 1),
    ]
    only_b = store.totals(Period.DAY, site="b")
    assert [(t.period, t.count) for t in only_b] == [("2026-05-04", 1)]
    assert store.totals(Period.DAY, since=local("2027-01-01")) == []


def test_period_ranges_cover_the_range_without_gaps():
    lo, end = local("2026-03-01T05:00"), local("2026-11-30T05:00")
    for by in Period:
        ranges = period_ranges(lo, end, by)
        assert ranges[0][0] == lo and ranges[-1][1] == end
        assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))


def test_a_file_that_is_not_an_events_database_is_refused_and_left_alone(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_bytes(b"my notes, not a database" * 100)
    before = text.read_bytes()
    with pytest.raises(UserError, match="not an events database"):
        EventStore(text)
    assert text.read_bytes() == before
    other = tmp_path / "other.sqlite"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE mine (x)")
    db.commit()
    db.close()
    before = other.read_bytes()
    with pytest.raises(UserError, match="something else"):
        EventStore(other)
    assert other.read_bytes() == before
    with pytest.raises(UserError, match="no events database"):
        EventStore(tmp_path / "absent.sqlite", create=False)


def test_retention_removes_old_rows_and_only_our_crops(tmp_path):
    path, crops = tmp_path / "e.sqlite", tmp_path / "crops"
    crops.mkdir()
    ours = crops / f"{CROP_PREFIX}old.jpg"
    ours.write_bytes(b"x" * 10)
    theirs = crops / "holiday.jpg"  # a user's photo in the same folder: never touched
    theirs.write_bytes(b"y" * 10)
    store = EventStore(path)
    now = time.time()
    store.add(
        [item(now - 400 * 86400, crop=str(ours)), item(now - 400 * 86400, crop=str(theirs))],
        [10, 10],
    )
    store.add([item(now - 10 * 86400)])
    store.close()
    writer = EventWriter(path, keep_days=365, crops=crops)  # prunes when it starts
    wait_until(lambda: EventStore(path).count() == 1, what="the old rows to go")
    writer.close()
    assert [e.time for e in EventStore(path).events()] == [now - 10 * 86400]  # within 365 days
    assert not ours.exists() and theirs.exists()


def test_the_crop_folder_is_capped_oldest_first(tmp_path):
    path, crops = tmp_path / "e.sqlite", tmp_path / "crops"
    writer = EventWriter(path, crops=crops, crops_max_bytes=20_000)
    rng = np.random.default_rng(0)
    for i in range(12):  # noisy crops: a few KB each as JPEG
        writer.put([item(1000.0 + i)], [rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)])
    writer.close()
    store = EventStore(path)
    rows = store.events()
    kept = [e for e in rows if e.crop]
    files = sorted(crops.glob(f"{CROP_PREFIX}*.jpg"))
    assert len(rows) == 12  # the rows stay; only their crops go
    assert 0 < len(kept) < 12 and {str(f) for f in files} == {e.crop for e in kept}
    assert sum(f.stat().st_size for f in files) <= 20_000
    # oldest first: the crops kept are the newest ones, none older left between
    assert [e.time for e in kept] == [1000.0 + i for i in range(12 - len(kept), 12)]


def test_a_full_queue_drops_and_counts_instead_of_waiting(tmp_path, monkeypatch):
    writing, release = threading.Event(), threading.Event()
    original = EventWriter._write

    def slow_write(self, store, batches):
        writing.set()
        release.wait(10)
        original(self, store, batches)

    monkeypatch.setattr(EventWriter, "_write", slow_write)
    writer = EventWriter(tmp_path / "e.sqlite", queue_size=2)
    assert writer.put([item(0.0)])
    assert writing.wait(10)  # the writer took the first batch and is stuck writing it
    start = time.perf_counter()
    results = [writer.put([item(float(i))]) for i in range(1, 6)]
    assert time.perf_counter() - start < 0.1  # never waits
    assert results == [True, True, False, False, False]  # room for 2, then dropped
    assert writer.dropped == 3
    release.set()
    writer.close()
    assert [e.time for e in EventStore(tmp_path / "e.sqlite").events()] == [0.0, 1.0, 2.0]


def _result(counted, regions, index=0):
    frame = Frame(index, 0.0, np.zeros((100, 100, 3), np.uint8), position_s=1.5)
    return FrameResult(frame, list(regions), counted=tuple(counted), counted_regions=tuple(regions))


def test_frame_events_carry_both_stages_box_item_and_bin():
    s1, s2 = StageResult("recyclable", 0.97, (0.03, 0.97)), StageResult("glass", 0.8, ())
    region = RegionResult(
        (10, 20, 30, 40), CascadeResult("glass", 0.8, s1, s2, Bin.RECYCLABLE), RegionKind.ITEM, 5
    )
    (event,) = frame_events(
        _result(["glass"], [region]),
        site="s",
        source="cam",
        model_version="m",
        profile_version="p",
        outbox=True,
        now=123.0,
    )
    assert (event.stage1_label, event.stage1_score) == ("recyclable", 0.97)
    assert (event.stage2_label, event.stage2_score) == ("glass", 0.8)
    assert event.box == (10, 20, 30, 40) and event.item_id == 5 and event.bin == "recyclable"
    assert event.position_s == 1.5 and event.sent == 0 and event.profile_version == "p"
    payload = event.as_dict()
    assert json.loads(json.dumps(payload))["stage2"] == {"label": "glass", "score": 0.8}


def test_the_sink_writes_only_frames_that_counted(tmp_path):
    writer = EventWriter(tmp_path / "e.sqlite", crops=tmp_path / "c")
    sink = EventSink(writer, site="s", source="cam")
    s1 = StageResult("organic", 0.9, (0.9, 0.1))
    region = RegionResult((0, 0, 50, 50), CascadeResult("organic", 0.9, s1, None, Bin.ORGANIC))
    for i in range(50):
        sink.write(_result([], [region], i), np.zeros((1, 1, 3), np.uint8))
    sink.write(_result(["organic"], [region], 50), np.zeros((1, 1, 3), np.uint8))
    sink.close()
    (event,) = EventStore(tmp_path / "e.sqlite").events()
    assert event.label == "organic" and event.crop and Path(event.crop).is_file()


def test_annotate_writes_one_row_per_counted_item(tmp_path, capsys):
    """The counting clip's first 11 s: the rows are the summary's tally, with the clip's
    positions, the boxes and the model version."""
    db = tmp_path / "events.sqlite"
    args = ["annotate", str(CLIP), "-o", str(tmp_path / "o.mp4"), "--max-frames", "330"]
    assert main([*args, "--events", str(db), "--site", "test-kiosk"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rows = EventStore(db).events()
    assert sorted(e.label for e in rows) == sorted(
        label for label, n in summary["tally"].items() for _ in range(n)
    )
    assert len(rows) == summary["items_total"] == 2
    assert {e.site for e in rows} == {"test-kiosk"} and {e.source for e in rows} == {str(CLIP)}
    assert [e.item_id for e in rows] == [i["id"] for i in summary["items"]]
    assert [e.box for e in rows] == [tuple(i["box"]) for i in summary["items"]]
    for e, counted in zip(rows, summary["items"], strict=True):  # counted while in view
        assert counted["first_s"] <= e.position_s <= counted["last_s"], (e, counted)
    assert {e.model_version for e in rows} == {load_manifest(ROOT / "models").fingerprint()}
    assert all(e.sent is None for e in rows)  # no broker: not in the outbox
    assert rows[0].position_s < rows[1].position_s


@pytest.mark.slow
def test_annotate_rows_equal_the_tally_on_the_whole_clip(tmp_path, capsys):
    db = tmp_path / "events.sqlite"
    assert main(["annotate", str(CLIP), "-o", str(tmp_path / "o.mp4"), "--events", str(db)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    counts: dict[str, int] = {}
    for e in EventStore(db).events():
        counts[e.label] = counts.get(e.label, 0) + 1
    assert counts == summary["tally"] and sum(counts.values()) == 7


def test_no_events_keeps_none_and_the_data_folder_is_the_default(tmp_path, monkeypatch):
    monkeypatch.setenv("WASTE_VISION_DATA_DIR", str(tmp_path / "data"))
    args = ["annotate", str(CLIP), "-o", str(tmp_path / "o.mp4"), "--max-frames", "5"]
    assert main([*args, "--no-events"]) == 0
    assert not (tmp_path / "data").exists()
    assert main([*args, "--overwrite"]) == 0
    assert (tmp_path / "data" / "events.sqlite").is_file()


def test_events_that_is_the_input_or_the_video_is_refused(tmp_path, capsys):
    out = tmp_path / "o.mp4"
    assert main(["annotate", str(CLIP), "-o", str(out), "--events", str(CLIP)]) == 2
    assert "--events" in capsys.readouterr().err
    assert main(["annotate", str(CLIP), "-o", str(out), "--events", str(out)]) == 2


def test_kill_9_keeps_every_committed_event(tmp_path):
    """A real ``waste-vision annotate`` killed with SIGKILL once a reader sees two committed
    items: the file opens, is intact, and holds at least those."""
    db = tmp_path / "events.sqlite"
    env = {**os.environ, "WASTE_VISION_DATA_DIR": str(tmp_path / "data")}
    cmd = [sys.executable, "-m", "waste_vision", "annotate", str(CLIP), "-o"]
    proc = subprocess.Popen(
        [*cmd, str(tmp_path / "o.mp4"), "--events", str(db)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    seen = 0

    def committed() -> int:
        nonlocal seen
        if not db.exists():
            return 0
        try:
            store = EventStore(db, create=False, readonly=True)
            seen = store.count()
            store.close()
        except (UserError, sqlite3.Error):
            pass
        return seen

    try:
        wait_until(lambda: committed() >= 2 or proc.poll() is not None, 120, "two events")
        assert proc.poll() is None, "annotate ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    store = EventStore(db)
    assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert store.count() >= seen >= 2


def test_the_window_writes_events_too(tmp_path):
    """A real ``waste-vision app`` on the counting clip for 12 s: its first two items."""
    db = tmp_path / "app.sqlite"
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "WASTE_VISION_DATA_DIR": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),  # the window's settings: not the user's
    }
    cmd = [sys.executable, "-m", "waste_vision", "app", "--source", str(CLIP)]
    subprocess.run(
        [*cmd, "--exit-after", "12", "--events", str(db), "--site", "window"],
        env=env,
        check=True,
        timeout=120,
        capture_output=True,
    )
    rows = EventStore(db).events()
    assert [e.label for e in rows] == ["organic", "glass"]
    assert {e.site for e in rows} == {"window"} and all(e.source for e in rows)
