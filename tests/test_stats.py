"""``waste-vision stats``: totals per hour, day or week as a table, CSV or JSON; bad input is
one line and exit 2; the database is only read."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime

import pytest

from waste_vision.commands.cli import main
from waste_vision.commands.stats import PERIODS, parse_when
from waste_vision.engine.events import Event, EventKind, EventStore, Period
from waste_vision.errors import UserError


def local(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "events.sqlite"
    store = EventStore(path)
    rows = [
        ("2026-05-04T09:10", "glass", "recyclable", "lobby"),
        ("2026-05-04T09:50", "organic", "organic", "lobby"),
        ("2026-05-04T17:00", "glass", "recyclable", "canteen"),
        ("2026-05-06T12:00", "battery", "hazardous", "lobby"),
        ("2026-05-12T08:00", "paper", "recyclable", "lobby"),
    ]
    store.add([Event(EventKind.ITEM, local(t), s, "0", lab, b) for t, lab, b, s in rows])
    store.close()
    return path


def run(capsys, *args) -> tuple[int, str, str]:
    code = main(["stats", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_periods_match_the_engine():
    assert tuple(str(p) for p in Period) == PERIODS


def test_table_by_day_has_a_column_per_label_and_bin(db, capsys):
    code, out, _ = run(capsys, "--events", db)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == [
        "period",
        "battery",
        "glass",
        "organic",
        "paper",
        "[hazardous]",
        "[organic]",
        "[recyclable]",
        "total",
    ]
    # a row per day with an item, then the whole range: the fixture's five items
    assert [line.split() for line in lines[1:]] == [
        ["2026-05-04", "0", "2", "1", "0", "0", "1", "2", "3"],
        ["2026-05-06", "1", "0", "0", "0", "1", "0", "0", "1"],
        ["2026-05-12", "0", "0", "0", "1", "0", "0", "1", "1"],
        ["all", "1", "2", "1", "1", "1", "1", "3", "5"],
    ]


def test_csv_by_week_and_json_by_hour_with_a_range_and_site(db, capsys):
    code, out, _ = run(capsys, "--events", db, "--by", "week", "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    week = {(r["period"], r["label"]): int(r["count"]) for r in rows}
    assert week == {
        ("2026-05-04", "battery"): 1,
        ("2026-05-04", "glass"): 2,
        ("2026-05-04", "organic"): 1,
        ("2026-05-11", "paper"): 1,
    }
    bins = {"battery": "hazardous", "glass": "recyclable", "organic": "organic"}
    assert {r["label"]: r["bin"] for r in rows} == {**bins, "paper": "recyclable"}
    code, out, _ = run(
        capsys,
        *("--events", db, "--by", "hour", "--format", "json", "--site", "lobby"),
        *("--since", "2026-05-04", "--until", "2026-05-04"),
    )
    data = json.loads(out)
    assert data["by"] == "hour" and data["site"] == "lobby"
    assert [(t["period"], t["label"], t["count"]) for t in data["totals"]] == [
        ("2026-05-04 09:00", "glass", 1),
        ("2026-05-04 09:00", "organic", 1),
    ]


def test_the_database_is_only_read(db, capsys):
    before = db.read_bytes()
    assert run(capsys, "--events", db, "--format", "json")[0] == 0
    assert db.read_bytes() == before


def test_an_empty_range_says_so(db, capsys):
    code, out, _ = run(capsys, "--events", db, "--since", "2030-01-01")
    assert code == 0 and out.strip() == "no items counted in that range"


def test_when_forms():
    now = local("2026-05-04T12:00")
    assert parse_when("7d", "--since", now=now) == now - 7 * 86400
    assert parse_when("12h", "--since", now=now) == now - 12 * 3600
    assert parse_when("today", "--since", now=now) == local("2026-05-04")
    assert parse_when("today", "--until", end=True, now=now) == local("2026-05-05")
    assert parse_when("2026-05-04", "--until", end=True) == local("2026-05-05")
    assert parse_when("2026-05-04T13:30", "--until", end=True) == local("2026-05-04T13:30")
    with pytest.raises(UserError, match="--since 'yesterday-ish'"):
        parse_when("yesterday-ish", "--since")


@pytest.mark.parametrize(
    "args, words",
    [
        (("--since", "soon"), "--since 'soon'"),
        (("--since", "2026-05-05", "--until", "2026-05-01"), "--until is not after --since"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(db, capsys, args, words):
    code, _, err = run(capsys, "--events", db, *args)
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1


def test_a_missing_database_or_another_file_is_one_line(tmp_path, capsys):
    code, _, err = run(capsys, "--events", tmp_path / "none.sqlite")
    assert code == 2
    assert err.splitlines() == [
        f"waste-vision: error: no events database at {tmp_path / 'none.sqlite'}; run "
        "'waste-vision annotate' or the app first (they write one), or give another with --events"
    ]
    other = tmp_path / "notes.txt"
    other.write_text("mine")
    code, _, err = run(capsys, "--events", other)
    assert code == 2 and other.read_text() == "mine"
    assert err.splitlines() == [
        f"waste-vision: error: --events {other}: not an events database (file is not a "
        "database); give another file name"
    ]


def test_the_default_database_is_in_the_data_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WASTE_VISION_DATA_DIR", str(tmp_path))
    store = EventStore(tmp_path / "events.sqlite")
    store.add([Event(EventKind.ITEM, local("2026-05-04T10:00"), "s", "0", "metal", "recyclable")])
    store.close()
    code, out, _ = run(capsys, "--format", "csv")
    assert code == 0
    assert out.splitlines() == ["period,label,bin,count", "2026-05-04,metal,recyclable,1"]
