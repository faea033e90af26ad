"""Recording and snapshots, as the window offers them: the Record and Snapshot actions, the
"● REC" label in the status bar and the red REC sign painted on the video (so a recording
is never without a sign on screen, kiosk included), and where the files go.

The session writes on its own thread; this only asks it to start and stop and turns its
answers (started, finished, saved, failed) into what the user sees.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QFileDialog, QLabel

if TYPE_CHECKING:  # the window makes this controller and hands itself in
    from waste_vision.app.window import MainWindow


class RecordingControls:
    def __init__(self, window: MainWindow):
        self.window = window
        self.session = window.session
        self.settings = window.settings
        self.path: str | None = None  # the file being written, once the session says so
        self.since = 0.0
        self.asked = False  # Record pressed, the session has not answered yet
        self.label = QLabel()  # "● REC mm:ss → name", in the status bar
        self.label.setStyleSheet("color: #d93025; font-weight: bold;")
        self.label.setVisible(False)
        self.session.recordingStarted.connect(self._on_started)
        self.session.recordingFinished.connect(self._on_finished)
        self.session.snapshotSaved.connect(self._on_snapshot_saved)

    @property
    def busy(self) -> bool:
        """A recording is running or was asked for: closing must wait for it."""
        return self.path is not None or self.asked

    def toggle(self) -> None:
        act = self.window.act.record
        if self.window.public_locked and not self.busy:  # a public kiosk never starts one
            act.setChecked(False)
            return
        if self.busy:
            self.asked = False
            self.session.stop_recording()
            self.window.show_status("Finishing the recording…")
        else:
            self.asked = True
            folder = self.settings.recording_folder
            self.session.start_recording(folder)
            self.window.show_status(f"Starting a recording in {folder}…")
        act.setChecked(self.asked)

    def tick(self, now: float) -> None:
        """The running time, and a recording that failed meanwhile (its error comes back
        through recordingFinished)."""
        if self.path is None:
            return
        seconds = int(now - self.since)
        self.label.setText(f"● REC {seconds // 60:02d}:{seconds % 60:02d} → {Path(self.path).name}")
        if self.session.recording_error():
            self.session.stop_recording()

    def _on_started(self, path: str) -> None:
        self.path = path
        self.since = time.monotonic()
        self.window.act.record.setChecked(True)
        self.window.act.record.setText("Stop recording")
        self.label.setVisible(True)
        self.window.video.set_recording(True)
        self.label.setText(f"● REC 00:00 → {Path(path).name}")
        self.label.setToolTip(path)  # the name in the bar, the whole path here
        self.window.show_status(f"Recording to {path}", 5000)

    def _on_finished(self, path: str, error: str) -> None:
        self.path = None
        self.asked = False
        self.window.act.record.setChecked(False)
        self.window.act.record.setText("Record")
        self.label.setVisible(False)
        self.window.video.set_recording(False)
        self.window.update_run_actions()
        if error:
            kept = f"\n\nWhat was recorded before that is in {path}." if path else ""
            self.window.show_problem("Recording failed", f"{error}{kept}")
        elif path:
            self.window.show_status(f"Recording saved to {path}", 15000)

    def ask_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self.window, "Recording folder", str(self.settings.recording_folder)
        )
        if folder:
            self.settings.recording_folder = Path(folder)
            self.window.show_status(f"Recordings and snapshots go to {folder}", 5000)

    def open_folder(self) -> None:
        """The recordings folder in the file manager (made first if it is not there yet)."""
        folder = self.settings.recording_folder
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.window.show_problem(
                "Cannot open the recordings folder",
                f"{folder} cannot be made ({exc.strerror or exc}); "
                "choose another one (Run > Recording folder…)",
            )
            return
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))):
            self.window.show_status(f"No file manager opened; the recordings are in {folder}")

    def snapshot(self) -> None:
        if self.window.public_locked:
            return
        delivery = self.window.video.delivery
        if delivery is None:
            self.window.show_status("No picture to save yet", 5000)
            return
        self.session.save_snapshot(delivery.annotated, self.settings.recording_folder)

    def _on_snapshot_saved(self, path: str, error: str) -> None:
        if error:
            self.window.show_problem("Snapshot not saved", error)
        else:
            self.window.show_status(f"Snapshot saved to {path}", 10000)
