"""The tally as the window offers it: counts shown in the panel, reset (with undo) and export.

Items are counted in the pipeline (once per item, ``FrameClassifier``); this only adds what
each frame counted and keeps the panel and the actions in step.

The panel shows one period (``TallyPeriod``): this session (the in-memory ``Tally``, the
default), today or this week (local time), the last two read from the events database
(``EventsReader``, off the GUI thread) when shown, when the writer commits an item or a
correction, and every ``REFRESH_MS``. With events off (``--no-events``) only this session
can be chosen. "Export tally…" writes the period shown.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QFileDialog

from waste_vision.app.history import EVENTS_OFF, EventsReader
from waste_vision.engine.events import EventStore, Period
from waste_vision.engine.tally import Tally

if TYPE_CHECKING:  # the window makes this controller and hands itself in
    from waste_vision.app.window import MainWindow

REFRESH_MS = 10_000  # "today" and "this week" read again this often (and on each commit)
EXPORT_WAIT_S = 5.0  # an export reads the database afresh; a user action, so it may wait


class TallyPeriod(Enum):
    """What the tally panel counts."""

    SESSION = "this session"
    TODAY = "today"
    WEEK = "this week"

    @property
    def title(self) -> str:
        return f"Items seen {self.value}"


def period_range(period: TallyPeriod, now: float) -> tuple[float, float]:
    """``[start, end)`` of today or this week (from Monday) around ``now``, local time."""
    start = datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0, microsecond=0)
    days = 1
    if period is TallyPeriod.WEEK:
        start -= timedelta(days=start.weekday())
        days = 7
    elif period is not TallyPeriod.TODAY:
        raise ValueError(f"{period} is not kept in the events database")
    return start.timestamp(), (start + timedelta(days=days)).timestamp()


def period_counts(store: EventStore, period: TallyPeriod, now: float) -> dict[str, int]:
    """Items per label counted in the period around ``now``, corrections applied (as
    ``waste-vision stats``): read in the events reader's thread."""
    since, until = period_range(period, now)
    by = Period.DAY if period is TallyPeriod.TODAY else Period.WEEK
    counts: dict[str, int] = {}
    for total in store.totals(by, since, until):
        counts[total.label] = counts.get(total.label, 0) + total.count
    return counts


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t).astimezone().isoformat(timespec="seconds")


class TallyControls(QObject):
    def __init__(self, window: MainWindow, labels: list[str]):
        super().__init__(window)
        self.window = window
        self.tally = Tally(labels)
        self._before_reset: dict = {}
        self.period = TallyPeriod.SESSION
        self.period_counts: dict[str, int] = {}  # the period's last read (not the session)
        self.reader = EventsReader(window)
        self.reader.committed.connect(self.refresh)
        self._asked = 0  # the newest read asked for: older answers are dropped
        combo = window.panel.tally_period
        for period in TallyPeriod:
            combo.addItem(period.value, period)
        combo.currentIndexChanged.connect(lambda i: self.set_period(list(TallyPeriod)[i]))
        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self._tick)
        self._timer.start()
        # app/main.py opens the events database once the window exists: look then
        QTimer.singleShot(0, self.update_choices)

    @property
    def events_on(self) -> bool:
        return self.reader.writer is not None

    def update_choices(self) -> None:
        """Today and this week only with an events database; else disabled, saying why."""
        combo = self.window.panel.tally_period
        on = self.events_on
        model: Any = combo.model()  # a QStandardItemModel: its items can be disabled
        for i, period in enumerate(TallyPeriod):
            if period is TallyPeriod.SESSION:
                continue
            item = model.item(i)
            item.setEnabled(on)
            item.setToolTip("" if on else EVENTS_OFF)
        combo.setToolTip(
            "Count this session (since the window opened or the last reset), today or this "
            "week (from the events database)"
            if on
            else f"This session only: {EVENTS_OFF[0].lower()}{EVENTS_OFF[1:]}"
        )
        if not on and self.period is not TallyPeriod.SESSION:
            self.set_period(TallyPeriod.SESSION)

    def set_period(self, period: TallyPeriod) -> None:
        if period is not TallyPeriod.SESSION and not self.events_on:
            self.window.show_status(EVENTS_OFF, 5000)
            period = TallyPeriod.SESSION
        self.period = period
        combo = self.window.panel.tally_period
        if combo.currentIndex() != list(TallyPeriod).index(period):
            combo.blockSignals(True)
            combo.setCurrentIndex(list(TallyPeriod).index(period))
            combo.blockSignals(False)
        self.window.panel.set_tally_title(period.title)
        session = period is TallyPeriod.SESSION
        act = getattr(self.window, "act", None)
        if act is not None:  # reset and undo are the session's
            self.window.set_action_enabled(act.reset_tally, session)
            self.window.set_action_enabled(
                act.undo_reset_tally, session and bool(self._before_reset)
            )
        if session:
            self._show()
        else:
            self.period_counts = {}
            self._show_counts({})
            self.refresh()

    def _tick(self) -> None:
        self.update_choices()
        self.refresh()

    def refresh(self) -> None:
        """Read the period shown again (nothing for this session: it is in memory)."""
        if self.period is TallyPeriod.SESSION or not self.events_on:
            return
        self._asked += 1
        asked, period = self._asked, self.period
        self.reader.call(
            lambda store: period_counts(store, period, time.time()),
            lambda counts, error: self._got(asked, period, counts, error),
        )

    def _got(
        self,
        asked: int,
        period: TallyPeriod,
        counts: dict[str, int] | None,
        error: BaseException | None,
    ) -> None:
        if asked != self._asked or period is not self.period:
            return  # a newer read is on its way
        if error is not None or counts is None:
            self.window.show_status(f"Tally not read from the events database: {error}", 10000)
            return
        self.period_counts = counts
        self._show_counts(counts)

    def add(self, counted) -> None:
        """What one frame counted (often nothing)."""
        if self.tally.add(counted) and self.period is TallyPeriod.SESSION:
            self._show()

    def reset(self) -> None:
        self._before_reset = dict(self.tally.counts)
        self.tally.reset()
        self._show()
        self.window.set_action_enabled(self.window.act.undo_reset_tally, bool(self._before_reset))
        self.window.show_status("Tally reset (Ctrl+Z brings the counts back)", 10000)

    def undo_reset(self) -> None:
        """The counts from before the last reset, plus anything counted since."""
        for label, n in self._before_reset.items():
            self.tally.counts[label] += n
        self._before_reset = {}
        self.window.set_action_enabled(self.window.act.undo_reset_tally, False)
        self._show()

    def export(self) -> None:
        period = self.period
        slug = "" if period is TallyPeriod.SESSION else f"{period.name.lower()}-"
        suggested = (
            self.window.settings.recording_folder
            / f"waste-vision-tally-{slug}{time.strftime('%Y%m%d-%H%M%S')}.csv"
        )
        path, _ = QFileDialog.getSaveFileName(
            self.window, "Export tally", str(suggested), "CSV files (*.csv)"
        )
        if not path:
            return
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            if period is TallyPeriod.SESSION:
                self.tally.export_csv(Path(path))  # class,count: as it always was
            else:
                self._export_period(Path(path), period)
        except OSError as exc:
            self.window.show_problem(
                "Tally not exported",
                f"cannot write {path} ({exc.strerror or exc}); choose another file or folder",
            )
            return
        except Exception as exc:  # the database could not be read: nothing written
            self.window.show_problem("Tally not exported", str(exc))
            return
        self.window.show_status(f"Tally saved to {path}", 10000)

    def _export_period(self, path: Path, period: TallyPeriod) -> None:
        """``class,count,period,from,to``: every class, counted from the database now
        (``from`` the period's start, ``to`` the moment read; local time with its offset)."""
        now = time.time()
        counts = self.reader.submit(lambda store: period_counts(store, period, now)).result(
            timeout=EXPORT_WAIT_S
        )
        since, _ = period_range(period, now)
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["class", "count", "period", "from", "to"])
            for label, n in self._rows(counts):
                writer.writerow([label, n, period.value, _iso(since), _iso(now)])

    def _rows(self, counts: Mapping[str, int]) -> list[tuple[str, int]]:
        """Every known class (zeros included), then any other label seen or shown before."""
        known = self.tally.classes
        shown = self.window.panel.tally_counts
        extra = sorted((set(counts) | set(shown)) - set(known))
        return [(c, counts.get(c, 0)) for c in known + extra]

    def _show_counts(self, counts: Mapping[str, int]) -> None:
        self.window.panel.show_tally(self._rows(counts), sum(counts.values()))

    def _show(self) -> None:
        if self.period is TallyPeriod.SESSION:
            self._show_counts(self.tally.counts)
        else:
            self._show_counts(self.period_counts)
