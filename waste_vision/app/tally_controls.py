"""The tally as the window offers it: counts shown in the panel, reset (with undo) and export.

Items are counted in the pipeline (once per item, ``FrameClassifier``); this only adds what
each frame counted and keeps the panel and the actions in step.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QFileDialog

from waste_vision.engine.tally import Tally

if TYPE_CHECKING:  # the window makes this controller and hands itself in
    from waste_vision.app.window import MainWindow


class TallyControls:
    def __init__(self, window: MainWindow, labels: list[str]):
        self.window = window
        self.tally = Tally(labels)
        self._before_reset: dict = {}

    def add(self, counted) -> None:
        """What one frame counted (often nothing)."""
        if self.tally.add(counted):
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
        suggested = (
            self.window.settings.recording_folder
            / f"waste-vision-tally-{time.strftime('%Y%m%d-%H%M%S')}.csv"
        )
        path, _ = QFileDialog.getSaveFileName(
            self.window, "Export tally", str(suggested), "CSV files (*.csv)"
        )
        if not path:
            return
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.tally.export_csv(Path(path))
        except OSError as exc:
            self.window.show_problem(
                "Tally not exported",
                f"cannot write {path} ({exc.strerror or exc}); choose another file or folder",
            )
            return
        self.window.show_status(f"Tally saved to {path}", 10000)

    def _show(self) -> None:
        self.window.panel.show_tally(self.tally.rows(), self.tally.total)
