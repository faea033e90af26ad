"""The app's remembered settings, all keys in one place (QSettings underneath).

``main`` uses the per-user default location; tests pass a QSettings on a temporary file.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

ORGANIZATION = "waste-vision"
APPLICATION = "waste-vision"
DEFAULT_RECORDING_FOLDER = Path("~/Videos/waste-vision")


class AppSettings:
    def __init__(self, qsettings: QSettings | None = None):
        self.q = qsettings if qsettings is not None else QSettings(ORGANIZATION, APPLICATION)

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
        self.q.setValue("source/last", spec)

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
