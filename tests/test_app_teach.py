"""Teach mode in the window: a crop taught from the live picture is in the profile and used
by the next frame, undo takes it back, and a kiosk's public mode cannot teach."""

from __future__ import annotations

import time

from tests.test_app import (  # noqa: F401  (fixtures)
    DEMO,
    cascade,
    dialogs,
    make_window,
    settings,
    wait_frames,
)
from waste_vision.labels import Bin
from waste_vision.model.profile import PROFILE_FILE, SiteProfile


def test_teaching_the_item_in_view_is_used_by_the_next_frame(make_window, qtbot, tmp_path):
    window = make_window(profile_dir=tmp_path / "site")
    window.open_source(str(DEMO))
    wait_frames(qtbot, window)
    crop = window.teach_controls.current_crop()
    assert crop is not None and crop.ndim == 3 and crop.size > 0
    started = time.perf_counter()
    message = window.teach_controls.teach("battery", crop, Bin.HAZARDOUS).result(timeout=10)
    elapsed = time.perf_counter() - started
    assert message.startswith("Taught: battery"), message
    assert elapsed < 2.0, elapsed  # the work is in a thread; here only bounded for sanity
    profile = SiteProfile.open(tmp_path / "site")
    assert profile.counts() == {"battery": 1} and profile.classes["battery"] == Bin.HAZARDOUS
    head = window.cascade.profile
    assert head is not None and "battery" in head.labels
    # the very crop, classified now, is the taught class
    result = window.cascade.classify(crop)
    assert result.label == "battery" and result.bin == Bin.HAZARDOUS and result.taught > 0
    window.act.undo_teach.trigger()
    qtbot.waitUntil(lambda: window.cascade.profile is None, timeout=10_000)
    assert SiteProfile.open(tmp_path / "site").counts() == {}
    assert (tmp_path / "site" / PROFILE_FILE).exists()


def test_a_kiosks_public_mode_cannot_teach(make_window, tmp_path, monkeypatch):
    monkeypatch.setenv("WASTE_VISION_CONFIG_DIR", str(tmp_path / "config"))
    window = make_window(kiosk=True, profile_dir=tmp_path / "site")
    for action in (window.act.teach, window.act.undo_teach, window.act.site_profile):
        assert not action.isEnabled()
