"""Kiosk mode: an unattended screen that looks after itself.

Full screen without menus, toolbar or status bar, a large verdict, the cursor hidden, no
mouse regions, no engineering figures (rates, latency, backend; F12 shows them for staff),
and every shortcut off except the deliberate exit, Ctrl+Shift+Q, and F12. Problems are
shown as a large plain-language notice ("Camera not connected — retrying") instead of a
dialog nobody would click, and a run that ends or fails (a
camera that will not open, a pipeline error) is started again after a back-off of 1 s, 2 s,
4 s ... up to 30 s; live sources reconnect by themselves meanwhile (sources.Reconnect).
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QApplication

FIRST_DELAY_S = 1.0
MAX_DELAY_S = 30.0


def public_notice(spec: str | None, kind: str) -> str:
    """What a passer-by reads when the video stops: plain words, no paths or error codes
    (the details stay in the log)."""
    from waste_vision.app.source_policy import is_camera, is_stream

    if kind == "ended":
        return "Starting again…"
    if is_camera(spec):
        return "Camera not connected — retrying"
    if is_stream(spec):
        return "Video feed not reachable — retrying"
    return "Video not available — retrying"


class Kiosk(QObject):
    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.delay = FIRST_DELAY_S
        self.restarts = 0
        self._cursor_hidden = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._restart)
        window.session.stopped.connect(self._on_stopped)

    def apply(self) -> None:
        w = self.window
        w.menuBar().hide()
        w.toolbar.hide()
        w.statusBar().hide()
        screen = w.screen() or QApplication.primaryScreen()
        w.panel.set_kiosk(True, screen.geometry().width() if screen is not None else None)
        font = QFont(w.notice.font())
        font.setPointSize(28)  # read from across a room
        w.notice.setFont(font)
        w.video.placeholder = "Waiting for the camera…"
        w.session.set_overlay_figures(False)
        w.act_staff_figures.setChecked(False)
        w.video.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        for action in w.all_actions:
            action.setEnabled(action in (w.act_quit_kiosk, w.act_staff_figures))
        QApplication.setOverrideCursor(Qt.CursorShape.BlankCursor)
        self._cursor_hidden = True
        if screen is not None:  # also fills the screen where no window manager runs
            w.setGeometry(screen.geometry())
        w.showFullScreen()

    def release(self) -> None:
        self._timer.stop()
        if self._cursor_hidden:
            QApplication.restoreOverrideCursor()
            self._cursor_hidden = False

    def cancel_restart(self) -> None:
        self._timer.stop()

    def frame_arrived(self) -> None:
        """Frames flow again: clear the problem notice; the next failure waits briefly."""
        self.delay = FIRST_DELAY_S
        if self.window.notice_error:
            self.window.set_notice("")

    def _on_stopped(self, run_id: int, kind: str, message: str) -> None:
        w = self.window
        if run_id != w.session.current_id or w._closing or kind == "stopped":
            return
        wait = self.delay
        self.delay = min(self.delay * 2, MAX_DELAY_S)
        w.set_notice(public_notice(w.current_spec, kind), error=kind != "ended")
        self._timer.start(int(wait * 1000))

    def _restart(self) -> None:
        if self.window._closing:
            return
        self.restarts += 1
        self.window.restart_source()
