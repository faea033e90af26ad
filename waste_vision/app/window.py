"""The main window: widgets, status bar, and the slots behind its actions (app/menus.py).

It subscribes to the session (frames through the bridge, run and recording events) and
turns user actions into session calls that return at once. Every error a user can meet
(a source that will not open, a recording that fails) ends in ``show_problem``: a dialog
naming the problem and what to do (a notice on screen in kiosk mode), never a traceback.
Nothing shown or logged carries a stream's password (``redact_url``), and the settings keep
stream URLs without their credentials: reopening one asks for them again.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections import deque
from concurrent import futures
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QColor, QKeySequence, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QVBoxLayout,
    QWidget,
)

from waste_vision.app import source_policy
from waste_vision.app.bridge import Delivery
from waste_vision.app.credentials import ask_credentials, with_credentials
from waste_vision.app.history import HistoryDock
from waste_vision.app.menus import build_actions, build_menus_and_toolbar
from waste_vision.app.panel import PANEL_WIDTH, Panel, PanelScroll
from waste_vision.app.recording_controls import RecordingControls
from waste_vision.app.region_controls import RegionControls
from waste_vision.app.session import LiveSession, Stop
from waste_vision.app.settings import AppSettings
from waste_vision.app.source_policy import is_camera, is_stream
from waste_vision.app.stats import StallMeter
from waste_vision.app.tally_controls import TallyControls
from waste_vision.app.teach import TeachControls
from waste_vision.app.tuning import ThresholdControls, backend_text
from waste_vision.app.video_widget import VideoWidget
from waste_vision.engine.sources import SourceStatus
from waste_vision.labels import Mode
from waste_vision.model.cascade import Cascade
from waste_vision.redact import has_credentials, redact_url
from waste_vision.resources import default_assets_dir

if TYPE_CHECKING:  # imported when a kiosk is made (MainWindow.__init__)
    from waste_vision.app.kiosk import Kiosk

log = logging.getLogger(__name__)

DEFAULT_SIZE = QSize(1280, 800)
VIDEO_FILTER = (
    "Videos (*.mp4 *.m4v *.mov *.avi *.mkv *.webm *.mpg *.mpeg *.wmv *.ts);;All files (*)"
)
DEMO_NOTICE = (
    "No camera found: playing the bundled demo clip (looping). Pick a camera, a "
    "video, a stream or an image folder from the Source menu."
)
KIOSK_DEMO_NOTICE = "No camera found: playing the bundled demo clip (looping)."
NO_SOURCE = "No video. Open a camera, a video, a stream or an image folder from the Source menu."
RECORD_TICK_MS = 250
CLOSE_WAIT_S = 0.03  # closing waits this long in the GUI thread, then finishes in the background


def apply_theme(app: QApplication) -> None:
    """A dark Fusion palette, so the chrome matches the video and the panel."""
    app.setStyle("Fusion")
    palette = QPalette()
    role = QPalette.ColorRole
    text = (232, 234, 237)
    colours = {
        role.Window: (32, 33, 36),
        role.WindowText: text,
        role.Base: (24, 24, 26),
        role.AlternateBase: (40, 41, 44),
        role.ToolTipBase: (48, 49, 52),
        role.ToolTipText: text,
        role.Text: text,
        role.Button: (48, 49, 52),
        role.ButtonText: text,
        role.BrightText: (255, 80, 80),
        role.Highlight: (66, 133, 244),
        role.HighlightedText: (255, 255, 255),
        role.Link: (138, 180, 248),
    }
    for which, rgb in colours.items():
        palette.setColor(which, QColor(*rgb))
    for which in (role.Text, role.ButtonText, role.WindowText):
        palette.setColor(QPalette.ColorGroup.Disabled, which, QColor(128, 128, 128))
    app.setPalette(palette)


class MainWindow(QMainWindow):
    closing = Signal()  # emitted first thing in closeEvent, while the video still shows

    def __init__(
        self,
        cascade: Cascade,
        settings: AppSettings | None = None,
        *,
        kiosk: bool = False,
        camera_probe=None,
        demo_path: Path | None = None,
        profile_dir: Path | None = None,
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        self.cascade = cascade
        self.settings = settings or AppSettings()
        self.kiosk = kiosk
        self.demo_path = Path(demo_path or default_assets_dir() / "demo.mp4")
        self.session = LiveSession(cascade, parent=self)
        self.bridge = self.session.bridge
        stage1_labels, stage2_labels = (s.labels for s in cascade.manifest.stages)
        self.stall_meter = StallMeter(self)
        self.cameras: list[int] | None = None  # None until the probe answers
        self.current_spec: str | None = None
        self.source_name = ""
        self.notice_text = ""
        self.notice_error = False
        self._camera_probe = camera_probe
        self._initial: tuple[str | None] | None = None  # a start waiting for the camera probe
        self._reconnecting = False
        self._closing = False
        self._allow_close = not kiosk
        self.kiosk_controller: Kiosk | None = None
        self.public_locked = False  # a public kiosk: only act.public works (kiosk.py)
        self._wanted_enabled: dict[QAction, bool] = {}  # what each action would be, unlocked
        self._paint_times: deque[float] = deque(maxlen=31)
        self._recent_latency: deque[float] = deque(maxlen=30)
        self._last_classify_fps = 0.0

        self.setWindowTitle("")  # the application's display name stands alone
        self._remember: str | None = None  # the source to remember once it delivers
        self._build_widgets(stage1_labels, stage2_labels)
        # each menu's slots live in a controller of their own; the window keeps the sources
        self.recording_controls = RecordingControls(self)
        self.region_controls = RegionControls(self)
        self.threshold_controls = ThresholdControls(self)
        self.tally_controls = TallyControls(
            self, [label for label in stage1_labels if label != "recyclable"] + stage2_labels
        )
        self.tally = self.tally_controls.tally
        self.teach_controls = TeachControls(self, profile_dir)
        self.history = HistoryDock(self)  # View > Item history (a dock, hidden at first)
        # ``act``, not ``actions``: QWidget.actions() is the list Qt keeps of them
        self.act = build_actions(self)
        self.camera_menu, self.toolbar = build_menus_and_toolbar(self, self.act)
        self.set_action_enabled(self.act.undo_reset_tally, False)  # nothing reset yet
        self.panel.set_actions(self.act.reset_tally, self.act.export_tally)
        self._build_status_bar()
        self._connect()
        self.act.staff_figures.setChecked(True)
        self._load_settings()
        self.update_run_actions()
        if kiosk:
            from waste_vision.app.kiosk import Kiosk

            self.kiosk_controller = Kiosk(self)

    # -- construction -------------------------------------------------------------------------

    def _build_widgets(self, stage1_labels, stage2_labels) -> None:
        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        left = QVBoxLayout()
        left.setContentsMargins(0, 0, 0, 0)
        left.setSpacing(0)
        self.notice = QLabel()
        self.notice.setObjectName("notice")
        self.notice.setWordWrap(True)
        self.notice.setVisible(False)
        self.video = VideoWidget()
        self.video.placeholder = "Looking for cameras…"
        left.addWidget(self.notice)
        left.addWidget(self.video, 1)
        layout.addLayout(left, 1)
        self.panel = Panel(stage1_labels, stage2_labels)
        self.panel_scroll = PanelScroll(self.panel)
        layout.addWidget(self.panel_scroll)
        self.setCentralWidget(central)
        self.setStyleSheet(
            "QMainWindow, #panel { background: #202124; color: #e8eaed; }"
            "#panel QLabel, #panel QGroupBox { color: #e8eaed; }"
            "#panel QGroupBox { font-weight: bold; border: 1px solid #3c4043; border-radius: 4px;"
            " margin-top: 8px; padding-top: 6px; }"
            "#panelScroll, #panelScroll > QWidget { background: #202124; border: none; }"
            "#panel QGroupBox::title { subcontrol-origin: margin; left: 6px; padding: 0 3px; }"
            "#notice { background: #fff3cd; color: #3a2d00; padding: 6px 10px; }"
            '#notice[error="true"] { background: #f8d7da; color: #58151c; }'
            "#tallyTotal { font-weight: bold; }"
        )
        self.resize(DEFAULT_SIZE)
        self.panel.show_backend(backend_text(self.cascade))

    def _build_status_bar(self) -> None:
        status = self.statusBar()
        self.regions_label = QLabel()
        self.regions_label.setContentsMargins(12, 0, 12, 0)
        self.backend_label = QLabel(f"backend: {backend_text(self.cascade)}")
        status.addPermanentWidget(self.recording_controls.label)
        status.addPermanentWidget(self.regions_label)
        status.addPermanentWidget(self.backend_label)

    def _connect(self) -> None:
        s = self.session
        self.bridge.frameReady.connect(self._on_frame_ready, Qt.ConnectionType.QueuedConnection)
        s.started.connect(self._on_started)
        s.stopped.connect(self._on_stopped)
        s.sourceStatus.connect(self._on_source_status)
        s.camerasFound.connect(self._on_cameras_found)
        self.video.on_painted = self._on_painted
        self.video.on_resized = self._on_video_resized
        self.ui_timer = QTimer(self)
        self.ui_timer.setInterval(RECORD_TICK_MS)
        self.ui_timer.timeout.connect(self._tick)
        self.ui_timer.start()

    def _load_settings(self) -> None:
        self.threshold_controls.load()
        self.act.loop.setChecked(self.settings.loop_files)
        self.act.find_items.setChecked(self.settings.find_items)
        if self.session.camera[0] is None:  # --camera-size wins over the remembered one
            self.session.camera = (self.settings.camera_size, self.session.camera[1])
        self.session.set_mode(Mode.ITEMS if self.settings.find_items else Mode.FRAME)
        geometry = self.settings.geometry
        if geometry is not None and not self.kiosk:
            self.restoreGeometry(geometry)

    # -- sources ------------------------------------------------------------------------------

    def start_initial(self, spec: str | None = None) -> None:
        """What plays at launch: ``spec``; else the last source; else a camera; else the demo.

        Cameras are probed in the background first (a camera start waits for the probe, so
        the two never open the same device at once).
        """
        self.session.probe_cameras(self._camera_probe)
        choice = source_policy.at_launch(spec, self.settings.last_source)
        chosen = choice.spec
        if (
            choice.action is source_policy.Action.OPEN
            and spec is None
            and chosen is not None
            and is_stream(chosen)
            and self.settings.last_source_needs_login
            and not has_credentials(chosen)
        ):
            # its password was not stored: ask again (cancel: cameras, else the demo)
            full = self._ask_login(chosen, self.settings.last_source_user)
            if full is None:
                self._initial = (None,)
                return
            chosen = full
        if choice.action is source_policy.Action.OPEN and chosen is not None:
            self.open_source(chosen)
        else:
            self._initial = (chosen,)

    def _ask_login(self, url: str, user: str | None) -> str | None:
        """The stream URL with the user name and password asked for; None if cancelled."""
        if self.kiosk:  # nobody to ask; the kiosk gets its URL from --source
            return None
        answer = ask_credentials(self, redact_url(url), user)
        return with_credentials(url, *answer) if answer is not None else None

    def open_source(
        self, spec, *, notice: str = "", remember: bool = True, notice_error: bool = False
    ) -> None:
        """Switch to ``spec`` (camera index, path or URL); errors come back as a dialog.

        ``remember``: the next launch starts with it (not for the no-camera fallback, so a
        camera plugged in later wins).
        """
        spec = str(spec).strip()
        shown = redact_url(spec)
        demo = self._is_demo(spec)
        if spec != self.current_spec:
            self.session.set_zones(())  # boxes drawn on another picture mean nothing here
            self.session.break_item()
        self.current_spec = spec
        self.set_notice(notice, error=notice_error)
        # remembered for the next launch only once it delivers a frame (_on_frame_ready):
        # a broken file or a dead URL must not greet every later start with an error
        self._remember = spec if remember and not self.kiosk else None  # stored stripped
        loop = self.act.loop.isChecked() or demo or self.kiosk
        self._reconnecting = False
        if self.kiosk_controller is not None:
            self.kiosk_controller.cancel_restart()
        self.session.start(spec, loop=loop)
        # a public screen names no paths or URLs (the status bar, staff's, does)
        self.video.placeholder = "Starting the video…" if self.kiosk else f"Opening {shown}…"
        self.show_status(f"Opening {shown}…")
        self.update_run_actions()

    def play_demo(self, *, notice: str = "", remember: bool = True) -> None:
        self.open_source(str(self.demo_path), notice=notice, remember=remember)

    def _is_demo(self, spec: str) -> bool:
        try:
            return Path(spec).resolve() == self.demo_path.resolve()
        except OSError:
            return False

    def restart_source(self) -> None:
        """The kiosk's retry: the same source again, or the launch choice if none."""
        if self.current_spec is None:
            self.start_initial(None)
        else:
            # the notice (why it is retrying) stays until frames flow again
            self.open_source(
                self.current_spec,
                remember=False,
                notice=self.notice_text,
                notice_error=self.notice_error,
            )

    def toggle_running(self) -> None:
        if self.session.active:
            self.session.stop()
            self.show_status("Stopping…")
        elif self.current_spec is not None:
            self.open_source(
                self.current_spec,
                notice=self.notice_text,
                remember=False,
                notice_error=self.notice_error,
            )
        else:
            self.start_initial(None)
        self.update_run_actions()

    def ask_video(self) -> None:
        start = (
            str(Path(self.current_spec).parent)
            if self.current_spec and Path(self.current_spec).exists()
            else str(Path.home())
        )
        path, _ = QFileDialog.getOpenFileName(self, "Open video", start, VIDEO_FILTER)
        if path:
            self.open_source(path)

    def ask_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open image folder", str(Path.home()))
        if path:
            self.open_source(path)

    def ask_stream(self) -> None:
        url, ok = QInputDialog.getText(
            self, "Open stream URL", "Stream URL (rtsp://, http:// or https://):"
        )
        url = url.strip()
        if not ok or not url:
            return
        if not is_stream(url):
            self.show_problem(
                "Not a stream URL",
                f"{redact_url(url)!r} does not start with "
                "rtsp://, "
                "http:// or https://. For a file use Open video…, for a folder "
                "Open image folder….",
            )
            return
        self.open_source(url)

    def set_loop(self, checked: bool) -> None:
        self.settings.loop_files = checked
        self.session.set_loop(checked or self._is_demo(self.current_spec or "") or self.kiosk)

    def rescan_cameras(self) -> None:
        self.camera_menu.clear()
        self.camera_menu.addAction("Looking for cameras…").setEnabled(False)
        self.session.probe_cameras(self._camera_probe)

    def set_camera_size(self, size: tuple[int, int] | None) -> None:
        """Ask cameras for this resolution (None: the driver's default); a playing camera
        restarts with it. What the camera granted shows in the status bar."""
        self.session.camera = (size, self.session.camera[1])
        self.settings.camera_size = size
        if self.cameras is not None:
            self._on_cameras_found(self.cameras)  # tick the new choice
        if is_camera(self.current_spec):
            self.open_source(self.current_spec, remember=False)

    def _on_cameras_found(self, found: list[int]) -> None:
        spec = self.current_spec
        if spec is not None and is_camera(spec) and self.session.active and int(spec) not in found:
            found = sorted([*found, int(spec)])  # busy with us, so not probed
        self.cameras = list(found)
        self.camera_menu.clear()
        for index in self.cameras:
            action = self.camera_menu.addAction(f"Camera {index}")
            action.setEnabled(not self.public_locked)
            if index < 10:
                action.setShortcut(QKeySequence(f"Alt+{index}"))
            action.triggered.connect(lambda _=False, i=index: self.open_source(str(i)))
        if not self.cameras:
            self.camera_menu.addAction("No camera found").setEnabled(False)
        self.camera_menu.addSeparator()
        sizes = self.camera_menu.addMenu("Resolution")
        asked = self.session.camera[0]
        for size in (None, (640, 480), (1280, 720), (1920, 1080)):
            action = sizes.addAction("Driver default" if size is None else f"{size[0]}x{size[1]}")
            action.setCheckable(True)
            action.setEnabled(not self.public_locked)
            action.setChecked(size == asked)
            action.triggered.connect(lambda _=False, sz=size: self.set_camera_size(sz))
        if self._initial is not None:
            (wanted,) = self._initial
            self._initial = None
            spec = source_policy.after_probe(wanted, self.cameras)
            if spec is not None:
                self.open_source(spec)
            else:
                self.play_demo(
                    notice=KIOSK_DEMO_NOTICE if self.kiosk else DEMO_NOTICE, remember=False
                )
                self.show_status("No camera found: playing the demo clip", 10000)

    # -- run events -----------------------------------------------------------------------------

    def _on_started(self, run_id: int, name: str) -> None:
        if run_id != self.session.current_id:
            return
        self.source_name = name
        self.video.placeholder = (
            "Waiting for the video…" if self.kiosk else f"Waiting for {redact_url(name)}…"
        )
        self.show_status(f"Playing {name}", 5000)
        self.setWindowTitle(redact_url(name))  # Qt appends the application's display name
        self.update_run_actions()

    def _on_stopped(self, run_id: int, kind: str, message: str) -> None:
        if run_id != self.session.current_id or self._closing:
            return
        self.update_run_actions()
        if kind == Stop.FAILED:  # nothing of the previous source may stay on screen
            self.video.clear(
                "Video not available"
                if self.kiosk
                else f"Not playing: {redact_url(self.current_spec or '')} did not open"
            )
            self.setWindowTitle("")
            self.panel.show_result(None)
        elif self.video.delivery is None:
            self.video.clear(NO_SOURCE)
        if kind in (Stop.FAILED, Stop.ERROR):
            self.show_status(message)
            self.show_problem(
                "Cannot play this source" if kind == Stop.FAILED else "Classification stopped",
                message,
            )
        elif kind == Stop.ENDED:
            self.show_status(f"{message}. Press Space to play it again.")
        else:
            self.show_status("Stopped. Press Space to start.")

    def _on_source_status(self, run_id: int, event) -> None:
        if run_id != self.session.current_id or self._closing:
            return
        status = event.status
        if status is SourceStatus.RECONNECTING:
            what = (
                "Camera"
                if is_camera(self.current_spec)
                else "Stream"
                if is_stream(self.current_spec)
                else "Source"
            )
            self._reconnecting = True
            self.show_status(f"{what} lost, reconnecting: {event.message}")
            if self.kiosk:
                self.set_notice(f"{what} lost, reconnecting…", error=True)
        elif status is SourceStatus.RUNNING and self._reconnecting:
            self._reconnecting = False
            self.show_status(f"Reconnected: {event.message}", 10000)
            if self.kiosk:
                self.set_notice("")
        elif status not in (SourceStatus.ENDED, SourceStatus.FAILED):
            self.show_status(event.message, 10000)

    def _on_frame_ready(self) -> None:
        delivery = self.bridge.take()
        if delivery is None or delivery.run_id != self.session.current_id or self._closing:
            return
        self.video.set_delivery(delivery)
        if self._remember is not None:  # the source works: remember it for the next launch
            self.settings.remember_source(self._remember)  # without a password
            self._remember = None
        result = delivery.result
        largest = max(result.regions, key=lambda r: r.box[2] * r.box[3], default=None)
        primary = largest.result if largest else None
        if result.mode in (Mode.ITEMS, Mode.ZONES) and primary is None:  # nothing on the table
            self.panel.show_empty(result.learning)
        else:
            self.panel.show_result(primary, len(result.regions))
        self._last_classify_fps = result.classify_fps
        self.tally_controls.add(result.counted)  # counted in the pipeline (FrameClassifier)
        if self.kiosk_controller is not None:
            self.kiosk_controller.frame_arrived()

    def _on_painted(self, delivery: Delivery, now: float) -> None:
        self.session.stats.painted(delivery.stats, delivery.result.frame.timestamp, now)
        self._paint_times.append(now)
        self._recent_latency.append((now - delivery.result.frame.timestamp) * 1000.0)
        if delivery.stats.displayed.count == 1 and self.session.stats.run_count == 1:
            self.stall_meter.start()  # from the first frame on: start-up is not a stall

    def _on_video_resized(self, size: tuple[int, int]) -> None:
        self.bridge.display_size = size

    def _fit_to_window(self) -> None:
        """A small window: a narrower panel, and overlay type drawn large enough to read
        at the size the video is shown (not only at the frame's own size)."""
        if not self.kiosk:
            wide = self.width() >= 1000
            width = PANEL_WIDTH if wide else max(250, min(PANEL_WIDTH, self.width() // 3))
            self.panel.set_width(width)
        frame = self.video.frame_size
        if frame:
            shown = self.video.display_size()
            k = min(shown[0] / frame[0], shown[1] / frame[1])
            self.session.fit_overlay(min(frame), round(min(frame) * k))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_to_window()

    def _tick(self) -> None:
        """4 times a second: rates, recording time, a recording that failed meanwhile, regions."""
        self._fit_to_window()
        now = time.monotonic()
        times = self._paint_times
        recent = len(times) > 1 and now - times[-1] < 1.0
        display_fps = (len(times) - 1) / (times[-1] - times[0]) if recent else 0.0
        latency = statistics.median(self._recent_latency) if self._recent_latency else None
        self.panel.show_rates(display_fps, self._last_classify_fps if recent else 0.0, latency)
        self.recording_controls.tick(now)
        self.region_controls.tick()

    def update_run_actions(self) -> None:
        active = self.session.active
        self.act.start.setText("Stop" if active else "Start")
        self.set_action_enabled(self.act.record, active or self.recording_controls.path is not None)
        self.set_action_enabled(self.act.snapshot, self.video.delivery is not None or active)

    # -- public kiosk lockdown ------------------------------------------------------------------

    def set_action_enabled(self, action, enabled: bool) -> None:
        """Every enabling goes through here, so a locked kiosk keeps its actions off
        (a disabled action's shortcut does nothing) whatever the run does meanwhile."""
        self._wanted_enabled[action] = bool(enabled)
        action.setEnabled(bool(enabled) and (not self.public_locked or action in self.act.public))

    def set_public_locked(self, locked: bool) -> None:
        """Public kiosk (True): only ``act.public`` works; staff (False): all again."""
        self.public_locked = locked
        self.panel.tally_period.setVisible(not locked)  # the public only looks
        if locked:
            self.history.hide()
        for action in self.act.all:
            self.set_action_enabled(action, self._wanted_enabled.get(action, True))
        for action in self._camera_actions():
            action.setEnabled(
                not locked and action.text() not in ("Looking for cameras…", "No camera found")
            )

    def _camera_actions(self) -> list[QAction]:
        found: list[QAction] = []
        menus: list[QMenu] = [self.camera_menu]
        while menus:
            for action in menus.pop().actions():
                submenu = action.menu()  # typed QObject: C++'s menu<T>() template
                if isinstance(submenu, QMenu):
                    menus.append(submenu)
                elif not action.isSeparator():
                    found.append(action)
        return found

    def toggle_staff_mode(self) -> None:
        if self.kiosk_controller is not None:
            self.kiosk_controller.toggle_staff()

    # -- view -----------------------------------------------------------------------------------

    def show_staff_figures(self, shown: bool) -> None:
        self.panel.show_figures(shown)
        self.session.set_overlay_figures(shown)

    # -- messages -----------------------------------------------------------------------------

    def show_status(self, text: str, timeout_ms: int = 0) -> None:
        """A status-bar message that never ends mid-word: too long for the room left by the
        permanent labels, it is cut at a word with "…" (the whole text in the tooltip)."""
        text = redact_url(text)
        bar = self.statusBar()
        room = (
            bar.width()
            - sum(
                w.width()
                for w in (self.recording_controls.label, self.regions_label, self.backend_label)
                if w.isVisible()
            )
            - 40
        )
        room = max(room, 320)  # never fewer words than that: Qt clips the permanent labels
        metrics = bar.fontMetrics()
        shown = text
        if room > 0 and metrics.horizontalAdvance(shown) > room:
            words = text.split(" ")
            while len(words) > 1 and metrics.horizontalAdvance(" ".join(words) + " …") > room:
                words.pop()
            shown = " ".join(words) + " …"
        bar.setToolTip(text if shown != text else "")
        bar.showMessage(shown, timeout_ms)

    def set_notice(self, text: str, error: bool = False) -> None:
        text = redact_url(text)
        self.notice_text, self.notice_error = text, error
        self.notice.setText(text)
        self.notice.setProperty("error", error)
        self.notice.style().unpolish(self.notice)
        self.notice.style().polish(self.notice)
        self.notice.setVisible(bool(text))

    def show_problem(self, title: str, message: str) -> None:
        """A problem the user can act on: a dialog (kiosk: a notice), never a traceback."""
        message = redact_url(message)
        log.warning("%s: %s", title, message)
        if self._closing:
            return
        if self.kiosk:
            self.set_notice(f"{title}: {message}", error=True)
            return
        QMessageBox.warning(self, title, message)

    def show_shortcuts(self) -> None:
        rows = [
            (action.text().replace("&", ""), action.shortcut().toString())
            for action in self.act.all
            if not action.shortcut().isEmpty()
        ]
        rows.append(("Add a region", "drag on the video"))
        rows.append(("Remove a region", "right-click it"))
        text = "".join(f"<tr><td>{name}</td><td><b>{keys}</b></td></tr>" for name, keys in rows)
        QMessageBox.information(self, "Keyboard shortcuts", f"<table>{text}</table>")

    def fit_to_screen(self) -> None:
        """The default size, made smaller where the screen is (a 1366x768 laptop)."""
        screen = self.screen() or QApplication.primaryScreen()
        if screen is not None:
            room = screen.availableGeometry().size()
            self.resize(DEFAULT_SIZE.boundedTo(QSize(room.width() - 40, room.height() - 60)))

    def show_about(self) -> None:
        from waste_vision.app.about import about_html

        QMessageBox.about(self, "About waste-vision", about_html(self.cascade))

    def show_unexpected_error(self, log_path) -> None:
        """An exception nobody caught (app/main.py's hook): one line, not a crash."""
        where = f"details in {log_path}" if log_path else "details on the terminal"
        self.show_status(f"Something went wrong; {where}")

    def toggle_fullscreen(self, checked: bool) -> None:
        self.showFullScreen() if checked else self.showNormal()

    # -- leaving --------------------------------------------------------------------------------

    def quit_app(self) -> None:
        """Close for good: dialogs, pipeline, recording (kiosk included)."""
        self._allow_close = True
        for widget in QApplication.topLevelWidgets():
            if isinstance(widget, QDialog) and widget.isVisible():
                widget.reject()
        self.close()

    def stop_workers(self) -> None:
        """At exit, after the session shut down and before the window is deleted: the
        teaching and events-reading threads finished and the session detached, so no thread
        signals an object Qt is deleting."""
        self.teach_controls.close()
        self.tally_controls.reader.close()
        self.session.detach()

    def closeEvent(self, event) -> None:
        if not self._allow_close:  # kiosk: only the deliberate key combination leaves
            event.ignore()
            return
        if self._closing:  # closing already: leave once the session has finished
            finishing = self.session.shutdown_async()
            if not finishing.done():
                event.ignore()
                return
            if self.kiosk_controller is not None:
                self.kiosk_controller.release()
            event.accept()
            return
        self.closing.emit()
        self._closing = True
        self.ui_timer.stop()
        self.stall_meter.stop()
        if not self.kiosk:
            self.settings.geometry = self.saveGeometry()
        self.settings.sync()
        # stops the pipeline and the source, finishes the recording, on the session's thread;
        # the GUI thread waits at most CLOSE_WAIT_S. A recording still finishing keeps the
        # window up, saying so, until it is done; anything else finishes after the window
        # has gone (run_app waits for it before the process ends).
        finishing = self.session.shutdown_async()
        futures.wait([finishing], timeout=CLOSE_WAIT_S)
        if not finishing.done() and self.recording_controls.busy:
            event.ignore()
            self.show_status("Finishing recording…")
            if self.kiosk:  # no status bar there
                self.set_notice("Finishing recording…")
            self.session.shutdownFinished.connect(self.close, Qt.ConnectionType.QueuedConnection)
            if finishing.done():  # finished before the connection was made
                QTimer.singleShot(0, self.close)
            return
        if self.kiosk_controller is not None:
            self.kiosk_controller.release()
        event.accept()
