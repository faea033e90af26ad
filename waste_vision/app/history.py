"""The window and the events database: a reader off the GUI thread, and the item history.

``EventsReader`` runs every query of the window (the tally's "today" and "this week", the
history) in one worker thread, on a read-only connection of its own; results come back to
the GUI thread as a signal, so a slow disk never stalls the picture. ``committed`` says the
events writer has committed rows (an item counted, a correction), so what shows follows.

``HistoryDock`` (View > Item history, Ctrl+H) lists the newest counted items first: time,
label with its class colour, confidence, and the crop photo where one was saved
(``--save-crops``). "Wrong label…" records a correction event (``EventStore.correction``
through the writer: the history and the totals use it from then on) and, with a photo,
can teach it to the site profile (``TeachControls.teach``). Staff-only at a kiosk: the
action is not public, and locking the kiosk hides the dock.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QObject, QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDockWidget,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from waste_vision.engine.annotators import colour_for
from waste_vision.engine.events import Event, EventStore, EventWriter
from waste_vision.errors import UserError
from waste_vision.images import ImageReadError, read_rgb
from waste_vision.labels import Bin, base_bin

if TYPE_CHECKING:
    from waste_vision.app.window import MainWindow

log = logging.getLogger(__name__)

HISTORY_ROWS = 200  # the newest items listed
THUMB = 56  # thumbnail side, pixels
EVENTS_OFF = "Events are off (--no-events): nothing is kept to show"
NO_PHOTO = "No photo of this item: start the app with --save-crops to keep one"


class EventsReader(QObject):
    """The window's queries, in one worker thread on a read-only connection of its own."""

    committed = Signal()  # the writer committed rows (its thread; delivered in the GUI's)
    _answered = Signal(int, object, object)  # token, result, error

    def __init__(self, window: MainWindow):
        super().__init__(window)
        self.window = window
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="events reader")
        self._store: EventStore | None = None  # used in the worker thread only
        self._hooked: EventWriter | None = None
        self._callbacks: dict[int, Callable[[Any, BaseException | None], None]] = {}
        self._tokens = itertools.count()
        self._answered.connect(self._deliver)

    @property
    def writer(self) -> EventWriter | None:
        """The window's events writer (``--no-events``: None); opened by ``app/main.py``
        after the window, so looked up each time."""
        fleet = self.window.session.fleet
        writer = None if fleet is None else fleet.writer
        if writer is not None and writer is not self._hooked:
            writer.on_commit.append(self._on_commit)
            self._hooked = writer
        return writer

    def _on_commit(self, ids: list[int]) -> None:  # the writer's thread
        with contextlib.suppress(RuntimeError):  # the window already gone
            self.committed.emit()

    def submit(self, work: Callable[[EventStore], Any]) -> Future:
        """``work(store)`` in the worker thread; its future (UserError with events off)."""
        writer = self.writer
        if writer is None:
            failed: Future = Future()
            failed.set_exception(UserError(EVENTS_OFF))
            return failed
        path = writer.path
        return self._pool.submit(self._run, path, work)

    def call(
        self, work: Callable[[EventStore], Any], done: Callable[[Any, BaseException | None], None]
    ) -> Future:
        """``work(store)`` in the worker thread, then ``done(result, error)`` in the GUI's."""
        token = next(self._tokens)
        self._callbacks[token] = done
        future = self.submit(work)
        future.add_done_callback(lambda f: self._answer(token, f))
        return future

    def _answer(self, token: int, future: Future) -> None:
        error = future.exception()
        with contextlib.suppress(RuntimeError):  # the window already gone
            self._answered.emit(token, None if error else future.result(), error)

    def _deliver(self, token: int, result: Any, error: BaseException | None) -> None:
        done = self._callbacks.pop(token, None)
        if done is not None:
            done(result, error)

    def _run(self, path: Path, work: Callable[[EventStore], Any]) -> Any:
        if self._store is None or self._store.path != path:
            if self._store is not None:
                self._store.close()
            self._store = EventStore(path, create=False, readonly=True)
        try:
            return work(self._store)
        finally:
            # Python's sqlite3 opens a transaction for the temp tables of totals(): end it,
            # or this connection would keep reading the snapshot it started with
            if self._store.db.in_transaction:
                self._store.db.rollback()

    def close(self) -> None:
        def shut() -> None:
            if self._store is not None:
                self._store.close()
                self._store = None

        with contextlib.suppress(RuntimeError):  # closed already
            self._pool.submit(shut)
        self._pool.shutdown(wait=True)  # its answers are emitted from its thread


def _load_history(store: EventStore, cached: frozenset[int]) -> tuple[list[Event], dict]:
    """The worker's part: the newest items, and a thumbnail of each photo not yet shown
    (QImage, not QPixmap: made off the GUI thread)."""
    events = store.recent(HISTORY_ROWS)
    thumbs: dict[int, QImage] = {}
    for e in events:
        if e.id is None or e.id in cached or not e.crop:
            continue
        image = QImage(e.crop)
        if not image.isNull():
            thumbs[e.id] = image.scaled(
                THUMB,
                THUMB,
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
    return events, thumbs


def _when(t: float) -> str:
    local = datetime.fromtimestamp(t)
    if local.date() == datetime.now().date():
        return local.strftime("%H:%M:%S")
    return local.strftime("%a %d %b %H:%M")


def _swatch(label: str) -> QIcon:
    pixmap = QPixmap(14, 14)
    pixmap.fill(QColor(*colour_for(label)))
    return QIcon(pixmap)


class WrongLabelDialog(QDialog):
    """What the item really is (the base classes and the site's), and whether to teach it."""

    def __init__(
        self, parent: QWidget, event: Event, classes: list[str], teach_why_not: str | None
    ):
        super().__init__(parent)
        self.setWindowTitle("Wrong label")
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"Counted as {event.label}. It really is:"))
        self.classes = QComboBox()
        self.classes.addItems([c for c in classes if c != event.label])
        layout.addWidget(self.classes)
        self.teach = QCheckBox("Also teach it to the site profile")
        self.teach.setEnabled(teach_why_not is None)
        self.teach.setToolTip(
            teach_why_not
            or "Adds this item's photo to the site profile: the classifier "
            "learns it from the next frame on"
        )
        layout.addWidget(self.teach)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def choice(self) -> tuple[str, bool]:
        return self.classes.currentText(), self.teach.isChecked()


class HistoryDock(QDockWidget):
    """The newest counted items, newest first; "Wrong label…" corrects the selected one."""

    corrected = Signal(int, int)  # item id, correction id (once committed)

    def __init__(self, window: MainWindow):
        super().__init__("Item history", window)
        self.setObjectName("history")
        self.main = window  # not ``window``: QWidget.window() is Qt's
        self.reader = window.tally_controls.reader
        self.events: list[Event] = []
        self._thumbs: dict[int, QPixmap] = {}
        self._pending = False  # a load in flight (one at a time)
        self._again = False  # something changed meanwhile: load again when it answers
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(6, 4, 6, 6)
        self.note = QLabel()
        self.note.setWordWrap(True)
        layout.addWidget(self.note)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Time", "Label", "Confidence", "Photo"])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setIconSize(QSize(THUMB, THUMB))
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(THUMB + 4)
        header = self.table.horizontalHeader()
        for column in range(3):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        layout.addWidget(self.table, 1)
        buttons = QHBoxLayout()
        self.wrong_button = QPushButton("Wrong label…")
        self.wrong_button.setToolTip("Correct the selected item's label (kept as a correction)")
        self.wrong_button.setEnabled(False)
        self.wrong_button.clicked.connect(self.mark_wrong)
        buttons.addWidget(self.wrong_button)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        self.setWidget(body)
        self.setMinimumHeight(220)
        self.reader.committed.connect(self.refresh)
        self.visibilityChanged.connect(self._visibility_changed)
        window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self)
        self.hide()

    # -- showing -------------------------------------------------------------------------------

    def set_shown(self, shown: bool) -> None:
        """The View menu's "Item history" (Ctrl+H)."""
        self.setVisible(shown)
        if shown:
            self.raise_()

    def _visibility_changed(self, visible: bool) -> None:
        act = getattr(self.main, "act", None)
        if act is not None:
            act.history.setChecked(self.isVisible())
        if visible:
            self.refresh()

    def refresh(self) -> None:
        """Load the newest items again (in the reader's thread); only while shown."""
        if not self.isVisible():
            return
        if self.reader.writer is None:
            self.note.setText(EVENTS_OFF)
            self.note.setVisible(True)
            return
        if self._pending:
            self._again = True
            return
        self._pending = True
        cached = frozenset(self._thumbs)
        self.reader.call(lambda store: _load_history(store, cached), self._loaded)

    def _loaded(self, result: Any, error: BaseException | None) -> None:
        self._pending = False
        if error is not None:
            self.note.setText(f"Cannot read the events database: {error}")
            self.note.setVisible(True)
        else:
            events, thumbs = result
            for event_id, image in thumbs.items():  # pixmaps in the GUI thread only
                self._thumbs[event_id] = QPixmap.fromImage(image)
            self._fill(events)
        if self._again:
            self._again = False
            self.refresh()

    def _fill(self, events: list[Event]) -> None:
        selected = self.selected_event()
        self.events = events
        self.note.setText(
            "" if events else "No items counted yet: the history fills as items are counted"
        )
        self.note.setVisible(not events)
        self.table.setRowCount(len(events))
        for row, e in enumerate(events):
            when = QTableWidgetItem(_when(e.time))
            when.setData(Qt.ItemDataRole.UserRole, e.id)
            when.setToolTip(datetime.fromtimestamp(e.time).astimezone().isoformat(" ", "seconds"))
            label = QTableWidgetItem(_swatch(e.label), e.label)
            if e.corrects is not None:
                label.setText(f"{e.label} (corrected)")
                label.setToolTip(f"corrected by event {e.corrects}")
            score = QTableWidgetItem("—" if e.score is None else f"{e.score:.0%}")
            score.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            thumb = self._thumbs.get(e.id) if e.id is not None else None
            photo = QTableWidgetItem("" if thumb is not None else "no photo")
            if thumb is not None:
                photo.setIcon(QIcon(thumb))
            for column, item in enumerate((when, label, score, photo)):
                self.table.setItem(row, column, item)
        if selected is not None:
            for row, e in enumerate(events):
                if e.id == selected.id:
                    self.table.selectRow(row)
        keep = {e.id for e in events}
        self._thumbs = {k: v for k, v in self._thumbs.items() if k in keep}
        self._selection_changed()

    def selected_event(self) -> Event | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows or rows[0].row() >= len(self.events):
            return None
        return self.events[rows[0].row()]

    def _selection_changed(self) -> None:
        self.wrong_button.setEnabled(self.selected_event() is not None)

    # -- correcting ---------------------------------------------------------------------------

    def mark_wrong(self) -> None:
        """Ask the right class for the selected item, then record it (and teach it)."""
        event = self.selected_event()
        if event is None:
            return
        teach = self.main.teach_controls
        why_not = None
        if not event.crop or not Path(event.crop).is_file():
            why_not = NO_PHOTO
        elif teach.profile is None:
            why_not = teach.last_error or "no site profile"
        dialog = WrongLabelDialog(self, event, teach.classes(), why_not)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        label, also_teach = dialog.choice()
        if label:
            self.correct(event, label, teach=also_teach and why_not is None)

    def bin_for(self, label: str) -> Bin | None:
        """A class's bin: the site profile's for a class it taught, else the base rule."""
        profile = self.main.teach_controls.profile
        taught = None if profile is None else profile.classes.get(label)
        return Bin(taught) if taught is not None else base_bin(label)

    def correct(self, event: Event, label: str, *, teach: bool = False) -> Future:
        """Write the correction of ``event`` (the reader's thread waits for the writer's
        commit); then, with ``teach``, add its photo to the site profile. The future: the
        correction's id and the photo read for teaching (None without)."""
        assert event.id is not None
        item_id = event.id
        bin_ = self.bin_for(label)
        writer = self.reader.writer

        def work(store: EventStore) -> tuple[int, np.ndarray | None]:
            assert writer is not None
            fix = store.correction(item_id, label, None if bin_ is None else str(bin_), time.time())
            correction_id = writer.submit(fix).result(timeout=10)
            crop = None
            if teach and event.crop:
                try:
                    crop = read_rgb(Path(event.crop))
                except ImageReadError as exc:  # corrected all the same; nothing to teach
                    log.warning("not taught: the item's photo cannot be read (%s)", exc)
            return correction_id, crop

        def done(result: Any, error: BaseException | None) -> None:
            if error is not None:
                self.main.show_problem("Correction not kept", str(error))
                return
            correction_id, crop = result
            self.main.show_status(f"Corrected: that {event.label} is {label}", 5000)
            self.corrected.emit(item_id, correction_id)
            if crop is not None:
                self.main.teach_controls.teach(label, crop)

        return self.reader.call(work, done)
