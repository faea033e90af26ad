"""Kiosk lockdown (pytest-qt, offscreen, on the real engine and the bundled clip): the public
can only look — no recording, snapshots or settings from the keyboard — staff mode sits
behind a PIN stored as a salted hash, and a recording always shows a REC sign on the video."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from tests.test_app import (  # noqa: F401
    DEMO,
    FRAME_WAIT_MS,
    cascade,
    dialogs,
    make_window,
    settings,
    wait_frames,
)
from waste_vision.app import kiosk as kiosk_module
from waste_vision.app.kiosk import (
    Access,
    set_staff_pin,
    staff_pin_file,
    verify_staff_pin,
)
from waste_vision.errors import UserError

PIN = "4711"


@pytest.fixture(autouse=True)
def config_dir(tmp_path, monkeypatch):
    """The PIN file goes to a throw-away folder, never the user's config."""
    folder = tmp_path / "config"
    monkeypatch.setenv("WASTE_VISION_CONFIG_DIR", str(folder))
    return folder


def test_the_pin_is_stored_as_a_salted_hash_readable_by_the_owner_only(config_dir):
    assert not verify_staff_pin(PIN)  # nothing stored: nothing matches
    path = set_staff_pin(PIN)
    assert path == staff_pin_file() and path.parent == config_dir
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    first = path.read_text()
    assert PIN not in first and first.startswith("pbkdf2-sha256$")
    assert verify_staff_pin(PIN) and not verify_staff_pin("4712") and not verify_staff_pin("")
    set_staff_pin(PIN)
    assert path.read_text() != first  # a fresh random salt each time
    assert verify_staff_pin(PIN)
    with pytest.raises(UserError, match="at least 4"):
        set_staff_pin("12")
    assert verify_staff_pin(PIN)  # a refused PIN leaves the stored one alone
    path.write_text("garbage\n")
    assert not verify_staff_pin(PIN)  # a broken file opens nothing


def test_the_pin_hash_needs_no_openssl(monkeypatch):
    """The bundle's Python has no OpenSSL (no hashlib.pbkdf2_hmac or scrypt): the built-in
    PBKDF2 gives the same hash, so a PIN set anywhere opens the kiosk everywhere."""
    import hashlib

    expected = hashlib.pbkdf2_hmac("sha256", b"password", b"salt", 4096, 32)
    # RFC 7914 section 11's PBKDF2-HMAC-SHA256 vector (c=1)
    rfc = bytes.fromhex("120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b")
    no_openssl = type("hashlib", (), {"sha256": staticmethod(hashlib.sha256)})
    monkeypatch.setattr(kiosk_module, "hashlib", no_openssl)
    assert kiosk_module._pbkdf2_sha256(b"password", b"salt", 1) == rfc
    assert kiosk_module._pbkdf2_sha256(b"password", b"salt", 4096) == expected
    set_staff_pin(PIN)
    monkeypatch.setattr(kiosk_module, "hashlib", hashlib)
    assert verify_staff_pin(PIN)  # set without OpenSSL, checked with it


def red_pixels(window) -> int:
    """Pixels of the REC sign's red in the video's top-left corner."""
    image = (
        window.video.grab()
        .toImage()
        .convertToFormat(window.video.grab().toImage().Format.Format_RGB888)
    )
    w, h = image.width(), image.height()
    ptr = image.constBits()
    pixels = (
        np.frombuffer(ptr, np.uint8, count=image.sizeInBytes())
        .reshape(h, image.bytesPerLine())[:, : w * 3]
        .reshape(h, w, 3)
    )
    corner = pixels[: h // 6, : w // 6].astype(int)
    r, g, b = corner[..., 0], corner[..., 1], corner[..., 2]
    return int(((abs(r - 217) < 25) & (abs(g - 48) < 25) & (abs(b - 37) < 25)).sum())


def settle(window) -> None:
    """Wait until the session has done everything asked of it so far (its control thread
    runs calls in order) and its answers (queued signals) have reached the window."""
    window.session._control.submit(lambda: None).result(10)
    QApplication.processEvents()


def press(window, key, modifier=Qt.KeyboardModifier.NoModifier):
    window.activateWindow()
    window.setFocus()
    QTest.keyClick(window, key, modifier)


def test_public_kiosk_cannot_record_snapshot_or_change_settings_from_the_keyboard(
    make_window, qtbot, monkeypatch
):
    set_staff_pin(PIN)
    asked = []
    monkeypatch.setattr(kiosk_module, "ask_pin", lambda parent: asked.append(1) or PIN)
    window = make_window(kiosk=True)
    window.open_source(str(DEMO))
    wait_frames(qtbot, window)
    window.update_run_actions()  # what re-enabled Record and Snapshot before the fix
    window._on_cameras_found([0])  # a camera turns up: its menu entry stays off too
    enabled = {a for a in window.act.all if a.isEnabled()}
    assert enabled == window.act.public  # the exit and F12, nothing else
    assert not any(a.isEnabled() for a in window._camera_actions())
    started = []
    window.session.recordingStarted.connect(started.append)
    snaps = []
    window.session.snapshotSaved.connect(lambda *a: snaps.append(a))
    asked_snapshots = []  # save_snapshot writes on a thread of its own: catch the request
    real_save = window.session.save_snapshot
    monkeypatch.setattr(
        window.session,
        "save_snapshot",
        lambda *a: asked_snapshots.append(a) or real_save(*a),
    )
    threshold = window.panel.stage1_slider.value()
    press(window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    press(window, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    press(window, Qt.Key.Key_BracketRight)  # stage-1 threshold +0.01
    press(window, Qt.Key.Key_Space)  # start/stop
    window.recording_controls.toggle()  # even a direct call refuses
    settle(window)
    assert started == [] and snaps == [] and asked_snapshots == []
    assert window.session._run.recording is None
    assert window.session.active  # Space did not stop it
    assert not window.video.recording and red_pixels(window) == 0
    assert window.panel.stage1_slider.value() == threshold
    assert window.session.config.overlay.figures is False  # a public kiosk: no figures

    # F12 with the right PIN: staff mode, every key works again (the same presses record)
    press(window, Qt.Key.Key_F12)
    assert asked and window.kiosk_controller.access is Access.STAFF
    assert window.act.record.isEnabled() and window.menuBar().isVisible()
    assert window.panel.rates.isVisible()  # the figures are for staff
    assert window.session.config.overlay.figures  # drawn into the video for staff too
    with qtbot.waitSignal(window.session.recordingStarted, timeout=10_000):
        press(window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: red_pixels(window) > 20, timeout=3000)  # the REC sign shows
    # F12 again: locked; the recording goes on with its sign, and nobody can stop it
    press(window, Qt.Key.Key_F12)
    assert window.kiosk_controller.access is Access.PUBLIC
    assert {a for a in window.act.all if a.isEnabled()} == window.act.public
    assert not window.menuBar().isVisible() and not window.panel.rates.isVisible()
    assert window.session.config.overlay.figures is False  # none drawn into the video
    press(window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    settle(window)  # a stop, had it been asked, is done by now
    (path,) = started  # the one recording staff started, still the one being written
    assert window.recording_controls.path == path
    assert str(window.session._run.recording.path) == path
    qtbot.waitUntil(lambda: red_pixels(window) > 20, timeout=3000)


def test_wrong_pins_keep_it_locked_and_too_many_refuse_f12(make_window, qtbot, monkeypatch):
    set_staff_pin(PIN)
    typed = []
    answers = iter(["0000", "1234", "9999", PIN])
    monkeypatch.setattr(kiosk_module, "ask_pin", lambda parent: typed.append(1) or next(answers))
    window = make_window(kiosk=True)
    kiosk = window.kiosk_controller
    window.act.staff_mode.trigger()
    assert "Wrong PIN" in window.notice.text() and len(typed) == 1
    window.act.staff_mode.trigger()  # straight after a wrong one: a pause first, no prompt
    assert "wait a moment" in window.notice.text() and len(typed) == 1
    monkeypatch.setattr(kiosk_module, "WRONG_PIN_DELAY_MS", 0)
    answers = iter(["0000", "1234", "9999", PIN])
    typed.clear()
    kiosk.wrong_pins = 0
    kiosk._refused_until = 0.0
    for n in range(1, kiosk_module.MAX_ATTEMPTS + 1):
        window.act.staff_mode.trigger()
        assert kiosk.access is Access.PUBLIC and not window.act.record.isEnabled()
        assert "Wrong PIN" in window.notice.text()
        assert len(typed) == n
    window.act.staff_mode.trigger()  # the right PIN now, but F12 is refused for a while
    assert len(typed) == kiosk_module.MAX_ATTEMPTS  # not even asked
    assert "too many wrong PINs" in window.notice.text()
    assert kiosk.access is Access.PUBLIC


def test_without_a_pin_f12_says_how_to_set_one_and_stays_public(make_window, monkeypatch):
    monkeypatch.setattr(kiosk_module, "ask_pin", lambda parent: pytest.fail("asked for a PIN"))
    window = make_window(kiosk=True)
    window.act.staff_mode.trigger()
    assert "waste-vision app --set-staff-pin" in window.notice.text()
    assert window.kiosk_controller.access is Access.PUBLIC
    assert not window.act.record.isEnabled() and not window.act.reset_thresholds.isEnabled()


def test_f12_is_staff_mode_in_the_kiosk_and_the_figures_elsewhere(make_window):
    normal = make_window()
    assert normal.act.staff_figures.shortcut().toString() == "F12"
    assert normal.act.staff_mode.shortcut().isEmpty()
    kiosk = make_window(kiosk=True)
    assert kiosk.act.staff_mode.shortcut().toString() == "F12"
    assert kiosk.act.staff_figures.shortcut().isEmpty()  # no two actions on one key


def test_set_staff_pin_from_the_command_line(tmp_path, monkeypatch):
    """`waste-vision app --set-staff-pin` stores a piped PIN hashed (0600); empty input is one
    line and exit 2, nothing written."""
    import subprocess
    import sys

    from waste_vision.app.kiosk import staff_pin_file, verify_staff_pin

    monkeypatch.setenv("WASTE_VISION_CONFIG_DIR", str(tmp_path / "config"))
    env = dict(os.environ, WASTE_VISION_CONFIG_DIR=str(tmp_path / "config"))
    cmd = [sys.executable, "-m", "waste_vision", "app", "--set-staff-pin"]
    empty = subprocess.run(cmd, input="\n", capture_output=True, text=True, env=env, timeout=60)
    assert empty.returncode == 2 and len(empty.stderr.strip().splitlines()) == 1, empty.stderr
    assert not staff_pin_file().exists()
    r = subprocess.run(cmd, input="482913\n", capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "482913" not in staff_pin_file().read_text()
    assert staff_pin_file().stat().st_mode & 0o777 == 0o600
    assert verify_staff_pin("482913") and not verify_staff_pin("482914")
