"""Kiosk mode: an unattended screen that looks after itself, and that the public can only look at.

Full screen without menus, toolbar or status bar, a large verdict, the cursor hidden, no
mouse regions, no engineering figures (rates, latency, backend), and every action disabled
(not only hidden: the shortcut of a disabled action does nothing) except the deliberate exit,
Ctrl+Shift+Q, and F12, staff mode. Problems are shown as a large plain-language notice
("Camera not connected — retrying") instead of a dialog nobody would click, and a run that
ends or fails (a camera that will not open, a pipeline error) is started again after a
back-off of 1 s, 2 s, 4 s ... up to 30 s; live sources reconnect by themselves meanwhile
(sources.Reconnect).

Staff mode (F12) asks for the PIN set at install time (``waste-vision app --set-staff-pin``),
kept only as a salted PBKDF2-HMAC-SHA256 hash in a 0600 file in the user's config folder; it brings back
the menus, the figures and every action, and F12 again locks the screen. Without a PIN the
kiosk stays public and says how to set one. A recording always shows a red "● REC" on the
video, so nobody is recorded without a sign on screen.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QFont, QKeySequence
from PySide6.QtWidgets import QApplication, QInputDialog, QLineEdit

from waste_vision.errors import UserError

if TYPE_CHECKING:  # the window makes this controller and hands itself in
    from waste_vision.app.window import MainWindow

FIRST_DELAY_S = 1.0
MAX_DELAY_S = 30.0

PIN_FILE_NAME = "staff-pin"
MIN_PIN_LENGTH = 4
# PBKDF2-HMAC-SHA256 rather than scrypt: the bundle's Python has no OpenSSL (docs/kiosk.md),
# so no hashlib.scrypt there, while PBKDF2 runs on the built-in SHA-256 (pure Python below)
# and gives the same hash everywhere: a PIN set from a source install opens the bundle's kiosk
PBKDF2_ITERATIONS = 100_000  # ~0.1 s a try with OpenSSL: slow to guess, quick to type
MAX_ATTEMPTS = 3  # wrong PINs in a row before F12 is refused for LOCKOUT_S
LOCKOUT_S = 60.0
WRONG_PIN_DELAY_MS = 1500  # a wrong PIN: the next try only after this pause
NOTICE_MS = 8000
SET_PIN_COMMAND = "waste-vision app --set-staff-pin"


class Access(enum.Enum):
    """Who the kiosk is serving: the public (look only) or staff (everything)."""

    PUBLIC = "public"
    STAFF = "staff"


def config_dir() -> Path:
    """The user's config folder (``WASTE_VISION_CONFIG_DIR`` overrides it, for tests)."""
    override = os.environ.get("WASTE_VISION_CONFIG_DIR")
    if override:
        return Path(override)
    from platformdirs import user_config_dir

    return Path(user_config_dir("waste-vision", appauthor=False))


def staff_pin_file() -> Path:
    return config_dir() / PIN_FILE_NAME


def _pbkdf2_sha256(password: bytes, salt: bytes, iterations: int) -> bytes:
    """PBKDF2-HMAC-SHA256, 32 bytes: OpenSSL's where Python has it, else RFC 8018 here."""
    fast = getattr(hashlib, "pbkdf2_hmac", None)
    if fast is not None:
        try:
            return fast("sha256", password, salt, iterations, 32)
        except ValueError:  # no OpenSSL behind it
            pass
    key = password if len(password) <= 64 else hashlib.sha256(password).digest()
    key = key.ljust(64, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def prf(data: bytes) -> bytes:
        i, o = inner.copy(), outer.copy()
        i.update(data)
        o.update(i.digest())
        return o.digest()

    u = prf(salt + (1).to_bytes(4, "big"))
    acc = int.from_bytes(u, "big")
    for _ in range(iterations - 1):
        u = prf(u)
        acc ^= int.from_bytes(u, "big")
    return acc.to_bytes(32, "big")


def _hash(pin: str, salt: bytes, iterations: int) -> bytes:
    return _pbkdf2_sha256(pin.encode("utf-8"), salt, iterations)


def set_staff_pin(pin: str) -> Path:
    """Store ``pin`` as a salted PBKDF2 hash (never the PIN itself) in a file only the
    user can read (0600); returns the file."""
    pin = pin.strip()
    if len(pin) < MIN_PIN_LENGTH:
        raise UserError(
            f"staff PIN: give at least {MIN_PIN_LENGTH} characters (got {len(pin)})", exit_code=2
        )
    path = staff_pin_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        salt = os.urandom(16)
        digest = _hash(pin, salt, PBKDF2_ITERATIONS)
        line = f"pbkdf2-sha256${PBKDF2_ITERATIONS}${salt.hex()}${digest.hex()}\n"
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(line)
        os.chmod(tmp, 0o600)  # also when the .tmp was left by an earlier try
        os.replace(tmp, path)
    except OSError as exc:
        raise UserError(
            f"staff PIN: cannot write {path} ({exc.strerror or exc}); check "
            "the folder is yours and writable",
            exit_code=2,
        ) from exc
    return path


def has_staff_pin() -> bool:
    return staff_pin_file().is_file()


def verify_staff_pin(pin: str) -> bool:
    """``pin`` matches the stored hash; False where none is stored or the file is broken."""
    try:
        kind, iterations, salt, digest = (
            staff_pin_file().read_text(encoding="ascii").strip().split("$")
        )
        if kind != "pbkdf2-sha256" or not 1 <= int(iterations) <= 10_000_000:
            return False
        computed = _hash(pin.strip(), bytes.fromhex(salt), int(iterations))
        return hmac.compare_digest(computed, bytes.fromhex(digest))
    except (OSError, ValueError, UnicodeDecodeError):
        return False


def ask_pin(parent) -> str | None:
    """The PIN, typed hidden; None if cancelled. (Tests replace this.)"""
    pin, ok = QInputDialog.getText(parent, "Staff mode", "Staff PIN:", QLineEdit.EchoMode.Password)
    return pin if ok else None


def public_notice(spec: str | None, kind: str) -> str:
    """What a passer-by reads when the video stops: plain words, no paths or error codes
    (the details stay in the log)."""
    from waste_vision.app.session import Stop  # here: --set-staff-pin needs no engine
    from waste_vision.app.source_policy import is_camera, is_stream

    if kind == Stop.ENDED:
        return "Starting again…"
    if is_camera(spec):
        return "Camera not connected — retrying"
    if is_stream(spec):
        return "Video feed not reachable — retrying"
    return "Video not available — retrying"


class Kiosk(QObject):
    def __init__(self, window: MainWindow):
        super().__init__(window)
        self.window = window
        self.delay = FIRST_DELAY_S
        self.restarts = 0
        self.access = Access.PUBLIC
        self.wrong_pins = 0  # in a row
        self._refused_until = 0.0  # monotonic: F12 is refused until then (wrong PINs)
        self._locked_out = False  # the refusal is the long one (MAX_ATTEMPTS wrong PINs)
        self._cursor_hidden = False
        self._said = ""  # the staff message on the notice, cleared after NOTICE_MS
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._restart)
        self._notice_timer = QTimer(self)
        self._notice_timer.setSingleShot(True)
        self._notice_timer.timeout.connect(self._unsay)
        window.session.stopped.connect(self._on_stopped)

    def apply(self) -> None:
        w = self.window
        screen = w.screen() or QApplication.primaryScreen()
        w.panel.set_kiosk(True, screen.geometry().width() if screen is not None else None)
        font = QFont(w.notice.font())
        font.setPointSize(28)  # read from across a room
        w.notice.setFont(font)
        w.video.placeholder = "Waiting for the camera…"
        # F12 is staff mode here; the figures are one of the things staff mode shows
        w.act.staff_figures.setShortcut(QKeySequence())
        w.act.staff_mode.setShortcut(QKeySequence("F12"))
        self._lock()
        if screen is not None:  # also fills the screen where no window manager runs
            w.setGeometry(screen.geometry())
        w.showFullScreen()

    # -- public / staff ---------------------------------------------------------------------

    def toggle_staff(self) -> None:
        """F12: ask for the PIN and open staff mode; in staff mode, lock it again."""
        if self.access is Access.STAFF:
            self._lock()
            self._say("Locked: public mode")
            return
        now = time.monotonic()
        if now < self._refused_until:
            wait = int(self._refused_until - now) + 1
            self._say(
                f"Staff mode: too many wrong PINs; try again in {wait} s"
                if self._locked_out
                else "Staff mode: wait a moment, then try again"
            )
            return
        if not has_staff_pin():
            self._say(f"Staff mode needs a PIN: set one with {SET_PIN_COMMAND}")
            return
        pin = ask_pin(self.window)
        if pin is None:
            return
        if verify_staff_pin(pin):
            self.wrong_pins = 0
            self._unlock()
            return
        self.wrong_pins += 1
        if self.wrong_pins >= MAX_ATTEMPTS:
            self.wrong_pins = 0
            self._refused_until = time.monotonic() + LOCKOUT_S
            self._locked_out = True
            self._say(f"Wrong PIN; staff mode refused for {LOCKOUT_S:.0f} s")
        else:
            self._refused_until = time.monotonic() + WRONG_PIN_DELAY_MS / 1000.0
            self._locked_out = False
            self._say("Wrong PIN")

    def _lock(self) -> None:
        """Public: look only. Every action off but the exit and F12, no chrome, no mouse."""
        w = self.window
        self.access = Access.PUBLIC
        w.set_public_locked(True)
        w.menuBar().hide()
        w.toolbar.hide()
        w.statusBar().hide()
        w.act.staff_figures.setChecked(False)
        w.show_staff_figures(False)
        w.panel.thresholds_box.setVisible(False)
        w.video.cancel_drag()
        w.video.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents, True)
        if not self._cursor_hidden:
            QApplication.setOverrideCursor(Qt.CursorShape.BlankCursor)
            self._cursor_hidden = True

    def _unlock(self) -> None:
        w = self.window
        self.access = Access.STAFF
        w.set_public_locked(False)
        w.menuBar().show()
        w.toolbar.show()
        w.statusBar().show()
        w.panel.thresholds_box.setVisible(True)
        w.act.staff_figures.setChecked(True)
        w.show_staff_figures(True)
        w.video.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents, False)
        self._show_cursor()
        w.show_status("Staff mode: F12 locks the screen again", 10000)

    def _say(self, text: str) -> None:
        self._said = text
        self.window.set_notice(text)
        self._notice_timer.start(NOTICE_MS)

    def _unsay(self) -> None:
        if self.window.notice_text == self._said:
            self.window.set_notice("")
        self._said = ""

    def _show_cursor(self) -> None:
        if self._cursor_hidden:
            QApplication.restoreOverrideCursor()
            self._cursor_hidden = False

    # -- unattended running -----------------------------------------------------------------

    def release(self) -> None:
        self._timer.stop()
        self._notice_timer.stop()
        self._show_cursor()

    def cancel_restart(self) -> None:
        self._timer.stop()

    def frame_arrived(self) -> None:
        """Frames flow again: clear the problem notice; the next failure waits briefly."""
        self.delay = FIRST_DELAY_S
        if self.window.notice_error:
            self.window.set_notice("")

    def _on_stopped(self, run_id: int, kind: str, message: str) -> None:
        from waste_vision.app.session import Stop

        w = self.window
        if run_id != w.session.current_id or w._closing or kind == Stop.ASKED:
            return
        wait = self.delay
        self.delay = min(self.delay * 2, MAX_DELAY_S)
        w.set_notice(public_notice(w.current_spec, kind), error=kind != Stop.ENDED)
        self._timer.start(int(wait * 1000))

    def _restart(self) -> None:
        if self.window._closing:
            return
        self.restarts += 1
        self.window.restart_source()
