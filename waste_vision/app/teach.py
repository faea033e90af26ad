"""Teach mode: the operator tells the window what the item in view is, and the next frame
already uses it (a site profile, ``model/profile.py``).

"Teach this item…" (T) crops the largest region of the newest frame, asks "this is…" with the
known classes and "New class…", and adds the crop to the profile in a worker thread; the new
classifier replaces the cascade's in one assignment, so the GUI never waits on the model.
"Site profile…" lists the taught classes with thumbnails, removes a wrong photo, undoes the
last. In kiosk mode these actions are staff-only (kiosk.py disables every non-public action).
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
)

from waste_vision.errors import UserError
from waste_vision.labels import Bin
from waste_vision.model.profile import SiteProfile, base_labels, check_class_name

if TYPE_CHECKING:
    from waste_vision.app.window import MainWindow

log = logging.getLogger(__name__)
NEW_CLASS = "New class…"


def default_profile_dir() -> Path:
    """The window's own profile, in the user's data folder (``WASTE_VISION_DATA_DIR``)."""
    override = os.environ.get("WASTE_VISION_DATA_DIR")
    if override:
        return Path(override) / "profile"
    from platformdirs import user_data_dir

    return Path(user_data_dir("waste-vision", appauthor=False)) / "profile"


class TeachControls(QObject):
    """The Teach menu's slots. Profile writes and the classifier rebuild run in one worker
    thread, one after another; ``taught`` reports each in the GUI thread."""

    taught = Signal(str)  # a message for the status bar, once the next frame uses it

    def __init__(self, window: MainWindow, profile_dir: Path | None = None):
        super().__init__(window)
        self.window = window
        self.cascade = window.cascade
        self.profile_dir = Path(profile_dir or default_profile_dir())
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="teach")
        self.profile: SiteProfile | None = None
        self.last_error: str | None = None
        self.taught.connect(self._done)
        try:
            self.profile = SiteProfile.open(self.profile_dir, create=True)
            self.cascade.use_profile(self.profile.head(self.cascade))
        except UserError as exc:  # a broken profile never stops the window
            self.last_error = str(exc)
            log.warning("site profile not used: %s", exc)

    # --- the window's actions ------------------------------------------------------------
    def current_crop(self) -> np.ndarray | None:
        delivery = self.window.video.delivery
        if delivery is None:
            return None
        result = delivery.result
        image = result.frame.image
        if not result.regions:
            return None
        x, y, w, h = max(result.regions, key=lambda r: r.box[2] * r.box[3]).box
        crop = image[y : y + h, x : x + w]
        return crop.copy() if crop.size else None

    def classes(self) -> list[str]:
        known = base_labels(self.cascade)
        extra = sorted(c for c in (self.profile.classes if self.profile else {}) if c not in known)
        return [*known, *extra]

    def teach_current(self) -> None:
        if self.profile is None:
            QMessageBox.warning(self.window, "Teach", self.last_error or "no site profile")
            return
        crop = self.current_crop()
        if crop is None:
            self.window.show_status("Nothing to teach: no item in view", 4000)
            return
        label, ok = QInputDialog.getItem(
            self.window, "Teach", "This is…", [*self.classes(), NEW_CLASS], 0, False
        )
        if not ok:
            return
        bin_: Bin | None = None
        if label == NEW_CLASS:
            label, ok = QInputDialog.getText(self.window, "New class", "Name (one word):")
            if not ok:
                return
            label = label.strip().lower()
            chosen, ok = QInputDialog.getItem(
                self.window, "New class", f"Bin for {label}:", [b.value for b in Bin], 0, False
            )
            if not ok:
                return
            bin_ = Bin(chosen)
        self.teach(label, crop, bin_)

    def teach(self, label: str, crop: np.ndarray, bin_: Bin | None = None) -> Future:
        """Add ``crop`` as a photo of ``label`` and use the profile from the next frame on."""

        def work() -> str:
            assert self.profile is not None
            check_class_name(label)
            chosen = self.profile.bin_for(label, bin_, base_labels(self.cascade))
            self.profile.add_image(label, chosen, crop, self.cascade)
            self.cascade.use_profile(self.profile.head(self.cascade))
            return f"Taught: {label} ({self.profile.counts()[label]} photos)"

        return self._run(work)

    def undo_last(self) -> Future:
        def work() -> str:
            assert self.profile is not None
            photo = self.profile.undo_last()
            self.cascade.use_profile(self.profile.head(self.cascade))
            return f"Undone: the last photo of {photo.label}" if photo else "Nothing to undo"

        return self._run(work)

    def remove(self, label: str, file: str) -> Future:
        def work() -> str:
            assert self.profile is not None
            self.profile.remove(label, [file])  # the class goes with its last photo
            self.cascade.use_profile(self.profile.head(self.cascade))
            return f"Removed a photo of {label}"

        return self._run(work)

    def _run(self, work) -> Future:
        def guarded() -> str:
            try:
                message = work()
            except UserError as exc:
                message = f"Not taught: {exc}"
            except Exception:  # logged; the window goes on
                log.exception("teaching failed")
                message = "Not taught: an internal error (see the log)"
            self.taught.emit(message)
            return message

        return self._worker.submit(guarded)

    def _done(self, message: str) -> None:
        self.window.show_status(message, 5000)

    def show_profile(self) -> None:
        if self.profile is None:
            QMessageBox.warning(self.window, "Site profile", self.last_error or "no site profile")
            return
        ProfileDialog(self).exec()

    def close(self) -> None:
        self._worker.shutdown(wait=True)


class ProfileDialog(QDialog):
    """The taught classes and photos (thumbnails), with Remove and Undo."""

    def __init__(self, controls: TeachControls):
        super().__init__(controls.window)
        self.controls = controls
        self.setWindowTitle("Site profile")
        layout = QVBoxLayout(self)
        self.summary = QLabel()
        layout.addWidget(self.summary)
        self.photos = QListWidget()
        self.photos.setViewMode(QListWidget.ViewMode.IconMode)
        self.photos.setIconSize(QSize(96, 96))
        self.photos.setMinimumSize(560, 360)
        layout.addWidget(self.photos)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        remove = QPushButton("Remove photo")
        undo = QPushButton("Undo last")
        buttons.addButton(remove, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(undo, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        remove.clicked.connect(self._remove)
        undo.clicked.connect(self._undo)
        layout.addWidget(buttons)
        self.fill()

    def fill(self) -> None:
        profile = self.controls.profile
        assert profile is not None
        counts = profile.counts()
        self.summary.setText(
            f"{profile.root}\n"
            + (", ".join(f"{k} ({profile.classes[k]}): {n}" for k, n in counts.items()) or "empty")
        )
        self.photos.clear()
        for photo in sorted(profile.photos, key=lambda p: (p.label, p.added)):
            item = QListWidgetItem(photo.label)
            item.setData(Qt.ItemDataRole.UserRole, (photo.label, photo.file))
            image = QImage(str(profile.root / photo.file))
            if not image.isNull():
                item.setIcon(
                    QIcon(
                        QPixmap.fromImage(image.scaled(96, 96, Qt.AspectRatioMode.KeepAspectRatio))
                    )
                )
            self.photos.addItem(item)

    def _remove(self) -> None:
        item = self.photos.currentItem()
        if item is None:
            return
        label, file = item.data(Qt.ItemDataRole.UserRole)
        self.controls.remove(label, file).result()
        self.fill()

    def _undo(self) -> None:
        self.controls.undo_last().result()
        self.fill()
