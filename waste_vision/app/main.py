"""``waste-vision app``: arguments, the QApplication, and leaving cleanly with the figures.

``--exit-after S`` closes the window after S seconds the same way a user would (pipeline
stopped, recording finished, then quit); ``--screenshot`` grabs the window just before it
closes; ``--stats-json`` is written once the event loop has ended. SIGINT and SIGTERM close
the window cleanly too, so a kiosk stopped by its service manager keeps its recording.
Everything goes to the rotating log file (``waste_vision.logs``), unexpected exceptions in
slots included: those are logged with their traceback and named in one status-bar line,
and the window carries on.
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import logging
import signal
import sys
from pathlib import Path
from typing import cast

from waste_vision.engine.sources import parse_camera_size
from waste_vision.errors import UserError
from waste_vision.labels import Mode

log = logging.getLogger(__name__)


def _check_output(path: Path | None, flag: str) -> None:
    if path is not None and not Path(path).expanduser().parent.is_dir():
        raise UserError(f"{flag} {path}: folder {Path(path).expanduser().parent} does not exist")


def save_screenshot(window, path: Path) -> bool:
    """The whole window as a PNG (QWidget.grab renders it, so it works off screen too)."""
    ok = window.grab().save(str(path), "PNG")
    if not ok:
        print(f"waste-vision: could not write the screenshot {path}", file=sys.stderr)
    return ok


def check_qt_binding() -> None:
    """PySide6 6.12's abi3 wheel loses references to None and True on Python 3.11 (immortal
    only from 3.12): the window would abort a few minutes in, so refuse to start."""
    import PySide6

    if sys.version_info < (3, 12) and tuple(PySide6.__version_info__[:2]) == (6, 12):
        raise UserError(
            f"PySide6 {PySide6.__version__} crashes on Python "
            f"{sys.version.split()[0]}; install an earlier one: "
            "pip install 'pyside6-essentials<6.12' (or use Python 3.12+)"
        )


def start_logging(verbosity: int = 0) -> Path | None:
    """The log file, set up here unless the command line already did."""
    from waste_vision.logs import LOGGER_NAME, log_file, setup_logging

    if logging.getLogger(LOGGER_NAME).handlers:
        return log_file()
    return setup_logging(verbosity)


def install_error_hook(window, log_path: Path | None):
    """Uncaught exceptions (a slot that raised) and Qt's own warnings go to the log; the
    window shows one line naming the log file instead of the app dying. Returns a function
    that puts the previous hooks back."""
    from PySide6.QtCore import QtMsgType, qInstallMessageHandler

    from waste_vision.logs import get_logger

    app_log = get_logger("app")
    previous_hook = sys.excepthook

    def hook(kind, value, tb):
        if issubclass(kind, KeyboardInterrupt):
            return previous_hook(kind, value, tb)
        app_log.error("unexpected error: %s: %s", kind.__name__, value, exc_info=(kind, value, tb))
        with contextlib.suppress(RuntimeError):  # the window is gone already
            window.show_unexpected_error(log_path)

    # Qt's warnings are mostly noise for a user ("This plugin does not support ..."): in the
    # file (and on the terminal with -vv) only; its critical messages on the terminal too
    levels = {QtMsgType.QtCriticalMsg: logging.ERROR, QtMsgType.QtFatalMsg: logging.CRITICAL}
    qt_log = get_logger("qt")

    def on_qt_message(kind, context, message):
        qt_log.log(levels.get(kind, logging.DEBUG), "Qt: %s", message)

    sys.excepthook = hook
    previous_qt = qInstallMessageHandler(on_qt_message)

    def restore() -> None:
        if sys.excepthook is hook:
            sys.excepthook = previous_hook
        qInstallMessageHandler(previous_qt)

    return restore


def run_app(args) -> int:
    check_qt_binding()
    from PySide6.QtCore import QCoreApplication, QEvent, QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    from waste_vision.app.settings import APPLICATION, ORGANIZATION, AppSettings
    from waste_vision.app.window import MainWindow, apply_theme
    from waste_vision.model.cascade import Cascade
    from waste_vision.resources import default_models_dir

    log_path = start_logging(getattr(args, "verbose", 0) or 0)
    if sys.stderr is not None and not faulthandler.is_enabled():
        # a crash in Qt or a native library prints every thread's Python stack, not nothing
        with contextlib.suppress(ValueError, OSError, AttributeError):  # no usable stderr
            faulthandler.enable(all_threads=True)
    if args.exit_after is not None and not args.exit_after > 0:
        raise UserError(f"--exit-after {args.exit_after}: give a number of seconds above 0")
    _check_output(args.stats_json, "--stats-json")
    from waste_vision.engine.fleet import FleetOptions, FleetOutputs

    fleet_options = FleetOptions.from_args(args)
    fleet_options.check()  # before the window opens
    _check_output(args.screenshot, "--screenshot")

    if QApplication.instance() is None:
        # Qt aborts the process (exit 134) where its platform plug-in cannot load; say why
        from waste_vision.app.platform_check import check_platform

        check_platform()
    existing = QApplication.instance()
    # typed QCoreApplication; one made before the window (pytest-qt's) is a QApplication, as
    # the window's widgets need
    app = (
        cast(QApplication, existing)
        if existing is not None
        else QApplication([sys.argv[0] if sys.argv else "waste-vision"])
    )
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("waste-vision")
    apply_theme(app)
    try:
        cascade = Cascade(
            getattr(args, "models", None) or default_models_dir(),
            backend="litert",
            threads=2,
            int8=getattr(args, "int8", False),
        )
    except UserError as exc:
        if args.exit_after is None:
            QMessageBox.critical(None, "waste-vision cannot start", str(exc))
        raise

    import numpy as np

    cascade.classify(np.zeros((64, 64, 3), np.uint8))  # warm-up: the first call sets up XNNPACK
    window = MainWindow(
        cascade, AppSettings(), kiosk=args.kiosk, profile_dir=getattr(args, "profile", None)
    )
    restore_hooks = install_error_hook(window, log_path)
    window.session.fleet = FleetOutputs().open(cascade, "", fleet_options)
    log.info("window started (kiosk: %s), log %s", bool(args.kiosk), log_path)
    if args.find is not None:
        find_items = args.find == Mode.ITEMS
        window.act.find_items.setChecked(find_items)
        window.region_controls.set_find_items(find_items)
    window.session.set_reuse(not getattr(args, "classify_every_frame", False))
    size = parse_camera_size(args.camera_size) if args.camera_size else None
    if size is not None or args.camera_fps is not None:
        window.session.camera = (size or window.session.camera[0], args.camera_fps)
    if args.screenshot is not None:
        shot = Path(args.screenshot).expanduser()
        window.closing.connect(lambda: save_screenshot(window, shot))
    if window.kiosk_controller is not None:
        window.kiosk_controller.apply()
    else:
        if window.settings.geometry is None:  # first start: fit the screen it opens on
            window.fit_to_screen()
        window.show()
    window.start_initial(args.source)
    if args.exit_after is not None:
        QTimer.singleShot(int(args.exit_after * 1000), window.quit_app)

    def on_signal(signum, frame):
        QTimer.singleShot(0, window.quit_app)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    wake = QTimer()  # lets Python run signal handlers while Qt's loop has the thread
    wake.start(200)
    wake.timeout.connect(lambda: None)
    try:
        app.exec()
    finally:
        wake.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        window.session.shutdown()  # no-op when the window closed normally
        window.stop_workers()
        restore_hooks()

    stats = window.session.stats.as_json()
    stats["tally"] = dict(sorted(window.tally.counts.items()))  # as annotate --summary counts
    if args.stats_json is not None:
        Path(args.stats_json).expanduser().write_text(json.dumps(stats, indent=2) + "\n")
    p50, p95 = stats["latency_ms_p50"], stats["latency_ms_p95"]
    print(
        f"waste-vision: displayed {stats['frames_displayed']} frames at "
        f"{stats['display_fps']:.1f} FPS, classified {stats['frames_classified']} at "
        f"{stats['classified_fps']:.1f} FPS, latency p50 {p50} ms p95 {p95} ms, "
        f"longest GUI stall {window.stall_meter.max_stall_ms:.0f} ms",
        file=sys.stderr,
    )
    for path in window.session.saved_recordings:
        print(f"waste-vision: recording saved to {path}", file=sys.stderr)
    if existing is None:
        # Our own QApplication: Qt is torn down here, the window before the application, not
        # in whatever order the interpreter's exit frees them (stop_workers above made sure no
        # thread still signals the window: that was the exit segfault of the kiosk bundle).
        window.deleteLater()
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        app.shutdown()
    return 0
