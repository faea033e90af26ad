"""``waste-vision app`` where Qt's platform plug-in cannot load: one line, the apt command, exit 2."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from waste_vision.app import platform_check
from waste_vision.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
CURSOR_MISSING = "libxcb-cursor.so.0: cannot open shared object file: No such file or directory"


def cursor_missing_message() -> str:
    """The one line for a missing libxcb-cursor0: the apt command installs it first, then
    the rest of the list .ci/run installs."""
    rest = [p for p in platform_check.QT_APT_PACKAGES if p != "libxcb-cursor0"]
    return (
        "the window cannot start: Qt's X11 (xcb) platform plug-in needs the system package "
        "libxcb-cursor0, not installed here; install with: sudo apt install "
        + " ".join(["libxcb-cursor0", *rest])
        + " (or run without a screen: QT_QPA_PLATFORM=offscreen)"
    )


@pytest.fixture
def plugin_fails(monkeypatch):
    """The xcb plug-in's dlopen fails the way it does on Ubuntu 22.04 without libxcb-cursor0."""
    calls = []

    def fail(path):
        calls.append(path)
        raise OSError(CURSOR_MISSING)

    monkeypatch.setattr(platform_check, "_dlopen", fail)
    monkeypatch.setattr(platform_check, "_ldd_missing", lambda path: [])
    return calls


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the xcb check is Linux only")
def test_missing_xcb_cursor_names_the_package_and_the_command(plugin_fails):
    with pytest.raises(UserError) as exc:
        platform_check.check_platform({"QT_QPA_PLATFORM": "xcb", "DISPLAY": ":0"})
    text = str(exc.value)
    assert [p.name for p in plugin_fails] == ["libqxcb.so"]  # the xcb plug-in, tried once
    assert text == cursor_missing_message()
    # one command installs the whole list from .ci/run, not only the missing package
    ci = (ROOT / ".ci" / "run").read_text()
    for package in platform_check.QT_APT_PACKAGES:
        assert package in ci
        assert f" {package}" in text


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the xcb check is Linux only")
def test_every_missing_library_ldd_finds_is_named(monkeypatch, plugin_fails):
    monkeypatch.setattr(
        platform_check, "_ldd_missing", lambda path: ["libxcb-cursor.so.0", "libxkbcommon-x11.so.0"]
    )
    with pytest.raises(UserError, match="packages libxcb-cursor0, libxkbcommon-x11-0, not"):
        platform_check.check_platform({"DISPLAY": ":0"})


@pytest.mark.parametrize(
    "env",
    [
        {"QT_QPA_PLATFORM": "offscreen"},
        {"QT_QPA_PLATFORM": "minimal"},
        {"QT_QPA_PLATFORM": "wayland"},
        {"WAYLAND_DISPLAY": "wayland-0"},
    ],
)
def test_other_platforms_are_not_checked(plugin_fails, env):
    platform_check.check_platform(env)
    assert plugin_fails == []


@pytest.mark.parametrize(
    "env, expected",
    [
        ({}, "xcb"),
        ({"QT_QPA_PLATFORM": "offscreen:fontengine=freetype"}, "offscreen"),
        ({"QT_QPA_PLATFORM": "XCB;wayland"}, "xcb"),
        ({"XDG_SESSION_TYPE": "wayland"}, "wayland"),
    ],
)
def test_requested_platform(env, expected):
    assert platform_check.requested_platform(env) == expected


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the xcb check is Linux only")
def test_no_display_is_one_line_too(monkeypatch):
    monkeypatch.setattr(platform_check, "missing_libraries", lambda plugin: ([], ""))
    with pytest.raises(UserError) as exc:
        platform_check.check_platform({"QT_QPA_PLATFORM": "xcb"})
    assert str(exc.value) == (
        "the window cannot start: no X display (DISPLAY is not set); run it on a desktop, "
        "under xvfb-run, or with QT_QPA_PLATFORM=offscreen"
    )


@pytest.mark.skipif(
    not shutil.which("gcc") or not sys.platform.startswith("linux"),
    reason="needs gcc to build a library with a missing dependency",
)
def test_a_real_loader_failure_is_read(tmp_path):
    """A real shared library whose dependency is gone: dlopen and ldd both report it."""
    (tmp_path / "dep.c").write_text("int wv_dep(void) { return 1; }\n")
    (tmp_path / "plugin.c").write_text(
        "int wv_dep(void);\nint wv_plugin(void) { return wv_dep(); }\n"
    )
    dep = tmp_path / "libwaste-vision-absent.so.1"
    subprocess.run(
        [
            "gcc",
            "-shared",
            "-fPIC",
            "-o",
            dep,
            tmp_path / "dep.c",
            "-Wl,-soname,libwaste-vision-absent.so.1",
        ],
        check=True,
    )
    plugin = tmp_path / "libqfake.so"
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-o", plugin, tmp_path / "plugin.c", dep], check=True
    )
    dep.unlink()
    missing, error = platform_check.missing_libraries(plugin)
    assert missing == ["libwaste-vision-absent.so.1"]
    assert "cannot open shared object file" in error
    assert "library libwaste-vision-absent.so.1," in platform_check.message(missing)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the xcb check is Linux only")
def test_app_command_exits_2_with_one_line_before_qt_starts(tmp_path):
    """The whole command, in its own process (no QApplication yet): exit 2, one line."""
    script = textwrap.dedent(f"""
        import sys
        from waste_vision.app import platform_check
        def fail(path):
            raise OSError({CURSOR_MISSING!r})
        platform_check._dlopen = fail
        platform_check._ldd_missing = lambda path: []
        from waste_vision.commands.cli import main
        code = main(["app", "--exit-after", "1"])
        from PySide6.QtWidgets import QApplication
        assert QApplication.instance() is None, "the check must come before the QApplication"
        sys.exit(code)
    """)
    env = dict(os.environ, QT_QPA_PLATFORM="xcb", DISPLAY=":0", XDG_CONFIG_HOME=str(tmp_path))
    r = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.splitlines() == [f"waste-vision: error: {cursor_missing_message()}"], r.stderr
