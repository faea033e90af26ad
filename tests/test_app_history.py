"""The window and the events database: the tally's "today" and "this week" are the
database's, "this session" is the in-memory tally, the export writes the period shown, the
item history lists the newest item first and a wrong label becomes a correction event; a
kiosk's public mode cannot open the history."""

from __future__ import annotations

import csv
import os
import sqlite3
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QDialog

from tests.conftest import ROOT
from tests.test_app import (  # noqa: F401  (fixtures)
    cascade,
    dialogs,
    make_window,
    settings,
    wait_frames,
)
from waste_vision.app import history as history_module
from waste_vision.app import tally_controls as tally_module
from waste_vision.app.history import EVENTS_OFF, WrongLabelDialog
from waste_vision.app.tally_controls import TallyPeriod
from waste_vision.app.window import apply_theme
from waste_vision.engine.events import Event, EventKind, EventStore
from waste_vision.engine.fleet import FleetOptions, FleetOutputs
from waste_vision.model.profile import SiteProfile

CLIP = ROOT / "assets" / "demo.mp4"  # items slid onto a table: the first two by ~11 s
SAMPLE = ROOT / "assets" / "samples" / "glass_trashnet_glass102.jpg"
UPDATE_DOCS = os.environ.get("WASTE_VISION_UPDATE_DOCS") == "1"  # rewrite the docs' screenshot


def with_events(window, cascade, db: Path, **options) -> None:
    """What ``app/main.py`` does after making the window: the events database opened."""
    fleet = FleetOptions(events=db, site="test", **options)
    window.session.fleet = FleetOutputs().open(cascade, "", fleet)
    window.tally_controls.update_choices()


def local_range(period: TallyPeriod) -> tuple[float, float]:
    """Today / this week, local time, worked out here rather than by the window's code."""
    now = datetime.now()
    midnight = datetime(now.year, now.month, now.day)
    if period is TallyPeriod.TODAY:
        return midnight.timestamp(), (midnight + timedelta(days=1)).timestamp()
    monday = midnight - timedelta(days=now.weekday())
    return monday.timestamp(), (monday + timedelta(days=7)).timestamp()


def db_counts(db: Path, since: float, until: float) -> dict[str, int]:
    """Items per label in ``[since, until)``, straight from the file (no corrections here)."""
    with sqlite3.connect(db) as con:
        rows = con.execute(
            "SELECT label, COUNT(*) FROM events WHERE kind = 'item' AND time >= ? AND time < ? "
            "GROUP BY label",
            (since, until),
        ).fetchall()
    return dict(rows)


def shown(window) -> dict[str, int]:
    """The tally panel's non-zero counts."""
    counts = {name: int(label.text()) for name, label in window.panel.tally_counts.items()}
    return {name: n for name, n in counts.items() if n}


def item(t: float, label: str, crop: str | None = None) -> Event:
    return Event(
        kind=EventKind.ITEM, time=t, site="test", source="direct", label=label, bin=None,
        score=0.9, crop=crop,
    )  # fmt: skip


def test_today_and_this_week_come_from_the_database_and_the_session_from_the_tally(
    make_window, cascade, qtbot, tmp_path, monkeypatch
):
    app = QApplication.instance()
    palette = app.palette()
    if UPDATE_DOCS:
        apply_theme(app)  # the screenshot as the app shows it
    window = make_window(profile_dir=tmp_path / "site")
    db = tmp_path / "events.sqlite"
    with_events(window, cascade, db, save_crops=True)
    # items of other days, written before (annotate, an earlier run)
    today, _ = local_range(TallyPeriod.TODAY)
    EventStore(db).add([item(today - 40 * 86400, "metal"), item(today - 3600, "paper")])
    window.act.find_items.trigger()  # count items on the table (the clip's mode)
    window.open_source(str(CLIP))
    qtbot.waitUntil(lambda: window.tally.total >= 2, timeout=90_000)
    window.session.stop()
    qtbot.waitUntil(lambda: not window.session.active, timeout=10_000)
    qtbot.waitUntil(lambda: EventStore(db).count() >= window.tally.total, timeout=10_000)

    # this session: exactly the in-memory tally
    assert window.panel.tally_box.title() == "Items seen this session"
    assert shown(window) == {k: v for k, v in window.tally.counts.items() if v}
    combo = window.panel.tally_period
    for period in (TallyPeriod.TODAY, TallyPeriod.WEEK):
        combo.setCurrentIndex(list(TallyPeriod).index(period))
        assert window.panel.tally_box.title() == f"Items seen {period.value}"
        expected = db_counts(db, *local_range(period))
        qtbot.waitUntil(lambda e=expected: shown(window) == e, timeout=5000)
        assert window.panel.tally_total.text() == f"total {sum(expected.values())}"
        assert not window.act.reset_tally.isEnabled()  # a reset is the session's
    week_start, _ = local_range(TallyPeriod.WEEK)
    assert ("paper" in shown(window)) == (today - 3600 >= week_start)  # not on a Monday

    # the CSV of "today": the database's rows, with the period and its range
    combo.setCurrentIndex(list(TallyPeriod).index(TallyPeriod.TODAY))
    out = tmp_path / "today.csv"
    monkeypatch.setattr(tally_module.QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
    window.act.export_tally.trigger()
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["class", "count", "period", "from", "to"]
    exported = {r[0]: int(r[1]) for r in rows[1:] if int(r[1])}
    assert exported == db_counts(db, *local_range(TallyPeriod.TODAY))
    assert {r[2] for r in rows[1:]} == {"today"}
    assert {datetime.fromisoformat(r[3]).timestamp() for r in rows[1:]} == {today}
    assert all(time.time() - datetime.fromisoformat(r[4]).timestamp() < 60 for r in rows[1:])

    combo.setCurrentIndex(list(TallyPeriod).index(TallyPeriod.SESSION))
    assert shown(window) == {k: v for k, v in window.tally.counts.items() if v}
    assert window.act.reset_tally.isEnabled()

    # the history: the newest item first, its photo shown
    window.act.history.trigger()
    dock = window.history
    assert dock.isVisible() and window.act.history.isChecked()
    items = EventStore(db).events(EventKind.ITEM)
    qtbot.waitUntil(lambda: dock.table.rowCount() == len(items), timeout=5000)
    ids = [e.id for e in dock.events]
    assert ids == sorted((e.id for e in items), reverse=True)
    newest = max(items, key=lambda e: e.id or 0)
    assert dock.table.item(0, 1).text() == newest.label
    counted = [row for row, e in enumerate(dock.events) if e.crop]
    assert len(counted) == window.tally.total  # the clip's items have their photos
    assert all(not dock.table.item(row, 3).icon().isNull() for row in counted)
    # the screenshot in docs/fleet.md (WASTE_VISION_UPDATE_DOCS=1 rewrites it)
    combo.setCurrentIndex(list(TallyPeriod).index(TallyPeriod.TODAY))
    dock.table.selectRow(0)
    if UPDATE_DOCS:
        window.resize(1440, 1040)
    window.statusBar().clearMessage()  # no temporary path in the picture
    QTest.qWait(300)  # the last layout and paint
    shot = ROOT / "docs" / "history-window.png" if UPDATE_DOCS else tmp_path / "history.png"
    assert window.grab().save(str(shot))
    app.setPalette(palette)


def test_a_wrong_label_is_a_correction_naming_the_item_and_can_be_taught(
    make_window, cascade, qtbot, tmp_path, monkeypatch
):
    window = make_window(profile_dir=tmp_path / "site")
    db = tmp_path / "events.sqlite"
    with_events(window, cascade, db)
    now = time.time()
    EventStore(db).add(
        [item(now - 30, "plastic"), item(now - 20, "glass", str(SAMPLE)), item(now - 10, "paper")]
    )
    window.act.history.trigger()
    dock = window.history
    qtbot.waitUntil(lambda: dock.table.rowCount() == 3, timeout=5000)
    assert [e.label for e in dock.events] == ["paper", "glass", "plastic"]  # newest first
    assert [e.id for e in dock.events] == [3, 2, 1]
    assert not dock.wrong_button.isEnabled()
    dock.table.selectRow(1)  # the glass item, which has a photo
    assert dock.wrong_button.isEnabled()

    def answer(self) -> int:
        assert self.teach.isEnabled()  # a photo and a profile: it can be taught
        assert "glass" not in [self.classes.itemText(i) for i in range(self.classes.count())]
        self.classes.setCurrentText("metal")
        self.teach.setChecked(True)
        return QDialog.DialogCode.Accepted.value

    monkeypatch.setattr(WrongLabelDialog, "exec", answer)
    dock.wrong_button.click()
    qtbot.waitUntil(lambda: EventStore(db).count(EventKind.CORRECTION) == 1, timeout=5000)
    (fix,) = EventStore(db).events(EventKind.CORRECTION)
    assert (fix.corrects, fix.label, fix.bin) == (2, "metal", "recyclable")
    assert fix.site == "test" and fix.source == "direct"
    qtbot.waitUntil(lambda: dock.table.item(1, 1).text() == "metal (corrected)", timeout=5000)
    assert dock.events[1].id == 2  # still the glass item's row, now under its right label
    # taught: the photo is in the site profile as metal
    qtbot.waitUntil(lambda: window.cascade.profile is not None, timeout=20_000)
    assert SiteProfile.open(tmp_path / "site").counts() == {"metal": 1}
    # "today" counts it under the correction
    window.tally_controls.set_period(TallyPeriod.TODAY)
    qtbot.waitUntil(lambda: shown(window) == {"plastic": 1, "metal": 1, "paper": 1}, timeout=5000)

    # an item without a photo cannot be taught, and says why
    dock.table.selectRow(0)

    def no_photo(self) -> int:
        assert not self.teach.isEnabled() and "--save-crops" in self.teach.toolTip()
        return QDialog.DialogCode.Rejected.value

    monkeypatch.setattr(WrongLabelDialog, "exec", no_photo)
    dock.wrong_button.click()
    assert EventStore(db).count(EventKind.CORRECTION) == 1


def test_without_events_only_this_session_can_be_chosen(make_window, qtbot):
    window = make_window()  # no events database: as --no-events
    window.tally_controls.update_choices()
    combo = window.panel.tally_period
    model = combo.model()
    assert [combo.itemText(i) for i in range(combo.count())] == [p.value for p in TallyPeriod]
    assert model.item(0).isEnabled()
    for i in (1, 2):
        assert not model.item(i).isEnabled() and model.item(i).toolTip() == EVENTS_OFF
    window.tally_controls.set_period(TallyPeriod.TODAY)
    assert window.tally_controls.period is TallyPeriod.SESSION
    assert window.panel.tally_box.title() == "Items seen this session"
    window.act.history.trigger()
    assert window.history.note.text() == EVENTS_OFF


def test_a_kiosks_public_mode_cannot_open_the_history(
    make_window, cascade, qtbot, tmp_path, monkeypatch
):
    monkeypatch.setenv("WASTE_VISION_CONFIG_DIR", str(tmp_path / "config"))
    window = make_window(kiosk=True, profile_dir=tmp_path / "site")
    with_events(window, cascade, tmp_path / "events.sqlite")
    assert not window.act.history.isEnabled()
    window.act.history.trigger()
    QTest.keyClick(window, Qt.Key.Key_H, Qt.KeyboardModifier.ControlModifier)
    assert not window.history.isVisible()
    assert not window.panel.tally_period.isVisible()  # nor switch the tally
    # staff opened it, then locked the kiosk again: it goes
    window.set_public_locked(False)
    window.act.history.trigger()
    assert window.history.isVisible()
    window.set_public_locked(True)
    assert not window.history.isVisible() and not window.act.history.isEnabled()


@pytest.mark.parametrize("period", [TallyPeriod.TODAY, TallyPeriod.WEEK])
def test_period_ranges_are_local_days_and_weeks(period):
    since, until = tally_module.period_range(period, time.time())
    assert (since, until) == local_range(period)
    assert history_module.HISTORY_ROWS >= 100
