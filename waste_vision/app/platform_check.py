"""Can Qt's platform plug-in load here? Asked before the QApplication exists.

Where a system library the plug-in links to is missing (``libxcb-cursor0`` on stock Ubuntu
before 24.04 is the usual one), Qt prints its own multi-line message and aborts the process
(exit 134). This check loads the plug-in's shared library first, the same way Qt would
(``dlopen``, so the same search path), and turns a failure into one line that names the
missing Debian/Ubuntu packages and the ``apt`` command that installs them.

Only the xcb plug-in (X11, Linux) is checked: ``offscreen``, ``minimal`` and ``linuxfb``
need no extra system library, and Wayland sessions are left to Qt.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from waste_vision.errors import UserError

# The system packages Qt's xcb plug-in needs (as in .ci/run), by the library each provides.
XCB_PACKAGES: dict[str, str] = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libfontconfig.so.1": "libfontconfig1",
    "libdbus-1.so.3": "libdbus-1-3",
    # usually there with any X11 desktop, named for completeness
    "libxcb.so.1": "libxcb1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6",
    "libfreetype.so.6": "libfreetype6",
}
# What .ci/run installs for Qt: one command that leaves nothing else missing.
QT_APT_PACKAGES = (
    "libegl1",
    "libgl1",
    "libglib2.0-0",
    "libfontconfig1",
    "libdbus-1-3",
    "libxkbcommon0",
    "libxkbcommon-x11-0",
    "libxcb-cursor0",
    "libxcb-icccm4",
    "libxcb-image0",
    "libxcb-keysyms1",
    "libxcb-randr0",
    "libxcb-render-util0",
    "libxcb-shape0",
    "libxcb-xfixes0",
    "libxcb-xinerama0",
    "libxcb-xkb1",
)
_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found", re.M)
_DLERROR = re.compile(r"([\w.+-]+\.so[\w.]*): cannot open shared object file")


def requested_platform(environ=os.environ) -> str:
    """The plug-in Qt will try first: QT_QPA_PLATFORM's first entry, else Qt's own choice
    on Linux (wayland in a Wayland session, else xcb)."""
    value = environ.get("QT_QPA_PLATFORM", "").strip()
    if value:
        return value.split(";")[0].split(":")[0].strip().lower()
    if environ.get("WAYLAND_DISPLAY") or environ.get("XDG_SESSION_TYPE") == "wayland":
        return "wayland"
    return "xcb"


def plugin_dirs() -> list[Path]:
    """Where Qt looks for plug-ins: QT_PLUGIN_PATH, then the Qt build's own folder."""
    dirs = [Path(p) for p in os.environ.get("QT_PLUGIN_PATH", "").split(os.pathsep) if p]
    try:
        from PySide6.QtCore import QLibraryInfo

        dirs.append(Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)))
    except Exception:  # no usable QtCore: Qt will say so itself
        pass
    try:
        import PySide6

        dirs.append(Path(PySide6.__file__).parent / "Qt" / "plugins")
    except Exception:
        pass
    return dirs


def find_plugin(name: str = "xcb") -> Path | None:
    for folder in plugin_dirs():
        path = folder / "platforms" / f"libq{name}.so"
        if path.is_file():
            return path
    return None


def _dlopen(path: Path) -> None:
    """Load the library as Qt will (raises OSError with the loader's message)."""
    ctypes.CDLL(str(path))


def _ldd_missing(path: Path) -> list[str]:
    """Every library ``ldd`` cannot find (dlopen names only the first); [] without ldd."""
    ldd = shutil.which("ldd")
    if not ldd:
        return []
    try:
        out = subprocess.run(
            [ldd, str(path)],
            capture_output=True,
            text=True,
            timeout=20,
            env=dict(os.environ, LC_ALL="C"),
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return list(dict.fromkeys(_NOT_FOUND.findall(out)))


def missing_libraries(plugin: Path) -> tuple[list[str], str]:
    """(the system libraries that keep ``plugin`` from loading, the loader's message);
    ([], "") when it loads."""
    try:
        _dlopen(plugin)
        return [], ""
    except OSError as exc:
        error = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return list(dict.fromkeys(_DLERROR.findall(error) + _ldd_missing(plugin))), error


def message(missing: list[str]) -> str:
    packages = list(dict.fromkeys(XCB_PACKAGES[m] for m in missing if m in XCB_PACKAGES))
    unknown = [m for m in missing if m not in XCB_PACKAGES]
    rest = [p for p in QT_APT_PACKAGES if p not in packages]
    if packages:
        what = ("package " if len(packages) == 1 else "packages ") + ", ".join(packages)
        if unknown:
            what += f" (and {', '.join(unknown)})"
    else:
        what = ("library " if len(unknown) == 1 else "libraries ") + ", ".join(unknown)
    return (
        f"the window cannot start: Qt's X11 (xcb) platform plug-in needs the system "
        f"{what}, not installed here; install with: sudo apt install "
        f"{' '.join(packages + rest)} (or run without a screen: QT_QPA_PLATFORM=offscreen)"
    )


def check_platform(environ=os.environ) -> None:
    """Raise ``UserError`` (one line, exit 2) where Qt's platform plug-in could not start."""
    if not sys.platform.startswith("linux"):
        return
    if requested_platform(environ) != "xcb":
        return  # offscreen, minimal, linuxfb, vnc need nothing more; Wayland is Qt's business
    plugin = find_plugin("xcb")
    if plugin is None:
        return  # an unusual Qt build: let Qt report
    missing, error = missing_libraries(plugin)
    if missing:
        raise UserError(message(missing))
    if error:
        raise UserError(
            f"the window cannot start: Qt's platform plug-in {plugin} does not load "
            f"({error}); reinstall PySide6 (pip install --force-reinstall "
            "pyside6-essentials) or run with QT_QPA_PLATFORM=offscreen"
        )
    if not environ.get("DISPLAY"):
        raise UserError(
            "the window cannot start: no X display (DISPLAY is not set); run it on "
            "a desktop, under xvfb-run, or with QT_QPA_PLATFORM=offscreen"
        )
