"""The app's remembered settings, all keys in one place (QSettings underneath).

``main`` uses the per-user default location; tests pass a QSettings on a temporary file.
Stream URLs are kept without their user name and password (``remember_source``), and the
file is made readable by its owner only (0600) each time it is written.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from PySide6.QtCore import QByteArray, QSettings

from waste_vision.redact import has_credentials, strip_credentials

ORGANIZATION = "waste-vision"
APPLICATION = "waste-vision"
DEFAULT_RECORDING_FOLDER = Path("~/Videos/waste-vision")


class AppSettings:
    def __init__(self, qsettings: QSettings | None = None):
        self.q = qsettings if qsettings is not None else QSettings(ORGANIZATION, APPLICATION)
        last = self.last_source
        if last and has_credentials(last):  # written by an earlier version: take it out
            self.remember_source(last)
        self.protect()

    def _get(self, key: str, default, kind):
        value = self.q.value(key, default)
        try:
            if kind is bool and isinstance(value, str):  # INI files give strings back
                return value.lower() in ("1", "true", "yes")
            return kind(value) if value is not None else default
        except (TypeError, ValueError):
            return default

    @property
    def last_source(self) -> str | None:
        return self._get("source/last", "", str) or None

    @last_source.setter
    def last_source(self, spec: str) -> None:
        self.remember_source(spec)

    def remember_source(self, spec: str) -> None:
        """Keep ``spec`` for the next launch, a stream without its credentials; that it had
        some (and the user name) is kept so the window can ask for the password again."""
        spec = str(spec)
        login = has_credentials(spec)
        try:
            user = urlsplit(spec).username if login else None
        except ValueError:
            user = None
        self.q.setValue("source/last", strip_credentials(spec) if login else spec)
        self.q.setValue("source/needs_login", login)
        self.q.setValue("source/user", user or "")
        self.sync()

    @property
    def last_source_needs_login(self) -> bool:
        return self._get("source/needs_login", False, bool)

    @property
    def last_source_user(self) -> str | None:
        return self._get("source/user", "", str) or None

    @property
    def loop_files(self) -> bool:
        return self._get("source/loop", False, bool)

    @loop_files.setter
    def loop_files(self, value: bool) -> None:
        self.q.setValue("source/loop", bool(value))

    @property
    def camera_size(self) -> tuple[int, int] | None:
        """The resolution cameras are asked for; None: the driver's default."""
        text = self._get("camera/size", "", str)
        try:
            w, h = (int(v) for v in text.split("x"))
            return w, h
        except ValueError:
            return None

    @camera_size.setter
    def camera_size(self, size: tuple[int, int] | None) -> None:
        self.q.setValue("camera/size", f"{size[0]}x{size[1]}" if size else "")

    @property
    def find_items(self) -> bool:
        """Find each item on the table (True, the default) or classify the whole frame."""
        return self._get("view/find_items", True, bool)

    @find_items.setter
    def find_items(self, value: bool) -> None:
        self.q.setValue("view/find_items", bool(value))

    @property
    def recording_folder(self) -> Path:
        text = self._get("recording/folder", "", str)
        return Path(text or DEFAULT_RECORDING_FOLDER).expanduser()

    @recording_folder.setter
    def recording_folder(self, folder: Path) -> None:
        self.q.setValue("recording/folder", str(folder))

    def threshold(self, name: str) -> float | None:
        value = self._get(f"thresholds/{name}", None, float)
        return value if value is not None and 0.0 <= value <= 1.0 else None

    def set_threshold(self, name: str, value: float | None) -> None:
        if value is None:
            self.q.remove(f"thresholds/{name}")
        else:
            self.q.setValue(f"thresholds/{name}", float(value))

    @property
    def geometry(self) -> QByteArray | None:
        value = self.q.value("window/geometry")
        return value if isinstance(value, QByteArray) else None

    @geometry.setter
    def geometry(self, value: QByteArray) -> None:
        self.q.setValue("window/geometry", value)

    def sync(self) -> None:
        self.q.sync()
        self.protect()

    def protect(self) -> None:
        """The settings file (and the folder the app made for it) for the owner only."""
        path = Path(self.q.fileName())
        try:
            if path.is_file():
                os.chmod(path, 0o600)
            if path.parent.name == ORGANIZATION and path.parent.is_dir():
                os.chmod(path.parent, 0o700)  # our own folder, e.g. ~/.config/waste-vision
        except OSError:
            pass  # another user's file or a read-only disk: nothing better to do
